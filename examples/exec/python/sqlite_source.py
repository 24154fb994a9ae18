#!/usr/bin/env python3
"""Sluice exec source: drains a legacy application's outbox table.

The application writes one row per event into a SQLite table `outbox`
(id, created_at, payload as JSON text). This program emits each row as a
message and deletes it only once Sluice acks it, that is once the message is
durably in Sluice's queue. A nacked row is emitted again at the next poll; a
row emitted before a crash is emitted again when the program restarts,
because it is still in the table. Nothing is lost.

config (from the pipeline's `config:`):
  db             path of the SQLite file (relative to the pipeline file)
  poll_interval  seconds between polls (default 1)
  batch          most rows emitted per poll (default 500)
"""

import json
import queue
import sqlite3
import time

from sluice_exec import Conn


def main():
    conn = Conn()
    hello = conn.hello()
    cfg = hello.get("config") or {}
    db = sqlite3.connect(cfg.get("db", "outbox.db"))
    db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT, payload TEXT)")
    db.commit()
    poll = float(cfg.get("poll_interval", 1))
    batch = int(cfg.get("batch", 500))
    answers = conn.reader()
    inflight = set()
    conn.log("info", "draining the outbox", db=cfg.get("db"), once=hello.get("once", False))
    while True:
        emitted = 0
        rows = db.execute("SELECT id, created_at, payload FROM outbox ORDER BY id LIMIT ?", (batch + len(inflight),)).fetchall()
        for row_id, created_at, payload in rows:
            key = str(row_id)
            if key in inflight or emitted >= batch:
                continue
            try:
                record = json.loads(payload)
                record["outbox_id"] = row_id
                conn.message(key, record=record, meta={"created_at": created_at})
            except (ValueError, TypeError) as e:
                # A malformed row goes to the pipeline's dead-letter queue,
                # with the raw payload, rather than blocking the outbox.
                conn.message(key, text=str(payload), error="payload is not JSON: %s" % e)
            inflight.add(key)
            emitted += 1
        if hello.get("once") and not inflight and emitted == 0:
            conn.end()
            for _ in iter(answers.get, None):
                pass
            return
        # Wait for answers (or the next poll).
        deadline = time.monotonic() + poll
        while True:
            timeout = deadline - time.monotonic()
            if inflight and hello.get("once"):
                timeout = None  # nothing else to do until the acks arrive
            elif timeout <= 0:
                break
            try:
                f = answers.get(timeout=timeout)
            except queue.Empty:
                break
            if f is None:
                return  # stdin closed: Sluice is stopping us
            if f.get("type") == "ack":
                db.execute("DELETE FROM outbox WHERE id = ?", (int(f["id"]),))
                db.commit()
                inflight.discard(f["id"])
            elif f.get("type") == "nack":
                inflight.discard(f["id"])  # emitted again at the next poll
            if hello.get("once") and not inflight:
                break


if __name__ == "__main__":
    main()
