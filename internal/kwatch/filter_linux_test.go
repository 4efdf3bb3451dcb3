package kwatch

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/meshd/meshd/internal/nlsub"
	"github.com/meshd/meshd/internal/testutil"
)

// msg builds one netlink message of type typ with payload data.
func msg(typ uint16, data []byte) []byte {
	b := make([]byte, 16+len(data))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	copy(b[16:], data)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// from sets the port that asked for the change of a message msg built.
func from(b []byte, port uint32) []byte {
	binary.NativeEndian.PutUint32(b[12:16], port)
	return b
}

func ndmsg(state uint16) []byte {
	b := make([]byte, 12)
	binary.NativeEndian.PutUint16(b[8:10], state)
	return b
}

func TestRouteFilter(t *testing.T) {
	const self, other = 42, 7
	f := routeFilter{self: self}
	addrDel := func(port uint32) []byte { return from(msg(rtmDelAddr, make([]byte, 8)), port) }
	routeDel := func(port uint32) []byte { return from(msg(rtmDelRoute, make([]byte, 12)), port) }
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"link removed", msg(rtmDelLink, make([]byte, 16)), true},
		{"link changed", msg(rtmNewLink, make([]byte, 16)), true},
		{"address added", msg(20, make([]byte, 8)), false},
		{"address removed", addrDel(other), true},
		{"address removed by the kernel", addrDel(0), true},
		{"address removed by us", addrDel(self), false},
		{"route added", msg(24, make([]byte, 12)), false},
		{"route removed", routeDel(other), true},
		{"route removed by us", routeDel(self), true},
		{"route removed by the kernel", routeDel(0), false},
		{"our address and the kernel's route", slices.Concat(addrDel(self), routeDel(0)), false},
		{"our address, then another's", slices.Concat(addrDel(self), addrDel(other)), true},
		{"neighbour state changed", msg(28, ndmsg(0x02)), false},
		{"neighbour removed", msg(rtmDelNeigh, ndmsg(0x20)), true},
		{"addition then removal", append(msg(20, make([]byte, 8)), addrDel(other)...), true},
		{"garbage", []byte{1, 2, 3}, true},
	} {
		if got := f.changed(tc.in); got != tc.want {
			t.Errorf("%s: changed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNFTFilter(t *testing.T) {
	nft := func(m uint16) []byte { return msg(nlsub.NFTablesSubsys<<8|m, make([]byte, 4)) }
	ours := func(pid int) bool { return pid == 42 }
	theirs, mine := testutil.NFTCommit(7, 1), testutil.NFTCommit(42, 1)
	cat := func(bs ...[]byte) []byte { return slices.Concat(bs...) }
	for _, tc := range []struct {
		name string
		in   [][]byte // datagrams, in order
		want []bool   // changed, per datagram
	}{
		{"rule added", [][]byte{cat(nft(6), theirs)}, []bool{false}},
		{"new generation alone", [][]byte{theirs}, []bool{false}},
		{"rule removed", [][]byte{cat(nft(nftMsgDelRule), theirs)}, []bool{true}},
		{"chain removed", [][]byte{cat(nft(nftMsgDelChain), theirs)}, []bool{true}},
		{"table removed", [][]byte{cat(nft(nftMsgDelTable), theirs)}, []bool{true}},
		{"rule destroyed", [][]byte{cat(nft(nftMsgDestroyRule), theirs)}, []bool{true}},
		{"removed by us", [][]byte{cat(nft(nftMsgDelRule), mine)}, []bool{false}},
		{"generation in the next datagram", [][]byte{nft(nftMsgDelRule), theirs}, []bool{false, true}},
		{"ours in the next datagram", [][]byte{nft(nftMsgDelRule), mine}, []bool{false, false}},
		// A commit of ours, then another's that only adds: the removal
		// was ours and ends with our generation.
		{"ours, then their addition", [][]byte{cat(nft(nftMsgDelRule), mine, nft(6), theirs)}, []bool{false}},
		{"ours, then their removal", [][]byte{cat(nft(nftMsgDelRule), mine), cat(nft(nftMsgDelChain), theirs)}, []bool{false, true}},
		{"generation without a process", [][]byte{cat(nft(nftMsgDelRule), testutil.NFTMessage(15, nil))}, []bool{true}},
		{"another subsystem", [][]byte{cat(msg(1<<8|nftMsgDelRule, make([]byte, 4)), theirs)}, []bool{false}},
		{"garbage", [][]byte{{9}}, []bool{true}},
		{"garbage drops a held removal", [][]byte{nft(nftMsgDelRule), {9}, theirs}, []bool{false, true, false}},
	} {
		f := &nftFilter{ours: ours}
		for i, d := range tc.in {
			if got := f.changed(d); got != tc.want[i] {
				t.Errorf("%s: datagram %d: changed = %v, want %v", tc.name, i, got, tc.want[i])
			}
		}
	}
	// Without ours, every removal is reported.
	f := &nftFilter{}
	if !f.changed(cat(nft(nftMsgDelRule), mine)) {
		t.Error("no ours: a removal was not reported")
	}
}

// The filters read datagrams from the kernel; whatever they hold, they
// answer without panicking.
func FuzzFilters(f *testing.F) {
	f.Add(msg(rtmDelNeigh, ndmsg(0x80)))
	f.Add(msg(nlsub.NFTablesSubsys<<8|nftMsgDelRule, nil))
	f.Add(testutil.NFTCommit(42, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		routeFilter{self: 42}.changed(b)
		f := &nftFilter{ours: func(int) bool { return false }}
		f.changed(b)
		f.changed(b)
	})
}
