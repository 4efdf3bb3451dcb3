package main

import "testing"

func TestCommandLine(t *testing.T) {
	for _, tt := range []struct {
		path string
		args []string
		want string
	}{
		{"nginx", []string{"-g", "daemon off;"}, "nginx -g 'daemon off;'"},
		{"sleep", []string{"50000"}, "sleep 50000"},
		{"/whoami", nil, "/whoami"},
		{"", nil, ""},
	} {
		if got := commandLine(tt.path, tt.args); got != tt.want {
			t.Errorf("commandLine(%q, %q) = %q, want %q", tt.path, tt.args, got, tt.want)
		}
	}
}
