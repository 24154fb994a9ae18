#!/usr/bin/env bash
# Run the quickstart end to end: copy the sample CSV files into a scratch
# in/ directory, run the pipeline until everything is delivered, and show
# what came out. Usage: examples/quickstart/run.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SLUICE:-$here/../../bin/sluice}
work=${1:-$here/work}
if [ ! -x "$bin" ]; then
	echo "build sluice first: make build (or set SLUICE=/path/to/sluice)" >&2
	exit 1
fi
rm -rf "$work"
mkdir -p "$work/in"
cp "$here"/sample/*.csv "$work/in/"
cd "$work"
"$bin" validate -c "$here/pipeline.yaml"
"$bin" run -c "$here/pipeline.yaml" --once --data-dir "$work/data" --log-level warn
echo
echo "== files published under $work/out:"
(cd out && find . -type f | sort)
for f in $(cd out && find . -type f -name '*.jsonl' | sort); do
	echo
	echo "== out/${f#./}"
	cat "out/$f"
done
echo
echo "== archived inputs (in/done/): $(ls in/done | tr "\n" " ")"
