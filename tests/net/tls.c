/*
** tls.c -- tests of sync/tls.c: a real server thread on 127.0.0.1 and
** clients in the test thread, with certificates from sync/pki.c.  Covers
** the good path (data both ways, peer identity, suite), every refusal the
** transport promises (foreign CA, no certificate, expired, tampered, wrong
** host name, wrong key usage), the handshake deadline against silent and
** trickling clients, a plaintext client, timeouts and closed peers (no
** SIGPIPE: this program keeps the default disposition, so one would kill
** it), and several connections at once over one shared configuration.
*/
#include "tls.h"
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include "fieldsync.h"
#include "check.h"

#define BIG (200 * 1024)
#define NCONC 4

static const char *const server_san[] = { "127.0.0.1", "localhost", NULL };

/* All the certificates the tests use, made once. */
static struct {
	fs_pki_cert ca, foreign_ca;
	fs_pki_cert server, client, foreign_client, expired_client;
	fs_pki_cert foreign_server, wrong_name_server, dns_ip_server;
	fs_pki_cert client_as_server;
	char *tampered_client;      /* client.cert_pem with a bad signature */
} k;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- fixtures */

/*
** The certificate with the last byte of its DER flipped: that byte is the
** end of the ECDSA signature's s value, so the certificate still parses
** but its signature no longer verifies.
*/
static char *tamper(const char *pem)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	static const char tail[] = "-----END CERTIFICATE-----\n";
	unsigned char b64[4096], der[4096], out64[4096];
	const char *p = pem + strlen(head), *q = strstr(pem, "-----END");
	size_t n = 0, derlen = 0, outlen = 0, i, pos = 0;
	char *res;

	if (strncmp(pem, head, strlen(head)) != 0 || !q)
		return NULL;
	for (; p < q; p++)
		if (*p != '\n' && *p != '\r' && n < sizeof(b64))
			b64[n++] = (unsigned char)*p;
	if (mbedtls_base64_decode(der, sizeof(der), &derlen, b64, n) != 0 ||
	    derlen < 100)
		return NULL;
	der[derlen - 1] ^= 0x01;
	if (mbedtls_base64_encode(out64, sizeof(out64), &outlen, der,
	                          derlen) != 0)
		return NULL;
	res = malloc(sizeof(head) + sizeof(tail) + outlen + outlen / 64 + 2);
	if (!res)
		return NULL;
	memcpy(res, head, strlen(head));
	pos = strlen(head);
	for (i = 0; i < outlen; i += 64) {
		size_t l = outlen - i < 64 ? outlen - i : 64;
		memcpy(res + pos, out64 + i, l);
		pos += l;
		res[pos++] = '\n';
	}
	memcpy(res + pos, tail, sizeof(tail));
	return res;
}

static int make_keys(void)
{
	static const char *const wrong[] = { "elsewhere.example", NULL };
	static const char *const dns_ip[] = { "localhost", NULL };
	fs_err e = { 0, "" };
	int ok = 1;

#define MK(call) do { if ((call) != 0) { \
		fprintf(stderr, "%s: %s\n", #call, e.msg); ok = 0; } } while (0)
	MK(fs_pki__ca_create(&k.ca, "Acme", &e));
	MK(fs_pki__ca_create(&k.foreign_ca, "Acme", &e));  /* same name! */
	MK(fs_pki__issue(&k.server, k.ca.cert_pem, k.ca.key_pem,
	                 FS_PKI_SERVER, "fieldsync-server", NULL, server_san,
	                 -60, 3600, &e));
	MK(fs_pki__issue(&k.client, k.ca.cert_pem, k.ca.key_pem,
	                 FS_PKI_CLIENT, "alice", "north", NULL, -60, 3600, &e));
	MK(fs_pki__issue(&k.foreign_client, k.foreign_ca.cert_pem,
	                 k.foreign_ca.key_pem, FS_PKI_CLIENT, "alice", "north",
	                 NULL, -60, 3600, &e));
	MK(fs_pki__issue(&k.expired_client, k.ca.cert_pem, k.ca.key_pem,
	                 FS_PKI_CLIENT, "alice", "north", NULL, -7200, -3600,
	                 &e));
	MK(fs_pki__issue(&k.foreign_server, k.foreign_ca.cert_pem,
	                 k.foreign_ca.key_pem, FS_PKI_SERVER,
	                 "fieldsync-server", NULL, server_san, -60, 3600, &e));
	MK(fs_pki__issue(&k.wrong_name_server, k.ca.cert_pem, k.ca.key_pem,
	                 FS_PKI_SERVER, "127.0.0.1", NULL, wrong, -60, 3600,
	                 &e));
	MK(fs_pki__issue(&k.dns_ip_server, k.ca.cert_pem, k.ca.key_pem,
	                 FS_PKI_SERVER, "srv", NULL, dns_ip, -60, 3600, &e));
	MK(fs_pki__issue(&k.client_as_server, k.ca.cert_pem, k.ca.key_pem,
	                 FS_PKI_CLIENT, "localhost", NULL, NULL, -60, 3600,
	                 &e));
#undef MK
	if (ok && !(k.tampered_client = tamper(k.client.cert_pem))) {
		fprintf(stderr, "cannot tamper\n");
		ok = 0;
	}
	return ok;
}

static void free_keys(void)
{
	fs_pki__cert_free(&k.ca);
	fs_pki__cert_free(&k.foreign_ca);
	fs_pki__cert_free(&k.server);
	fs_pki__cert_free(&k.client);
	fs_pki__cert_free(&k.foreign_client);
	fs_pki__cert_free(&k.expired_client);
	fs_pki__cert_free(&k.foreign_server);
	fs_pki__cert_free(&k.wrong_name_server);
	fs_pki__cert_free(&k.dns_ip_server);
	fs_pki__cert_free(&k.client_as_server);
	free(k.tampered_client);
}

static fs_tls_conf *conf(int is_server, const char *ca, const char *cert,
                         const char *key)
{
	fs_tls_conf *c = NULL;
	fs_err e = { 0, "" };

	if (fs_tls_conf__new(&c, is_server, ca, cert, key, &e) != 0)
		fprintf(stderr, "conf: %s\n", e.msg);
	CHECK(c != NULL);
	return c;
}

/* -------------------------------------------------------------- server */

enum { SRV_HANDSHAKE, SRV_ECHO, SRV_FLOOD };

typedef struct srv {
	const fs_tls_conf *conf;
	int lfd;
	int timeout_ms;
	int mode;
	int rc;                  /* fs_tls__accept */
	int io_rc;               /* the last I/O step that was checked */
	int eof_rc;              /* reading after the client closed */
	fs_err err, io_err;
	long long elapsed_ms;    /* of the accept */
	char cn[80], ou[80], serial[48], suite[80];
	int peer_rc;
	pthread_t th;
} srv;

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)((i * 31 + seed) & 0xff);
}

static void serve(srv *s, fs_tls *t)
{
	unsigned char small[4], *big = malloc(BIG), *want = malloc(BIG);
	int i;

	if (!big || !want) {
		s->io_rc = FS_ERROR;
		goto done;
	}
	if (s->mode == SRV_ECHO) {
		/* ping -> pong, then BIG bytes each way, then the client
		** closes and our read must say so. */
		if ((s->io_rc = fs_tls__read(t, small, 4, &s->io_err)) != 0 ||
		    memcmp(small, "ping", 4) != 0)
			goto done;
		if ((s->io_rc = fs_tls__write(t, "pong", 4, &s->io_err)) != 0)
			goto done;
		if ((s->io_rc = fs_tls__read(t, big, BIG, &s->io_err)) != 0)
			goto done;
		fill(want, BIG, 7);
		if (memcmp(big, want, BIG) != 0) {
			s->io_rc = FS_ECORRUPT;
			goto done;
		}
		fill(big, BIG, 11);
		if ((s->io_rc = fs_tls__write(t, big, BIG, &s->io_err)) != 0)
			goto done;
		s->eof_rc = fs_tls__read(t, small, 1, &s->err);
	} else if (s->mode == SRV_FLOOD) {
		/* The client hangs up at once; we keep writing.  Without
		** MSG_NOSIGNAL this would kill the process. */
		fill(big, BIG, 3);
		for (i = 0; i < 200; i++)
			if ((s->io_rc = fs_tls__write(t, big, BIG,
			                              &s->io_err)) != 0)
				break;
	} else {
		/* Wait for the client to go away. */
		s->eof_rc = fs_tls__read(t, small, 1, &s->err);
	}
done:
	free(big);
	free(want);
}

static void *srv_main(void *arg)
{
	srv *s = arg;
	fs_tls *t = NULL;
	long long start;
	int fd = accept(s->lfd, NULL, NULL);

	start = now_ms();
	if (fd < 0) {
		s->rc = fs_err__set(&s->err, FS_ERROR, "accept: %s",
		                    strerror(errno));
		return NULL;
	}
	s->rc = fs_tls__accept(&t, s->conf, fd, s->timeout_ms, &s->err);
	s->elapsed_ms = now_ms() - start;
	if (s->rc == 0) {
		const char *suite = fs_tls__suite(t);
		s->peer_rc = fs_tls__peer(t, s->cn, sizeof(s->cn), s->ou,
		                          sizeof(s->ou), s->serial,
		                          sizeof(s->serial));
		snprintf(s->suite, sizeof(s->suite), "%s", suite ? suite : "");
		fs_tls__set_timeout(t, 5000);
		serve(s, t);
	}
	fs_tls__close(t);
	return NULL;
}

/* Starts a server thread accepting one connection; *port gets its port. */
static int srv_start(srv *s, const fs_tls_conf *c, int mode, int timeout_ms,
                     char *port, size_t port_size)
{
	fs_err e = { 0, "" };
	int p = 0;

	memset(s, 0, sizeof(*s));
	s->conf = c;
	s->mode = mode;
	s->timeout_ms = timeout_ms;
	s->rc = s->io_rc = s->eof_rc = 12345;
	if (fs_tls__listen(&s->lfd, &p, "127.0.0.1", "0", &e) != 0) {
		fprintf(stderr, "listen: %s\n", e.msg);
		return -1;
	}
	snprintf(port, port_size, "%d", p);
	if (pthread_create(&s->th, NULL, srv_main, s) != 0) {
		close(s->lfd);
		return -1;
	}
	return 0;
}

static void srv_join(srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* A plain TCP socket to 127.0.0.1:port. */
static int raw_connect(const char *port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)strtoul(port, NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------- tests */

static void test_good(void)
{
	fs_tls_conf *sc = conf(1, k.ca.cert_pem, k.server.cert_pem,
	                       k.server.key_pem);
	fs_tls_conf *cc = conf(0, k.ca.cert_pem, k.client.cert_pem,
	                       k.client.key_pem);
	unsigned char *big = malloc(BIG), *want = malloc(BIG), b4[4];
	char port[16], cn[80], ou[80], serial[48], csuite[80] = "";
	fs_err e = { 0, "" };
	fs_tls *t = NULL;
	const char *suite;
	srv s;

	if (!sc || !cc || !big || !want ||
	    srv_start(&s, sc, SRV_ECHO, 5000, port, sizeof(port)) != 0) {
		CHECK(0);
		goto out;
	}
	CHECK(fs_tls__connect(&t, cc, "127.0.0.1", port, 5000, &e) == 0);
	if (!t) {
		fprintf(stderr, "connect: %s\n", e.msg);
		shutdown(s.lfd, SHUT_RDWR);
		srv_join(&s);
		goto out;
	}
	suite = fs_tls__suite(t);
	CHECK(suite && (strcmp(suite,
	        "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256") == 0 ||
	      strcmp(suite, "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384") == 0 ||
	      strcmp(suite,
	        "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256") == 0));
	snprintf(csuite, sizeof(csuite), "%s", suite ? suite : "");
	/* The client sees the server's identity. */
	CHECK(fs_tls__peer(t, cn, sizeof(cn), ou, sizeof(ou), serial,
	                   sizeof(serial)) == 0);
	CHECK_STR(cn, "fieldsync-server");
	CHECK_STR(ou, "");
	CHECK_STR(serial, k.server.serial);
	/* Buffers too small: an error and empty outputs, never truncation. */
	CHECK(fs_tls__peer(t, cn, 5, NULL, 0, NULL, 0) == FS_EINVALID);
	CHECK_STR(cn, "");
	CHECK(fs_tls__peer(t, NULL, 0, NULL, 0, serial, 32) == FS_EINVALID);

	/* The server has said nothing yet: a short read times out, and the
	** connection stays usable. */
	fs_tls__set_timeout(t, 200);
	{
		long long t0 = now_ms();
		CHECK(fs_tls__read(t, b4, 1, &e) == FS_ETIMEOUT);
		CHECK(now_ms() - t0 >= 150 && now_ms() - t0 < 3000);
	}
	fs_tls__set_timeout(t, 5000);

	CHECK(fs_tls__write(t, "ping", 4, &e) == 0);
	CHECK(fs_tls__read(t, b4, 4, &e) == 0 && memcmp(b4, "pong", 4) == 0);
	fill(big, BIG, 7);
	CHECK(fs_tls__write(t, big, BIG, &e) == 0);
	CHECK(fs_tls__read(t, big, BIG, &e) == 0);
	fill(want, BIG, 11);
	CHECK(memcmp(big, want, BIG) == 0);
	fs_tls__close(t);
	srv_join(&s);

	CHECK(s.rc == 0);
	CHECK(s.io_rc == 0);
	if (s.io_rc)
		fprintf(stderr, "server io: %s\n", s.io_err.msg);
	/* Our close reached the server as an orderly end. */
	CHECK(s.eof_rc == FS_ERROR);
	CHECK_STR(s.err.msg, "connection closed");
	CHECK(s.peer_rc == 0);
	CHECK_STR(s.cn, "alice");
	CHECK_STR(s.ou, "north");
	CHECK_STR(s.serial, k.client.serial);
	CHECK_STR(s.suite, csuite);   /* both ends agree */
out:
	free(big);
	free(want);
	fs_tls_conf__free(sc);
	fs_tls_conf__free(cc);
}

/*
** One handshake where someone refuses.  Returns the client's code; the
** server's is in s->rc / s->err.
*/
static int attempt(srv *s, const fs_tls_conf *sc, const fs_tls_conf *cc,
                   const char *host, fs_err *ce)
{
	char port[16];
	fs_tls *t = NULL;
	int rc;

	if (srv_start(s, sc, SRV_HANDSHAKE, 5000, port, sizeof(port)) != 0)
		return 12345;
	rc = fs_tls__connect(&t, cc, host, port, 5000, ce);
	CHECK((rc == 0) == (t != NULL));
	fs_tls__close(t);
	srv_join(s);
	return rc;
}

static void test_client_refused(void)
{
	fs_tls_conf *sc = conf(1, k.ca.cert_pem, k.server.cert_pem,
	                       k.server.key_pem);
	fs_tls_conf *cc = NULL;
	fs_err ce = { 0, "" };
	srv s;
	int rc;

	/* Issued by another CA (with the same name!). */
	cc = conf(0, k.ca.cert_pem, k.foreign_client.cert_pem,
	          k.foreign_client.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc < 0);
	CHECK(s.rc == FS_EAUTH);
	CHECK(strstr(s.err.msg, "client certificate rejected") != NULL);
	CHECK(strstr(s.err.msg, "not correctly signed") != NULL);
	CHECK(rc == FS_EAUTH && strstr(ce.msg, "unknown CA") != NULL);
	fprintf(stderr, "  foreign client -> server: %s | client: %s\n",
	        s.err.msg, ce.msg);
	fs_tls_conf__free(cc);

	/* No certificate at all. */
	CHECK(fs_tls_conf__new_anonymous_client(&cc, k.ca.cert_pem, &ce) == 0);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc < 0);
	CHECK(s.rc == FS_EAUTH);
	CHECK(strstr(s.err.msg, "no certificate") != NULL);
	CHECK(rc == FS_EAUTH &&
	      strstr(ce.msg, "server refused the TLS handshake") != NULL);
	fprintf(stderr, "  no client cert -> server: %s | client: %s\n",
	        s.err.msg, ce.msg);
	fs_tls_conf__free(cc);

	/* Expired. */
	cc = conf(0, k.ca.cert_pem, k.expired_client.cert_pem,
	          k.expired_client.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc < 0);
	CHECK(s.rc == FS_EAUTH);
	CHECK(strstr(s.err.msg, "expired") != NULL);
	CHECK(rc == FS_EAUTH &&
	      strstr(ce.msg, "certificate expired") != NULL);
	fprintf(stderr, "  expired client -> server: %s | client: %s\n",
	        s.err.msg, ce.msg);
	fs_tls_conf__free(cc);

	/* Tampered signature (same key, so the client side accepts it). */
	cc = conf(0, k.ca.cert_pem, k.tampered_client, k.client.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc < 0);
	CHECK(s.rc == FS_EAUTH);
	CHECK(strstr(s.err.msg, "not correctly signed") != NULL);
	CHECK(rc == FS_EAUTH);
	fprintf(stderr, "  tampered client -> server: %s | client: %s\n",
	        s.err.msg, ce.msg);
	fs_tls_conf__free(cc);

	/* A server certificate presented as a client's (wrong usage). */
	cc = conf(0, k.ca.cert_pem, k.server.cert_pem, k.server.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc < 0);
	CHECK(s.rc == FS_EAUTH);
	CHECK(strstr(s.err.msg, "extendedKeyUsage") != NULL);
	CHECK(rc == FS_EAUTH);
	fprintf(stderr, "  server cert as client -> server: %s | client: %s\n",
	        s.err.msg, ce.msg);
	fs_tls_conf__free(cc);

	fs_tls_conf__free(sc);
}

static void test_server_refused(void)
{
	fs_tls_conf *cc = conf(0, k.ca.cert_pem, k.client.cert_pem,
	                       k.client.key_pem);
	fs_tls_conf *sc;
	fs_err ce = { 0, "" };
	srv s;
	int rc;

	/* Server certificate from another CA. */
	sc = conf(1, k.ca.cert_pem, k.foreign_server.cert_pem,
	          k.foreign_server.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc == FS_EAUTH);
	CHECK(strstr(ce.msg, "server certificate rejected") != NULL);
	CHECK(strstr(ce.msg, "not correctly signed") != NULL);
	/* The client tells the server why (it lingers so the alert lands). */
	CHECK(s.rc == FS_EAUTH && strstr(s.err.msg, "unknown CA") != NULL);
	fprintf(stderr, "  foreign server -> client: %s | server: %s\n",
	        ce.msg, s.err.msg);
	fs_tls_conf__free(sc);

	/* Right CA, but the certificate names neither 127.0.0.1 nor
	** localhost (its CN is "127.0.0.1", which must not count). */
	sc = conf(1, k.ca.cert_pem, k.wrong_name_server.cert_pem,
	          k.wrong_name_server.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc == FS_EAUTH);
	CHECK(strstr(ce.msg, "does not name 127.0.0.1") != NULL);
	CHECK(s.rc == FS_EAUTH && strstr(s.err.msg, "bad certificate") != NULL);
	fprintf(stderr, "  wrong name (IP) -> client: %s | server: %s\n",
	        ce.msg, s.err.msg);
	rc = attempt(&s, sc, cc, "localhost", &ce);
	CHECK(rc == FS_EAUTH);
	CHECK(strstr(ce.msg, "does not name localhost") != NULL);
	fs_tls_conf__free(sc);

	/* A dNSName "localhost" does not vouch for the address. */
	sc = conf(1, k.ca.cert_pem, k.dns_ip_server.cert_pem,
	          k.dns_ip_server.key_pem);
	rc = attempt(&s, sc, cc, "127.0.0.1", &ce);
	CHECK(rc == FS_EAUTH);
	rc = attempt(&s, sc, cc, "localhost", &ce);
	CHECK(rc == 0);
	CHECK(s.rc == 0);
	fs_tls_conf__free(sc);

	/* A client certificate presented by a server (wrong usage). */
	sc = conf(1, k.ca.cert_pem, k.client_as_server.cert_pem,
	          k.client_as_server.key_pem);
	rc = attempt(&s, sc, cc, "localhost", &ce);
	CHECK(rc == FS_EAUTH);
	fprintf(stderr, "  client cert as server -> client: %s\n", ce.msg);
	fs_tls_conf__free(sc);

	/* The good server by name works too (mbedtls_ssl_set_hostname). */
	sc = conf(1, k.ca.cert_pem, k.server.cert_pem, k.server.key_pem);
	rc = attempt(&s, sc, cc, "localhost", &ce);
	CHECK(rc == 0);
	CHECK(s.rc == 0);
	CHECK(s.eof_rc == FS_ERROR && strstr(s.err.msg, "closed") != NULL);
	fs_tls_conf__free(sc);

	fs_tls_conf__free(cc);
}

static void test_deadlines(void)
{
	fs_tls_conf *sc = conf(1, k.ca.cert_pem, k.server.cert_pem,
	                       k.server.key_pem);
	fs_tls_conf *cc = conf(0, k.ca.cert_pem, k.client.cert_pem,
	                       k.client.key_pem);
	static const char get[] = "GET / HTTP/1.0\r\n\r\n";
	/* The start of a ClientHello record, one byte at a time. */
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x00, 0xf0,
	                                       0x01, 0x00, 0x00, 0xec, 0x03 };
	char port[16], junk[256];
	fs_err e = { 0, "" };
	fs_tls *t = NULL;
	srv s;
	int fd, p = 0, lfd;
	size_t i;

	/* Connects and says nothing: timed out at about 300 ms. */
	if (srv_start(&s, sc, SRV_HANDSHAKE, 300, port, sizeof(port)) == 0) {
		fd = raw_connect(port);
		CHECK(fd >= 0);
		srv_join(&s);
		CHECK(s.rc == FS_ETIMEOUT);
		CHECK(s.elapsed_ms >= 250 && s.elapsed_ms < 2000);
		fprintf(stderr, "  silent client: %s (%lld ms)\n", s.err.msg,
		        s.elapsed_ms);
		if (fd >= 0)
			close(fd);
	}

	/* Trickles a byte every 100 ms: the deadline is for the whole
	** handshake, so still about 300 ms. */
	if (srv_start(&s, sc, SRV_HANDSHAKE, 300, port, sizeof(port)) == 0) {
		fd = raw_connect(port);
		CHECK(fd >= 0);
		for (i = 0; fd >= 0 && i < sizeof(hello) && i < 8; i++) {
			if (send(fd, hello + i, 1, MSG_NOSIGNAL) != 1)
				break;
			usleep(100 * 1000);
		}
		srv_join(&s);
		CHECK(s.rc == FS_ETIMEOUT);
		CHECK(s.elapsed_ms >= 250 && s.elapsed_ms < 2000);
		if (fd >= 0)
			close(fd);
	}

	/* Plaintext HTTP: refused cleanly. */
	if (srv_start(&s, sc, SRV_HANDSHAKE, 2000, port, sizeof(port)) == 0) {
		fd = raw_connect(port);
		CHECK(fd >= 0);
		if (fd >= 0)
			CHECK(send(fd, get, strlen(get), MSG_NOSIGNAL) ==
			      (ssize_t)strlen(get));
		srv_join(&s);
		CHECK(s.rc == FS_ERROR);
		fprintf(stderr, "  plaintext client: %s\n", s.err.msg);
		if (fd >= 0) {
			/* Whatever the server sent (an alert or nothing),
			** it has hung up. */
			while (recv(fd, junk, sizeof(junk), 0) > 0)
				;
			close(fd);
		}
	}

	/* Connects, then closes before a word. */
	if (srv_start(&s, sc, SRV_HANDSHAKE, 2000, port, sizeof(port)) == 0) {
		fd = raw_connect(port);
		if (fd >= 0)
			close(fd);
		srv_join(&s);
		CHECK(s.rc == FS_ERROR);
		CHECK(strstr(s.err.msg, "closed") != NULL);
	}

	/* A server that accepts TCP but never answers: the client's
	** handshake times out too. */
	if (fs_tls__listen(&lfd, &p, "127.0.0.1", "0", &e) == 0) {
		long long t0 = now_ms();
		snprintf(port, sizeof(port), "%d", p);
		CHECK(fs_tls__connect(&t, cc, "127.0.0.1", port, 300, &e) ==
		      FS_ETIMEOUT);
		CHECK(t == NULL);
		CHECK(now_ms() - t0 >= 250 && now_ms() - t0 < 2000);
		close(lfd);
	}

	/* Nobody listening. */
	if (fs_tls__listen(&lfd, &p, "127.0.0.1", "0", &e) == 0) {
		char want[64];
		close(lfd);
		snprintf(port, sizeof(port), "%d", p);
		snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%d: ",
		         p);
		CHECK(fs_tls__connect(&t, cc, "127.0.0.1", port, 2000, &e) ==
		      FS_ERROR);
		CHECK(strncmp(e.msg, want, strlen(want)) == 0);
		fprintf(stderr, "  unreachable: %s\n", e.msg);
	}
	CHECK(fs_tls__connect(&t, cc, "no-such-host.invalid", "1", 2000,
	                      &e) == FS_ERROR);
	CHECK(strstr(e.msg, "cannot connect to no-such-host.invalid:1") != NULL);

	fs_tls_conf__free(sc);
	fs_tls_conf__free(cc);
}

/* The client hangs up right after the handshake while the server writes
** megabytes: the server gets an error, the process lives. */
static void test_peer_gone(void)
{
	fs_tls_conf *sc = conf(1, k.ca.cert_pem, k.server.cert_pem,
	                       k.server.key_pem);
	fs_tls_conf *cc = conf(0, k.ca.cert_pem, k.client.cert_pem,
	                       k.client.key_pem);
	char port[16];
	fs_err e = { 0, "" };
	fs_tls *t = NULL;
	srv s;

	if (srv_start(&s, sc, SRV_FLOOD, 5000, port, sizeof(port)) != 0) {
		CHECK(0);
		goto out;
	}
	CHECK(fs_tls__connect(&t, cc, "127.0.0.1", port, 5000, &e) == 0);
	fs_tls__close(t);
	srv_join(&s);
	CHECK(s.rc == 0);
	CHECK(s.io_rc == FS_ERROR);
	fprintf(stderr, "  flooding a closed peer: %s\n", s.io_err.msg);
out:
	fs_tls_conf__free(sc);
	fs_tls_conf__free(cc);
}

/* Several handshakes at once over one pair of shared configurations. */
typedef struct conc {
	const fs_tls_conf *conf;
	const char *port;
	int rc;
	fs_err e;
} conc;

static void *conc_server(void *arg)
{
	srv *s = arg;
	fs_tls *t = NULL;
	unsigned char b[4];
	int fd = accept(s->lfd, NULL, NULL);

	s->rc = fs_tls__accept(&t, s->conf, fd, 10000, &s->err);
	if (s->rc == 0) {
		s->io_rc = fs_tls__read(t, b, 4, &s->io_err);
		if (s->io_rc == 0)
			s->io_rc = fs_tls__write(t, b, 4, &s->io_err);
		s->peer_rc = fs_tls__peer(t, s->cn, sizeof(s->cn), NULL, 0,
		                          NULL, 0);
	}
	fs_tls__close(t);
	return NULL;
}

static void *conc_client(void *arg)
{
	conc *c = arg;
	fs_tls *t = NULL;
	unsigned char b[4];

	c->rc = fs_tls__connect(&t, c->conf, "127.0.0.1", c->port, 10000,
	                        &c->e);
	if (c->rc == 0)
		c->rc = fs_tls__write(t, "echo", 4, &c->e);
	if (c->rc == 0)
		c->rc = fs_tls__read(t, b, 4, &c->e);
	if (c->rc == 0 && memcmp(b, "echo", 4) != 0)
		c->rc = FS_ECORRUPT;
	fs_tls__close(t);
	return NULL;
}

static void test_concurrent(void)
{
	fs_tls_conf *sc = conf(1, k.ca.cert_pem, k.server.cert_pem,
	                       k.server.key_pem);
	fs_tls_conf *cc = conf(0, k.ca.cert_pem, k.client.cert_pem,
	                       k.client.key_pem);
	srv s[NCONC];
	conc c[NCONC];
	pthread_t th[NCONC];
	fs_err e = { 0, "" };
	char port[16];
	int lfd, p = 0, i;

	if (!sc || !cc || fs_tls__listen(&lfd, &p, "127.0.0.1", "0", &e) != 0) {
		CHECK(0);
		goto out;
	}
	snprintf(port, sizeof(port), "%d", p);
	for (i = 0; i < NCONC; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].conf = sc;
		s[i].lfd = lfd;
		s[i].rc = 12345;
		CHECK(pthread_create(&s[i].th, NULL, conc_server, &s[i]) == 0);
		memset(&c[i], 0, sizeof(c[i]));
		c[i].conf = cc;
		c[i].port = port;
		c[i].rc = 12345;
		CHECK(pthread_create(&th[i], NULL, conc_client, &c[i]) == 0);
	}
	for (i = 0; i < NCONC; i++) {
		pthread_join(th[i], NULL);
		pthread_join(s[i].th, NULL);
		CHECK(c[i].rc == 0);
		CHECK(s[i].rc == 0 && s[i].io_rc == 0);
		CHECK_STR(s[i].cn, "alice");
	}
	close(lfd);
out:
	fs_tls_conf__free(sc);
	fs_tls_conf__free(cc);
}

static void test_conf(void)
{
	fs_tls_conf *c = NULL;
	fs_err e = { 0, "" };

	CHECK(fs_tls_conf__new(&c, 1, "junk", k.server.cert_pem,
	                       k.server.key_pem, &e) == FS_ECORRUPT);
	CHECK(c == NULL);
	CHECK(fs_tls_conf__new(&c, 1, k.ca.cert_pem, k.server.cert_pem,
	                       k.client.key_pem, &e) == FS_ECORRUPT);
	CHECK(strstr(e.msg, "does not belong") != NULL);
	CHECK(fs_tls_conf__new(&c, 1, k.ca.cert_pem, k.server.cert_pem,
	                       "junk", &e) == FS_ECORRUPT);
	CHECK(fs_tls_conf__new(&c, 1, k.ca.cert_pem, NULL, NULL, &e) ==
	      FS_EINVALID);
	/* The trust anchor must be a CA. */
	CHECK(fs_tls_conf__new(&c, 1, k.client.cert_pem, k.server.cert_pem,
	                       k.server.key_pem, &e) == FS_EINVALID);
	CHECK(c == NULL);
	fs_tls_conf__free(NULL);
	fs_tls__close(NULL);
}

int main(void)
{
	if (!make_keys()) {
		free_keys();
		CHECK(0);
		return CHECK_EXIT();
	}
	test_conf();
	test_good();
	test_client_refused();
	test_server_refused();
	test_deadlines();
	test_peer_gone();
	test_concurrent();
	free_keys();
	return CHECK_EXIT();
}
