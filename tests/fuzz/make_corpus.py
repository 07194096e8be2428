#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/TARGET/):
valid inputs of every kind each decoder meets, from docs/protocol.md, so
the fuzzer starts from deep paths.  Re-run after a format change."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from fswire import entry, frame, st, uv  # noqa: E402


CID = "01900000-0000-7000-8000-000000000042"
REC = json.dumps({"name": "Acme \u00e9", "city": "Lyon", "credit_limit": 150000,
                  "level": "A", "status": "active", "created_at": "2026-11-22T09:00:00Z"})
HLC = 1795000000000 << 16


def push_payload(n=3):
    es = entry("I", "customer", CID, None, REC, HLC, 0)
    es += entry("U", "customer", CID, "city", json.dumps("Paris"), HLC + 1, 0)
    es += entry("U", "customer", CID, "credit_limit", "-5", HLC + 2, 0)
    es += entry("D", "contact", "01900000-0000-7000-8000-000000000043", None, None, HLC + 3, 0)
    es += entry("R", "fs_conflict", "1", None, json.dumps("mine"), HLC + 4, 0)
    return st("dev-1-5") + uv(5) + es


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    # wire: frames as they travel
    write("wire", "hello", frame(1, uv(1) + uv(3) + st("fieldsync/0.1.0") + uv(0)))
    write("wire", "push", frame(3, push_payload()))
    write("wire", "push-z", frame(3, push_payload() * 1, compress=True))
    write("wire", "changes", frame(6, uv(9) + uv(0) + uv(1) + st("customer") + st(CID)
                                   + uv(9) + uv(1) + entry("I", "customer", CID, None, REC,
                                                           HLC, 7, "dev", "alice")))
    write("wire", "ack", frame(4, st("dev-1-5") + uv(2) + uv(1) + uv(1) + uv(0)
                               + st("customer: bad value") + uv(1)
                               + entry("U", "customer", CID, "city", '"Lyon"', HLC, 3,
                                       "dev2", "bob")))
    write("wire", "error", frame(7, uv(13) + st("device was revoked")))
    write("wire", "bye", frame(8, b""))
    # json: record objects
    write("json", "record", REC)
    write("json", "escapes", json.dumps({"s": "q\" \\ / \b\f\n\r\t \u00e9 \U0001F600",
                                         "n": None, "t": True, "f": False,
                                         "r": -1.5e-3, "o": {"a": [1, {"b": 2}]}}))
    write("json", "scalar", '"just a string"')
    # csv: import files
    write("csv", "customers", "name,city,credit_limit,notes\n"
                              "Acme,Lyon,1500.00,\"a, \"\"quoted\"\"\nline\"\r\n"
                              "\u00c9cole,Paris,,\n")
    write("csv", "bom", "\ufeffsku,name,unit,list_price\nP-1,Widget,pc,9.99\n")
    # push: PUSH payloads (after the frame)
    write("push", "batch", push_payload())
    write("push", "replay-and-unknown",
          st("dev-6-8") + uv(3)
          + entry("I", "customer", CID, None, REC, HLC, 0)
          + entry("U", "nosuch", CID, "x", "1", HLC + 5, 0)
          + entry("U", "customer", CID, "nosuchfield", "1", HLC + 6, 0))
    # a regional server's push (batch id 'R...'): own devices and authors,
    # a conflict it recorded, a resolution by natural key
    conflict = json.dumps({"id": 4, "table": "customer", "record": CID,
                           "field": "city", "reason": "concurrent edit",
                           "winner_value": json.dumps("Paris"), "winner_hlc": HLC + 1,
                           "winner_device": "dev-a", "winner_author": "alice",
                           "loser_value": json.dumps("Lyon"), "loser_hlc": HLC,
                           "loser_device": "dev-b", "loser_author": "bob",
                           "created_at": "2026-11-22T09:00:00Z"})
    key = json.dumps(["customer", CID, "city", HLC, "dev-b"])
    rec_n = json.dumps(dict(json.loads(REC), region="north"))
    write("push", "relay",
          st("R-dev-1-4") + uv(4)
          + entry("I", "customer", CID, None, rec_n, HLC, 3, "dev-a", "alice")
          + entry("U", "customer", CID, "city", json.dumps("Paris"), HLC + 1, 3,
                  "dev-a", "alice")
          + entry("C", "fs_conflict", "4", "city", conflict, HLC + 1, 3)
          + entry("R", "fs_conflict", "4", key, json.dumps("Lyon"), HLC + 2, 3,
                  "dev-b", "bob"))
    # head office's changes at a regional server (batch id 'U...'): a
    # snapshot creation with field clocks, an update, a drop
    clocks = json.dumps({"city": [HLC + 1, "dev-a"]})
    write("push", "upstream",
          st("U") + uv(4)
          + entry("I", "customer", CID, clocks, REC, HLC, 0, "dev-a", "alice")
          + entry("I", "customer", CID, clocks, REC, HLC, 0, "dev-a", "alice")
          + entry("U", "customer", CID, "city", json.dumps("Oslo"), HLC + 2, 9,
                  "dev-c", "carol")
          + entry("X", "customer", CID, None, None, HLC + 3, 10))


if __name__ == "__main__":
    main()
