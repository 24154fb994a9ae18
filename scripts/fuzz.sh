#!/usr/bin/env bash
# Run every Go fuzz target in the repository for a while each.
# Usage: scripts/fuzz.sh [FUZZTIME]   (default 10s)
set -euo pipefail
fuzztime=${1:-10s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for t in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sed 's/(.*//'); do
		echo "== $pkg $t ($fuzztime)"
		go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "$pkg"
	done
done
