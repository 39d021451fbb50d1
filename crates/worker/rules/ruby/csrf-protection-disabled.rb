class WebhooksController < ApplicationController
  # ruleid: picket.ruby.csrf-protection-disabled
  skip_before_action :verify_authenticity_token, only: :create
end

class LegacyController < ApplicationController
  # ruleid: picket.ruby.csrf-protection-disabled
  skip_forgery_protection
end

class ApplicationController < ActionController::Base
  # ok: picket.ruby.csrf-protection-disabled
  protect_from_forgery with: :exception
end
