/*
** wire.h -- the Fieldsync sync protocol: frames, messages, change entries.
**
** docs/protocol.md is the specification; this file and wire.c are its
** reference implementation.  A frame on the wire:
**
**   offset  size  field
**   0       1     type (FS_MSG_*)
**   1       1     flags: bit 0 = payload is zlib-compressed
**   2       2     reserved, must be 0
**   4       4     payload length L, big-endian, L <= FS_FRAME_MAX
**   8       L     payload
**
** A compressed payload starts with the uncompressed length (4 bytes,
** big-endian, <= FS_FRAME_RAW_MAX) followed by a zlib stream that must
** inflate to exactly that many bytes.
**
** Inside payloads: uv = unsigned LEB128 varint (at most 10 bytes);
** str = uv (0 for NULL, else length+1), then the bytes, then a 0x00 byte
** (so decoded strings point straight into the payload, NUL-terminated; a
** string may not contain 0x00 itself).  Every length is checked against
** what is left of the payload before it is used.
*/
#ifndef FS_WIRE_H
#define FS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define FS_PROTO_VERSION 1
#define FS_FRAME_HEADER 8
#define FS_FRAME_MAX (8u << 20)       /* payload bytes on the wire */
#define FS_FRAME_RAW_MAX (32u << 20)  /* payload bytes after inflating */
#define FS_WIRE_COMPRESS_MIN 256      /* smaller payloads go uncompressed */
#define FS_WIRE_FAST_ABOVE (64u << 10) /* bigger payloads: fastest zlib level */

enum fs_msg {
	FS_MSG_HELLO = 1,    /* C->S: uv proto, uv schema, str client, uv cursor */
	FS_MSG_WELCOME = 2,  /* S->C: uv proto, uv schema, str user, str role,
	                        str device, uv server_hlc */
	FS_MSG_PUSH = 3,     /* C->S: str batch_id, uv n, entry * n */
	FS_MSG_ACK = 4,      /* S->C: str batch_id, uv applied, uv conflicts,
	                        uv nrej, (uv index, str reason) * nrej,
	                        uv ncorr, entry * ncorr */
	FS_MSG_PULL = 5,     /* C->S: uv cursor, uv max, uv snapshot,
	                        str snap_tbl, str snap_rid, uv snap_seq */
	FS_MSG_CHANGES = 6,  /* S->C: uv next_cursor, uv more, uv snapshot,
	                        str snap_tbl, str snap_rid, uv snap_seq,
	                        uv n, entry * n */
	FS_MSG_ERROR = 7,    /* S->C: uv code (FS_E* negated), str message */
	FS_MSG_BYE = 8,      /* either way: empty */
	FS_MSG_WAIT = 9,     /* S->C, to schema 4+: empty; the server is busy,
	                        the request is queued (keeps the read alive) */
	FS_MSG_DEPTS = 10    /* regional server -> head office: empty; the
	                        reply (same type): str JSON array of the
	                        departments (docs/tiers.md) */
};

/* One change.  Strings are NUL-terminated; val may be NULL.
**   op   'I' insert (val: JSON object of fields), 'U' update of col (val:
**        JSON value), 'D' delete, 'R' conflict resolved (rid: conflict id,
**        val: JSON value kept), 'C' conflict recorded (rid: conflict id,
**        val: the conflict as a JSON object; server to client only)
**   seq  client to server: the base (server-log position seen when the
**        change was made); server to client: the change's server seq.
** On the wire: u8 op, str tbl, str rid, str col, str val, uv hlc,
** str device, str author, uv seq. */
typedef struct fs_entry {
	char op;
	const char *tbl;
	const char *rid;
	const char *col;
	const char *val;
	uint64_t hlc;
	const char *device;
	const char *author;
	uint64_t seq;
} fs_entry;

/* A reader over a decoded payload. */
typedef struct fs_rd {
	const unsigned char *p;
	size_t n;
	size_t off;
} fs_rd;

void fs_rd__init(fs_rd *r, const fs_buf *payload);
int fs_rd__uv(fs_rd *r, uint64_t *out, fs_err *e);
int fs_rd__str(fs_rd *r, const char **out, fs_err *e);
int fs_rd__entry(fs_rd *r, fs_entry *out, fs_err *e);
/* FS_ECORRUPT unless the whole payload was consumed. */
int fs_rd__end(fs_rd *r, fs_err *e);

int fs_wr__uv(fs_buf *b, uint64_t v);
int fs_wr__str(fs_buf *b, const char *s);
int fs_wr__entry(fs_buf *b, const fs_entry *en);

/* A byte stream: TLS in production, memory or a socket pair in tests.
** read must fill exactly n bytes or fail; both return 0 or FS_E*. */
typedef struct fs_stream {
	int (*read)(void *ctx, void *buf, size_t n, fs_err *e);
	int (*write)(void *ctx, const void *buf, size_t n, fs_err *e);
	void *ctx;
	uint64_t bytes_in;
	uint64_t bytes_out;
} fs_stream;

/* Sends one frame; compresses payloads of FS_WIRE_COMPRESS_MIN bytes or
** more when 'compress' is set. */
int fs_wire__send(fs_stream *s, int type, const fs_buf *payload, int compress,
                  fs_err *e);
/* Receives one frame into payload (inflated).  FS_ECORRUPT, naming the
** offending field, for a bad header, an oversized length, or a payload
** that does not inflate to its announced size; the stream is then unusable
** and the caller closes the connection. */
int fs_wire__recv(fs_stream *s, int *type, fs_buf *payload, fs_err *e);
/* The side of a session that asked: receives a frame of type want,
** skipping WAIT frames (the other side is busy).  An ERROR frame becomes
** the error ("WHO refused: its message", its FS_E* code), as does a frame
** of another type; a failed read is "WHO: why".  who names the other
** side ("server", "head office"). */
int fs_wire__expect(fs_stream *s, int want, fs_buf *payload, const char *who,
                    fs_err *e);
/* Decodes a frame already in memory (used by recv and by the fuzzer). */
int fs_wire__decode(int *type, fs_buf *payload, const unsigned char *frame,
                    size_t len, fs_err *e);

#endif
