/*
** tls.c -- the sync transport: mutually authenticated TLS 1.2 over TCP on
** mbedtls.  See tls.h for the contract.
**
** We give mbedtls our own bio callbacks instead of mbedtls_net_*: the
** configuration is shared between threads, so a per-connection timeout
** cannot live in it (mbedtls_ssl_conf_read_timeout), and mbedtls_net_send
** uses write(), which raises SIGPIPE when the peer has gone.  Our callbacks
** poll() a non-blocking socket against either the handshake deadline or the
** connection's I/O timeout and return MBEDTLS_ERR_SSL_TIMEOUT when it runs
** out; send() carries MSG_NOSIGNAL.
**
** Sharing one mbedtls_ssl_config between threads is safe once it is built:
** the drbg locks itself (MBEDTLS_THREADING_C), certificates and keys are
** only read.  The one exception is mbedtls' elliptic-curve code, which on
** the first multiplication by a curve's generator stores a precomputed
** table in the key's group; two threads doing that first multiplication at
** once would race.  fs_tls_conf__new therefore signs once with our key and
** verifies once with the CA's key before the configuration is handed out.
*/
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "fieldsync.h"

#define CLOSE_WAIT_MS 1000
#define LINGER_MS     250         /* see refuse() */
#define LINGER_BYTES  65536

struct fs_tls_conf {
	int is_server;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt ca;
	mbedtls_x509_crt own;
	mbedtls_pk_context key;
	mbedtls_ssl_config ssl;
};

struct fs_tls {
	mbedtls_ssl_context ssl;
	int fd;
	int is_server;
	int io_timeout_ms;
	long long deadline;          /* monotonic ms; 0 outside the handshake */
	int established;             /* handshake done */
	int broken;                  /* fatal error seen: no close_notify */
	int sys_errno;               /* errno behind the last bio failure */
	int last_rc;                 /* mbedtls code of a failed handshake */
	unsigned char ip[16];        /* client dialing an IP literal: it */
	size_t iplen;                /* 4 or 16; 0 when dialing a name */
	char host[256];              /* what we dialed, for messages */
};

/* The only suites we speak: ECDHE with an ECDSA certificate, AEAD only. */
static const int suites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	0
};

static const int sig_hashes[] = {
	MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512, MBEDTLS_MD_NONE
};

static int tls_fail(fs_err *e, int code, int rc, const char *what)
{
	char m[160];

	mbedtls_strerror(rc, m, sizeof(m));
	return fs_err__set(e, code, "%s: %s (-0x%04x)", what, m,
	                   (unsigned int)-rc);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ bio */

/*
** Waits for the socket to become readable or writable.  The limit is the
** handshake deadline while there is one, else the I/O timeout counted
** from this call.  Returns 1 ready, 0 timed out, -1 error (errno set).
*/
static int wait_fd(fs_tls *t, short events)
{
	long long end;
	struct pollfd pfd;

	if (t->deadline)
		end = t->deadline;
	else if (t->io_timeout_ms > 0)
		end = now_ms() + t->io_timeout_ms;
	else
		end = 0;
	for (;;) {
		int ms = -1, r;

		if (end) {
			long long left = end - now_ms();
			if (left <= 0)
				return 0;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd.fd = t->fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, ms);
		if (r > 0)
			return 1;     /* POLLERR/POLLHUP: the I/O call says why */
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	fs_tls *t = ctx;

	if (len > INT_MAX)
		len = INT_MAX;
	for (;;) {
		ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
		int r;

		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			t->sys_errno = errno;
			return (errno == EPIPE || errno == ECONNRESET)
			       ? MBEDTLS_ERR_NET_CONN_RESET
			       : MBEDTLS_ERR_NET_SEND_FAILED;
		}
		if ((r = wait_fd(t, POLLOUT)) == 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
		if (r < 0) {
			t->sys_errno = errno;
			return MBEDTLS_ERR_NET_SEND_FAILED;
		}
	}
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	fs_tls *t = ctx;

	if (len > INT_MAX)
		len = INT_MAX;
	for (;;) {
		ssize_t n = recv(t->fd, buf, len, 0);
		int r;

		if (n >= 0)
			return (int)n;    /* 0: EOF, mbedtls says CONN_EOF */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			t->sys_errno = errno;
			return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
			                           : MBEDTLS_ERR_NET_RECV_FAILED;
		}
		if ((r = wait_fd(t, POLLIN)) == 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
		if (r < 0) {
			t->sys_errno = errno;
			return MBEDTLS_ERR_NET_RECV_FAILED;
		}
	}
}

/* ----------------------------------------------------------- configuration */

static int parse_crt(mbedtls_x509_crt *crt, const char *pem, const char *what,
                     fs_err *e)
{
	int rc;

	if (!pem)
		return fs_err__set(e, FS_EINVALID, "no %s", what);
	rc = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem,
	                            strlen(pem) + 1);
	if (rc != 0) {
		char w[64];
		snprintf(w, sizeof(w), "%s does not parse", what);
		return tls_fail(e, FS_ECORRUPT, rc < 0 ? rc : -1, w);
	}
	return 0;
}

/* See the top of the file: make mbedtls fill its per-group tables now,
** while only this thread can see the keys.  Doubles as a sanity check. */
static int warm_up(fs_tls_conf *c, int have_own, fs_err *e)
{
	unsigned char hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	size_t sig_len = 0;
	int rc;

	if (!md)
		return fs_err__set(e, FS_ERROR, "SHA-256 not available");
	rc = mbedtls_md(md, c->ca.tbs.p, c->ca.tbs.len, hash);
	if (rc == 0 && c->ca.sig_md == MBEDTLS_MD_SHA256)
		rc = mbedtls_pk_verify(&c->ca.pk, MBEDTLS_MD_SHA256, hash,
		                       sizeof(hash), c->ca.sig.p, c->ca.sig.len);
	if (rc != 0)
		return tls_fail(e, FS_ECORRUPT, rc,
		                "CA certificate's self-signature does not verify");
	if (!have_own)
		return 0;
	rc = mbedtls_pk_sign(&c->key, MBEDTLS_MD_SHA256, hash, sizeof(hash),
	                     sig, &sig_len, mbedtls_ctr_drbg_random, &c->drbg);
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot sign with our key");
	return 0;
}

static int conf_new(fs_tls_conf **out, int is_server, const char *ca_pem,
                    const char *cert_pem, const char *key_pem, fs_err *e)
{
	static const char pers[] = "fieldsync tls";
	fs_tls_conf *c = NULL;
	int have_own = cert_pem || key_pem;
	int rc, error = -1;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c)))) {
		error = fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	c->is_server = is_server ? 1 : 0;
	mbedtls_entropy_init(&c->entropy);
	mbedtls_ctr_drbg_init(&c->drbg);
	mbedtls_x509_crt_init(&c->ca);
	mbedtls_x509_crt_init(&c->own);
	mbedtls_pk_init(&c->key);
	mbedtls_ssl_config_init(&c->ssl);

	rc = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy,
	                           (const unsigned char *)pers, sizeof(pers) - 1);
	if (rc != 0) {
		error = tls_fail(e, FS_ERROR, rc, "cannot seed random generator");
		goto done;
	}
	if ((error = parse_crt(&c->ca, ca_pem, "CA certificate", e)) < 0)
		goto done;
	if (c->ca.next || !c->ca.ca_istrue) {
		error = fs_err__set(e, FS_EINVALID,
		                    "CA file must hold exactly one CA certificate");
		goto done;
	}
	if (have_own) {
		if ((error = parse_crt(&c->own, cert_pem, "certificate", e)) < 0)
			goto done;
		if (!key_pem) {
			error = fs_err__set(e, FS_EINVALID, "no private key");
			goto done;
		}
		rc = mbedtls_pk_parse_key(&c->key, (const unsigned char *)key_pem,
		                          strlen(key_pem) + 1, NULL, 0);
		if (rc != 0) {
			error = tls_fail(e, FS_ECORRUPT, rc,
			                 "private key does not parse");
			goto done;
		}
		if (mbedtls_pk_check_pair(&c->own.pk, &c->key) != 0) {
			error = fs_err__set(e, FS_ECORRUPT,
			                    "private key does not belong to the "
			                    "certificate");
			goto done;
		}
	}
	if ((error = warm_up(c, have_own, e)) < 0)
		goto done;

	rc = mbedtls_ssl_config_defaults(&c->ssl,
	        is_server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
	        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (rc != 0) {
		error = tls_fail(e, FS_ERROR, rc, "cannot configure TLS");
		goto done;
	}
	mbedtls_ssl_conf_min_version(&c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(&c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(&c->ssl, suites);
	mbedtls_ssl_conf_sig_hashes(&c->ssl, sig_hashes);
	/* Suite B: SHA-256/384 signatures on P-256/P-384 keys, which is all
	** our CA ever issues. */
	mbedtls_ssl_conf_cert_profile(&c->ssl, &mbedtls_x509_crt_profile_suiteb);
	mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&c->ssl, &c->ca, NULL);
	mbedtls_ssl_conf_rng(&c->ssl, mbedtls_ctr_drbg_random, &c->drbg);
	mbedtls_ssl_conf_renegotiation(&c->ssl,
	                               MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	/* Servers issue tickets only with a ticket callback, which we never
	** set; clients must be told not to ask. */
	mbedtls_ssl_conf_session_tickets(&c->ssl,
	                                 MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
	if (have_own) {
		rc = mbedtls_ssl_conf_own_cert(&c->ssl, &c->own, &c->key);
		if (rc != 0) {
			error = tls_fail(e, FS_ERROR, rc, "cannot configure TLS");
			goto done;
		}
	}
	*out = c;
	c = NULL;
	error = 0;
done:
	fs_tls_conf__free(c);
	return error;
}

int fs_tls_conf__new(fs_tls_conf **out, int is_server, const char *ca_pem,
                     const char *cert_pem, const char *key_pem, fs_err *e)
{
	if (!cert_pem || !key_pem) {
		*out = NULL;
		return fs_err__set(e, FS_EINVALID,
		                   "no certificate or private key");
	}
	return conf_new(out, is_server, ca_pem, cert_pem, key_pem, e);
}

int fs_tls_conf__new_anonymous_client(fs_tls_conf **out, const char *ca_pem,
                                      fs_err *e)
{
	return conf_new(out, 0, ca_pem, NULL, NULL, e);
}

void fs_tls_conf__free(fs_tls_conf *c)
{
	if (!c)
		return;
	mbedtls_ssl_config_free(&c->ssl);
	mbedtls_pk_free(&c->key);
	mbedtls_x509_crt_free(&c->own);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_ctr_drbg_free(&c->drbg);
	mbedtls_entropy_free(&c->entropy);
	free(c);
}

/* ------------------------------------------------------------- sockets */

/* No Nagle: the protocol is request/response of small messages, and a
** frame that leaves as two TLS records (header, payload) would otherwise
** wait for the peer's delayed ACK -- 40 ms per message on Linux. */
static void set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

int fs_tls__listen(int *out_fd, int *out_port, const char *host,
                   const char *port, fs_err *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, one = 1, rc, err = 0, error = -1;

	*out_fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		error = fs_err__set(e, FS_ERROR, "cannot listen on %s:%s: %s",
		                    host ? host : "*", port, gai_strerror(rc));
		goto done;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		               sizeof(one)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, SOMAXCONN) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		error = fs_err__set(e, FS_ERROR, "cannot listen on %s:%s: %s",
		                    host ? host : "*", port,
		                    strerror(err ? err : EADDRNOTAVAIL));
		goto done;
	}
	if (out_port) {
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
			error = fs_err__set(e, FS_ERROR,
			                    "cannot listen on %s:%s: %s",
			                    host ? host : "*", port,
			                    strerror(errno));
			goto done;
		}
		*out_port = ss.ss_family == AF_INET6
		        ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
		        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	*out_fd = fd;
	fd = -1;
	error = 0;
done:
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	return error;
}

/*
** TCP connect: tries each address of host:port until one answers,
** all within the deadline.  Returns the connected non-blocking socket or
** a negative FS_E* code.
*/
static int tcp_connect(int *out, const char *host, const char *port,
                       long long deadline, fs_err *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, rc, err = ECONNREFUSED, timed_out = 0, error = -1;

	*out = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		error = fs_err__set(e, FS_ERROR, "cannot connect to %s:%s: %s",
		                    host, port, gai_strerror(rc));
		goto done;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(err);

		fd = socket(ai->ai_family,
		            ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		set_nodelay(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			err = errno;
			goto next;
		}
		for (;;) {
			int ms = -1;
			if (deadline) {
				long long left = deadline - now_ms();
				ms = left <= 0 ? 0 :
				     left > INT_MAX ? INT_MAX : (int)left;
			}
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			rc = poll(&pfd, 1, ms);
			if (rc >= 0 || errno != EINTR)
				break;
		}
		if (rc == 0) {
			timed_out = 1;
			break;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		                         &sl) < 0) {
			err = errno;
			goto next;
		}
		if (err == 0)
			break;
next:
		close(fd);
		fd = -1;
	}
	if (timed_out) {
		error = fs_err__set(e, FS_ETIMEOUT,
		                    "cannot connect to %s:%s: timed out",
		                    host, port);
		goto done;
	}
	if (fd < 0) {
		error = fs_err__set(e, FS_ERROR, "cannot connect to %s:%s: %s",
		                    host, port, strerror(err));
		goto done;
	}
	*out = fd;
	fd = -1;
	error = 0;
done:
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	return error;
}

/* -------------------------------------------------------------- handshake */

static const char *alert_name(int a)
{
	switch (a) {
	case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake failure";
	case MBEDTLS_SSL_ALERT_MSG_NO_CERT: return "no certificate";
	case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad certificate";
	case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
		return "unsupported certificate";
	case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED: return "certificate revoked";
	case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: return "certificate expired";
	case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN: return "certificate unknown";
	case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER: return "illegal parameter";
	case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA: return "unknown CA";
	case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: return "access denied";
	case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode error";
	case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR: return "decrypt error";
	case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol version";
	case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY:
		return "insufficient security";
	default: return "alert";
	}
}

/* Client side, dialing an IP literal: the leaf must carry it as an
** iPAddress subjectAltName.  mbedtls 2.28 only matches names (dNSName and
** CN), so this is ours; a mismatch is reported the way mbedtls reports a
** wrong name. */
static int verify_ip(void *ctx, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags)
{
	const fs_tls *t = ctx;
	const mbedtls_x509_sequence *cur;

	if (depth != 0)
		return 0;
	if (crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) {
		for (cur = &crt->subject_alt_names; cur; cur = cur->next) {
			if (cur->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
			    cur->buf.len == t->iplen &&
			    memcmp(cur->buf.p, t->ip, t->iplen) == 0)
				return 0;
		}
	}
	*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	return 0;
}

/* The message for a failed handshake: certificate problems as FS_EAUTH
** with mbedtls' own words for them. */
static int handshake_error(fs_tls *t, int rc, int timeout_ms, fs_err *e)
{
	const char *peer = t->is_server ? "client" : "server";
	uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);

	if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
		return fs_err__set(e, FS_ETIMEOUT,
		                   "TLS handshake with %s did not finish within "
		                   "%d ms", peer, timeout_ms);
	if (rc == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
		return fs_err__set(e, FS_EAUTH,
		                   "client presented no certificate");
	if (flags != 0 && flags != UINT32_MAX) {
		char info[512], *p;
		size_t n;

		mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
		/* One line per problem; make it one line. */
		n = strlen(info);
		while (n && info[n - 1] == '\n')
			info[--n] = '\0';
		for (p = info; (p = strchr(p, '\n')); )
			*p = ';';
		if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
			return fs_err__set(e, FS_EAUTH,
			                   "%s certificate rejected: %s (it does "
			                   "not name %s)", peer, info, t->host);
		return fs_err__set(e, FS_EAUTH, "%s certificate rejected: %s",
		                   peer, info);
	}
	if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
	    rc == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE)
		return tls_fail(e, FS_EAUTH, rc, t->is_server
		                ? "client certificate rejected"
		                : "server certificate rejected");
	if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && t->ssl.in_msg &&
	    t->ssl.in_msglen >= 2) {
		int a = t->ssl.in_msg[1];
		/* handshake_failure, bad/unsupported/revoked/expired/unknown
		** certificate, unknown CA, access denied: a refusal of us. */
		int code = (a >= MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE &&
		            a <= MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED &&
		            a != MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER)
		           ? FS_EAUTH : FS_ERROR;
		return fs_err__set(e, code,
		                   "%s refused the TLS handshake: %s (alert %d)",
		                   peer, alert_name(a), a);
	}
	if (rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_NET_CONN_RESET)
		return fs_err__set(e, FS_ERROR,
		                   "connection closed by %s during TLS "
		                   "handshake%s", peer, t->is_server ? "" :
		                   " (the server may have refused our "
		                   "certificate)");
	if (rc == MBEDTLS_ERR_NET_SEND_FAILED ||
	    rc == MBEDTLS_ERR_NET_RECV_FAILED)
		return fs_err__set(e, FS_ERROR, "TLS handshake with %s: %s",
		                   peer, strerror(t->sys_errno));
	return tls_fail(e, FS_ERROR, rc, t->is_server
	                ? "TLS handshake with client failed"
	                : "TLS handshake with server failed");
}

static int handshake(fs_tls *t, long long deadline, int timeout_ms,
                     fs_err *e)
{
	int rc;

	/* Our bio waits itself and never says WANT_READ/WRITE; the loop is
	** for form, and bounded by the deadline all the same. */
	t->deadline = deadline;
	for (;;) {
		rc = mbedtls_ssl_handshake(&t->ssl);
		if (rc != MBEDTLS_ERR_SSL_WANT_READ &&
		    rc != MBEDTLS_ERR_SSL_WANT_WRITE)
			break;
		if (deadline && now_ms() >= deadline) {
			rc = MBEDTLS_ERR_SSL_TIMEOUT;
			break;
		}
	}
	t->deadline = 0;
	if (rc != 0) {
		t->broken = 1;
		t->last_rc = rc;
		return handshake_error(t, rc, timeout_ms, e);
	}
	t->established = 1;
	return 0;
}

/* A connection object on fd.  Once *out is set (even if this then fails)
** it owns fd; fs_tls__close releases both. */
static int tls_new(fs_tls **out, const fs_tls_conf *c, int fd,
                   int timeout_ms, fs_err *e)
{
	fs_tls *t;
	int rc;

	*out = NULL;
	if (!(t = calloc(1, sizeof(*t))))
		return fs_err__set(e, FS_ERROR, "out of memory");
	t->fd = fd;
	t->is_server = c->is_server;
	t->io_timeout_ms = timeout_ms;
	mbedtls_ssl_init(&t->ssl);
	*out = t;
	if ((rc = mbedtls_ssl_setup(&t->ssl, &c->ssl)) != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot set up TLS");
	mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
	return 0;
}

/*
** After refusing the peer's certificate: tell it why, then let it read,
** so that a device learns "certificate expired" rather than "connection
** reset", and the server log shows which device rejected us.
** mbedtls has already sent an alert for a certificate that fails
** verification, but not for a missing one.  The peer has sent its whole
** flight before reading, so our socket holds unread bytes, and closing it
** would send a reset that can destroy the alert before the peer reads it.
** So half-close and drain briefly (bounded in time and bytes) first.
*/
static void refuse(fs_tls *t, int rc)
{
	char junk[4096];
	long long end = now_ms() + LINGER_MS;
	size_t total = 0;

	if (rc != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED &&
	    rc != MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE &&
	    rc != MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
		return;     /* not our refusal (a timeout, an alert...) */
	if (rc == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
		t->deadline = end;
		mbedtls_ssl_send_alert_message(&t->ssl,
		        MBEDTLS_SSL_ALERT_LEVEL_FATAL,
		        MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
		t->deadline = 0;
	}
	if (shutdown(t->fd, SHUT_WR) < 0)
		return;
	while (total < LINGER_BYTES) {
		struct pollfd pfd = { t->fd, POLLIN, 0 };
		long long left = end - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = recv(t->fd, junk, sizeof(junk), 0);
		if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
			break;
		if (n > 0)
			total += (size_t)n;
	}
}

static long long deadline_of(int timeout_ms)
{
	return timeout_ms > 0 ? now_ms() + timeout_ms : 0;
}

int fs_tls__accept(fs_tls **out, const fs_tls_conf *c, int fd,
                   int timeout_ms, fs_err *e)
{
	fs_tls *t = NULL;
	long long deadline = deadline_of(timeout_ms);
	int error = -1;

	*out = NULL;
	if (!c->is_server) {
		error = fs_err__set(e, FS_EINVALID,
		                    "accept needs a server configuration");
		goto done;
	}
	if (set_nonblock(fd) < 0) {
		error = fs_err__set(e, FS_ERROR, "cannot set up socket: %s",
		                    strerror(errno));
		goto done;
	}
	set_nodelay(fd);
	error = tls_new(&t, c, fd, timeout_ms, e);
	if (t)
		fd = -1;   /* t owns it now */
	if (error < 0 || !t)
		goto done;
	snprintf(t->host, sizeof(t->host), "client");
	if ((error = handshake(t, deadline, timeout_ms, e)) == FS_EAUTH)
		refuse(t, t->last_rc);
done:
	if (error < 0) {
		fs_tls__close(t);
		if (fd >= 0)
			close(fd);
	} else {
		*out = t;
	}
	return error;
}

int fs_tls__connect(fs_tls **out, const fs_tls_conf *c, const char *host,
                    const char *port, int timeout_ms, fs_err *e)
{
	fs_tls *t = NULL;
	long long deadline = deadline_of(timeout_ms);
	int fd = -1, rc, error = -1;

	*out = NULL;
	if (c->is_server) {
		error = fs_err__set(e, FS_EINVALID,
		                    "connect needs a client configuration");
		goto done;
	}
	if (!host || !*host || strlen(host) >= sizeof(t->host) || !port) {
		error = fs_err__set(e, FS_EINVALID, "bad host or port");
		goto done;
	}
	if ((error = tcp_connect(&fd, host, port, deadline, e)) < 0)
		goto done;
	error = tls_new(&t, c, fd, timeout_ms, e);
	if (t)
		fd = -1;   /* t owns it now */
	if (error < 0)
		goto done;
	snprintf(t->host, sizeof(t->host), "%s", host);
	if (inet_pton(AF_INET, host, t->ip) == 1)
		t->iplen = 4;
	else if (inet_pton(AF_INET6, host, t->ip) == 1)
		t->iplen = 16;
	if (t->iplen) {
		/* No SNI for an address (RFC 6066 3); our own name check. */
		mbedtls_ssl_set_verify(&t->ssl, verify_ip, t);
	} else if ((rc = mbedtls_ssl_set_hostname(&t->ssl, host)) != 0) {
		error = tls_fail(e, FS_ERROR, rc, "cannot set host name");
		goto done;
	}
	if ((error = handshake(t, deadline, timeout_ms, e)) == FS_EAUTH)
		refuse(t, t->last_rc);
done:
	if (error < 0) {
		if (fd >= 0)
			close(fd);
		fs_tls__close(t);
	} else {
		*out = t;
	}
	return error;
}

/* -------------------------------------------------------------------- I/O */

static int io_error(fs_tls *t, int rc, const char *what, fs_err *e)
{
	if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
		return fs_err__set(e, FS_ETIMEOUT,
		                   "TLS %s: nothing from peer for %d ms", what,
		                   t->io_timeout_ms);
	t->broken = 1;
	if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
	    rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_NET_CONN_RESET)
		return fs_err__set(e, FS_ERROR, "connection closed");
	if (rc == MBEDTLS_ERR_NET_SEND_FAILED ||
	    rc == MBEDTLS_ERR_NET_RECV_FAILED)
		return fs_err__set(e, FS_ERROR, "TLS %s: %s", what,
		                   strerror(t->sys_errno));
	return tls_fail(e, FS_ERROR, rc, what);
}

int fs_tls__read(fs_tls *t, void *buf, size_t n, fs_err *e)
{
	unsigned char *p = buf;

	if (t->broken)
		return fs_err__set(e, FS_ERROR, "connection closed");
	while (n > 0) {
		int rc = mbedtls_ssl_read(&t->ssl, p, n);
		if (rc > 0) {
			p += rc;
			n -= (size_t)rc;
		} else if (rc != MBEDTLS_ERR_SSL_WANT_READ &&
		           rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
			/* Part of the n bytes consumed: the caller has lost
			** its place in the stream. */
			if (p != (unsigned char *)buf)
				t->broken = 1;
			return io_error(t, rc, "read", e);
		}
	}
	return 0;
}

int fs_tls__write(fs_tls *t, const void *buf, size_t n, fs_err *e)
{
	const unsigned char *p = buf;

	if (t->broken)
		return fs_err__set(e, FS_ERROR, "connection closed");
	while (n > 0) {
		int rc = mbedtls_ssl_write(&t->ssl, p, n);
		if (rc > 0) {
			p += rc;
			n -= (size_t)rc;
		} else if (rc != MBEDTLS_ERR_SSL_WANT_READ &&
		           rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
			/* mbedtls may hold half a record that only a call
			** with the same data could finish: give up. */
			t->broken = 1;
			return io_error(t, rc, "write", e);
		}
	}
	return 0;
}

void fs_tls__set_timeout(fs_tls *t, int io_timeout_ms)
{
	t->io_timeout_ms = io_timeout_ms;
}

/* Copies an attribute value; "" and -1 if it does not fit or has a NUL. */
static int copy_val(char *dst, size_t size, const mbedtls_asn1_buf *v)
{
	if (!dst)
		return 0;
	if (size == 0)
		return -1;
	dst[0] = '\0';
	if (!v)
		return 0;
	if (v->len >= size || memchr(v->p, '\0', v->len))
		return -1;
	memcpy(dst, v->p, v->len);
	dst[v->len] = '\0';
	return 0;
}

static const mbedtls_asn1_buf *find_attr(const mbedtls_x509_name *n,
                                         const char *oid, size_t oid_len)
{
	for (; n; n = n->next)
		if (n->oid.len == oid_len && memcmp(n->oid.p, oid, oid_len) == 0)
			return &n->val;
	return NULL;
}

int fs_tls__peer(const fs_tls *t, char *cn, size_t cn_size, char *ou,
                 size_t ou_size, char *serial, size_t serial_size)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&t->ssl);
	const unsigned char *s;
	size_t sl, i;
	int bad = 0;

	if (cn && cn_size)
		cn[0] = '\0';
	if (ou && ou_size)
		ou[0] = '\0';
	if (serial && serial_size)
		serial[0] = '\0';
	if (!crt || !t->established)
		return FS_ENOTFOUND;
	bad |= copy_val(cn, cn_size, find_attr(&crt->subject, MBEDTLS_OID_AT_CN,
	                MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN)));
	bad |= copy_val(ou, ou_size, find_attr(&crt->subject,
	                MBEDTLS_OID_AT_ORG_UNIT,
	                MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT)));
	if (serial) {
		s = crt->serial.p;
		sl = crt->serial.len;
		while (sl > 1 && s[0] == 0) {
			s++;
			sl--;
		}
		if (serial_size < 2 * sl + 1) {
			bad = -1;
			if (serial_size)
				serial[0] = '\0';
		} else {
			for (i = 0; i < sl; i++)
				snprintf(serial + 2 * i, 3, "%02x", s[i]);
			serial[2 * sl] = '\0';
		}
	}
	if (bad) {
		if (cn && cn_size)
			cn[0] = '\0';
		if (ou && ou_size)
			ou[0] = '\0';
		if (serial && serial_size)
			serial[0] = '\0';
		return FS_EINVALID;
	}
	return 0;
}

const char *fs_tls__suite(const fs_tls *t)
{
	return mbedtls_ssl_get_ciphersuite(&t->ssl);
}

void fs_tls__close(fs_tls *t)
{
	if (!t)
		return;
	if (t->established && !t->broken) {
		int rc;
		/* Best effort: a peer that stopped reading gets a second. */
		t->deadline = now_ms() + CLOSE_WAIT_MS;
		do
			rc = mbedtls_ssl_close_notify(&t->ssl);
		while ((rc == MBEDTLS_ERR_SSL_WANT_WRITE ||
		        rc == MBEDTLS_ERR_SSL_WANT_READ) &&
		       now_ms() < t->deadline);
	}
	if (t->fd >= 0)
		close(t->fd);
	mbedtls_ssl_free(&t->ssl);
	free(t);
}
