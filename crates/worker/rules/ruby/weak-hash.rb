require "digest"
require "openssl"

class Fingerprint
  def self.password(pw)
    # ruleid: picket.ruby.weak-hash
    Digest::MD5.hexdigest(pw)
  end

  def self.token(value)
    # ruleid: picket.ruby.weak-hash
    a = Digest::SHA1.hexdigest(value)
    # ruleid: picket.ruby.weak-hash
    b = OpenSSL::Digest.new("MD5").hexdigest(value)
    # ok: picket.ruby.weak-hash
    c = Digest::SHA256.hexdigest(value)
    # ok: picket.ruby.weak-hash
    d = OpenSSL::Digest.new("SHA256").hexdigest(value)
    [a, b, c, d]
  end
end
