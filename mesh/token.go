package mesh

import "crypto/sha256"

// GossipKey derives the memberlist AES-256 key from the token, so nodes
// with another token cannot read or join the gossip.
func GossipKey(token string) []byte {
	sum := sha256.Sum256([]byte("meshd-gossip\x00" + token))
	return sum[:]
}
