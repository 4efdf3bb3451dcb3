package api

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

// hexID derives a 64-hex-character ID from another ID.
func hexID(id string) string {
	sum := sha256.Sum256([]byte("meshd-container\x00" + id))
	return hex.EncodeToString(sum[:])
}
