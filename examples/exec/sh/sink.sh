#!/bin/sh
# Sluice exec sink in POSIX sh: appends every message, as the JSON line
# Sluice sent, to OUT_FILE, and acks the batch once it is synced to disk.
#
# Settings come from the environment (the `env:` of the pipeline):
#   OUT_FILE   the file to append to
# Only sh and standard tools (sync) are used.
set -eu
out=${OUT_FILE:?OUT_FILE is not set}

IFS= read -r hello
echo '{"type":"hello","protocol":1}'

ids=""
while IFS= read -r line; do
  case $line in
    '{"type":"message",'*)
      # Sluice writes "type" first and "id" second; message IDs are
      # hexadecimal, safe to keep in a space-separated list.
      id=${line#*\"id\":\"}
      id=${id%%\"*}
      printf '%s\n' "$line" >> "$out"
      ids="$ids $id"
      ;;
    '{"type":"flush"}')
      sync
      for id in $ids; do
        printf '{"type":"ack","id":"%s"}\n' "$id"
      done
      ids=""
      ;;
  esac
done
