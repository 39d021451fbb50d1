require "net/http"

class PreviewsController < ApplicationController
  def show
    # ruleid: picket.ruby.ssrf
    body = Net::HTTP.get(URI(params[:url]))
    # ruleid: picket.ruby.ssrf
    res = HTTParty.get("http://#{params[:host]}/status")
    # ok: picket.ruby.ssrf
    user = HTTParty.get("https://api.example.com/users/#{params[:id]}")
    # ok: picket.ruby.ssrf
    search = HTTParty.get("https://api.example.com/search", query: { q: params[:q] })
    render json: [body, res, user, search]
  end
end
