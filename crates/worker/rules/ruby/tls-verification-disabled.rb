require "net/http"

class Client
  def call(uri)
    http = Net::HTTP.new(uri.host, uri.port)
    http.use_ssl = true
    # ruleid: picket.ruby.tls-verification-disabled
    http.verify_mode = OpenSSL::SSL::VERIFY_NONE
    # ruleid: picket.ruby.tls-verification-disabled
    conn = Faraday.new(url: uri.to_s, ssl: { verify: false })
    # ruleid: picket.ruby.tls-verification-disabled
    res = HTTParty.get(uri.to_s, verify: false)
    # ok: picket.ruby.tls-verification-disabled
    other = Faraday.new(url: uri.to_s, ssl: { ca_file: "/etc/ssl/private-ca.pem" })
    # ok: picket.ruby.tls-verification-disabled
    http.verify_mode = OpenSSL::SSL::VERIFY_PEER
    [conn, res, other]
  end
end
