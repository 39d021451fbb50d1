module CommentsHelper
  def render_comment(comment)
    # ruleid: picket.ruby.xss-html-safe
    "<p class=\"comment\">#{comment.body}</p>".html_safe
  end

  def greeting
    # ruleid: picket.ruby.xss-html-safe
    raw(params[:greeting])
  end

  def escaped(comment)
    # ok: picket.ruby.xss-html-safe
    "<p>#{h(comment.body)}</p>".html_safe
  end

  def static
    # ok: picket.ruby.xss-html-safe
    "<hr>".html_safe
  end

  def tagged(comment)
    # ok: picket.ruby.xss-html-safe
    content_tag(:p, comment.body, class: "comment")
  end
end
