class DownloadsController < ApplicationController
  BASE = Rails.root.join("storage", "exports")

  def show
    # ruleid: picket.ruby.path-traversal
    send_file Rails.root.join("storage", "exports", params[:name])
  end

  def raw
    path = "/srv/files/#{params[:file]}"
    # ruleid: picket.ruby.path-traversal
    render plain: File.read(path)
  end

  def destroy
    # ruleid: picket.ruby.path-traversal
    FileUtils.rm_f(File.join("/srv/tmp", params[:name]))
    head :no_content
  end

  def safe
    # ok: picket.ruby.path-traversal
    send_file BASE.join(File.basename(params[:name]))
    # ok: picket.ruby.path-traversal
    File.read(BASE.join("index.html"))
  end
end
