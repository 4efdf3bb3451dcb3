package gossip

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		err  string // "" = valid
	}{
		{"default", func(c *Config) {}, ""},
		{"zero values take defaults", func(c *Config) { *c = Config{Name: "n"} }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "Name is required"},
		{"bad bind address", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		{"bind port", func(c *Config) { c.BindPort = 70000 }, "BindPort"},
		{"advertise address", func(c *Config) { c.AdvertiseAddr = "10.0.0" }, "AdvertiseAddr"},
		{"advertise port", func(c *Config) { c.AdvertisePort = -1 }, "AdvertisePort"},
		{"key size", func(c *Config) { c.SecretKey = make([]byte, 10) }, "SecretKey is 10 bytes"},
		{"meta size", func(c *Config) { c.Meta = make([]byte, 513) }, "Meta is 513 bytes"},
		{"negative interval", func(c *Config) { c.GossipInterval = -time.Second }, "GossipInterval must not be negative"},
		{"negative count", func(c *Config) { c.GossipNodes = -1 }, "GossipNodes must not be negative"},
		{"probe timeout past interval", func(c *Config) { c.ProbeTimeout = 2 * time.Second }, "ProbeTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Name = "n"
			tc.mod(&c)
			_, err := c.withDefaults()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("got %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if db, err := New(Config{}); err == nil {
		db.Shutdown()
		t.Fatal("New(Config{}) succeeded, want an error naming Name")
	} else if !strings.Contains(err.Error(), "Name") {
		t.Errorf("New(Config{}) = %v, want an error naming Name", err)
	}
}
