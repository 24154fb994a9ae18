# Sluice — build, test, benchmark. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/sluice
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
PKGS := ./...

.PHONY: help build test lint unit quickstart bench bench-broker bench-pipeline fuzz clean services

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

bench: bench-pipeline bench-broker ## the benchmarks whose figures are in docs/benchmarks.md

bench-pipeline: build ## 1M JSON-line orders: file → decode → map → filter → route → queue → file
	$(GO) run ./bench/pipeline

bench-broker: ## disk queue throughput and latency vs fsync limits and NATS JetStream
	$(GO) run ./bench/broker

fuzz: ## run every fuzz target for 10s each (FUZZTIME=60s for longer)
	bash scripts/fuzz.sh $${FUZZTIME:-10s}

clean:
	rm -rf bin
