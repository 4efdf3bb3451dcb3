package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// proxyEnv makes the test binary a userspace TCP proxy instead of a test
// run: "LISTEN,TARGET". It is the baseline a user would reach for without
// a routing mesh (docker-proxy's shape: accept, dial, copy both ways).
const proxyEnv = "MESHD_E2E_PROXY"

// runProxyIfAsked never returns when the environment asks for a proxy.
func runProxyIfAsked() {
	spec := os.Getenv(proxyEnv)
	if spec == "" {
		return
	}
	listen, target, _ := strings.Cut(spec, ",")
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go proxyConn(c, target)
	}
}

func proxyConn(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}
