package main

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd/meshd/mesh/api"
)

// TestNetworkConnect checks what network connect and disconnect send,
// the deck's "network connect dev <container_id>" first.
func TestNetworkConnect(t *testing.T) {
	tests := []struct {
		name    string
		run     func(context.Context, connectAPI) error
		want    []string // network: request
		wantErr string
	}{
		{name: "deck: connect", run: func(ctx context.Context, cl connectAPI) error {
			return runNetworkConnect(ctx, cl, networkConnectOptions{network: "dev", container: "0ecccdfa45ef"})
		}, want: []string{`connect dev: {Container:0ecccdfa45ef Attach:{Network:dev Aliases:[] IP: Local:<nil>} Force:false}`}},
		{name: "connect with aliases and an address", run: func(ctx context.Context, cl connectAPI) error {
			return runNetworkConnect(ctx, cl, networkConnectOptions{network: "prod", container: "es", aliases: []string{"search", "es2"}, ip: "10.66.0.9"})
		}, want: []string{`connect prod: {Container:es Attach:{Network:prod Aliases:[search es2] IP:10.66.0.9 Local:<nil>} Force:false}`}},
		{name: "bad address", run: func(ctx context.Context, cl connectAPI) error {
			return runNetworkConnect(ctx, cl, networkConnectOptions{network: "prod", container: "es", ip: "10.66.0"})
		}, wantErr: "invalid IPv4 address: 10.66.0"},
		{name: "disconnect -f", run: func(ctx context.Context, cl connectAPI) error {
			return runNetworkDisconnect(ctx, cl, networkConnectOptions{network: "dev", container: "es", force: true})
		}, want: []string{`disconnect dev: {Container:es Attach:{Network: Aliases:[] IP: Local:<nil>} Force:true}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeAPI()
			var got []string
			record := func(verb string) func(string, api.NetworkConnect) error {
				return func(network string, req api.NetworkConnect) error {
					if req.Attach.Aliases == nil {
						req.Attach.Aliases = []string{}
					}
					got = append(got, verb+" "+network+": "+fmt.Sprintf("%+v", req))
					return nil
				}
			}
			fake.connectFunc, fake.disconnectFunc = record("connect"), record("disconnect")
			err := tt.run(context.Background(), fake)
			if errString(err) != tt.wantErr {
				t.Errorf("got error %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requests mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNetworkCreateDriver checks that network create makes a bridge
// unless told otherwise, as docker's does, and that -d overlay asks for
// an overlay.
func TestNetworkCreateDriver(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"dev"}, "bridge"},
		{[]string{"-d", "overlay", "ovnet"}, "overlay"},
		{[]string{"--driver", "overlay", "--attachable", "ovnet"}, "overlay"},
	} {
		cmd := newNetworkCreateCommand(&cli{})
		if err := cmd.ParseFlags(tt.args); err != nil {
			t.Fatalf("parse %q: %v", tt.args, err)
		}
		if got, _ := cmd.Flags().GetString("driver"); got != tt.want {
			t.Errorf("network create %q: got driver %q, want %q", tt.args, got, tt.want)
		}
	}
	// A caller that leaves the driver out gets the same default.
	fake := newFakeAPI()
	var sent api.NetworkCreate
	fake.createNetworkFunc = func(req api.NetworkCreate) (api.Network, error) { sent = req; return api.Network{ID: "x"}, nil }
	if err := runNetworkCreate(context.Background(), fake, io.Discard, networkCreateOptions{name: "dev"}); err != nil {
		t.Fatal(err)
	}
	if sent.Driver != "bridge" {
		t.Errorf("got driver %q, want bridge", sent.Driver)
	}
}
