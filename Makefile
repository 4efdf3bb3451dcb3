# meshd: `make lab` to see it work, `make test` to check everything.
GO      ?= go
BIN     := bin
PREFIX  ?= /usr/local
NODES   ?= 3
GOFLAGS ?=

.PHONY: all build deps install lab lab-down test vet unit bench-gossip bench-overlay clean

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/meshd ./cmd/meshd
	$(GO) build $(GOFLAGS) -o $(BIN)/meshctl ./cmd/meshctl

deps:
	@scripts/deps.sh

# meshctl and meshd on the PATH, so the tutorials' commands work as typed.
install: build
	install -m 0755 $(BIN)/meshd $(BIN)/meshctl $(PREFIX)/bin/

lab: deps install
	meshctl lab up --nodes $(NODES)
	@echo
	@echo '$$ meshctl --node node1 node ls'
	@meshctl --node node1 node ls
	@echo
	@echo '$$ meshctl --node node2 node ls'
	@meshctl --node node2 node ls
	@echo
	@echo 'Try: meshctl lab exec node1 -- ip -br addr ; meshctl --node node1 swarm join-token ; meshctl lab down'

lab-down:
	meshctl lab down

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Every test: unit tests, kernel tests and the lab e2e suite (root).
test: deps vet build
	$(GO) test -count=1 -timeout 20m ./...

unit:
	$(GO) test -short -count=1 ./...

bench-gossip:
	$(GO) test -run '^$$' -bench Convergence -benchtime 1x ./gossip/

clean:
	rm -rf $(BIN)

# TCP throughput task to task over VXLAN vs node to node on the underlay.
bench-overlay: build
	$(GO) test -run '^$$' -bench OverlayThroughput -benchtime 3x -timeout 10m ./mesh/e2e/
