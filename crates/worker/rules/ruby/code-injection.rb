class CalculatorController < ApplicationController
  def show
    # ruleid: picket.ruby.code-injection
    result = eval(params[:expr])
    # ruleid: picket.ruby.code-injection
    Report.instance_eval("self.#{params[:field]}")
    # ok: picket.ruby.code-injection
    two = eval("1 + 1")
    render plain: [result, two].join
  end
end

module Attributes
  def self.define(klass, name)
    # ok: picket.ruby.code-injection
    klass.class_eval <<~RUBY, __FILE__, __LINE__ + 1
      def #{name}?
        !!@#{name}
      end
    RUBY
  end
end
