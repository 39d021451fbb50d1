package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
)

func preview(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	// ruleid: picket.go.ssrf
	resp, err := http.Get(target)
	if err != nil {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	io.Copy(w, resp.Body)
}

func hook(client *http.Client, r *http.Request) error {
	// ruleid: picket.go.ssrf
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, r.FormValue("callback"), nil)
	if err != nil {
		return err
	}
	// ruleid: picket.go.ssrf
	if _, err := client.Get("http://" + r.FormValue("host") + "/health"); err != nil {
		return err
	}
	// ok: picket.go.ssrf
	if _, err := client.Get("https://api.example.com/users/" + url.PathEscape(r.FormValue("id"))); err != nil {
		return err
	}
	// ok: picket.go.ssrf
	if _, err := http.Get(fmt.Sprintf("https://api.example.com/repos/%s", r.FormValue("repo"))); err != nil {
		return err
	}
	_, err = client.Do(req)
	return err
}
