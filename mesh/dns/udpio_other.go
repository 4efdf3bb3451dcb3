//go:build !linux

package dns

// newUDPIO picks how a worker moves its datagrams: x/net's batches.
func (r *Resolver) newUDPIO(slots []udpSlot) udpIO { return newXnetIO(r, slots) }
