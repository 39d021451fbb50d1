require "openssl"

class Legacy
  def ciphers
    # ruleid: picket.ruby.ecb-mode
    a = OpenSSL::Cipher.new("aes-128-ecb")
    # ruleid: picket.ruby.ecb-mode
    b = OpenSSL::Cipher::AES.new(256, :ECB)
    # ok: picket.ruby.ecb-mode
    c = OpenSSL::Cipher.new("aes-256-gcm")
    [a, b, c]
  end
end
