#!/bin/sh
# Sluice exec source in POSIX sh: every *.json file dropped in SPOOL_DIR
# (one JSON object per file) is one message, and the file is deleted only
# once Sluice acks it, that is once it is durably queued. A nacked file, or
# one emitted before a crash, is emitted again: nothing is lost.
#
# Settings come from the environment (the `env:` of the pipeline):
#   SPOOL_DIR     the drop directory
#   POLL_SECONDS  pause between scans (default 2)
# Only sh and standard tools (tr, basename, rm, sleep) are used.
set -eu
spool=${SPOOL_DIR:?SPOOL_DIR is not set}
poll=${POLL_SECONDS:-2}

IFS= read -r hello
case $hello in
  *'"once":true'*) once=1 ;;
  *) once=0 ;;
esac
echo '{"type":"hello","protocol":1}'

while :; do
  n=0
  for f in "$spool"/*.json; do
    [ -e "$f" ] || continue
    id=$(basename "$f")
    # The file holds a JSON object; newlines inside it are not allowed on
    # the wire, so join its lines.
    record=$(tr -d '\r\n' < "$f")
    printf '{"type":"message","id":"%s","record":%s}\n' "$id" "$record"
    n=$((n + 1))
  done
  # Wait for an answer to every message. Sluice writes answers with "type"
  # first and "id" second, so plain pattern matching reads them.
  while [ "$n" -gt 0 ]; do
    IFS= read -r line || exit 0
    id=${line#*\"id\":\"}
    id=${id%%\"*}
    case $line in
      '{"type":"ack",'*) rm -f -- "$spool/$id"; n=$((n - 1)) ;;
      '{"type":"nack",'*) n=$((n - 1)) ;;
    esac
  done
  if [ "$once" = 1 ]; then
    echo '{"type":"end"}'
    cat > /dev/null # wait until Sluice closes stdin
    exit 0
  fi
  sleep "$poll"
done
