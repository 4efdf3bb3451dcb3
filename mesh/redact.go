package mesh

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/meshd/meshd/mesh/api"
)

// The daemon's values that hold a secret (the node secret, the gossip
// key, a join token) format and log it redacted, so that no %v, %+v or
// slog attribute can show it.

// redact returns api.Redacted for a secret that is set, "" for one that
// is not.
func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return api.Redacted
}

func redactBytes(secret []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	return []byte(api.Redacted)
}

// identityPlain is identity without its methods, for formatting.
type identityPlain identity

func (id identity) redacted() identityPlain {
	p := identityPlain(id)
	p.Token, p.Key = redact(p.Token), redactBytes(p.Key)
	for i := range p.GossipKeys {
		p.GossipKeys = slices.Clone(p.GossipKeys)
		p.GossipKeys[i] = redactBytes(p.GossipKeys[i])
	}
	return p
}

func (id identity) String() string       { return fmt.Sprintf("%+v", id.redacted()) }
func (id identity) GoString() string     { return fmt.Sprintf("%#v", id.redacted()) }
func (id identity) LogValue() slog.Value { return slog.StringValue(id.String()) }

// configPlain is Config without its methods, for formatting.
type configPlain Config

func (c Config) redacted() configPlain {
	p := configPlain(c)
	p.Token = redact(p.Token)
	return p
}

// String formats the configuration with its join token redacted.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString is String's %#v.
func (c Config) GoString() string { return fmt.Sprintf("%#v", c.redacted()) }

// LogValue logs the configuration with its join token redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// userConfigPlain is UserConfig without its methods, for formatting.
type userConfigPlain UserConfig

func (u UserConfig) redacted() userConfigPlain {
	p := userConfigPlain(u)
	p.Token, p.TokenEnv = redact(p.Token), redact(p.TokenEnv)
	return p
}

// String formats the command line's configuration with its join token
// redacted.
func (u UserConfig) String() string { return fmt.Sprintf("%+v", u.redacted()) }

// GoString is String's %#v.
func (u UserConfig) GoString() string { return fmt.Sprintf("%#v", u.redacted()) }

// LogValue logs the command line's configuration with its join token
// redacted.
func (u UserConfig) LogValue() slog.Value { return slog.StringValue(u.String()) }
