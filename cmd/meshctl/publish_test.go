package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

func TestParsePublish(t *testing.T) {
	tests := []struct {
		in      string
		want    api.PortConfig
		wantErr string
	}{
		{in: "8888:80", want: api.PortConfig{Protocol: "tcp", PublishedPort: 8888, TargetPort: 80, PublishMode: "ingress"}},
		{in: "5353:53/udp", want: api.PortConfig{Protocol: "udp", PublishedPort: 5353, TargetPort: 53, PublishMode: "ingress"}},
		{in: "80", want: api.PortConfig{Protocol: "tcp", PublishedPort: 80, TargetPort: 80, PublishMode: "ingress"}},
		{in: "mode=host,published=8080,target=80", want: api.PortConfig{Protocol: "tcp", PublishedPort: 8080, TargetPort: 80, PublishMode: "host"}},
		{in: "published=53,target=53,protocol=udp", want: api.PortConfig{Protocol: "udp", PublishedPort: 53, TargetPort: 53, PublishMode: "ingress"}},
		{in: "70000:80", wantErr: "out of range"},
		{in: "0:80", wantErr: "out of range"},
		{in: "8888:80/sctp", wantErr: "unknown protocol"},
		{in: "x:80", wantErr: "out of range"},
		{in: "mode=bridge,target=80", wantErr: "mode must be"},
		{in: "published=80", wantErr: "target= is required"},
		{in: "color=blue,target=80", wantErr: "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePublish(tt.in)
			if failed(t, err, tt.wantErr) {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
