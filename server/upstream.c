/*
** upstream.c -- a regional server's link to head office (upstream.h,
** docs/tiers.md).
**
** One sync is: HELLO as the relay device; DEPTS (head office's department
** tree, copied here); PUSH this server's own log entries (its reps'
** changes with their devices, authors and clocks; never what came from
** head office) oldest first, each ACK applied here in one transaction with
** the position relayed; then PULL head office's log within the region
** (a snapshot the first time), each frame merged here in one transaction
** with the new cursor.  A sync cut anywhere therefore resends only what
** head office did not acknowledge (it recognises a resent entry by its
** version) and re-pulls only what was not committed here.
**
** The thread sleeps in poll() on a pipe: kicks (SIGUSR1), "local changes"
** and "stop" are bytes written to it, which a signal handler may do.
*/
#include "upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../client/replica_int.h"
#include "ledger.h"
#include "org.h"
#include "pki.h"
#include "store.h"
#include "tls.h"
#include "wire.h"

#define PUSH_MAX 2000
#define CHANGED_DELAY_MS 1000    /* continuous: let a burst settle */
#define RETRY_S 60               /* after a failed sync (continuous: 10) */

struct fs_upstream {
	fs_upstream_conf c;
	char host[256], port[16];
	fs_tls_conf *tls;
	fs_replica *r;
	fs_peer peer;        /* head office's changes merge as this */
	int pipe[2];
	pthread_t thread;
	int started;
};

typedef struct session {
	fs_upstream *u;
	fs_tls *t;
	fs_stream s;
	fs_buf in, out;
	char device[64];     /* ours at head office */
	uint64_t pushed, refused, pulled, applied;
} session;

static void say(fs_upstream *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(fs_upstream *u, const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (u->c.log)
		u->c.log(line);
}

static int s_read(void *ctx, void *buf, size_t n, fs_err *e)
{
	return fs_tls__read(ctx, buf, n, e);
}

static int s_write(void *ctx, const void *buf, size_t n, fs_err *e)
{
	return fs_tls__write(ctx, buf, n, e);
}

static int send_msg(session *x, int type, fs_err *e)
{
	int rc;

	if ((rc = fs_wire__send(&x->s, type, &x->out, 1, e)) < 0)
		return fs_err__prefix(e, "sending to head office"), rc;
	return 0;
}

static int expect(session *x, int want, fs_err *e)
{
	return fs_wire__expect(&x->s, want, &x->in, "head office", e);
}

/* Runs one statement on the link's row, under the write lock: text is
** bound to ?1 and n to ?2, where the statement has them. */
static int state_exec(fs_upstream *u, const char *sql, const char *text,
                      int64_t n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(u->c.write_lock);
	if ((rc = fs_replica__prepare(&st, u->r, sql)) == 0) {
		int params = sqlite3_bind_parameter_count(st);
		if (text && params >= 1)
			sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
		if (params >= 2)
			sqlite3_bind_int64(st, 2, n);
		rc = fs_replica__step_done(u->r, st, "saving the upstream state");
		fs_replica__finish(u->r, st);
	}
	pthread_mutex_unlock(u->c.write_lock);
	return rc;
}

typedef struct state {
	uint64_t cursor, snap_seq;
	int bootstrapped;
	int64_t pushed;
	char snap_tbl[64], snap_rid[64];
} state;

static int state_read(state *s, fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (fs_replica__prepare(&st, r,
	        "SELECT cursor, bootstrapped, coalesce(snap_tbl, ''), "
	        "coalesce(snap_rid, ''), snap_seq, pushed FROM fs_upstream "
	        "WHERE id = 1") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->cursor = (uint64_t)sqlite3_column_int64(st, 0);
		s->bootstrapped = sqlite3_column_int(st, 1);
		snprintf(s->snap_tbl, sizeof(s->snap_tbl), "%s",
		         (const char *)sqlite3_column_text(st, 2));
		snprintf(s->snap_rid, sizeof(s->snap_rid), "%s",
		         (const char *)sqlite3_column_text(st, 3));
		s->snap_seq = (uint64_t)sqlite3_column_int64(st, 4);
		s->pushed = sqlite3_column_int64(st, 5);
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc == SQLITE_DONE
		                      ? SQLITE_CORRUPT : rc, "reading fs_upstream");
	return 0;
}

static int hello(session *x, fs_err *e)
{
	fs_upstream *u = x->u;
	uint64_t proto, schema, hlc;
	const char *user, *role, *device;
	state s;
	fs_rd rd;
	int rc;

	if ((rc = state_read(&s, u->r)) < 0)
		return fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
	fs_buf_clear(&x->out);
	fs_wr__uv(&x->out, FS_PROTO_VERSION);
	fs_wr__uv(&x->out, (uint64_t)fs_replica_schema_version(u->r));
	fs_wr__str(&x->out, "fieldsyncd/" FS_VERSION " (regional)");
	fs_wr__uv(&x->out, s.bootstrapped ? s.cursor : 0);
	if ((rc = send_msg(x, FS_MSG_HELLO, e)) < 0 ||
	    (rc = expect(x, FS_MSG_WELCOME, e)) < 0)
		return rc;
	fs_rd__init(&rd, &x->in);
	if ((rc = fs_rd__uv(&rd, &proto, e)) < 0 ||
	    (rc = fs_rd__uv(&rd, &schema, e)) < 0 ||
	    (rc = fs_rd__str(&rd, &user, e)) < 0 ||
	    (rc = fs_rd__str(&rd, &role, e)) < 0 ||
	    (rc = fs_rd__str(&rd, &device, e)) < 0 ||
	    (rc = fs_rd__uv(&rd, &hlc, e)) < 0)
		return fs_err__prefix(e, "head office sent a bad WELCOME"), rc;
	snprintf(x->device, sizeof(x->device), "%s", device ? device : "");
	pthread_mutex_lock(u->c.write_lock);
	rc = fs_replica__meta_hlc(u->r, (int64_t)hlc, "recording the clock");
	pthread_mutex_unlock(u->c.write_lock);
	if (rc < 0)
		return fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
	return state_exec(u, "UPDATE fs_upstream SET device = ?1 WHERE id = 1",
	                  x->device, 0) < 0
	       ? fs_err__set(e, FS_ERROR, "%s", fs_replica_errmsg(u->r)) : 0;
}

static int depts(session *x, fs_err *e)
{
	fs_upstream *u = x->u;
	const char *json;
	fs_rd rd;
	int rc, changed;

	fs_buf_clear(&x->out);
	if ((rc = send_msg(x, FS_MSG_DEPTS, e)) < 0 ||
	    (rc = expect(x, FS_MSG_DEPTS, e)) < 0)
		return rc;
	fs_rd__init(&rd, &x->in);
	if ((rc = fs_rd__str(&rd, &json, e)) < 0 || (rc = fs_rd__end(&rd, e)) < 0)
		return fs_err__prefix(e, "head office sent bad departments"), rc;
	pthread_mutex_lock(u->c.write_lock);
	rc = fs_org__depts_mirror(u->r, json ? json : "[]", &changed);
	pthread_mutex_unlock(u->c.write_lock);
	if (rc < 0)
		return fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
	if (changed)
		say(u, "upstream: %d department(s) copied from head office", changed);
	return 0;
}

static int push(session *x, fs_err *e)
{
	fs_upstream *u = x->u;
	fs_buf entries = FS_BUF_INIT;
	state s;
	int rc;

	if ((rc = state_read(&s, u->r)) < 0)
		return fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
	for (;;) {
		uint64_t n, applied, conflicts, refused;
		int64_t last;
		const char *batch;
		char id[128];
		fs_rd rd;

		if ((rc = fs_store__relay_batch(u->r, s.pushed, PUSH_MAX, &entries,
		                                &n, &last)) < 0) {
			fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
			break;
		}
		if (last == s.pushed)
			break;   /* nothing more */
		if (n == 0) {
			/* Only entries with nothing to send (a resolution of a
			** conflict that left): skip them. */
			if ((rc = state_exec(u, "UPDATE fs_upstream SET pushed = "
			                     "max(pushed, ?2) WHERE id = 1", NULL,
			                     last)) < 0) {
				fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
				break;
			}
			s.pushed = last;
			continue;
		}
		snprintf(id, sizeof(id), "%s-%lld-%lld", x->device,
		         (long long)s.pushed + 1, (long long)last);
		fs_buf_clear(&x->out);
		fs_wr__str(&x->out, id);
		fs_wr__uv(&x->out, n);
		fs_buf_put(&x->out, entries.ptr, entries.len);
		if (x->out.failed) {
			rc = fs_err__set(e, FS_ERROR, "out of memory");
			break;
		}
		if ((rc = send_msg(x, FS_MSG_PUSH, e)) < 0 ||
		    (rc = expect(x, FS_MSG_ACK, e)) < 0)
			break;
		fs_rd__init(&rd, &x->in);
		if ((rc = fs_rd__str(&rd, &batch, e)) < 0 ||
		    (rc = fs_rd__uv(&rd, &applied, e)) < 0 ||
		    (rc = fs_rd__uv(&rd, &conflicts, e)) < 0) {
			fs_err__prefix(e, "head office sent a bad ACK");
			break;
		}
		if (!batch || strcmp(batch, id)) {
			rc = fs_err__set(e, FS_ECORRUPT, "head office acknowledged "
			                 "batch %s, not %s", batch ? batch : "?", id);
			break;
		}
		pthread_mutex_lock(u->c.write_lock);
		rc = fs_store__relay_acked(u->r, &u->peer, &rd, &entries, n, last,
		                           &refused);
		if (rc == 0 && u->c.ledger)
			fs_ledger_capture(u->c.ledger, "^", "head office", id);
		pthread_mutex_unlock(u->c.write_lock);
		if (rc < 0) {
			fs_err__set(e, rc, "head office's ACK: %s",
			            fs_replica_errmsg(u->r));
			break;
		}
		x->pushed += n;
		x->refused += refused;
		s.pushed = last;
	}
	fs_buf_free(&entries);
	return rc < 0 ? rc : 0;
}

/* One PULL and its CHANGES applied; *more when head office has more. */
static int pull_one(session *x, state *s, int *more, fs_err *e)
{
	fs_upstream *u = x->u;
	uint64_t next, m, snap, sseq, n, applied;
	const char *stbl, *srid;
	fs_upstream_pos pos;
	fs_rd rd;
	int rc, snapshot = !s->bootstrapped;

	fs_buf_clear(&x->out);
	fs_wr__uv(&x->out, snapshot ? 0 : s->cursor);
	fs_wr__uv(&x->out, snapshot ? 20000 : 10000);
	fs_wr__uv(&x->out, (uint64_t)snapshot);
	fs_wr__str(&x->out, snapshot && s->snap_tbl[0] ? s->snap_tbl : NULL);
	fs_wr__str(&x->out, snapshot && s->snap_rid[0] ? s->snap_rid : NULL);
	fs_wr__uv(&x->out, snapshot ? s->snap_seq : 0);
	if ((rc = send_msg(x, FS_MSG_PULL, e)) < 0 ||
	    (rc = expect(x, FS_MSG_CHANGES, e)) < 0)
		return rc;
	fs_rd__init(&rd, &x->in);
	if ((rc = fs_rd__uv(&rd, &next, e)) < 0 ||
	    (rc = fs_rd__uv(&rd, &m, e)) < 0 ||
	    (rc = fs_rd__uv(&rd, &snap, e)) < 0 ||
	    (rc = fs_rd__str(&rd, &stbl, e)) < 0 ||
	    (rc = fs_rd__str(&rd, &srid, e)) < 0 ||
	    (rc = fs_rd__uv(&rd, &sseq, e)) < 0 ||
	    (rc = fs_rd__uv(&rd, &n, e)) < 0)
		return fs_err__prefix(e, "head office sent bad changes"), rc;
	memset(&pos, 0, sizeof(pos));
	/* While a snapshot is under way the cursor stays where it was: a
	** rep's change merged here meanwhile goes up with it as the head-office
	** position it was made on (0 would make head office take every
	** version since as unseen, and record false conflicts). */
	if (snap == 2) {
		/* Our scope changed, or head office compacted what follows our
		** cursor: take a snapshot again, merged over what we hold; what
		** it does not bring is dropped at its end (fs_resnap). */
		pos.cursor = s->cursor;
		pos.bootstrapped = 0;
		pos.resnap = 1;
		*more = 1;
	} else if (snapshot) {
		if (snap != 1)
			return fs_err__set(e, FS_ECORRUPT, "head office answered a "
			                   "snapshot request with log changes");
		pos.bootstrapped = !m;
		pos.cursor = m ? s->cursor : sseq;
		pos.snap_tbl = m ? stbl : NULL;
		pos.snap_rid = m ? srid : NULL;
		pos.snap_seq = m ? sseq : 0;
		*more = 1;   /* after the snapshot, the log from its seq */
	} else {
		pos.cursor = next;
		pos.bootstrapped = 1;
		*more = (int)m;
	}
	pthread_mutex_lock(u->c.write_lock);
	rc = fs_store__apply_upstream(u->r, &u->peer, &rd, snap == 2 ? 0 : n,
	                              &pos, &applied);
	if (rc == 0 && applied && u->c.ledger)
		fs_ledger_capture(u->c.ledger, "^", "head office", "upstream");
	pthread_mutex_unlock(u->c.write_lock);
	if (rc < 0)
		return fs_err__set(e, rc, "applying head office's changes: %s",
		                   fs_replica_errmsg(u->r));
	x->pulled += snap == 2 ? 0 : n;
	x->applied += applied;
	if ((rc = state_read(s, u->r)) < 0)
		return fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
	return 0;
}

static int pull(session *x, fs_err *e)
{
	state s;
	int rc, more = 1, was;

	if ((rc = state_read(&s, x->u->r)) < 0)
		return fs_err__set(e, rc, "%s", fs_replica_errmsg(x->u->r));
	while (more) {
		was = s.bootstrapped;
		if ((rc = pull_one(x, &s, &more, e)) < 0)
			return rc;
		if (!was && s.bootstrapped)
			more = 1;   /* the snapshot is in: now the log after it */
	}
	return 0;
}

static int sync_once(fs_upstream *u, fs_err *e)
{
	session x;
	int rc;

	memset(&x, 0, sizeof(x));
	x.u = u;
	if ((rc = fs_tls__connect(&x.t, u->tls, u->host, u->port,
	                          u->c.timeout_ms, e)) < 0)
		return rc;
	fs_tls__set_timeout(x.t, 4 * u->c.timeout_ms);
	x.s.read = s_read;
	x.s.write = s_write;
	x.s.ctx = x.t;
	fs_buf_init(&x.in, FS_FRAME_RAW_MAX + 1);
	if ((rc = hello(&x, e)) == 0 && (rc = depts(&x, e)) == 0 &&
	    (rc = push(&x, e)) == 0 && (rc = pull(&x, e)) == 0) {
		fs_err ignore;
		fs_buf_clear(&x.out);
		fs_wire__send(&x.s, FS_MSG_BYE, &x.out, 0, &ignore);
		say(u, "upstream: synced with %s: %llu change(s) pushed (%llu "
		    "refused), %llu pulled (%llu applied)", u->c.server,
		    (unsigned long long)x.pushed, (unsigned long long)x.refused,
		    (unsigned long long)x.pulled, (unsigned long long)x.applied);
	}
	fs_tls__close(x.t);
	fs_buf_free(&x.in);
	fs_buf_free(&x.out);
	return rc;
}

/* Seconds from now until the next daily sync at minute at (local). */
static long until_daily(int at)
{
	time_t now = time(NULL);
	struct tm tm;
	long secs, target = (long)at * 60;

	localtime_r(&now, &tm);
	secs = (long)tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return target > secs ? target - secs : target + 86400 - secs;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *run(void *arg)
{
	fs_upstream *u = arg;
	int64_t next = now_ms(), changed_at = -1;

	for (;;) {
		int64_t now = now_ms(), due = next;
		struct pollfd pfd;
		int timeout, kicked = 0, stop = 0;

		if (changed_at >= 0 && changed_at + CHANGED_DELAY_MS < due)
			due = changed_at + CHANGED_DELAY_MS;
		timeout = due <= now ? 0 : due - now > 3600000 ? 3600000
		          : (int)(due - now);
		pfd.fd = u->pipe[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, timeout) > 0) {
			char buf[64];
			ssize_t k = read(u->pipe[0], buf, sizeof(buf)), i;
			for (i = 0; i < k; i++) {
				if (buf[i] == 's')
					stop = 1;
				else if (buf[i] == 'k')
					kicked = 1;
				else if (buf[i] == 'c' && changed_at < 0 &&
				         u->c.every_min <= 0 && u->c.at_min < 0)
					changed_at = now_ms();
			}
		}
		if (stop)
			break;
		now = now_ms();
		if (kicked || now >= next ||
		    (changed_at >= 0 && now >= changed_at + CHANGED_DELAY_MS)) {
			fs_err e;
			int rc;
			int continuous = u->c.every_min <= 0 && u->c.at_min < 0;

			memset(&e, 0, sizeof(e));
			changed_at = -1;
			rc = sync_once(u, &e);
			if (rc < 0) {
				say(u, "upstream: sync with %s failed: %s", u->c.server,
				    e.msg);
				state_exec(u, "UPDATE fs_upstream SET last_error = ?1 "
				           "WHERE id = 1", e.msg, 0);
				next = now_ms() + (continuous ? 10 : RETRY_S) * 1000LL;
				continue;
			}
			{
				char ts[24];
				fs_replica__now(ts);
				state_exec(u, "UPDATE fs_upstream SET syncs = syncs + 1, "
				           "last_sync = ?1, last_error = NULL WHERE id = 1",
				           ts, 0);
			}
			if (u->c.every_min > 0)
				next = now_ms() + u->c.every_min * 60000LL;
			else if (u->c.at_min >= 0)
				next = now_ms() + until_daily(u->c.at_min) * 1000LL;
			else
				next = now_ms() + (u->c.poll_s > 0 ? u->c.poll_s
				                   : FS_UPSTREAM_POLL_S) * 1000LL;
		}
	}
	return NULL;
}

int fs_upstream_parse_at(const char *s)
{
	int h, m;
	char extra;

	if (!s || sscanf(s, "%2d:%2d%c", &h, &m, &extra) != 2 || h < 0 ||
	    h > 23 || m < 0 || m > 59 || strlen(s) != 5)
		return -1;
	return h * 60 + m;
}

static void describe_mode(char *out, size_t size, const fs_upstream_conf *c)
{
	if (c->every_min > 0)
		snprintf(out, size, "every %d min", c->every_min);
	else if (c->at_min >= 0)
		snprintf(out, size, "daily at %02d:%02d", c->at_min / 60,
		         c->at_min % 60);
	else
		snprintf(out, size, "continuous");
}

int fs_upstream_start(fs_upstream **out, const fs_upstream_conf *c,
                      fs_err *e)
{
	static const char *files[] = { "ca.crt", "device.crt", "device.key" };
	char *text[3] = { NULL, NULL, NULL }, path[1200], mode[40];
	fs_upstream *u;
	const char *colon;
	sqlite3_stmt *st = NULL;
	int rc, i;

	*out = NULL;
	if (!(u = calloc(1, sizeof(*u))))
		return fs_err__set(e, FS_ERROR, "out of memory");
	u->c = *c;
	u->pipe[0] = u->pipe[1] = -1;
	colon = c->server ? strrchr(c->server, ':') : NULL;
	if (!colon || colon == c->server ||
	    (size_t)(colon - c->server) >= sizeof(u->host) || !colon[1] ||
	    strlen(colon + 1) >= sizeof(u->port)) {
		rc = fs_err__set(e, FS_EINVALID, "--upstream wants HOST:PORT, not "
		                 "'%s'", c->server ? c->server : "");
		goto fail;
	}
	memcpy(u->host, c->server, (size_t)(colon - c->server));
	snprintf(u->port, sizeof(u->port), "%s", colon + 1);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", c->enroll_dir, files[i]);
		if ((rc = fs_pki__read_file(&text[i], path, e)) < 0) {
			fs_err__prefix(e, "--enroll %s (made by fieldsync-admin device "
			               "enroll USER --relay)", c->enroll_dir);
			goto fail;
		}
	}
	if ((rc = fs_tls_conf__new(&u->tls, 0, text[0], text[1], text[2],
	                           e)) < 0) {
		fs_err__prefix(e, "--enroll %s", c->enroll_dir);
		goto fail;
	}
	if ((rc = fs_replica__open_server(&u->r, c->db_path, 0)) < 0) {
		fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
		goto fail;
	}
	fs_store__upstream_peer(&u->peer, fs_replica_schema_version(u->r));
	describe_mode(mode, sizeof(mode), c);
	pthread_mutex_lock(c->write_lock);
	if ((rc = fs_replica__prepare(&st, u->r,
	        "INSERT INTO fs_upstream(id, server, mode) VALUES (1, ?1, ?2) "
	        "ON CONFLICT(id) DO UPDATE SET server = excluded.server, "
	        "mode = excluded.mode")) == 0) {
		sqlite3_bind_text(st, 1, c->server, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, mode, -1, SQLITE_STATIC);
		rc = fs_replica__step_done(u->r, st, "recording the upstream");
		fs_replica__finish(u->r, st);
	}
	pthread_mutex_unlock(c->write_lock);
	if (rc < 0) {
		fs_err__set(e, rc, "%s", fs_replica_errmsg(u->r));
		goto fail;
	}
	if (pipe(u->pipe) < 0 || fcntl(u->pipe[1], F_SETFL, O_NONBLOCK) < 0) {
		rc = fs_err__set(e, FS_ERROR, "pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&u->thread, NULL, run, u) != 0) {
		rc = fs_err__set(e, FS_ERROR, "cannot start the upstream thread");
		goto fail;
	}
	u->started = 1;
	for (i = 0; i < 3; i++)
		free(text[i]);
	*out = u;
	return 0;
fail:
	for (i = 0; i < 3; i++)
		free(text[i]);
	fs_upstream_stop(u);
	return rc;
}

static void poke(fs_upstream *u, char c)
{
	if (u && u->pipe[1] >= 0 && write(u->pipe[1], &c, 1) < 0) {
		/* full pipe: a wake-up is pending already */
	}
}

void fs_upstream_kick(fs_upstream *u)
{
	poke(u, 'k');
}

void fs_upstream_changed(fs_upstream *u)
{
	poke(u, 'c');
}

void fs_upstream_stop(fs_upstream *u)
{
	if (!u)
		return;
	if (u->started) {
		poke(u, 's');
		pthread_join(u->thread, NULL);
	}
	if (u->pipe[0] >= 0)
		close(u->pipe[0]);
	if (u->pipe[1] >= 0)
		close(u->pipe[1]);
	fs_replica_close(u->r);
	fs_tls_conf__free(u->tls);
	free(u);
}
