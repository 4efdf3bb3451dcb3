//go:build linux

package dns

import (
	"net"
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
	uc, ok := r.pc.(*net.UDPConn)
	if !ok {
		return newXnetIO(r, slots)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return newXnetIO(r, slots)
	}
	n := len(slots)
	x := &rawIO{r: r, rc: rc, reads: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
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
	var n int
	var errno syscall.Errno
	err := x.rc.Read(func(fd uintptr) bool {
		r, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&x.reads[0])),
			uintptr(len(x.reads)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false // wait until readable
		}
		n, errno = int(r), e
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	}
	return n, nil
}

func (x *rawIO) size(i int) int { return int(x.reads[i].n) }

func (x *rawIO) peer(i int) netip.AddrPort {
	sa := &x.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

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
	for sent := 0; sent < x.queued; {
		var n int
		var errno syscall.Errno
		err := x.rc.Write(func(fd uintptr) bool {
			r, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&x.writes[sent])),
				uintptr(x.queued-sent), unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN {
				return false // wait until writable
			}
			n, errno = int(r), e
			return true
		})
		if err != nil { // closed
			break
		}
		if errno != 0 && x.r.ctx.Err() == nil {
			x.r.srv.log.Debug("dns: udp write", "err", errno)
		}
		if errno != 0 || n <= 0 {
			n = 1 // skip the answer that failed, send the rest
		}
		sent += n
	}
	x.queued = 0
}
