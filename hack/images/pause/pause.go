// pause: the pod sandbox's process and the overprovisioning placeholders' container, as
// registry.k8s.io/pause is. It sleeps until SIGINT or SIGTERM (then exits 0) and, as the
// sandbox's PID 1, reaps the children that are handed to it. Static, standard library only.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped by hack/images/build-images.sh.
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Printf("pause (resnet-serving) %s\n", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not PID 1, so orphans are not reaped here")
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: shutting down, got signal %v\n", sig)
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
