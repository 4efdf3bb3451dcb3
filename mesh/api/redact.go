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

// jsPlain is JoinSecrets without its methods, for formatting.
type jsPlain JoinSecrets

func (s JoinSecrets) redacted() jsPlain {
	r := jsPlain(s)
	if len(r.GossipKey) > 0 {
		r.GossipKey = []byte(Redacted)
	}
	r.NodeSecret = redact(r.NodeSecret)
	return r
}

// String formats the secrets redacted.
func (s JoinSecrets) String() string { return fmt.Sprintf("%+v", s.redacted()) }

// GoString formats the secrets redacted, for %#v.
func (s JoinSecrets) GoString() string { return fmt.Sprintf("%#v", s.redacted()) }

// LogValue logs the secrets redacted.
func (s JoinSecrets) LogValue() slog.Value { return slog.StringValue(s.String()) }

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
