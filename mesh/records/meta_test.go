package records

import (
	"net/netip"
	"testing"
)

func TestMetaDataPathPort(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		wantOK bool
		want   int
	}{
		{"said", `{"n":"node1","r":"worker","a":"192.168.33.10","d":"ipvs","v":"1","dp":4800}`, true, 4800},
		{"not said: a node from before the key", `{"n":"node1","r":"worker","a":"192.168.33.10","d":"ipvs","v":"1"}`, true, 0},
		{"out of range", `{"n":"node1","r":"worker","a":"192.168.33.10","d":"ipvs","v":"1","dp":70000}`, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := DecodeMeta([]byte(tt.wire))
			if ok != tt.wantOK || m.DataPathPort != tt.want {
				t.Errorf("DecodeMeta = port %d, ok %v; want %d, %v", m.DataPathPort, ok, tt.want, tt.wantOK)
			}
		})
	}
	in := NodeMeta{Name: "node1", Role: "worker", Addr: netip.MustParseAddr("192.168.33.10"), DataPathPort: 4789}
	b, err := EncodeMeta(in)
	if err != nil {
		t.Fatal(err)
	}
	if out, ok := DecodeMeta(b); !ok || out != in {
		t.Errorf("round trip: %+v, %v; want %+v", out, ok, in)
	}
}

func TestCheckSize(t *testing.T) {
	big := make([]byte, MaxRecordSize) // base64: a third longer
	tests := []struct {
		name    string
		o       any
		wantErr bool
	}{
		{"small", map[string]string{"a": "b"}, false},
		{"over the entry limit", map[string][]byte{"a": big}, true},
		{"cannot be encoded", map[string]any{"a": func() {}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckSize("service", "www", tt.o); (err != nil) != tt.wantErr {
				t.Errorf("CheckSize = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
