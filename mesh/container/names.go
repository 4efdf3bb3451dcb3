package container

import (
	"math/rand/v2"
	"strconv"
)

// A container run without --name gets one made of an adjective and the
// surname of someone who shaped networking, as Docker's are shaped
// (adjective_surname).
var (
	adjectives = []string{"brave", "calm", "clever", "curious", "eager", "gentle", "happy", "jolly", "keen", "kind",
		"lucid", "merry", "nifty", "patient", "quick", "quiet", "serene", "sharp", "steady", "tender",
		"upbeat", "vibrant", "wise", "witty", "zealous"}
	surnames = []string{"baran", "berners_lee", "bosack", "cerf", "clark", "davies", "estrin", "floyd", "hinden", "jacobson",
		"kahn", "kleinrock", "lampson", "metcalfe", "mockapetris", "perlman", "postel", "pouzin", "reynolds", "roberts",
		"saltzer", "shannon", "stallings", "tanenbaum", "zhang"}
)

// makeName returns a name taken returns false for, retrying a few times
// and then adding a digit, as Docker does.
func makeName(taken func(string) bool) string {
	for i := 0; ; i++ {
		name := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
		if i >= 10 {
			name += "_" + strconv.Itoa(rand.IntN(1_000_000))
		}
		if !taken(name) {
			return name
		}
	}
}

// MakeName is makeName for the containers meshd runs on the cluster's
// attachable overlays, which the API server names as this engine names
// its own.
func MakeName(taken func(string) bool) string { return makeName(taken) }
