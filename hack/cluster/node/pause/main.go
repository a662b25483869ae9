// Command pause is the sandbox process of every pod on the real node (hack/cluster/node): it
// holds the pod's namespaces open, reaps children orphaned into it, and exits on SIGINT or
// SIGTERM. No registry serves registry.k8s.io/pause here, so the node builds its own.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
