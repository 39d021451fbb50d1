require "openssl"

class Vault
  def ciphers
    # ruleid: picket.ruby.weak-cipher
    a = OpenSSL::Cipher.new("des-ede3-cbc")
    # ruleid: picket.ruby.weak-cipher
    b = OpenSSL::Cipher.new("rc4")
    # ruleid: picket.ruby.weak-cipher
    c = OpenSSL::Cipher::DES.new(:CBC)
    # ok: picket.ruby.weak-cipher
    d = OpenSSL::Cipher.new("aes-256-gcm")
    [a, b, c, d]
  end
end
