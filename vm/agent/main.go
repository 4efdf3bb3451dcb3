// Command vm-agent runs the two-VM suite's commands on a test VM (see
// internal/vmagent and vm/pair).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/meshd/meshd/internal/vmagent"
)

func main() {
	listen := flag.String("listen", "", "address:port to serve on")
	flag.Parse()
	if *listen == "" {
		log.Fatal("--listen is needed")
	}
	log.Fatal(http.ListenAndServe(*listen, vmagent.Handler()))
}
