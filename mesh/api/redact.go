package api

import (
	"fmt"
	"log/slog"
)

// Redacted stands for a secret (a token, a node secret, a gossip key)
// wherever a value holding one is logged or formatted.
const Redacted = "[redacted]"

// redact returns Redacted for a secret that is set, "" for one that is not.
func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return Redacted
}

// The types below carry secrets. Those never printed for a person get
// String and GoString too, so that no %v or %+v can show the secrets;
// JoinToken and SwarmInitResponse, which meshctl prints (templates
// included), only keep them out of logs.

// jrPlain is JoinRequest without its methods, for formatting.
type jrPlain JoinRequest

func (r JoinRequest) redacted() jrPlain {
	p := jrPlain(r)
	p.Token = redact(p.Token)
	return p
}

// String formats the join request with its token redacted.
func (r JoinRequest) String() string { return fmt.Sprintf("%+v", r.redacted()) }

// GoString formats the join request with its token redacted, for %#v.
func (r JoinRequest) GoString() string { return fmt.Sprintf("%#v", r.redacted()) }

// LogValue logs the join request with its token redacted.
func (r JoinRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// withKeysRedacted formats v (whose gossip keys were dropped) and says how
// many keys there were, redacted.
func withKeysRedacted(v any, keys int) string {
	return fmt.Sprintf("%+v GossipKeys:%d %s", v, keys, Redacted)
}

// jresPlain is JoinResponse without its methods, for formatting.
type jresPlain JoinResponse

// String formats the answer with its gossip keys redacted.
func (r JoinResponse) String() string {
	p := jresPlain(r)
	p.GossipKeys = nil
	return withKeysRedacted(p, len(r.GossipKeys))
}

// GoString formats the answer with its gossip keys redacted, for %#v.
func (r JoinResponse) GoString() string { return r.String() }

// LogValue logs the answer with its gossip keys redacted.
func (r JoinResponse) LogValue() slog.Value { return slog.StringValue(r.String()) }

// rresPlain is RenewResponse without its methods, for formatting.
type rresPlain RenewResponse

// String formats the answer with its gossip keys redacted.
func (r RenewResponse) String() string {
	p := rresPlain(r)
	p.GossipKeys = nil
	return withKeysRedacted(p, len(r.GossipKeys))
}

// GoString formats the answer with its gossip keys redacted, for %#v.
func (r RenewResponse) GoString() string { return r.String() }

// LogValue logs the answer with its gossip keys redacted.
func (r RenewResponse) LogValue() slog.Value { return slog.StringValue(r.String()) }

// sjPlain is SwarmJoin without its methods, for formatting.
type sjPlain SwarmJoin

func (r SwarmJoin) redacted() sjPlain {
	p := sjPlain(r)
	p.Token = redact(p.Token)
	return p
}

// String formats the request with its token redacted.
func (r SwarmJoin) String() string { return fmt.Sprintf("%+v", r.redacted()) }

// GoString formats the request with its token redacted, for %#v.
func (r SwarmJoin) GoString() string { return fmt.Sprintf("%#v", r.redacted()) }

// LogValue logs the request with its token redacted.
func (r SwarmJoin) LogValue() slog.Value { return slog.StringValue(r.String()) }

// LogValue logs the token redacted.
func (t JoinToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("Role", t.Role), slog.String("Token", redact(t.Token)),
		slog.String("ManagerAddr", t.ManagerAddr))
}

// LogValue logs the answer with the worker token redacted.
func (r SwarmInitResponse) LogValue() slog.Value {
	return slog.GroupValue(slog.String("NodeID", r.NodeID), slog.String("ClusterID", r.ClusterID),
		slog.String("WorkerToken", redact(r.WorkerToken)), slog.String("ManagerAddr", r.ManagerAddr))
}
