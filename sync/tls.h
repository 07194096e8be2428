/*
** tls.h -- the sync transport: one mutually authenticated TLS 1.2
** connection over TCP, in either role.
**
** Both sides trust exactly one anchor, the company CA (pki.h), and always
** present a certificate: the server its host certificate, a device the
** certificate the CA issued to its rep.  The protocol is pinned to TLS 1.2
** with ECDHE-ECDSA AEAD suites only (AES-128-GCM, AES-256-GCM,
** ChaCha20-Poly1305); no session tickets, no renegotiation.
**
** Sockets are non-blocking underneath and every wait is a poll() with a
** limit: the handshake has one deadline for the whole exchange (so a
** client that trickles bytes cannot hold a server thread), and after it
** each read or write gives up after io_timeout_ms of silence.  Writes use
** MSG_NOSIGNAL, so a peer that goes away never raises SIGPIPE.
*/
#ifndef FS_TLS_H
#define FS_TLS_H

#include <stddef.h>

#include "err.h"

/* Shared configuration: read-only once made, usable by many threads at
** once; it must outlive every connection made with it. */
typedef struct fs_tls_conf fs_tls_conf;
/* One connection; used by one thread at a time. */
typedef struct fs_tls fs_tls;

/*
** Makes a configuration.  is_server: 1 for the server role.  ca_pem: the
** company CA, the only trust anchor.  cert_pem/key_pem: our own identity
** (the key must belong to the certificate).
** Returns 0; FS_ECORRUPT if a PEM does not parse or the key does not match;
** FS_EINVALID for a missing argument; FS_ERROR otherwise.  *out is NULL on
** failure.
*/
int fs_tls_conf__new(fs_tls_conf **out, int is_server, const char *ca_pem,
                     const char *cert_pem, const char *key_pem, fs_err *e);
/* A client configuration with no certificate of its own.  For tests only:
** every Fieldsync server refuses such a client. */
int fs_tls_conf__new_anonymous_client(fs_tls_conf **out, const char *ca_pem,
                                      fs_err *e);
void fs_tls_conf__free(fs_tls_conf *c);

/*
** A listening TCP socket on host:port (host NULL: all addresses; port "0":
** any free port), with SO_REUSEADDR and close-on-exec.  *out_port (may be
** NULL) receives the bound port.  Returns 0, or FS_ERROR "cannot listen on
** host:port: <reason>".
*/
int fs_tls__listen(int *out_fd, int *out_port, const char *host,
                   const char *port, fs_err *e);

/*
** Server side: the TLS handshake on an accepted socket.  Takes ownership
** of fd (closed on failure).  The whole handshake must finish within
** timeout_ms (<= 0: no limit -- never for sockets facing a network).
** Returns 0 with *out set; FS_ETIMEOUT when the deadline passes; FS_EAUTH
** when the client's certificate is missing or fails verification (the
** message says why, e.g. "expired", "not correctly signed"), or the client
** refused ours; FS_ERROR for anything else (not TLS, connection closed...).
** When we refuse a certificate the client gets a fatal alert saying why,
** and we wait up to 250 ms more for it to read that before closing.
*/
int fs_tls__accept(fs_tls **out, const fs_tls_conf *c, int fd,
                   int timeout_ms, fs_err *e);

/*
** Client side: TCP connect to host:port and the TLS handshake, together
** within timeout_ms (<= 0: no limit).  The server certificate must chain
** to the CA and name host: a DNS name is matched against its dNSName
** entries (mbedtls_ssl_set_hostname, also sent as SNI); an IP literal
** against its iPAddress entries.
** Returns 0; FS_ERROR "cannot connect to host:port: <reason>" when
** unreachable; FS_ETIMEOUT when the time runs out (connect or handshake);
** FS_EAUTH for a server certificate problem ("server certificate rejected:
** ...") or when the server refuses ours ("server refused the TLS
** handshake: certificate expired (alert 45)"; a server that just hangs up
** gives FS_ERROR).  Like accept, lingers up to 250 ms after refusing.
*/
int fs_tls__connect(fs_tls **out, const fs_tls_conf *c, const char *host,
                    const char *port, int timeout_ms, fs_err *e);

/*
** Reads exactly n bytes / writes exactly n bytes.  Returns 0; FS_ETIMEOUT
** after io_timeout_ms without a byte moving; FS_ERROR "connection closed"
** on EOF, close_notify or reset; FS_ERROR for other failures.  After a
** failure the connection is dead (later calls say "connection closed"),
** except for a read that timed out before receiving anything: that one
** may be retried (a poll for "anything to say?").
*/
int fs_tls__read(fs_tls *t, void *buf, size_t n, fs_err *e);
int fs_tls__write(fs_tls *t, const void *buf, size_t n, fs_err *e);

/* The I/O timeout after the handshake, in ms (<= 0: wait forever).
** Initially the timeout_ms given to accept/connect. */
void fs_tls__set_timeout(fs_tls *t, int io_timeout_ms);

/*
** The verified peer certificate's subject CN, OU ("" if none) and serial
** (hex, lower case, no colons, no leading zero octets).  Any output pointer
** may be NULL to skip it.  Returns 0; FS_ENOTFOUND if there is no peer
** certificate; FS_EINVALID if a value does not fit its buffer or contains
** a NUL byte (outputs are then "").
*/
int fs_tls__peer(const fs_tls *t, char *cn, size_t cn_size, char *ou,
                 size_t ou_size, char *serial, size_t serial_size);

/* The cipher suite in use, e.g. "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256". */
const char *fs_tls__suite(const fs_tls *t);

/* Sends close_notify (best effort, waiting at most a second), closes the
** socket and frees.  Accepts NULL. */
void fs_tls__close(fs_tls *t);

#endif
