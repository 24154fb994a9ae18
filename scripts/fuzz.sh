#!/usr/bin/env bash
# Run every Go fuzz target in the repository for a while each.
# Usage: scripts/fuzz.sh [FUZZTIME]   (default 10s)
#
# Go's fuzzer sometimes ends a clean run with "context deadline exceeded"
# when -fuzztime elapses while a worker is busy (no failing input is
# written): such a run is repeated once rather than reported as a finding.
set -uo pipefail
fuzztime=${1:-10s}
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for t in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sed 's/(.*//'); do
		for attempt in 1 2; do
			echo "== $pkg $t ($fuzztime)"
			if go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
				tail -1 "$log"
				break
			fi
			if [ "$attempt" = 1 ] && grep -q "context deadline exceeded" "$log" && ! grep -q "Failing input written" "$log"; then
				echo "   (the fuzzer's deadline, not a finding: once more)"
				continue
			fi
			cat "$log"
			status=1
			break
		done
	done
done
exit $status
