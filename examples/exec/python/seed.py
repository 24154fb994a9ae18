#!/usr/bin/env python3
"""Fills an outbox table with sample orders, as a legacy application would.

usage: python3 seed.py [DB] [COUNT]     (default: outbox.db 100)
Every tenth order is cancelled; the example pipeline filters those out.
"""

import json
import sqlite3
import sys


def main():
    db = sys.argv[1] if len(sys.argv) > 1 else "outbox.db"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT, payload TEXT)")
    for i in range(1, n + 1):
        order = {"order_id": i, "customer": "C%04d" % (i % 37), "amount": "%d.%02d" % (i * 7, i % 100),
                 "status": "cancelled" if i % 10 == 0 else "new"}
        c.execute("INSERT INTO outbox (created_at, payload) VALUES (datetime('now'), ?)", (json.dumps(order),))
    c.commit()
    print("%s: %d orders in the outbox" % (db, n))


if __name__ == "__main__":
    main()
