//go:build linux

package dns

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO is the Linux udpIO: recvmmsg and sendmmsg as raw system calls,
// on the runtime's poller for the waits (MSG_DONTWAIT, then RawConn's
// wait for readiness). A call the runtime is told of (x/net's batches
// make such calls) lets sysmon take the worker's processor away when it
// runs past 20 µs, as a sendmmsg does that delivers its answers to the
// client, and wakes sysmon from its sleep whenever the daemon was idle,
// once a batch here: in a profile of meshd under dnsperf, sysmon and the
// scheduler's hand-offs took about a quarter of its samples. Neither
// call can block, so the worker keeps its processor through them. In a
// lab task with dnsperf (100 queries outstanding, the local names, 4 s
// runs, binaries alternating), this took meshd from 84-119k queries/s at
// 7.3-9.6 µs of its CPU a query to 131-150k at 5.5-6.4 µs; dnsmasq, in
// the same task after each, did 116-140k at 6.1-6.9 µs.
type rawIO struct {
	r      *Resolver
	rc     syscall.RawConn
	reads  []mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6 // room for either family
	writes []mmsghdr
	wiovs  []unix.Iovec
	queued int
}

// mmsghdr is struct mmsghdr: Go pads it as C does, after msg_len to the
// alignment of msghdr's pointers.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// newUDPIO picks how a worker moves its datagrams: raw batches on a UDP
// socket, x/net's otherwise.
func (r *Resolver) newUDPIO(slots []udpSlot) udpIO {
	if r.rc == nil {
		return newXnetIO(r, slots)
	}
	n := len(slots)
	x := &rawIO{r: r, rc: r.rc, reads: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n), writes: make([]mmsghdr, n), wiovs: make([]unix.Iovec, n)}
	for i := range slots {
		x.iovs[i].Base = &slots[i].in[0]
		x.iovs[i].SetLen(len(slots[i].in))
		h := &x.reads[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&x.names[i]))
		h.Iov = &x.iovs[i]
		h.SetIovlen(1)
	}
	return x
}

func (x *rawIO) read() (int, error) {
	for i := range x.reads {
		x.reads[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	return nowait(x.rc, true, func(fd uintptr) (uintptr, syscall.Errno) {
		n, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&x.reads[0])),
			uintptr(len(x.reads)), unix.MSG_DONTWAIT, 0, 0)
		return n, e
	})
}

// nowait makes call, one raw system call on rc's socket that cannot
// block (MSG_DONTWAIT), until it fails otherwise than with EAGAIN, the
// runtime's poller waiting in between for the socket to be readable
// (read) or writable. It returns the call's result, or its errno, or
// rc's error once the socket is closed. Each caller makes its own
// RawSyscall6 inside call, so that its pointers turn into uintptr in
// that call's arguments, as unsafe's rules ask.
func nowait(rc syscall.RawConn, read bool, call func(fd uintptr) (uintptr, syscall.Errno)) (int, error) {
	var n uintptr
	var errno syscall.Errno
	f := func(fd uintptr) bool {
		n, errno = call(fd)
		return errno != unix.EAGAIN
	}
	var err error
	if read {
		err = rc.Read(f)
	} else {
		err = rc.Write(f)
	}
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	}
	return int(n), nil
}

func (x *rawIO) size(i int) int { return int(x.reads[i].n) }

func (x *rawIO) peer(i int) netip.AddrPort { return getSockaddr(&x.names[i]) }

// reply sends answer to the address datagram i came from, as read: its
// sockaddr stays in place until the next read, after the flush.
func (x *rawIO) reply(i int, answer []byte) {
	if len(answer) == 0 || x.queued == len(x.writes) {
		return
	}
	k := x.queued
	x.wiovs[k].Base = &answer[0]
	x.wiovs[k].SetLen(len(answer))
	h := &x.writes[k].hdr
	h.Name, h.Namelen = x.reads[i].hdr.Name, x.reads[i].hdr.Namelen
	h.Iov = &x.wiovs[k]
	h.SetIovlen(1)
	x.queued++
}

func (x *rawIO) flush() {
	sendBatch(x.r, x.rc, x.writes[:x.queued])
	x.queued = 0
}

// sendBatch sends the datagrams of hdrs on rc, as few raw sendmmsg calls
// as they take; an answer that fails is skipped.
func sendBatch(r *Resolver, rc syscall.RawConn, hdrs []mmsghdr) {
	for sent := 0; sent < len(hdrs); {
		n, err := nowait(rc, false, func(fd uintptr) (uintptr, syscall.Errno) {
			m, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdrs[sent])),
				uintptr(len(hdrs)-sent), unix.MSG_DONTWAIT, 0, 0)
			return m, e
		})
		if _, isErrno := err.(syscall.Errno); err != nil && !isErrno { // closed
			return
		}
		if err != nil && r.ctx.Err() == nil {
			r.srv.log.Debug("dns: udp write", "err", err)
		}
		if err != nil || n <= 0 {
			n = 1 // skip the answer that failed, send the rest
		}
		sent += n
	}
}

// sendForwarded sends a flight's answers the worker's way, raw: the
// flight's goroutine keeps its processor through the call. Through
// x/net's batches, a call the runtime is told of, sysmon gave the one
// processor to the worker whenever the call ran past 20 µs, and the
// flight, its answers sent, then waited for the worker to park or be
// preempted, up to 10 ms, holding the socket's write lock; so did an
// upstream query's send (upstreamConn.write), before it went out. In a
// lab task under dnsperf -v asking one unknown name in five (three runs
// of each binary, twice, alternating), the forwarded answers' p99 went
// from 5.3-7.5 ms to 2.0-2.2 ms, and the mix from 98-106k to 114-129k
// queries/s; dnsmasq in the same task: 2.8-3.2 ms, 80-91k.
func (r *Resolver) sendForwarded(out []forwardedAnswer) {
	if r.rc == nil {
		r.writeForwarded(out)
		return
	}
	hdrs := make([]mmsghdr, len(out))
	iovs := make([]unix.Iovec, len(out))
	names := make([]unix.RawSockaddrInet6, len(out)) // room for either family
	for i, a := range out {
		iovs[i].Base = &a.b[0]
		iovs[i].SetLen(len(a.b))
		h := &hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&names[i]))
		h.Namelen = putSockaddr(&names[i], a.to)
		h.Iov = &iovs[i]
		h.SetIovlen(1)
	}
	sendBatch(r, r.rc, hdrs)
}

// getSockaddr reads the address sa holds, of either family (the zero
// AddrPort for another). A sockaddr_in6 has room for a sockaddr_in, whose
// port sits at the same offset, in network order, in both; putSockaddr
// relies on the same.
func getSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	var addr netip.Addr
	switch sa.Family {
	case unix.AF_INET:
		addr = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		addr = netip.AddrFrom16(sa.Addr)
	default:
		return netip.AddrPort{}
	}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	return netip.AddrPortFrom(addr, uint16(p[0])<<8|uint16(p[1]))
}

// putSockaddr writes ap into sa as the sockaddr of its family (an
// IPv4-mapped address is IPv6's, as an IPv6 socket reads it) and
// returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort) uint32 {
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	if ap.Addr().Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = ap.Addr().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Addr = ap.Addr().As16()
	return unix.SizeofSockaddrInet6
}

// write sends one query on the upstream socket, raw, as sendForwarded
// sends answers (see there for why).
func (uc *upstreamConn) write(b []byte) error {
	_, err := nowait(uc.rc, false, func(fd uintptr) (uintptr, syscall.Errno) {
		n, _, e := syscall.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			unix.MSG_DONTWAIT, 0, 0)
		return n, e
	})
	return err
}

// recv reads one reply from the upstream socket, raw, as write sends.
// Read with a call the runtime is told of, the replies kept sysmon
// awake: in perf record of meshd under dnsperf at 45,000 queries/s with
// one unknown name in five, sysmon took 13.6 % of its samples (0.2 %
// with only local names); read raw, 0.8 %, and meshd's CPU per query went
// from 14.5-15.1 µs to 12.0-12.8 (dnsmasq in the same task: 12.7-13.0).
func (uc *upstreamConn) recv(b []byte) (int, error) {
	return nowait(uc.rc, true, func(fd uintptr) (uintptr, syscall.Errno) {
		n, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			unix.MSG_DONTWAIT, 0, 0)
		return n, e
	})
}
