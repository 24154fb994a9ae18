# Sluice — build, test, benchmark. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/sluice
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
PKGS := ./...

.PHONY: help build test lint unit quickstart bench bench-broker bench-pipeline bench-codecs bench-mysql bench-sftp bench-nats bench-http fuzz clean services

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/sluice
	$(GO) build -trimpath -o $(BIN) ./cmd/sluice

services: ## install (Debian, as root) and start the peers the tests use
	bash scripts/services.sh

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

unit: ## go test -race over every package
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test: services lint unit build ## the full suite: services, lint, race tests, pipeline tests of the examples
	$(BIN) test -c examples/

quickstart: build ## run the quickstart: CSV files in examples/quickstart/in become JSON lines in out/
	bash examples/quickstart/run.sh

bench: bench-pipeline bench-broker bench-codecs ## the core benchmarks of docs/benchmarks.md (the peer ones have their own targets)

bench-pipeline: build ## 1M JSON-line orders: file → decode → map → filter → route → queue → file
	$(GO) run ./bench/pipeline

bench-broker: ## disk queue throughput and latency vs fsync limits and NATS JetStream
	@# JetStream's sync_interval needs nats-server 2.10+; Debian ships 2.9
	$(GO) install github.com/nats-io/nats-server/v2@v2.15.2
	$(GO) run ./bench/broker

bench-codecs: ## decode/encode throughput of every codec on one core
	$(GO) test ./transform/codec/... -run XXX -bench . -benchtime 1s -cpu 1

bench-mysql: services build ## 1M rows table → table through sluice vs a multi-row INSERT baseline (MariaDB)
	$(GO) run ./bench/mysql

bench-sftp: build ## 1 GiB file and 10,000 small files from a private sshd, sluice vs OpenSSH sftp
	$(GO) run ./bench/sftp

bench-nats: services build ## file → queue → file on NATS (1 node, 3 nodes R3, 1–3 agents) vs disk
	$(GO) run ./bench/nats

bench-http: build ## async POST throughput with durable enqueue, request/reply latency
	$(GO) run ./bench/http -bin $(BIN)

fuzz: ## run every fuzz target for 10s each (FUZZTIME=60s for longer)
	bash scripts/fuzz.sh $${FUZZTIME:-10s}

clean:
	rm -rf bin
