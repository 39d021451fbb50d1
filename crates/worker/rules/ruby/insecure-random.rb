require "securerandom"

CHARS = [*"a".."z", *"0".."9"].freeze

class User
  def rotate_credentials
    # ruleid: picket.ruby.insecure-random
    self.reset_token = Array.new(32) { CHARS.sample }.join
    # ruleid: picket.ruby.insecure-random
    otp = rand(100_000..999_999)
    # ok: picket.ruby.insecure-random
    jitter = rand(0.5..1.5)
    # ok: picket.ruby.insecure-random
    api_key = SecureRandom.urlsafe_base64(32)
    # ok: picket.ruby.insecure-random
    csrf_token = Array.new(32) { CHARS.sample(random: SecureRandom) }.join
    [otp, jitter, api_key, csrf_token]
  end

  def generate_password
    # ruleid: picket.ruby.insecure-random
    CHARS.shuffle.first(12).join
  end
end
