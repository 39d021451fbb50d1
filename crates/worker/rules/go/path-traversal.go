package files

import (
	"net/http"
	"os"
	"path"
	"path/filepath"

	"github.com/gin-gonic/gin"
)

const base = "/srv/files"

func download(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	// ruleid: picket.go.path-traversal
	http.ServeFile(w, r, filepath.Join(base, name))
}

func read(w http.ResponseWriter, r *http.Request) {
	// ruleid: picket.go.path-traversal
	data, err := os.ReadFile(filepath.Join(base, filepath.Clean(r.FormValue("file"))))
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Write(data)
}

func remove(w http.ResponseWriter, r *http.Request) {
	// ruleid: picket.go.path-traversal
	os.Remove(base + "/" + r.PathValue("name"))
	// ok: picket.go.path-traversal
	os.Remove(filepath.Join(base, filepath.Base(r.PathValue("name"))))
	// ok: picket.go.path-traversal
	os.Remove(filepath.Join(base, path.Clean("/"+r.PathValue("name"))))
	// ok: picket.go.path-traversal
	os.Remove(filepath.Join(base, "cache.db"))
}

func ginAvatar(c *gin.Context) {
	// ruleid: picket.go.path-traversal
	c.File(filepath.Join("/srv/avatars", c.Param("user")))
}

type echoContext interface {
	Param(name string) string
	File(file string) error
}

func echoFile(c echoContext) error {
	// ruleid: picket.go.path-traversal
	return os.Remove("/srv/tmp/" + c.Param("name"))
}
