#!/usr/bin/env python3
"""Sluice exec sink: appends records to a JSON-lines file.

Messages of a batch are buffered until Sluice sends `flush`; then they are
written, fsynced, and acked together: an ack means the record is on disk.
A message without a record (raw bytes only) is refused permanently, so
Sluice dead-letters it instead of retrying.

config:
  path   the file to append to (relative to the pipeline file)
"""

import json
import os

from sluice_exec import Conn


def main():
    conn = Conn()
    hello = conn.hello()
    path = (hello.get("config") or {}).get("path", "out.jsonl")
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    pending = []
    with open(path, "a", encoding="utf-8") as out:
        for f in conn.frames():
            if f["type"] == "message":
                if "record" not in f:
                    conn.nack(f["id"], "this sink writes records; the message has none", kind="permanent")
                    continue
                pending.append(f)
            elif f["type"] == "flush":
                try:
                    for m in pending:
                        out.write(json.dumps(m["record"], sort_keys=True) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as e:
                    for m in pending:
                        conn.nack(m["id"], "write %s: %s" % (path, e), kind="transient")
                else:
                    for m in pending:
                        conn.ack(m["id"])
                pending = []


if __name__ == "__main__":
    main()
