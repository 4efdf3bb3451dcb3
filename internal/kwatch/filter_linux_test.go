package kwatch

import (
	"encoding/binary"
	"testing"

	"github.com/meshd/meshd/internal/nlsub"
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

func ndmsg(state uint16) []byte {
	b := make([]byte, 12)
	binary.NativeEndian.PutUint16(b[8:10], state)
	return b
}

func TestRouteChanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"link removed", msg(rtmDelLink, make([]byte, 16)), true},
		{"link changed", msg(rtmNewLink, make([]byte, 16)), true},
		{"address added", msg(20, make([]byte, 8)), false},
		{"address removed", msg(rtmDelAddr, make([]byte, 8)), true},
		{"route added", msg(24, make([]byte, 12)), false},
		{"route removed", msg(rtmDelRoute, make([]byte, 12)), true},
		{"neighbour state changed", msg(28, ndmsg(0x02)), false},
		{"neighbour removed", msg(rtmDelNeigh, ndmsg(0x20)), true},
		{"addition then removal", append(msg(20, make([]byte, 8)), msg(rtmDelAddr, make([]byte, 8))...), true},
		{"garbage", []byte{1, 2, 3}, true},
	} {
		if got := routeChanged(tc.in); got != tc.want {
			t.Errorf("%s: routeChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNFTChanged(t *testing.T) {
	nft := func(m uint16) []byte { return msg(nlsub.NFTablesSubsys<<8|m, make([]byte, 4)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"rule added", nft(6), false},
		{"new generation", nft(15), false},
		{"rule removed", nft(nftMsgDelRule), true},
		{"chain removed", nft(nftMsgDelChain), true},
		{"table removed", nft(nftMsgDelTable), true},
		{"rule destroyed", nft(nftMsgDestroyRule), true},
		{"another subsystem", msg(1<<8|nftMsgDelRule, make([]byte, 4)), false},
		{"garbage", []byte{9}, true},
	} {
		if got := nftChanged(tc.in); got != tc.want {
			t.Errorf("%s: nftChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The filters read datagrams from the kernel; whatever they hold, they
// answer without panicking.
func FuzzFilters(f *testing.F) {
	f.Add(msg(rtmDelNeigh, ndmsg(0x80)))
	f.Add(msg(nlsub.NFTablesSubsys<<8|nftMsgDelRule, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		routeChanged(b)
		nftChanged(b)
	})
}
