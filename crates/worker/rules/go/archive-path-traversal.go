package unpack

import (
	"archive/tar"
	"archive/zip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func unzip(r *zip.Reader, dst string) error {
	for _, f := range r.File {
		// ruleid: picket.go.archive-path-traversal
		target := filepath.Join(dst, f.Name)
		if f.FileInfo().IsDir() {
			os.MkdirAll(target, 0o755)
			continue
		}
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		out.Close()
	}
	return nil
}

func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// ruleid: picket.go.archive-path-traversal
		out, err := os.Create(dst + "/" + hdr.Name)
		if err != nil {
			return err
		}
		io.Copy(out, tr)
		out.Close()
	}
}

func unzipChecked(r *zip.Reader, dst string) error {
	for _, f := range r.File {
		// ok: picket.go.archive-path-traversal
		target := filepath.Join(dst, f.Name)
		if !strings.HasPrefix(target, filepath.Clean(dst)+string(os.PathSeparator)) {
			return errors.New("illegal path in archive")
		}
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		out.Close()
	}
	return nil
}

func untarLocal(tr *tar.Reader, dst string) error {
	for {
		hdr, err := tr.Next()
		if err != nil {
			return err
		}
		if !filepath.IsLocal(hdr.Name) {
			return errors.New("illegal path in archive")
		}
		// ok: picket.go.archive-path-traversal
		if err := os.WriteFile(filepath.Join(dst, hdr.Name), nil, 0o644); err != nil {
			return err
		}
	}
}
