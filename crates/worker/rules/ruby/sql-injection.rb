class UsersController < ApplicationController
  def search
    # ruleid: picket.ruby.sql-injection
    @users = User.where("name LIKE '%#{params[:q]}%'")
    # ruleid: picket.ruby.sql-injection
    @sorted = User.order("#{params[:sort]} #{params[:dir]}")
    sql = "SELECT * FROM users WHERE email = '" + params[:email] + "'"
    # ruleid: picket.ruby.sql-injection
    @raw = User.find_by_sql(sql)
    # ruleid: picket.ruby.sql-injection
    ActiveRecord::Base.connection.execute("DELETE FROM sessions WHERE user_id = #{params[:id]}")
    # ok: picket.ruby.sql-injection
    @safe = User.where("name LIKE ?", "%#{User.sanitize_sql_like(params[:q])}%")
    # ok: picket.ruby.sql-injection
    @hash = User.where(name: params[:name])
    # ok: picket.ruby.sql-injection
    @int = User.where("id = #{params[:id].to_i}")
    # ok: picket.ruby.sql-injection
    @list = User.find_by_sql(["SELECT * FROM users WHERE id = ?", params[:id]])
    # ok: picket.ruby.sql-injection
    @tags = %w[a b].select { |t| t == params[:t] }
  end
end
