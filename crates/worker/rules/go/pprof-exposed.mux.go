// pprof on its own localhost listener and mux: semgrep --test fails on any finding in this
// file (no line here is annotated).
package main

import (
	"log"
	"net/http"
	_ "net/http/pprof"
)

func main() {
	go func() { log.Println(http.ListenAndServe("127.0.0.1:6060", nil)) }()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	log.Fatal(http.ListenAndServe(":8080", mux))
}
