package e2e

import (
	"strings"
	"testing"
)

// TestPacketsOf: the lines of a port's packets from "tcpdump -tt -e", an
// encapsulated packet's line joined to its VXLAN frame's.
func TestPacketsOf(t *testing.T) {
	dump := "1796450916.509125 02:42:ac:12:00:02 > 1a:25:12:df:cc:bc, ethertype IPv4 (0x0800), length 619: 172.18.0.2.8888 > 192.168.33.1.38624: Flags [P.]\n" +
		"1796450916.600000 aa:bb:cc:dd:ee:ff > 11:22:33:44:55:66, ethertype IPv4 (0x0800), length 124: 192.168.33.12.48129 > 192.168.33.10.4789: VXLAN, flags [I] (0x08), vni 4096\n" +
		"02:42:0a:ff:00:04 > 02:42:0a:ff:00:0c, ethertype IPv4 (0x0800), length 74: 10.255.0.4.38624 > 10.255.0.12.8888: Flags [S]\n" +
		"1796450917.000000 aa:bb:cc:dd:ee:ff > 11:22:33:44:55:66, ethertype IPv4 (0x0800), length 74: 10.0.0.1.386240 > 10.0.0.2.8888: Flags [S]\n"
	got := packetsOf(packetLines(dump), "38624")
	if len(got) != 2 || !strings.HasPrefix(got[0], "1796450916.509125 ") ||
		!strings.Contains(got[1], "4789: VXLAN") || !strings.Contains(got[1], "| 02:42:0a:ff:00:04 > ") {
		t.Errorf("packetsOf:\n%s\nwant the reply and the VXLAN frame with its inner packet", strings.Join(got, "\n"))
	}
}
