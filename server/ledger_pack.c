/*
** ledger_pack.c -- where the ledger writes a big commit: an in-memory
** object store (a libgit2 odb backend) that is then written out as one
** pack file.
**
** A batch of 2000 new records is 2000 blobs and a few hundred trees.  As
** loose objects that is one file creation each, which is what a file
** system is slowest at; through libgit2's mempack, every object written
** first makes the odb rescan its pack directory (an object not found
** anywhere triggers a refresh), and the dump runs a delta search.  Here:
**  - blobs are hashed and stored directly (fs_ledger__mem_put), never
**    looked up on disk: a blob already in the repository is simply
**    stored again in the new pack, which git accepts;
**  - trees and the commit reach the store through the odb (it is the
**    highest-priority backend of the writing repository handle);
**  - the flush writes every object, zlib level 1, no deltas (git gc
**    finds them later), as a version 2 pack through the repository's own
**    pack writer (git_odb_write_pack: the indexer checks it and writes the
**    .idx), then empties the store.
** Pack stream (git's pack-format.txt):
**   "PACK", u32 BE version 2, u32 BE object count,
**   per object: type and size (first byte: bit 7 more, bits 6-4 type
**   (1 commit, 2 tree, 3 blob), bits 3-0 size; then 7 bits per byte, bit 7
**   more), then the zlib stream of the object's content,
**   then the SHA-1 of everything before.
*/
#include "ledger_pack.h"

#include <git2/sys/odb_backend.h>
#include <mbedtls/sha1.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"

typedef struct memobj {
	git_oid id;
	git_object_t type;
	size_t len;
	unsigned char *data;
} memobj;

typedef struct memstore {
	git_odb_backend parent;   /* first: libgit2 holds a pointer to this */
	memobj *objs;
	size_t n, cap;
	size_t *slots;            /* open addressing: index + 1, 0 = empty */
	size_t nslots;
	size_t bytes;
} memstore;

static size_t slot_of(const memstore *m, const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h & (m->nslots - 1);
}

static memobj *find(memstore *m, const git_oid *id)
{
	size_t s;

	if (!m->nslots)
		return NULL;
	for (s = slot_of(m, id); m->slots[s]; s = (s + 1) & (m->nslots - 1))
		if (git_oid_equal(&m->objs[m->slots[s] - 1].id, id))
			return &m->objs[m->slots[s] - 1];
	return NULL;
}

static int grow(memstore *m)
{
	size_t i, ns = m->nslots ? m->nslots * 2 : 4096;
	size_t *slots = calloc(ns, sizeof(*slots));

	if (!slots)
		return -1;
	free(m->slots);
	m->slots = slots;
	m->nslots = ns;
	for (i = 0; i < m->n; i++) {
		size_t s = slot_of(m, &m->objs[i].id);
		while (m->slots[s])
			s = (s + 1) & (m->nslots - 1);
		m->slots[s] = i + 1;
	}
	return 0;
}

static int store(memstore *m, const git_oid *id, const void *data,
                 size_t len, git_object_t type)
{
	memobj *o;
	size_t s;

	if (find(m, id))
		return 0;
	if ((m->n + 1) * 2 > m->nslots && grow(m) < 0)
		return -1;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		memobj *p = realloc(m->objs, cap * sizeof(*p));
		if (!p)
			return -1;
		m->objs = p;
		m->cap = cap;
	}
	o = &m->objs[m->n];
	if (!(o->data = malloc(len ? len : 1)))
		return -1;
	memcpy(o->data, data, len);
	git_oid_cpy(&o->id, id);
	o->type = type;
	o->len = len;
	for (s = slot_of(m, id); m->slots[s]; s = (s + 1) & (m->nslots - 1))
		;
	m->slots[s] = ++m->n;
	m->bytes += len;
	return 0;
}

static int be_read(void **out, size_t *len, git_object_t *type,
                   git_odb_backend *b, const git_oid *id)
{
	memobj *o = find((memstore *)b, id);

	if (!o)
		return GIT_ENOTFOUND;
	if (!(*out = git_odb_backend_data_alloc(b, o->len ? o->len : 1)))
		return -1;
	memcpy(*out, o->data, o->len);
	*len = o->len;
	*type = o->type;
	return 0;
}

static int be_read_header(size_t *len, git_object_t *type, git_odb_backend *b,
                          const git_oid *id)
{
	memobj *o = find((memstore *)b, id);

	if (!o)
		return GIT_ENOTFOUND;
	*len = o->len;
	*type = o->type;
	return 0;
}

static int be_write(git_odb_backend *b, const git_oid *id, const void *data,
                    size_t len, git_object_t type)
{
	return store((memstore *)b, id, data, len, type);
}

static int be_exists(git_odb_backend *b, const git_oid *id)
{
	return find((memstore *)b, id) != NULL;
}

static int be_freshen(git_odb_backend *b, const git_oid *id)
{
	return find((memstore *)b, id) ? 0 : GIT_ENOTFOUND;
}

static void clear(memstore *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->objs[i].data);
	m->n = 0;
	m->bytes = 0;
	if (m->slots)
		memset(m->slots, 0, m->nslots * sizeof(*m->slots));
}

static void be_free(git_odb_backend *b)
{
	memstore *m = (memstore *)b;

	clear(m);
	free(m->objs);
	free(m->slots);
	free(m);
}

int fs_ledger__mem_new(git_odb_backend **out)
{
	memstore *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -1;
	if (git_odb_init_backend(&m->parent, GIT_ODB_BACKEND_VERSION) < 0) {
		free(m);
		return -1;
	}
	m->parent.read = be_read;
	m->parent.read_header = be_read_header;
	m->parent.write = be_write;
	m->parent.exists = be_exists;
	m->parent.freshen = be_freshen;
	m->parent.free = be_free;
	*out = &m->parent;
	return 0;
}

int fs_ledger__mem_put(git_oid *out, git_odb_backend *b, const void *data,
                       size_t len, git_object_t type)
{
	if (git_odb_hash(out, data, len, type) < 0)
		return -1;
	return store((memstore *)b, out, data, len, type);
}

size_t fs_ledger__mem_count(git_odb_backend *b)
{
	return ((memstore *)b)->n;
}

int fs_ledger__mem_flush(git_odb_backend *b, git_odb *target, fs_err *e)
{
	memstore *m = (memstore *)b;
	fs_buf pack = FS_BUF_INIT;
	unsigned char *z = NULL, sha[20];
	size_t zcap = 0, i;
	git_odb_writepack *wp = NULL;
	git_indexer_progress st;
	int error = -1;

	if (!m->n)
		return 0;
	memset(&st, 0, sizeof(st));
	{
		unsigned char h[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2 };
		h[8] = (unsigned char)(m->n >> 24);
		h[9] = (unsigned char)(m->n >> 16);
		h[10] = (unsigned char)(m->n >> 8);
		h[11] = (unsigned char)m->n;
		fs_buf_put(&pack, h, sizeof(h));
	}
	for (i = 0; i < m->n; i++) {
		const memobj *o = &m->objs[i];
		unsigned char hdr[16];
		size_t n = 0, size = o->len;
		uLongf zlen = compressBound((uLong)o->len);

		hdr[n++] = (unsigned char)(((unsigned)o->type & 7) << 4 | (size & 15));
		size >>= 4;
		while (size) {
			hdr[n - 1] |= 0x80;
			hdr[n++] = (unsigned char)(size & 0x7f);
			size >>= 7;
		}
		if (zlen > zcap) {
			unsigned char *p = realloc(z, zlen);
			if (!p) {
				fs_err__set(e, FS_ERROR, "ledger: out of memory");
				goto done;
			}
			z = p;
			zcap = zlen;
		}
		if (compress2(z, &zlen, o->data, (uLong)o->len, 1) != Z_OK) {
			fs_err__set(e, FS_ERROR, "ledger: zlib failed");
			goto done;
		}
		fs_buf_put(&pack, hdr, n);
		fs_buf_put(&pack, z, zlen);
	}
	if (pack.failed ||
	    mbedtls_sha1_ret((const unsigned char *)pack.ptr, pack.len, sha) != 0) {
		fs_err__set(e, FS_ERROR, "ledger: out of memory building a pack");
		goto done;
	}
	fs_buf_put(&pack, sha, sizeof(sha));
	if (pack.failed) {
		fs_err__set(e, FS_ERROR, "ledger: out of memory building a pack");
		goto done;
	}
	if (git_odb_write_pack(&wp, target, NULL, NULL) < 0 ||
	    wp->append(wp, pack.ptr, pack.len, &st) < 0 ||
	    wp->commit(wp, &st) < 0) {
		const git_error *ge = git_error_last();
		fs_err__set(e, FS_ERROR, "ledger: writing a pack: %s",
		            ge && ge->message ? ge->message : "libgit2 error");
		goto done;
	}
	error = 0;
done:
	if (wp)
		wp->free(wp);
	free(z);
	fs_buf_free(&pack);
	clear(m);
	return error;
}
