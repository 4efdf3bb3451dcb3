package lb

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeExec is an execer that runs nothing: it records each call and
// answers with the canned output and error.
type fakeExec struct {
	calls          []execCall
	stdout, stderr string
	err            error
	// by answers the commands it names (argv[0]) instead.
	by map[string]fakeOut
}

type fakeOut struct {
	stdout string
	err    error
}

type execCall struct {
	NetNS string
	Argv  string
	Stdin string
}

func (f *fakeExec) run(_ context.Context, netns string, stdin []byte, argv ...string) ([]byte, []byte, error) {
	f.calls = append(f.calls, execCall{NetNS: netns, Argv: strings.Join(argv, " "), Stdin: string(stdin)})
	if o, ok := f.by[argv[0]]; ok {
		return []byte(o.stdout), nil, o.err
	}
	return []byte(f.stdout), []byte(f.stderr), f.err
}

func TestIPTablesExec(t *testing.T) {
	const ns = "/run/meshd/netns/ingress_sbox"
	payload := "*nat\n:MESH-INGRESS - [0:0]\nCOMMIT\n"
	exitErr := errors.New("exit status 1")
	tests := []struct {
		name    string
		netns   string
		fake    fakeExec
		do      func(IPTables) (string, error)
		want    []execCall
		wantOut string
		wantErr string
	}{
		{
			name:  "apply",
			netns: ns,
			do:    apply(payload),
			want:  []execCall{{NetNS: ns, Argv: "iptables-restore --noflush -w", Stdin: payload}},
		},
		{
			name: "empty payload runs nothing",
			do:   apply(""),
		},
		{
			name:    "apply fails",
			netns:   ns,
			fake:    fakeExec{stdout: "partial\n", stderr: "iptables-restore: line 2 failed\n", err: exitErr},
			do:      apply(payload),
			want:    []execCall{{NetNS: ns, Argv: "iptables-restore --noflush -w", Stdin: payload}},
			wantErr: "iptables-restore in " + ns + ": exit status 1: partial\niptables-restore: line 2 failed",
		},
		{
			name:    "apply fails in the caller's namespace",
			fake:    fakeExec{stderr: "Permission denied (you must be root)\n", err: exitErr},
			do:      apply(payload),
			want:    []execCall{{Argv: "iptables-restore --noflush -w", Stdin: payload}},
			wantErr: "iptables-restore: exit status 1: Permission denied (you must be root)",
		},
		{
			name:    "save",
			netns:   ns,
			fake:    fakeExec{stdout: "*nat\nCOMMIT\n", stderr: "a warning\n", by: map[string]fakeOut{"ipset": {}}},
			do:      save,
			want:    []execCall{{NetNS: ns, Argv: "iptables-save"}, {NetNS: ns, Argv: "ipset save"}},
			wantOut: "*nat\nCOMMIT\n",
		},
		{
			name:  "save with sets",
			netns: ns,
			fake: fakeExec{stdout: "*nat\nCOMMIT\n", by: map[string]fakeOut{"ipset": {stdout: "" +
				"create MESH-PREROUTING-TCP bitmap:port range 0-65535 comment skbinfo\n" +
				"add MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x100\n" +
				"create other hash:ip family inet hashsize 1024 maxelem 65536\n"}}},
			do:   save,
			want: []execCall{{NetNS: ns, Argv: "iptables-save"}, {NetNS: ns, Argv: "ipset save"}},
			wantOut: "*nat\nCOMMIT\n*ipset\n:MESH-PREROUTING-TCP - [0:0]\n" +
				"-A MESH-PREROUTING-TCP 8888 comment \"www\" skbmark 0x100\n:other - [0:0]\nCOMMIT\n",
		},
		{
			name:    "save without the ipset tool",
			fake:    fakeExec{stdout: "*nat\nCOMMIT\n", by: map[string]fakeOut{"ipset": {err: exec.ErrNotFound}}},
			do:      save,
			want:    []execCall{{Argv: "iptables-save"}, {Argv: "ipset save"}},
			wantOut: "*nat\nCOMMIT\n",
		},
		{
			name:    "save without the ipset tool, of rules that use a set",
			fake:    fakeExec{stdout: "*mangle\n-A MESH-INPUT -j SET --map-set MESH-INPUT-VIP dst --map-mark\nCOMMIT\n", by: map[string]fakeOut{"ipset": {err: exec.ErrNotFound}}},
			do:      save,
			want:    []execCall{{Argv: "iptables-save"}, {Argv: "ipset save"}},
			wantErr: "ipset save: the rules use sets, and reading them needs the ipset tool (Debian's ipset package): " + exec.ErrNotFound.Error(),
		},
		{
			name:  "apply with sets",
			netns: ns,
			do: apply("*ipset\n:MESH-INPUT-VIP - [0:0]\n-D MESH-INPUT-VIP 10.0.0.9 comment \"api\" skbmark 0x103\n" +
				"-A MESH-INPUT-VIP 10.0.0.2 comment \"www\" skbmark 0x101\n-X MESH-OUTPUT-VIP\nCOMMIT\n" + payload),
			want: []execCall{
				{NetNS: ns, Argv: "sets", Stdin: "*ipset\n:MESH-INPUT-VIP - [0:0]\n-D MESH-INPUT-VIP 10.0.0.9 comment \"api\" skbmark 0x103\n" +
					"-A MESH-INPUT-VIP 10.0.0.2 comment \"www\" skbmark 0x101\nCOMMIT\n"},
				{NetNS: ns, Argv: "iptables-restore --noflush -w", Stdin: payload},
				{NetNS: ns, Argv: "sets", Stdin: "*ipset\n-X MESH-OUTPUT-VIP\nCOMMIT\n"},
			},
		},
		{
			name:    "apply stops at the sets",
			netns:   ns,
			fake:    fakeExec{err: exitErr},
			do:      apply("*ipset\n:MESH-INPUT-VIP - [0:0]\nCOMMIT\n" + payload),
			want:    []execCall{{NetNS: ns, Argv: "sets", Stdin: "*ipset\n:MESH-INPUT-VIP - [0:0]\nCOMMIT\n"}},
			wantErr: "exit status 1 in " + ns,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tt.fake
			out, err := tt.do(IPTables{NetNS: tt.netns, exec: &fake, sets: &fake})
			if diff := cmp.Diff(tt.want, fake.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if out != tt.wantOut {
				t.Errorf("got output %q, want %q", out, tt.wantOut)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			case tt.wantErr != "" && tt.fake.err != nil && !errors.Is(err, tt.fake.err):
				t.Errorf("error %v does not wrap the command's", err)
			}
		})
	}
}

// apply records a set table as a call of "sets", and fails with err.
func (f *fakeExec) apply(netns string, table []byte) error {
	f.calls = append(f.calls, execCall{NetNS: netns, Argv: "sets", Stdin: string(table)})
	return f.err
}

func apply(payload string) func(IPTables) (string, error) {
	return func(r IPTables) (string, error) { return "", r.Apply(context.Background(), []byte(payload)) }
}

func save(r IPTables) (string, error) {
	b, err := r.Save(context.Background())
	return string(b), err
}
