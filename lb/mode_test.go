package lb

import "testing"

func TestChooseMode(t *testing.T) {
	tests := []struct {
		name      string
		requested Mode
		hasIPVS   bool
		want      Mode
		wantErr   bool
	}{
		{name: "auto with ipvs", requested: ModeAuto, hasIPVS: true, want: ModeIPVS},
		{name: "auto without ipvs", requested: ModeAuto, hasIPVS: false, want: ModeIPTables},
		{name: "ipvs forced without ipvs", requested: ModeIPVS, hasIPVS: false, wantErr: true},
		{name: "ipvs forced with ipvs", requested: ModeIPVS, hasIPVS: true, want: ModeIPVS},
		{name: "iptables forced with ipvs", requested: ModeIPTables, hasIPVS: true, want: ModeIPTables},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := ChooseMode(tt.requested, tt.hasIPVS)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err == nil && reason == "" {
				t.Errorf("no reason given for %q", got)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"auto", "ipvs", "iptables"} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "IPVS", "nft"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) = nil, want an error", s)
		}
	}
}
