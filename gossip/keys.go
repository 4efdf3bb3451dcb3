package gossip

import (
	"bytes"
	"errors"
	"fmt"
)

// SetKeys makes keys the keys gossip is encrypted with: the first
// encrypts, every one decrypts, and keys not listed are dropped. Managers
// rotate the key in three steps (add as secondary, make primary, drop the
// old one), so that nodes never hold disjoint keys.
func (db *DB) SetKeys(keys [][]byte) error {
	if db.keyring == nil {
		return errors.New("gossip: keys set on a node that gossips in clear")
	}
	if len(keys) == 0 {
		return errors.New("gossip: no keys")
	}
	for _, k := range keys {
		if err := db.keyring.AddKey(k); err != nil {
			return fmt.Errorf("gossip: add key: %w", err)
		}
	}
	if err := db.keyring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("gossip: use key: %w", err)
	}
	for _, have := range db.keyring.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || bytes.Equal(have, k)
		}
		if !keep {
			if err := db.keyring.RemoveKey(have); err != nil {
				return fmt.Errorf("gossip: remove key: %w", err)
			}
		}
	}
	return nil
}
