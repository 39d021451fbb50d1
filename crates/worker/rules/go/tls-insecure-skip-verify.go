package client

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
)

func clients(pool *x509.CertPool) []*http.Client {
	insecure := &http.Client{Transport: &http.Transport{
		// ruleid: picket.go.tls-insecure-skip-verify
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	// ruleid: picket.go.tls-insecure-skip-verify
	cfg.InsecureSkipVerify = true
	// ok: picket.go.tls-insecure-skip-verify
	private := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// ok: picket.go.tls-insecure-skip-verify
	strict := &tls.Config{InsecureSkipVerify: false}
	return []*http.Client{insecure,
		{Transport: &http.Transport{TLSClientConfig: cfg}},
		{Transport: &http.Transport{TLSClientConfig: private}},
		{Transport: &http.Transport{TLSClientConfig: strict}}}
}
