package dns

import (
	"fmt"
	"net"

	"github.com/meshd/meshd/internal/nsfile"
)

// Addr is the address every task's resolv.conf names.
const Addr = "127.0.0.11"

// ListenIn opens a UDP and a TCP socket on 127.0.0.11 with free
// ports inside the namespace at path: sockets keep the namespace they
// were made in.
func ListenIn(path string) (net.PacketConn, net.Listener, error) {
	var pc net.PacketConn
	var ln net.Listener
	err := nsfile.Do(path, func() error {
		var err error
		if pc, err = net.ListenPacket("udp", Addr+":0"); err != nil {
			return fmt.Errorf("listen udp %s: %w", Addr, err)
		}
		if ln, err = net.Listen("tcp", Addr+":0"); err != nil {
			pc.Close()
			return fmt.Errorf("listen tcp %s: %w", Addr, err)
		}
		return nil
	})
	return pc, ln, err
}
