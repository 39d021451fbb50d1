require "json"
require "yaml"

class SessionsController < ApplicationController
  def restore
    # ruleid: picket.ruby.unsafe-deserialization
    state = Marshal.load(Base64.decode64(cookies[:state]))
    # ruleid: picket.ruby.unsafe-deserialization
    doc = YAML.unsafe_load(request.body.read)
    # ruleid: picket.ruby.unsafe-deserialization
    prefs = YAML.load(params[:prefs])
    # ruleid: picket.ruby.unsafe-deserialization
    obj = Oj.load(request.body.read, mode: :object)
    # ruleid: picket.ruby.unsafe-deserialization
    legacy = JSON.load(params[:payload])
    # ok: picket.ruby.unsafe-deserialization
    data = JSON.parse(request.body.read)
    # ok: picket.ruby.unsafe-deserialization
    safe = YAML.safe_load(params[:prefs], permitted_classes: [Date])
    # ok: picket.ruby.unsafe-deserialization
    config = YAML.load(File.read(Rails.root.join("config", "app.yml")))
    render json: [state, doc, prefs, obj, legacy, data, safe, config]
  end
end
