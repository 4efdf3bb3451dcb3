//go:build !linux

package dns

// newUDPIO picks how a worker moves its datagrams: x/net's batches.
func (r *Resolver) newUDPIO(slots []udpSlot) udpIO { return newXnetIO(r, slots) }

// sendForwarded sends a flight's answers in x/net's batches.
func (r *Resolver) sendForwarded(out []forwardedAnswer) { r.writeForwarded(out) }

// write sends one query on the upstream socket.
func (uc *upstreamConn) write(b []byte) error {
	_, err := uc.c.Write(b)
	return err
}

// recv reads one reply from the upstream socket.
func (uc *upstreamConn) recv(b []byte) (int, error) { return uc.c.Read(b) }
