/*
** scope.c -- what a push's ACK may tell a rep (server/store.c,
** corrections_write).  A rep's edit of a customer that left her scope
** after she last synced is still taken (moved_away); when it loses, its
** correction must not carry the winning value, which the customer's new
** department wrote: the ACK tells her to drop the record instead, as the
** pull would.  Nor does a correction tell who deleted a record of
** another department.
*/
#include "../sync/check.h"
#include "srv.h"

#define C "01900000-0000-7000-8000-0000000000c1"
#define S "01900000-0000-7000-8000-0000000000c2"

/* Pushes one entry of record rid as peer p (its user's scope loaded
** first). */
static void push_rid(fs_replica *r, fs_peer *p, const char *id,
                     const char *rid, char op, const char *col,
                     const char *val, uint64_t hlc, uint64_t base, srv_ack *a)
{
	fs_buf body = FS_BUF_INIT;

	CHECK(fs_policy__load_scope(r, p->user, &p->all) == 0);
	srv_entry(&body, rid, op, col, val, hlc, base, NULL);
	CHECK(srv_push(r, p, id, 1, &body, a) == 0);
	fs_buf_free(&body);
}

static void push1(fs_replica *r, fs_peer *p, const char *id, char op,
                  const char *col, const char *val, uint64_t hlc,
                  uint64_t base, srv_ack *a)
{
	push_rid(r, p, id, C, op, col, val, hlc, base, a);
}

int main(void)
{
	char path[300];
	fs_replica *r = srv_open(path, sizeof(path), "scope");
	fs_peer olga, nina;
	srv_ack a;
	uint64_t i;
	int evicted = 0, leaked = 0;

	srv_peer(r, &olga, "dev-olga");
	CHECK(fs_replica__exec(r,
	        "INSERT INTO fs_dept(code, name, created_at) VALUES "
	        "('north', 'North', '2026-01-01T00:00:00Z'), "
	        "('south', 'South', '2026-01-01T00:00:00Z'); "
	        "INSERT INTO fs_user(name, role, region, created_at) VALUES "
	        "('nina', 'rep', 'north', '2026-01-01T00:00:00Z'); "
	        "INSERT INTO fs_user_scope(user, dept) VALUES ('nina', 'north')",
	        "setting up") == 0);
	memset(&nina, 0, sizeof(nina));
	snprintf(nina.device, sizeof(nina.device), "dev-nina");
	snprintf(nina.user, sizeof(nina.user), "nina");
	snprintf(nina.role, sizeof(nina.role), "rep");
	nina.schema = fs_schema__latest();

	/* The office creates a northern customer (log position 1): nina has
	** seen it.  Then it moves the customer south and sets its phone
	** there. */
	push1(r, &olga, "o1", 'I', NULL, "{\"name\":\"Nordic\",\"region\":"
	      "\"north\",\"created_at\":\"2026-11-27T10:00:00Z\"}", 1, 0, &a);
	srv_ack_free(&a);
	push1(r, &olga, "o2", 'U', "region", "\"south\"", 2, 1, &a);
	srv_ack_free(&a);
	push1(r, &olga, "o3", 'U', "phone", "\"south-only\"", 5, 2, &a);
	srv_ack_free(&a);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_move") == 1);

	/* nina, offline since position 1, set the phone at clock 3: taken
	** (made before she knew of the move), and it loses to the south's. */
	push1(r, &nina, "n1", 'U', "phone", "\"nina's\"", 3, 1, &a);
	CHECK(a.nrej == 0);
	for (i = 0; i < a.ncorr && i < 16; i++) {
		if (a.corr[i].op == 'X' && !strcmp(a.corr[i].rid, C))
			evicted = 1;
		if (a.corr[i].val && strstr(a.corr[i].val, "south-only"))
			leaked = 1;
	}
	CHECK(evicted);
	CHECK(!leaked);
	srv_ack_free(&a);
	/* Her edit is kept, as the loser of a conflict the south reviews. */
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" C
	              "' AND col = 'phone'") == 1);

	/* The office, which sees both departments, still gets the value. */
	push1(r, &olga, "o4", 'U', "phone", "\"olga's\"", 4, 2, &a);
	leaked = 0;
	for (i = 0; i < a.ncorr && i < 16; i++)
		if (a.corr[i].op == 'U' && a.corr[i].val &&
		    strstr(a.corr[i].val, "south-only"))
			leaked = 1;
	CHECK(leaked);
	srv_ack_free(&a);

	/* The office deletes a southern customer.  nina creates its id in
	** the north (a forged client): refused as outside her scope, with
	** nothing of the delete told -- no tombstone correction, no conflict
	** in the north naming the deleter. */
	push_rid(r, &olga, "o5", S, 'I', NULL, "{\"name\":\"Sud\",\"region\":"
	         "\"south\",\"created_at\":\"2026-11-27T10:00:00Z\"}", 6, 0, &a);
	srv_ack_free(&a);
	push_rid(r, &olga, "o6", S, 'D', NULL, NULL, 7, 0, &a);
	srv_ack_free(&a);
	push_rid(r, &nina, "n2", S, 'I', NULL, "{\"name\":\"Mine\",\"region\":"
	         "\"north\",\"created_at\":\"2026-11-27T10:00:00Z\"}", 8,
	         (uint64_t)srv_int(r, "SELECT max(seq) FROM fs_log"), &a);
	CHECK(a.nrej == 1);
	evicted = leaked = 0;
	for (i = 0; i < a.ncorr && i < 16; i++) {
		if (a.corr[i].op == 'X' && !strcmp(a.corr[i].rid, S))
			evicted = 1;
		if (a.corr[i].op == 'D')
			leaked = 1;
	}
	CHECK(evicted);
	CHECK(!leaked);
	srv_ack_free(&a);
	CHECK(srv_int(r, "SELECT count(*) FROM fs_conflict WHERE rid = '" S
	              "'") == 0);

	fs_replica_close(r);
	unlink(path);
	return CHECK_EXIT();
}
