package server

import "crypto/tls"

func configs() []*tls.Config {
	// ruleid: picket.go.tls-weak-version
	legacy := &tls.Config{MinVersion: tls.VersionTLS10}
	cfg := &tls.Config{}
	// ruleid: picket.go.tls-weak-version
	cfg.MinVersion = tls.VersionTLS11
	// ok: picket.go.tls-weak-version
	modern := &tls.Config{MinVersion: tls.VersionTLS12}
	// ok: picket.go.tls-weak-version
	strict := &tls.Config{MinVersion: tls.VersionTLS13}
	return []*tls.Config{legacy, cfg, modern, strict}
}
