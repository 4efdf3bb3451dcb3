package testutil

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
