"""fswire.py -- the Fieldsync wire format in Python, written from
docs/protocol.md alone: varints, strings, entries and frames, both ways.
Used by the second client (test_protocol.py) and the fuzz corpus
generator (tests/fuzz/make_corpus.py)."""
import struct
import zlib

HELLO, WELCOME, PUSH, ACK, PULL, CHANGES, ERROR, BYE = range(1, 9)


def uv(n):
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def st(s):
    """A str: uv n, then n-1 bytes and a NUL; n = 0 is NULL."""
    if s is None:
        return uv(0)
    b = s.encode()
    return uv(len(b) + 1) + b + b"\0"


def entry(op, tbl, rid, col, val, hlc, seq, device=None, author=None):
    return (op.encode() + st(tbl) + st(rid) + st(col) + st(val) + uv(hlc)
            + st(device) + st(author) + uv(seq))


def frame(typ, payload, compress=False):
    """One frame; compress=None compresses when it helps (as senders do
    for payloads of 256 bytes or more)."""
    flags = 0
    if compress or (compress is None and len(payload) >= 256):
        z = struct.pack(">I", len(payload)) + zlib.compress(payload)
        if compress or len(z) < len(payload):
            payload, flags = z, 1
    return struct.pack(">BBHI", typ, flags, 0, len(payload)) + payload


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def uv(self):
        n = shift = 0
        while True:
            b = self.d[self.i]
            self.i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def str(self):
        n = self.uv()
        if n == 0:
            return None
        s = self.d[self.i:self.i + n - 1].decode()
        assert self.d[self.i + n - 1] == 0, "string not NUL-terminated"
        self.i += n
        return s

    def entry(self):
        op = chr(self.d[self.i])
        self.i += 1
        return {"op": op, "tbl": self.str(), "rid": self.str(), "col": self.str(),
                "val": self.str(), "hlc": self.uv(), "device": self.str(),
                "author": self.str(), "seq": self.uv()}
