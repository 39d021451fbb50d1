class UsersController < ApplicationController
  def update
    # ruleid: picket.ruby.mass-assignment
    current_user.update(params.require(:user).permit!)
  end

  def create
    # ruleid: picket.ruby.mass-assignment
    User.create!(params.permit!)
  end

  private

  def user_params
    # ok: picket.ruby.mass-assignment
    params.require(:user).permit(:name, :email)
  end
end
