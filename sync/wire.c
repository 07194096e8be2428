/*
** wire.c -- frames, varints, strings and entries of the sync protocol.
** See wire.h for the byte layout and docs/protocol.md for the messages.
*/
#include "wire.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fieldsync.h"

void fs_rd__init(fs_rd *r, const fs_buf *payload)
{
	r->p = (const unsigned char *)payload->ptr;
	r->n = payload->len;
	r->off = 0;
}

int fs_rd__uv(fs_rd *r, uint64_t *out, fs_err *e)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t start = r->off;

	for (;;) {
		unsigned char c;
		if (r->off >= r->n)
			return fs_err__set(e, FS_ECORRUPT,
			                   "truncated varint at payload offset %zu", start);
		c = r->p[r->off++];
		if (shift == 63 && (c & 0x7e))
			return fs_err__set(e, FS_ECORRUPT,
			                   "varint overflows 64 bits at offset %zu", start);
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			break;
		shift += 7;
		if (shift > 63)
			return fs_err__set(e, FS_ECORRUPT,
			                   "varint too long at offset %zu", start);
	}
	*out = v;
	return 0;
}

int fs_rd__str(fs_rd *r, const char **out, fs_err *e)
{
	uint64_t len = 0;   /* (GCC -O3 cannot see fs_rd__uv set it) */
	size_t start = r->off;
	int rc;

	if ((rc = fs_rd__uv(r, &len, e)) < 0)
		return rc;
	if (len == 0) {
		*out = NULL;
		return 0;
	}
	len--;
	/* len bytes plus the terminating NUL must fit in what is left. */
	if (len >= r->n - r->off)
		return fs_err__set(e, FS_ECORRUPT,
		        "string at offset %zu claims %llu bytes, %zu left", start,
		        (unsigned long long)len, r->n - r->off);
	if (r->p[r->off + len] != 0 || memchr(r->p + r->off, 0, (size_t)len))
		return fs_err__set(e, FS_ECORRUPT,
		                   "string at offset %zu is not NUL-terminated "
		                   "or holds a NUL byte", start);
	*out = (const char *)(r->p + r->off);
	r->off += (size_t)len + 1;
	return 0;
}

int fs_rd__entry(fs_rd *r, fs_entry *en, fs_err *e)
{
	size_t start = r->off;
	int rc;

	memset(en, 0, sizeof(*en));
	if (r->off >= r->n)
		return fs_err__set(e, FS_ECORRUPT, "truncated entry at offset %zu",
		                   start);
	en->op = (char)r->p[r->off++];
	if (!strchr("IUDRCX", en->op) || en->op == 0)
		return fs_err__set(e, FS_ECORRUPT,
		                   "entry at offset %zu: unknown op 0x%02x", start,
		                   (unsigned)(unsigned char)en->op);
	if ((rc = fs_rd__str(r, &en->tbl, e)) < 0 ||
	    (rc = fs_rd__str(r, &en->rid, e)) < 0 ||
	    (rc = fs_rd__str(r, &en->col, e)) < 0 ||
	    (rc = fs_rd__str(r, &en->val, e)) < 0 ||
	    (rc = fs_rd__uv(r, &en->hlc, e)) < 0 ||
	    (rc = fs_rd__str(r, &en->device, e)) < 0 ||
	    (rc = fs_rd__str(r, &en->author, e)) < 0 ||
	    (rc = fs_rd__uv(r, &en->seq, e)) < 0)
		return rc;
	if (!en->tbl || !en->rid)
		return fs_err__set(e, FS_ECORRUPT,
		                   "entry at offset %zu has no table or record id",
		                   start);
	if (en->op == 'U' && (!en->col || !*en->col))
		return fs_err__set(e, FS_ECORRUPT,
		                   "update entry at offset %zu names no field", start);
	if (en->hlc > INT64_MAX || en->seq > INT64_MAX)
		return fs_err__set(e, FS_ECORRUPT,
		                   "entry at offset %zu: clock out of range", start);
	return 0;
}

int fs_rd__end(fs_rd *r, fs_err *e)
{
	if (r->off != r->n)
		return fs_err__set(e, FS_ECORRUPT,
		                   "%zu unexpected bytes at the end of a payload",
		                   r->n - r->off);
	return 0;
}

int fs_wr__uv(fs_buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		unsigned char c = (unsigned char)(v & 0x7f);
		v >>= 7;
		tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
	} while (v);
	return fs_buf_put(b, tmp, n);
}

int fs_wr__str(fs_buf *b, const char *s)
{
	size_t n;

	if (!s)
		return fs_wr__uv(b, 0);
	n = strlen(s);
	fs_wr__uv(b, (uint64_t)n + 1);
	fs_buf_put(b, s, n);
	return fs_buf_putc(b, '\0');
}

int fs_wr__entry(fs_buf *b, const fs_entry *en)
{
	fs_buf_putc(b, en->op);
	fs_wr__str(b, en->tbl);
	fs_wr__str(b, en->rid);
	fs_wr__str(b, en->col);
	fs_wr__str(b, en->val);
	fs_wr__uv(b, en->hlc);
	fs_wr__str(b, en->device);
	fs_wr__str(b, en->author);
	return fs_wr__uv(b, en->seq);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int fs_wire__send(fs_stream *s, int type, const fs_buf *payload, int compress,
                  fs_err *e)
{
	unsigned char hdr[FS_FRAME_HEADER];
	const unsigned char *body = payload ? (const unsigned char *)payload->ptr
	                                    : NULL;
	size_t len = payload ? payload->len : 0;
	unsigned char *z = NULL;
	int rc;

	if (payload && payload->failed)
		return fs_err__set(e, FS_ERROR, "out of memory building a message");
	if (len > FS_FRAME_RAW_MAX)
		return fs_err__set(e, FS_EINVALID, "message of %zu bytes is too large",
		                   len);
	memset(hdr, 0, sizeof(hdr));
	hdr[0] = (unsigned char)type;
	if (compress && len >= FS_WIRE_COMPRESS_MIN) {
		uLongf zlen = compressBound((uLong)len);
		z = malloc(zlen + 4);
		if (!z)
			return fs_err__set(e, FS_ERROR, "out of memory compressing");
		put32(z, (uint32_t)len);
		/* Big frames (snapshots, pulls of many changes) at zlib's fastest
		** level: a server answering hundreds of pulls spent a third of its
		** CPU in level 6 for 20% fewer bytes (BENCHMARKS.md). */
		if (compress2(z + 4, &zlen, body, (uLong)len,
		              len > FS_WIRE_FAST_ABOVE ? Z_BEST_SPEED : 6) != Z_OK) {
			free(z);
			return fs_err__set(e, FS_ERROR, "compression failed");
		}
		/* Keep the compressed form only when it is smaller. */
		if (zlen + 4 < len) {
			hdr[1] = 1;
			body = z;
			len = zlen + 4;
		}
	}
	if (len > FS_FRAME_MAX) {
		free(z);
		return fs_err__set(e, FS_EINVALID,
		                   "frame of %zu bytes exceeds the %u-byte limit", len,
		                   FS_FRAME_MAX);
	}
	put32(hdr + 4, (uint32_t)len);
	/* Header and payload in one write (one TLS record when small): two
	** writes cost a second record and, with Nagle, a delayed-ACK wait. */
	if (len && len <= 16384 - sizeof(hdr)) {
		unsigned char one[16384];
		memcpy(one, hdr, sizeof(hdr));
		memcpy(one + sizeof(hdr), body, len);
		rc = s->write(s->ctx, one, sizeof(hdr) + len, e);
	} else {
		rc = s->write(s->ctx, hdr, sizeof(hdr), e);
		if (rc == 0 && len)
			rc = s->write(s->ctx, body, len, e);
	}
	if (rc == 0)
		s->bytes_out += sizeof(hdr) + len;
	free(z);
	return rc;
}

static int inflate_payload(fs_buf *out, const unsigned char *p, size_t len,
                           fs_err *e)
{
	uint32_t raw;
	z_stream zs;
	int zrc;

	if (len < 4)
		return fs_err__set(e, FS_ECORRUPT,
		                   "compressed payload shorter than its header");
	raw = get32(p);
	if (raw > FS_FRAME_RAW_MAX)
		return fs_err__set(e, FS_ECORRUPT,
		                   "compressed payload announces %u bytes (limit %u)",
		                   raw, FS_FRAME_RAW_MAX);
	fs_buf_clear(out);
	/* Room for raw bytes plus one, so that a stream inflating past its
	** announced size is caught rather than truncated. */
	if (fs_buf_put(out, "", 0) < 0 || out->cap < (size_t)raw + 2) {
		char *np = realloc(out->ptr, (size_t)raw + 2);
		if (!np)
			return fs_err__set(e, FS_ERROR, "out of memory inflating");
		out->ptr = np;
		out->cap = (size_t)raw + 2;
	}
	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK)
		return fs_err__set(e, FS_ERROR, "zlib initialisation failed");
	zs.next_in = (Bytef *)(p + 4);
	zs.avail_in = (uInt)(len - 4);
	zs.next_out = (Bytef *)out->ptr;
	zs.avail_out = (uInt)raw + 1;
	zrc = inflate(&zs, Z_FINISH);
	inflateEnd(&zs);
	if (zrc != Z_STREAM_END || zs.total_out != raw || zs.avail_in != 0)
		return fs_err__set(e, FS_ECORRUPT,
		                   "compressed payload does not inflate to its "
		                   "announced %u bytes (zlib %d)", raw, zrc);
	out->len = raw;
	out->ptr[raw] = '\0';
	return 0;
}

int fs_wire__decode(int *type, fs_buf *payload, const unsigned char *frame,
                    size_t len, fs_err *e)
{
	uint32_t plen;

	if (len < FS_FRAME_HEADER)
		return fs_err__set(e, FS_ECORRUPT, "frame shorter than its header");
	if (frame[2] || frame[3] || (frame[1] & ~1u))
		return fs_err__set(e, FS_ECORRUPT,
		                   "frame header: reserved bits set (flags 0x%02x)",
		                   frame[1]);
	if (frame[0] < FS_MSG_HELLO || frame[0] > FS_MSG_DEPTS)
		return fs_err__set(e, FS_ECORRUPT, "frame header: unknown type %u",
		                   frame[0]);
	plen = get32(frame + 4);
	if (plen > FS_FRAME_MAX)
		return fs_err__set(e, FS_ECORRUPT,
		                   "frame announces %u bytes (limit %u)", plen,
		                   FS_FRAME_MAX);
	if (len - FS_FRAME_HEADER != plen)
		return fs_err__set(e, FS_ECORRUPT,
		                   "frame length %u does not match %zu bytes", plen,
		                   len - FS_FRAME_HEADER);
	*type = frame[0];
	if (frame[1] & 1)
		return inflate_payload(payload, frame + FS_FRAME_HEADER, plen, e);
	fs_buf_clear(payload);
	if (fs_buf_put(payload, frame + FS_FRAME_HEADER, plen) < 0)
		return fs_err__set(e, FS_ERROR, "out of memory reading a frame");
	return 0;
}

int fs_wire__recv(fs_stream *s, int *type, fs_buf *payload, fs_err *e)
{
	unsigned char hdr[FS_FRAME_HEADER];
	fs_buf raw = FS_BUF_INIT;
	uint32_t plen;
	int rc;

	if ((rc = s->read(s->ctx, hdr, sizeof(hdr), e)) < 0)
		return rc;
	plen = get32(hdr + 4);
	/* Check the header before reading (and allocating for) the body. */
	if (plen > FS_FRAME_MAX)
		return fs_err__set(e, FS_ECORRUPT,
		                   "frame announces %u bytes (limit %u)", plen,
		                   FS_FRAME_MAX);
	fs_buf_init(&raw, FS_FRAME_HEADER + FS_FRAME_MAX);
	if (fs_buf_put(&raw, hdr, sizeof(hdr)) < 0 ||
	    (plen && fs_buf_put(&raw, "", 0) < 0)) {
		fs_buf_free(&raw);
		return fs_err__set(e, FS_ERROR, "out of memory reading a frame");
	}
	if (plen) {
		char *np = realloc(raw.ptr, FS_FRAME_HEADER + (size_t)plen + 1);
		if (!np) {
			fs_buf_free(&raw);
			return fs_err__set(e, FS_ERROR, "out of memory reading a frame");
		}
		raw.ptr = np;
		raw.cap = FS_FRAME_HEADER + (size_t)plen + 1;
		if ((rc = s->read(s->ctx, raw.ptr + FS_FRAME_HEADER, plen, e)) < 0) {
			fs_buf_free(&raw);
			return rc;
		}
		raw.len = FS_FRAME_HEADER + plen;
	}
	s->bytes_in += raw.len;
	rc = fs_wire__decode(type, payload, (const unsigned char *)raw.ptr,
	                     raw.len, e);
	fs_buf_free(&raw);
	return rc;
}

int fs_wire__expect(fs_stream *s, int want, fs_buf *payload, const char *who,
                    fs_err *e)
{
	fs_err ignore;
	int type, rc;

	do {
		if ((rc = fs_wire__recv(s, &type, payload, e)) < 0)
			return fs_err__prefix(e, "%s", who), rc;
	} while (type == FS_MSG_WAIT);
	if (type == FS_MSG_ERROR) {
		fs_rd rd;
		uint64_t code = 0;
		const char *msg = NULL;

		fs_rd__init(&rd, payload);
		fs_rd__uv(&rd, &code, &ignore);
		fs_rd__str(&rd, &msg, &ignore);
		return fs_err__set(e, code >= 1 && code <= 13 ? -(int)code : FS_ERROR,
		                   "%s refused: %s", who, msg ? msg : "(no reason)");
	}
	if (type != want)
		return fs_err__set(e, FS_ECORRUPT, "%s sent message type %d, "
		                   "expected %d", who, type, want);
	return 0;
}
