package mesh

import (
	"bytes"
	"testing"
)

func TestGossipKeyDependsOnToken(t *testing.T) {
	k1, k2 := GossipKey("SWMTKN-1-aaaaaaaaaaaaaaaaaaaa"), GossipKey("SWMTKN-1-aaaaaaaaaaaaaaaaaaab")
	if len(k1) != 32 {
		t.Errorf("key length %d, want 32 (AES-256)", len(k1))
	}
	if bytes.Equal(k1, k2) {
		t.Error("two tokens give the same gossip key")
	}
}
