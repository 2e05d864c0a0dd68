// Command trivial_endpoint answers every request at once with a fixed, valid top-5
// prediction, so a benchmark can measure how many requests one Locust worker can send
// (P3) without the model server being the limit.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
)

const prediction = `{"predictions": [{"classes": [1, 2, 3, 4, 5], ` +
	`"labels": ["a", "b", "c", "d", "e"], ` +
	`"probabilities": [0.5, 0.2, 0.1, 0.1, 0.1]}]}`

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, prediction)
	})
	log.Fatal(http.Serve(listener, handler))
}
