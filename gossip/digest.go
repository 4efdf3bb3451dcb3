package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// TableDigest summarises one table of a replica: how many live entries
// it holds and a hash of them. Two replicas that hold the same versions
// of the same entries have the same digests, whatever order the entries
// arrived in, so comparing digests across nodes shows where gossip has
// not converged (meshctl check) without shipping the tables.
type TableDigest struct {
	Table   string
	Entries int
	// Digest is the hex SHA-256 of the live entries, in (scope, key)
	// order, each as its scope, key, owner, Lamport time and value.
	// Tombstones are left out: they are reaped at different times on
	// different nodes. The encoding MUST NOT change between versions that
	// may run in one cluster, or mixed clusters would look diverged.
	Digest string
}

// Digests returns a digest of every table that has a live entry, sorted
// by table name.
func (db *DB) Digests() []TableDigest {
	db.mu.Lock()
	defer db.mu.Unlock()
	return digests(db.st.entries(func(e Entry) bool { return !e.Deleted }))
}

// digests hashes entries, which are sorted by table, scope and key and
// hold no tombstones, table by table.
func digests(entries []Entry) []TableDigest {
	var out []TableDigest
	var h hash.Hash
	flush := func() {
		if len(out) > 0 {
			out[len(out)-1].Digest = hex.EncodeToString(h.Sum(nil))
		}
	}
	for _, e := range entries {
		if len(out) == 0 || out[len(out)-1].Table != e.Table {
			flush()
			out = append(out, TableDigest{Table: e.Table})
			h = sha256.New()
		}
		out[len(out)-1].Entries++
		// Each field length-prefixed, so that no two entries encode alike.
		for _, f := range [][]byte{[]byte(e.Scope), []byte(e.Key), []byte(e.Owner), e.Value} {
			_ = binary.Write(h, binary.BigEndian, uint32(len(f)))
			h.Write(f)
		}
		_ = binary.Write(h, binary.BigEndian, e.LTime)
	}
	flush()
	return out
}
