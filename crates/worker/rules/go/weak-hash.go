package digest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
)

func fingerprints(password string, body []byte) []string {
	// ruleid: picket.go.weak-hash
	a := md5.Sum([]byte(password))
	// ruleid: picket.go.weak-hash
	h := sha1.New()
	h.Write(body)
	// ok: picket.go.weak-hash
	c := sha256.Sum256(body)
	return []string{hex.EncodeToString(a[:]), hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(c[:])}
}
