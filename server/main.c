/*
** main.c -- `fieldsyncd`, the Fieldsync server.
**
** Listens for TLS connections (mutual authentication against the company
** CA of the server directory), runs one thread per connection, and serves
** the sync protocol (docs/protocol.md) over the central database.
** Writes are serialised by one mutex: each pushed batch is one
** transaction, acknowledged only after COMMIT.  SIGTERM or SIGINT stops
** accepting, lets every connection finish the message it is on, and exits
** with nothing acknowledged lost.
**
** The ledger (ledger.c, docs/ledger.md): after each batch commits, still
** under the write lock, the batch's log rows and the records they left are
** captured for the ledger's writer thread, which commits them to
** DIR/ledger.git.  At startup the ledger catches up with the database
** before the server listens; at shutdown it writes everything captured.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../client/replica_int.h"
#include "ledger.h"
#include "org.h"
#include "pki.h"
#include "conf.h"
#include "store.h"
#include "tls.h"
#include "upstream.h"
#include "wire.h"

static const char usage_text[] =
"usage: fieldsyncd --dir DIR [--listen HOST:PORT] [options]\n"
"\n"
"The Fieldsync sync server.  DIR is a server directory made by\n"
"`fieldsync-admin init --dir DIR` (central database, company CA, server\n"
"certificate).  Runs in the foreground until SIGTERM.\n"
"\n"
"  --listen HOST:PORT        address to listen on (default from DIR/fieldsync.conf,\n"
"                            else 127.0.0.1:7443); port 0 picks a free port.\n"
"                            The first line on stdout is 'listening on HOST:PORT'.\n"
"  --handshake-timeout MS    a client must finish the TLS handshake within MS\n"
"                            milliseconds (default 10000)\n"
"  --idle-timeout MS         close a connection silent for MS ms (default 120000)\n"
"  --max-connections N       refuse connections beyond N at once (default 1024)\n"
"  --no-ledger               do not write the git ledger DIR/ledger.git (tests and\n"
"                            benchmarks only: the audit trail then has a gap\n"
"                            that the next start with the ledger fills in)\n"
"  --ledger-delay MS         test hook: the ledger writer waits MS ms before\n"
"                            each commit (a window to kill the server in)\n"
"  --help, --version\n"
"\n"
"A regional server (docs/tiers.md) also syncs with head office:\n"
"  --upstream HOST:PORT      head office's server\n"
"  --enroll DIR2             the relay device made there by `fieldsync-admin\n"
"                            device enroll USER --relay --out DIR2`\n"
"  --sync-every MINUTES      sync every MINUTES minutes\n"
"  --sync-at HH:MM           sync once a day at HH:MM (local time)\n"
"                            Without either: continuously (a second after\n"
"                            local changes, and every 30 s).\n"
"  --sync-poll SECONDS       continuous mode: pull at least every SECONDS\n"
"                            (default 30)\n"
"  In every mode it syncs at start, and SIGUSR1 makes it sync now;\n"
"  `fieldsync-admin upstream status` shows the link.\n"
"\n"
"The ledger DIR/ledger.git must exist (fieldsync-admin init makes it); a\n"
"missing or corrupt ledger stops the server with the reason.  Every accepted\n"
"batch becomes a commit there; see docs/ledger.md.\n";

/* Set from the signal handler; everything else reads it. */
static volatile sig_atomic_t stop_requested;
static int stop_pipe[2] = { -1, -1 };
static fs_upstream *upstream_for_signal;   /* SIGUSR1: sync now */

static void on_usr1(int sig)
{
	int saved = errno;

	(void)sig;
	fs_upstream_kick(upstream_for_signal);
	errno = saved;
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = 1;

	(void)sig;
	stop_requested = 1;
	if (stop_pipe[1] >= 0 && write(stop_pipe[1], &c, 1) < 0) {
		/* nothing to do: the flag is set */
	}
	errno = saved;
}

typedef struct server {
	char dir[1024];
	char db_path[1100];
	fs_tls_conf *tls;
	pthread_mutex_t write_lock;
	pthread_mutex_t work_lock;   /* work slots: requests served at once */
	pthread_cond_t work_cond;
	int work_busy, work_max;
	pthread_mutex_t count_lock;
	pthread_cond_t count_cond;
	int active;
	int max_conn;
	int handshake_ms;
	int idle_ms;
	unsigned long next_id;
	fs_ledger *ledger;   /* NULL with --no-ledger */
	fs_upstream *upstream;   /* a regional server's link, or NULL */
} server;

typedef struct conn {
	server *srv;
	int fd;
	unsigned long id;
} conn;

static void logf_(unsigned long id, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logf_(unsigned long id, const char *fmt, ...)
{
	char ts[32], line[1200];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ conn %lu: ", ts,
	             now.tv_nsec / 1000000, id);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

static int tls_read(void *ctx, void *buf, size_t n, fs_err *e)
{
	return fs_tls__read(ctx, buf, n, e);
}

static int tls_write(void *ctx, const void *buf, size_t n, fs_err *e)
{
	return fs_tls__write(ctx, buf, n, e);
}

static void send_error(fs_stream *s, int code, const char *msg)
{
	fs_buf b = FS_BUF_INIT;
	fs_err e;

	fs_wr__uv(&b, (uint64_t)(code < 0 ? -code : code));
	fs_wr__str(&b, msg);
	fs_wire__send(s, FS_MSG_ERROR, &b, 0, &e);
	fs_buf_free(&b);
}

/* Takes one of the server's work slots for a request (a push, a pull):
** with hundreds of clients at once, a few requests at a time each finish
** quickly, instead of all of them crawling until their clients give up.
** While the request waits, a client of schema 4 or later gets a WAIT
** frame every WAIT_EVERY_S seconds, so that a busy server is not taken for
** a dead one.  0, or <0 if the client is gone or the server stops. */
#define WAIT_EVERY_S 10
static int work_begin(server *srv, fs_stream *s, const fs_peer *peer)
{
	int rc = 0;

	pthread_mutex_lock(&srv->work_lock);
	while (srv->work_busy >= srv->work_max && rc == 0) {
		struct timespec ts;
		if (stop_requested) {
			rc = -1;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WAIT_EVERY_S;
		if (pthread_cond_timedwait(&srv->work_cond, &srv->work_lock,
		                           &ts) == ETIMEDOUT && peer->schema >= 4) {
			fs_buf none = FS_BUF_INIT;
			fs_err e;
			pthread_mutex_unlock(&srv->work_lock);
			rc = fs_wire__send(s, FS_MSG_WAIT, &none, 0, &e);
			pthread_mutex_lock(&srv->work_lock);
		}
	}
	if (rc == 0)
		srv->work_busy++;
	pthread_mutex_unlock(&srv->work_lock);
	return rc < 0 ? -1 : 0;
}

static void work_end(server *srv)
{
	pthread_mutex_lock(&srv->work_lock);
	srv->work_busy--;
	pthread_cond_signal(&srv->work_cond);
	pthread_mutex_unlock(&srv->work_lock);
}

/* Serves one authenticated connection until BYE, an error or shutdown. */
static void serve(conn *c, fs_tls *t, fs_replica *r, fs_peer *peer)
{
	fs_stream s = { tls_read, tls_write, t, 0, 0 };
	fs_buf in = FS_BUF_INIT, out = FS_BUF_INIT;
	int type, rc, hello = 0;
	uint64_t pushed = 0, pulled = 0;
	fs_err e;

	fs_buf_init(&in, FS_FRAME_RAW_MAX + 1);
	while (!stop_requested) {
		fs_rd rd;

		if ((rc = fs_wire__recv(&s, &type, &in, &e)) < 0) {
			if (rc == FS_ECORRUPT) {
				logf_(c->id, "closing: malformed frame: %s", e.msg);
				send_error(&s, rc, e.msg);
			} else if (strcmp(e.msg, "connection closed")) {
				logf_(c->id, "closing: %s", e.msg);
			}
			break;
		}
		fs_rd__init(&rd, &in);
		if (!hello && type != FS_MSG_HELLO) {
			logf_(c->id, "closing: first message is type %d, not HELLO",
			      type);
			send_error(&s, FS_EINVALID, "HELLO expected");
			break;
		}
		if (type == FS_MSG_HELLO) {
			uint64_t proto, schema, cursor;
			const char *client;

			if ((rc = fs_rd__uv(&rd, &proto, &e)) < 0 ||
			    (rc = fs_rd__uv(&rd, &schema, &e)) < 0 ||
			    (rc = fs_rd__str(&rd, &client, &e)) < 0 ||
			    (rc = fs_rd__uv(&rd, &cursor, &e)) < 0) {
				logf_(c->id, "closing: malformed HELLO: %s", e.msg);
				send_error(&s, rc, e.msg);
				break;
			}
			if (proto != FS_PROTO_VERSION) {
				char m[128];
				snprintf(m, sizeof(m), "protocol %llu not supported "
				         "(server speaks %d)", (unsigned long long)proto,
				         FS_PROTO_VERSION);
				logf_(c->id, "closing: %s", m);
				send_error(&s, FS_EVERSION, m);
				break;
			}
			if ((int)schema > fs_replica_schema_version(r) ||
			    (int)schema < fs_replica_schema_version(r) - 1) {
				char m[200];
				snprintf(m, sizeof(m), "client schema %llu is not served "
				         "(server schema %d serves %d and %d)%s",
				         (unsigned long long)schema,
				         fs_replica_schema_version(r),
				         fs_replica_schema_version(r) - 1,
				         fs_replica_schema_version(r),
				         (int)schema > fs_replica_schema_version(r)
				                 ? ": upgrade the server"
				                 : ": update the app");
				logf_(c->id, "closing: %s", m);
				send_error(&s, FS_EVERSION, m);
				break;
			}
			hello = 1;
			peer->schema = (int)schema;
			if ((int64_t)cursor > peer->pulled)
				peer->pulled = (int64_t)cursor;
			logf_(c->id, "hello from %s (device %s, user %s, cursor %llu)",
			      client ? client : "?", peer->device, peer->user,
			      (unsigned long long)cursor);
			fs_buf_clear(&out);
			fs_wr__uv(&out, FS_PROTO_VERSION);
			fs_wr__uv(&out, (uint64_t)fs_replica_schema_version(r));
			fs_wr__str(&out, peer->user);
			fs_wr__str(&out, peer->role);
			fs_wr__str(&out, peer->device);
			fs_wr__uv(&out, fs_store__max_hlc(r));
			if ((rc = fs_wire__send(&s, FS_MSG_WELCOME, &out, 0, &e)) < 0)
				break;
			continue;
		}
		if (type == FS_MSG_PUSH) {
			const char *batch;
			uint64_t count;

			if ((rc = fs_rd__str(&rd, &batch, &e)) < 0 ||
			    (rc = fs_rd__uv(&rd, &count, &e)) < 0) {
				logf_(c->id, "closing: malformed PUSH: %s", e.msg);
				send_error(&s, rc, e.msg);
				break;
			}
			if (work_begin(c->srv, &s, peer) < 0) {
				logf_(c->id, "closing: gone while waiting for a work slot");
				break;
			}
			pthread_mutex_lock(&c->srv->write_lock);
			if ((rc = fs_store__recheck(r, peer)) == 0)
				rc = fs_store__push(r, peer, batch, &rd, count, &out);
			if (rc >= 0)
				fs_ledger_capture(c->srv->ledger, peer->device, peer->user,
				                  batch);
			pthread_mutex_unlock(&c->srv->write_lock);
			work_end(c->srv);
			if (rc < 0) {
				logf_(c->id, "closing: batch %s refused: %s",
				      batch ? batch : "?", fs_replica_errmsg(r));
				send_error(&s, rc, fs_replica_errmsg(r));
				break;
			}
			pushed += count;
			if (count)
				fs_upstream_changed(c->srv->upstream);
			if ((rc = fs_wire__send(&s, FS_MSG_ACK, &out, 1, &e)) < 0) {
				logf_(c->id, "closing: sending ACK: %s", e.msg);
				break;
			}
			continue;
		}
		if (type == FS_MSG_PULL) {
			uint64_t cursor, max, snap, snap_seq;
			const char *stbl, *srid;

			if ((rc = fs_rd__uv(&rd, &cursor, &e)) < 0 ||
			    (rc = fs_rd__uv(&rd, &max, &e)) < 0 ||
			    (rc = fs_rd__uv(&rd, &snap, &e)) < 0 ||
			    (rc = fs_rd__str(&rd, &stbl, &e)) < 0 ||
			    (rc = fs_rd__str(&rd, &srid, &e)) < 0 ||
			    (rc = fs_rd__uv(&rd, &snap_seq, &e)) < 0 ||
			    (rc = fs_rd__end(&rd, &e)) < 0) {
				logf_(c->id, "closing: malformed PULL: %s", e.msg);
				send_error(&s, rc, e.msg);
				break;
			}
			/* A log pull acknowledges what the client has applied
			** (it commits each frame before asking for the next). */
			if (!snap && (int64_t)cursor > peer->pulled)
				peer->pulled = (int64_t)cursor;
			if (work_begin(c->srv, &s, peer) < 0) {
				logf_(c->id, "closing: gone while waiting for a work slot");
				break;
			}
			/* (revoked, or its scope changed, since it connected?) */
			rc = fs_store__recheck(r, peer);
			if (rc == 0 && snap)
				rc = fs_store__snapshot(r, peer, stbl, srid, snap_seq, max,
				                        &out);
			else if (rc == 0)
				rc = fs_store__pull(r, peer, cursor, max, &out);
			work_end(c->srv);
			if (rc < 0) {
				logf_(c->id, "closing: pull failed: %s",
				      fs_replica_errmsg(r));
				send_error(&s, rc, fs_replica_errmsg(r));
				break;
			}
			pulled++;
			/* What the device has been sent of the log bounds what it
			** may claim not to have seen (fs_peer.pulled). */
			if (!snap) {
				fs_rd sent;
				uint64_t next;
				fs_rd__init(&sent, &out);
				if (fs_rd__uv(&sent, &next, &e) == 0 &&
				    (int64_t)next > peer->pulled)
					peer->pulled = (int64_t)next;
			}
			if ((rc = fs_wire__send(&s, FS_MSG_CHANGES, &out, 1, &e)) < 0) {
				logf_(c->id, "closing: sending changes: %s", e.msg);
				break;
			}
			continue;
		}
		if (type == FS_MSG_DEPTS) {
			/* A regional server copies the department tree. */
			char *depts = NULL, *users = NULL;
			if (!peer->relay) {
				logf_(c->id, "closing: DEPTS from a device that is not a "
				      "regional server");
				send_error(&s, FS_EAUTH, "only a regional server (a relay "
				           "device) may ask for the departments");
				break;
			}
			if (fs_org__json(&depts, &users, r) < 0) {
				logf_(c->id, "closing: reading departments: %s",
				      fs_replica_errmsg(r));
				send_error(&s, FS_ERROR, fs_replica_errmsg(r));
				break;
			}
			fs_buf_clear(&out);
			fs_wr__str(&out, depts);
			free(depts);
			free(users);
			if ((rc = fs_wire__send(&s, FS_MSG_DEPTS, &out, 1, &e)) < 0)
				break;
			continue;
		}
		if (type == FS_MSG_BYE) {
			fs_buf_clear(&out);
			fs_wire__send(&s, FS_MSG_BYE, &out, 0, &e);
			break;
		}
		logf_(c->id, "closing: unexpected message type %d", type);
		send_error(&s, FS_EINVALID, "unexpected message");
		break;
	}
	/* The visit (when, and how far the device has been sent the log:
	** compaction waits for it) is written once the client has what it
	** came for: at HELLO it would queue every session behind the
	** pushes. */
	if (hello) {
		pthread_mutex_lock(&c->srv->write_lock);
		if (fs_store__seen(r, peer, (uint64_t)peer->pulled) < 0)
			logf_(c->id, "recording the visit: %s", fs_replica_errmsg(r));
		pthread_mutex_unlock(&c->srv->write_lock);
	}
	logf_(c->id, "done: %llu entries pushed, %llu pulls, %llu bytes in, "
	      "%llu bytes out", (unsigned long long)pushed,
	      (unsigned long long)pulled, (unsigned long long)s.bytes_in,
	      (unsigned long long)s.bytes_out);
	fs_buf_free(&in);
	fs_buf_free(&out);
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	server *srv = c->srv;
	fs_tls *t = NULL;
	fs_replica *r = NULL;
	fs_peer peer;
	char cn[128], ou[128], serial[64];
	fs_err e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = fs_tls__accept(&t, srv->tls, c->fd, srv->handshake_ms, &e);
	if (rc < 0) {
		logf_(c->id, "refused during handshake: %s", e.msg);
		goto done;
	}
	fs_tls__set_timeout(t, srv->idle_ms);
	fs_tls__peer(t, cn, sizeof(cn), ou, sizeof(ou), serial, sizeof(serial));
	if ((rc = fs_replica__open_server(&r, srv->db_path, 0)) < 0) {
		logf_(c->id, "cannot open the database: %s", fs_replica_errmsg(r));
		goto done;
	}
	if ((rc = fs_store__auth(r, &peer, cn, serial)) < 0) {
		fs_stream s = { tls_read, tls_write, t, 0, 0 };
		fs_buf hello = FS_BUF_INIT;
		fs_err e;
		int type;

		logf_(c->id, "refused: %s", fs_replica_errmsg(r));
		/* Read the client's HELLO first: closing with it unread would
		** reset the connection and the client would never see why. */
		fs_buf_init(&hello, FS_FRAME_RAW_MAX + 1);
		(void)fs_wire__recv(&s, &type, &hello, &e);
		fs_buf_free(&hello);
		send_error(&s, rc, fs_replica_errmsg(r));
		goto done;
	}
	logf_(c->id, "authenticated device %s (user %s, role %s, %s)",
	      peer.device, peer.user, peer.role, fs_tls__suite(t));
	serve(c, t, r, &peer);
done:
	fs_replica_close(r);
	fs_tls__close(t);
	pthread_mutex_lock(&srv->count_lock);
	srv->active--;
	pthread_cond_broadcast(&srv->count_cond);
	pthread_mutex_unlock(&srv->count_lock);
	free(c);
	return NULL;
}

static void upstream_log(const char *line)
{
	logf_(0, "%s", line);
}

static void ledger_log(void *payload, const char *msg)
{
	(void)payload;
	logf_(0, "ledger: %s", msg);
}

/* Takes DIR/fieldsyncd.lock (flock, exclusive, kept open until exit).
** 0, or -1 after saying why on stderr. */
static int lock_dir(const char *dir)
{
	char path[1200];
	int fd;

	snprintf(path, sizeof(path), "%s/fieldsyncd.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fieldsyncd: cannot open %s: %s (is %s a server "
		        "directory? see fieldsync-admin init)\n", path,
		        strerror(errno), dir);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "fieldsyncd: another fieldsyncd is serving %s "
		        "(%s is locked)\n", dir, path);
		close(fd);
		return -1;
	}
	return 0;   /* fd stays open: the lock lives as long as we do */
}

/* A git lock file (ref.lock) left by a server killed mid-commit blocks
** every later commit.  We hold the directory lock, so no other writer
** exists: remove them, and say so. */
static void clear_stale_git_locks(const char *repo)
{
	static const char *names[] = { "HEAD.lock", "refs/heads/main.lock",
	                               "packed-refs.lock", "config.lock" };
	char path[1300];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", repo, names[i]);
		if (unlink(path) == 0)
			logf_(0, "ledger: removed %s, left by an interrupted commit",
			      path);
	}
}

/* Opens DIR/ledger.git, creating it only for a server that has logged
** nothing yet, and catches it up with the database.  0, or -1 after
** saying why on stderr: the server does not start without its ledger. */
static int open_ledger(server *srv, fs_replica *r, fs_ledger_options *o)
{
	char repo[1200];
	sqlite3_stmt *st = NULL;
	long long logged = 0;
	fs_err e;
	int rc, n = 0;

	o->log = ledger_log;
	snprintf(repo, sizeof(repo), "%s/" FS_LEDGER_DIR, srv->dir);
	clear_stale_git_locks(repo);
	rc = fs_ledger_open(&srv->ledger, repo, srv->db_path, o, &e);
	if (rc == FS_ENOTFOUND) {
		if (fs_replica__prepare(&st, r,
		        "SELECT coalesce(max(seq), 0) FROM fs_log") == 0 &&
		    sqlite3_step(st) == SQLITE_ROW)
			logged = sqlite3_column_int64(st, 0);
		fs_replica__finish(r, st);
		if (logged > 0) {
			fprintf(stderr, "fieldsyncd: the ledger %s is missing, and the "
			        "database has logged %lld changes: refusing to start "
			        "without it.  Put the ledger back, or start a new one "
			        "from the current state with `fieldsync-admin --dir %s "
			        "ledger init` (docs/ledger.md).\n", repo, logged,
			        srv->dir);
			return -1;
		}
		o->create = 1;   /* a new server directory */
		rc = fs_ledger_open(&srv->ledger, repo, srv->db_path, o, &e);
	}
	if (rc < 0) {
		fprintf(stderr, "fieldsyncd: %s; refusing to start (docs/ledger.md: "
		        "verify, restore)\n", e.msg);
		return -1;
	}
	if (fs_ledger_catch_up(srv->ledger, &n, &e) < 0) {
		fprintf(stderr, "fieldsyncd: catching the ledger up: %s\n", e.msg);
		return -1;
	}
	if (n)
		logf_(0, "ledger caught up: %d commit(s), at log seq %lld", n,
		      (long long)fs_ledger_mark(srv->ledger));
	if (fs_ledger_start(srv->ledger, &e) < 0) {
		fprintf(stderr, "fieldsyncd: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static int parse_ms(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v <= 0 || v > 86400000)
		return -1;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	server srv;
	const char *dir = NULL, *listen_arg = NULL;
	const char *up_server = NULL, *up_enroll = NULL;
	int every_min = 0, at_min = -1, poll_s = 0;
	char listen[300] = "127.0.0.1:7443", host[256], port[16];
	char *ca = NULL, *cert = NULL, *key = NULL, path[1200];
	fs_replica *r = NULL;
	struct sigaction sa;
	fs_ledger_options lopts = FS_LEDGER_OPTIONS_INIT;
	fs_err e;
	int lfd = -1, bound = 0, i, rc = 1, no_ledger = 0;

	fs_store__process_init();
	memset(&srv, 0, sizeof(srv));
	memset(&e, 0, sizeof(e));
	srv.max_conn = 1024;
	srv.handshake_ms = 10000;
	srv.idle_ms = 120000;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "--no-ledger")) {
			no_ledger = 1;
			continue;
		} else if (!strcmp(a, "--version")) {
			printf("fieldsyncd %s (protocol %d, schema %d)\n", FS_VERSION,
			       FS_PROTO_VERSION, fs_schema_version_latest());
			return 0;
		} else if (!v) {
			fprintf(stderr, "fieldsyncd: %s needs a value (see --help)\n", a);
			return 2;
		} else if (!strcmp(a, "--dir")) {
			dir = v;
		} else if (!strcmp(a, "--listen")) {
			listen_arg = v;
		} else if (!strcmp(a, "--upstream")) {
			up_server = v;
		} else if (!strcmp(a, "--enroll")) {
			up_enroll = v;
		} else if (!strcmp(a, "--sync-every")) {
			if (parse_ms(v, &every_min) < 0 || every_min < 1)
				return fprintf(stderr, "fieldsyncd: bad --sync-every '%s' "
				               "(minutes, at least 1)\n", v), 2;
		} else if (!strcmp(a, "--sync-poll")) {
			if (parse_ms(v, &poll_s) < 0 || poll_s < 1 || poll_s > 86400)
				return fprintf(stderr, "fieldsyncd: bad --sync-poll '%s' "
				               "(seconds, 1 to 86400)\n", v), 2;
		} else if (!strcmp(a, "--sync-at")) {
			if ((at_min = fs_upstream_parse_at(v)) < 0)
				return fprintf(stderr, "fieldsyncd: bad --sync-at '%s' "
				               "(HH:MM, 00:00 to 23:59)\n", v), 2;
		} else if (!strcmp(a, "--handshake-timeout")) {
			if (parse_ms(v, &srv.handshake_ms) < 0)
				return fprintf(stderr, "fieldsyncd: bad --handshake-timeout "
				               "'%s'\n", v), 2;
		} else if (!strcmp(a, "--idle-timeout")) {
			if (parse_ms(v, &srv.idle_ms) < 0)
				return fprintf(stderr, "fieldsyncd: bad --idle-timeout "
				               "'%s'\n", v), 2;
		} else if (!strcmp(a, "--ledger-delay")) {
			if (parse_ms(v, &lopts.delay_ms) < 0)
				return fprintf(stderr, "fieldsyncd: bad --ledger-delay "
				               "'%s'\n", v), 2;
		} else if (!strcmp(a, "--max-connections")) {
			if (parse_ms(v, &srv.max_conn) < 0)
				return fprintf(stderr, "fieldsyncd: bad --max-connections "
				               "'%s'\n", v), 2;
		} else {
			fprintf(stderr, "fieldsyncd: unknown option '%s' (see --help)\n",
			        a);
			return 2;
		}
		i++;
	}
	if (!dir) {
		fprintf(stderr, "fieldsyncd: --dir DIR is required (see --help)\n");
		return 2;
	}
	if (!up_server != !up_enroll) {
		fprintf(stderr, "fieldsyncd: --upstream and --enroll go together "
		        "(see --help)\n");
		return 2;
	}
	if (!up_server && (every_min || at_min >= 0 || poll_s)) {
		fprintf(stderr, "fieldsyncd: --sync-every, --sync-at and --sync-poll "
		        "need --upstream\n");
		return 2;
	}
	if (poll_s && (every_min || at_min >= 0)) {
		fprintf(stderr, "fieldsyncd: --sync-poll is for continuous mode "
		        "(without --sync-every or --sync-at)\n");
		return 2;
	}
	if (every_min && at_min >= 0) {
		fprintf(stderr, "fieldsyncd: --sync-every or --sync-at, not both\n");
		return 2;
	}
	snprintf(srv.dir, sizeof(srv.dir), "%s", dir);
	snprintf(srv.db_path, sizeof(srv.db_path), "%s/server.db", dir);
	fs_conf__get(dir, "listen", listen, sizeof(listen));
	if (listen_arg)
		snprintf(listen, sizeof(listen), "%s", listen_arg);
	{
		char *colon = strrchr(listen, ':');
		if (!colon || colon == listen || !colon[1] ||
		    (size_t)(colon - listen) >= sizeof(host) ||
		    strlen(colon + 1) >= sizeof(port)) {
			fprintf(stderr, "fieldsyncd: --listen wants HOST:PORT, not '%s'\n",
			        listen);
			return 2;
		}
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	/* One server per directory: the lock is held until exit (the kernel
	** drops it however we die), which also makes any git lock file left
	** in the ledger by a crash provably stale. */
	if (lock_dir(dir) < 0)
		goto done;
	/* The database must exist and migrate cleanly before we listen. */
	if (fs_replica__open_server(&r, srv.db_path, 0) < 0) {
		fprintf(stderr, "fieldsyncd: %s (is %s a server directory? see "
		        "fieldsync-admin init)\n", fs_replica_errmsg(r), dir);
		goto done;
	}
	if (!no_ledger && open_ledger(&srv, r, &lopts) < 0)
		goto done;
	fs_replica_close(r);
	r = NULL;
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if (fs_pki__read_file(&ca, path, &e) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/server.crt", dir);
	if (fs_pki__read_file(&cert, path, &e) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/server.key", dir);
	if (fs_pki__read_file(&key, path, &e) < 0)
		goto fail;
	if (fs_tls_conf__new(&srv.tls, 1, ca, cert, key, &e) < 0)
		goto fail;
	if (pipe(stop_pipe) < 0) {
		perror("fieldsyncd: pipe");
		goto done;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (fs_tls__listen(&lfd, &bound, host, port, &e) < 0)
		goto fail;
	pthread_mutex_init(&srv.write_lock, NULL);
	pthread_mutex_init(&srv.work_lock, NULL);
	pthread_cond_init(&srv.work_cond, NULL);
	srv.work_max = (int)sysconf(_SC_NPROCESSORS_ONLN) * 2;
	if (srv.work_max < 2 || srv.work_max > 32)
		srv.work_max = srv.work_max < 2 ? 2 : 32;
	pthread_mutex_init(&srv.count_lock, NULL);
	pthread_cond_init(&srv.count_cond, NULL);
	if (up_server) {
		fs_upstream_conf uc;
		memset(&uc, 0, sizeof(uc));
		uc.server = up_server;
		uc.enroll_dir = up_enroll;
		uc.db_path = srv.db_path;
		uc.every_min = every_min;
		uc.at_min = at_min;
		uc.poll_s = poll_s;
		uc.timeout_ms = 30000;
		uc.write_lock = &srv.write_lock;
		uc.ledger = srv.ledger;
		uc.log = upstream_log;
		if (fs_upstream_start(&srv.upstream, &uc, &e) < 0)
			goto fail;
		upstream_for_signal = srv.upstream;
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
	}
	printf("listening on %s:%d\n", host, bound);
	fflush(stdout);
	while (!stop_requested) {
		struct pollfd pfd[2] = { { lfd, POLLIN, 0 }, { stop_pipe[0], POLLIN, 0 } };
		pthread_attr_t attr;
		pthread_t th;
		conn *c;
		int fd;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("fieldsyncd: poll");
			break;
		}
		if (stop_requested || !(pfd[0].revents & POLLIN))
			continue;
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&srv.count_lock);
		if (srv.active >= srv.max_conn) {
			pthread_mutex_unlock(&srv.count_lock);
			logf_(0, "refusing a connection: %d already open", srv.max_conn);
			close(fd);
			continue;
		}
		srv.active++;
		pthread_mutex_unlock(&srv.count_lock);
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			pthread_mutex_lock(&srv.count_lock);
			srv.active--;
			pthread_mutex_unlock(&srv.count_lock);
			continue;
		}
		c->srv = &srv;
		c->fd = fd;
		c->id = ++srv.next_id;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		if (pthread_create(&th, &attr, conn_main, c) != 0) {
			logf_(c->id, "cannot start a thread");
			close(fd);
			free(c);
			pthread_mutex_lock(&srv.count_lock);
			srv.active--;
			pthread_mutex_unlock(&srv.count_lock);
		}
		pthread_attr_destroy(&attr);
	}
	close(lfd);
	lfd = -1;
	/* Let connections finish the message they are on (an ACK is sent only
	** after COMMIT, so whatever is cut short was never acknowledged). */
	logf_(0, "shutting down: waiting for %d connection(s)", srv.active);
	pthread_mutex_lock(&srv.count_lock);
	while (srv.active > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;   /* idle connections are not waited for */
		if (pthread_cond_timedwait(&srv.count_cond, &srv.count_lock,
		                           &until) != 0)
			break;
	}
	pthread_mutex_unlock(&srv.count_lock);
	signal(SIGUSR1, SIG_IGN);
	upstream_for_signal = NULL;
	fs_upstream_stop(srv.upstream);
	srv.upstream = NULL;
	if (srv.ledger) {
		int n = 0;
		/* Everything captured, then anything not captured, with no
		** writer running meanwhile. */
		fs_ledger_stop(srv.ledger);
		pthread_mutex_lock(&srv.write_lock);
		if (fs_ledger_catch_up(srv.ledger, &n, &e) < 0)
			logf_(0, "ledger: %s", e.msg);
		pthread_mutex_unlock(&srv.write_lock);
		logf_(0, "ledger at log seq %lld", (long long)fs_ledger_mark(srv.ledger));
	}
	logf_(0, "stopped");
	rc = 0;
	goto done;
fail:
	fprintf(stderr, "fieldsyncd: %s\n", e.msg);
done:
	if (srv.upstream) {
		signal(SIGUSR1, SIG_IGN);
		upstream_for_signal = NULL;
		fs_upstream_stop(srv.upstream);
	}
	if (lfd >= 0)
		close(lfd);
	fs_replica_close(r);
	fs_ledger_free(srv.ledger);
	fs_tls_conf__free(srv.tls);
	free(ca);
	free(cert);
	free(key);
	return rc;
}
