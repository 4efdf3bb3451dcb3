package testutil

import "encoding/binary"

// FlowTableListing is what "nft list table inet meshd" prints in an
// ingress sandbox of the iptables plane (lb/flowtable.go writes it), for
// the tests that read or trace kernel snapshots.
const FlowTableListing = `table inet meshd {
	flowtable fastpath {
		hook ingress priority filter
		devices = { eth0, eth1 }
	}

	chain balanced {
		type filter hook forward priority filter; policy accept;
		ct status dnat meta l4proto { tcp, udp } flow add @fastpath
	}
}
`

// NFTMessage is one nfnetlink message of nftables' subsystem, of type
// typ (NFT_MSG_*), as the kernel announces it: the netlink header, the
// 4-byte nfgenmsg, then attrs.
func NFTMessage(typ uint16, attrs []byte) []byte {
	body := append([]byte{0, 0, 0, 0}, attrs...)
	h := make([]byte, 16)
	binary.NativeEndian.PutUint32(h, uint32(len(h)+len(body)))
	binary.NativeEndian.PutUint16(h[4:], 10<<8|typ) // NFNL_SUBSYS_NFTABLES
	b := append(h, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// NFTCommit is the new generation (NFT_MSG_NEWGEN) that ends an
// nftables commit: generation seq, made by process pid.
func NFTCommit(pid, seq uint32) []byte {
	attr := func(typ uint16, v uint32) []byte {
		b := make([]byte, 8)
		binary.NativeEndian.PutUint16(b, 8)
		binary.NativeEndian.PutUint16(b[2:], typ)
		binary.BigEndian.PutUint32(b[4:], v)
		return b
	}
	// NFTA_GEN_ID, NFTA_GEN_PROC_PID
	return NFTMessage(15, append(attr(1, seq), attr(2, pid)...))
}
