class ExportsController < ApplicationController
  ALLOWED = { "csv" => CsvExport, "pdf" => PdfExport }.freeze

  def create
    # ruleid: picket.ruby.unsafe-reflection
    exporter = "#{params[:type].camelize}Export".constantize
    # ruleid: picket.ruby.unsafe-reflection
    report.public_send(params[:metric])
    # ruleid: picket.ruby.unsafe-reflection
    klass = Object.const_get(params[:model])
    # ok: picket.ruby.unsafe-reflection
    safe = ALLOWED.fetch(params[:type])
    # ok: picket.ruby.unsafe-reflection
    report.public_send(:total)
    render json: [exporter, klass, safe]
  end
end
