package capture

import (
	"fmt"
	"net"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/meshd/meshd/internal/nsfile"
	"golang.org/x/net/bpf"
)

// Kernel opens real packet sockets.
type Kernel struct{}

var _ Opener = Kernel{}

// Open is "tcpdump -i IFACE -s SNAPLEN FILTER" run in the namespace at
// nsPath, without tcpdump.
func (Kernel) Open(nsPath, iface string, snapLen int, filter []bpf.RawInstruction) (Source, error) {
	var h *pcapgo.EthernetHandle
	err := nsfile.Do(nsPath, func() error {
		if _, err := net.InterfaceByName(iface); err != nil {
			return fmt.Errorf("%w: %s", ErrNoInterface, iface)
		}
		var err error
		h, err = pcapgo.NewEthernetHandle(iface)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open packet socket on %s: %w", iface, err)
	}
	s := &socket{h: h}
	if err := s.setup(snapLen, filter); err != nil {
		h.Close()
		return nil, fmt.Errorf("packet socket on %s: %w", iface, err)
	}
	return s, nil
}

// socket is a [Source] on a pcapgo handle.
type socket struct {
	h *pcapgo.EthernetHandle
	// early, when set, checks the packets stamped before attached, which
	// the socket took in before its filter was attached.
	early    *bpf.VM
	attached time.Time
}

func (s *socket) setup(snapLen int, filter []bpf.RawInstruction) error {
	if err := s.h.SetCaptureLength(snapLen); err != nil {
		return err
	}
	if len(filter) == 0 {
		return nil
	}
	if err := s.h.SetBPF(filter); err != nil {
		return fmt.Errorf("attach filter: %w", err)
	}
	s.attached = time.Now()
	// A program the user-space machine does not run (a kernel
	// extension) was still checked by the kernel: it filters all but
	// the first few packets then.
	if prog, ok := bpf.Disassemble(filter); ok {
		s.early, _ = bpf.NewVM(prog)
	}
	return nil
}

func (s *socket) Read() (Packet, error) {
	for {
		data, ci, err := s.h.ReadPacketData()
		if err != nil {
			return Packet{}, err
		}
		if s.early != nil && ci.Timestamp.Before(s.attached) {
			if n, err := s.early.Run(data); err == nil && n == 0 {
				continue
			}
		}
		return Packet{Time: ci.Timestamp, Length: ci.Length, Data: data}, nil
	}
}

func (s *socket) Stats() (Stats, error) {
	st, err := s.h.Stats()
	if err != nil {
		return Stats{}, err
	}
	return Stats{Received: uint64(st.Packets), Dropped: uint64(st.Drops)}, nil
}

func (s *socket) Close() error { return s.h.Close() }
