package dns

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// udpIO moves a UDP worker's datagrams, a batch per system call each way:
// read fills the slots' in buffers, reply queues an answer to a datagram
// of the last read, flush sends the queued answers. Answers are flushed
// before the next read, which reuses what they point at.
type udpIO interface {
	read() (n int, err error)
	size(i int) int             // bytes of datagram i
	peer(i int) netip.AddrPort  // who sent datagram i
	reply(i int, answer []byte) // queue answer to datagram i's sender
	flush()                     // send the queued answers
}

// xnetIO is the portable udpIO: golang.org/x/net's batches (recvmmsg and
// sendmmsg where the system has them).
type xnetIO struct {
	r      *Resolver
	reads  []ipv4.Message
	writes []ipv4.Message
}

func newXnetIO(r *Resolver, slots []udpSlot) *xnetIO {
	x := &xnetIO{r: r, reads: make([]ipv4.Message, len(slots)), writes: make([]ipv4.Message, 0, len(slots))}
	for i := range slots {
		x.reads[i].Buffers = [][]byte{slots[i].in}
	}
	return x
}

func (x *xnetIO) read() (int, error) { return x.r.batch.ReadBatch(x.reads, 0) }

func (x *xnetIO) size(i int) int { return x.reads[i].N }

func (x *xnetIO) peer(i int) netip.AddrPort {
	if a, ok := x.reads[i].Addr.(*net.UDPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

func (x *xnetIO) reply(i int, answer []byte) {
	x.writes = append(x.writes, ipv4.Message{Buffers: [][]byte{answer}, Addr: x.reads[i].Addr})
}

func (x *xnetIO) flush() {
	x.r.writeBatch(x.writes)
	x.writes = x.writes[:0]
}
