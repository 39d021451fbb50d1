require "open3"

class ExportsController < ApplicationController
  def create
    file = params[:file]
    # ruleid: picket.ruby.command-injection
    system("tar czf /tmp/export.tgz #{file}")
    # ruleid: picket.ruby.command-injection
    output = `du -sh #{file}`
    # ruleid: picket.ruby.command-injection
    stdout, _status = Open3.capture2("git log --author=" + params[:author])
    # ruleid: picket.ruby.command-injection
    IO.popen("convert #{file} thumb.png").read
    # ruleid: picket.ruby.command-injection
    data = open(params[:url]).read
    # ok: picket.ruby.command-injection
    system("tar", "czf", "/tmp/export.tgz", file)
    # ok: picket.ruby.command-injection
    stdout2, _ = Open3.capture2("git", "log", "--author", params[:author])
    # ok: picket.ruby.command-injection
    system("make clean")
    # ok: picket.ruby.command-injection
    text = File.open(file).read
    render plain: [output, stdout, stdout2, data, text].join
  end
end
