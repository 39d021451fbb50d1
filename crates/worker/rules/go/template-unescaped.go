package web

import (
	"html/template"
	"net/http"

	"github.com/microcosm-cc/bluemonday"
)

type Page struct {
	Body template.HTML
}

func render(w http.ResponseWriter, r *http.Request, tpl *template.Template) error {
	comment := r.FormValue("comment")
	// ruleid: picket.go.template-unescaped
	page := Page{Body: template.HTML("<p>" + comment + "</p>")}
	// ruleid: picket.go.template-unescaped
	link := template.URL(r.URL.Query().Get("next"))
	// ok: picket.go.template-unescaped
	banner := template.HTML("<b>Maintenance tonight</b>")
	// ok: picket.go.template-unescaped
	clean := template.HTML(bluemonday.UGCPolicy().Sanitize(comment))
	return tpl.Execute(w, map[string]any{"page": page, "link": link, "banner": banner, "clean": clean})
}
