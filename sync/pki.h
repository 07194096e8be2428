/*
** pki.h -- the company certificate authority.
**
** Every Fieldsync deployment has one CA of its own; it is the only trust
** anchor of the TLS transport (tls.h).  The server's certificate and each
** rep's device certificate are issued by it, and the device certificate's
** subject (CN = user, OU = team/role) is what the server authorises on.
**
** Keys are EC P-256, signatures ECDSA-SHA256, serials 128-bit random
** positive numbers (first byte in 0x40..0x7f, so always 32 hex digits and
** 16 DER octets).  Everything crosses this API as PEM text.
*/
#ifndef FS_PKI_H
#define FS_PKI_H

#include "err.h"

/* What issuing produces.  Owned by the caller; release the strings with
** fs_pki__cert_free (which leaves the struct zeroed and may be called on a
** zeroed struct). */
typedef struct fs_pki_cert {
	char *cert_pem;
	char *key_pem;        /* "-----BEGIN EC PRIVATE KEY-----", unencrypted */
	char serial[40];      /* hex, lower case, no colons */
} fs_pki_cert;

/* Longest accepted subject attribute (the X.520 upper bound for CN). */
#define FS_PKI_NAME_MAX 64

enum { FS_PKI_SERVER = 1, FS_PKI_CLIENT = 2 };

/*
** Creates a self-signed CA: subject CN "<org> Fieldsync CA", O "<org>",
** basicConstraints CA:true pathlen 0 (critical), keyUsage keyCertSign |
** cRLSign, subject key identifier.  Valid from one hour ago (clock skew
** between machines) for 10 years.
** Returns 0; FS_EINVALID for an unusable org name (empty, too long, control
** characters or a backslash); FS_ERROR for a crypto or memory failure.
** On failure *out is zeroed.
*/
int fs_pki__ca_create(fs_pki_cert *out, const char *org, fs_err *e);

/*
** Issues an end-entity certificate with a fresh key, signed by the CA
** (ca_cert_pem, ca_key_pem; the key must belong to the certificate).
** Subject CN = cn, OU = ou (NULL or "" for none).  basicConstraints CA:false,
** keyUsage digitalSignature, authority and subject key identifiers.
** kind FS_PKI_SERVER: extendedKeyUsage serverAuth, and subjectAltName from
** san (a NULL-terminated list, may be NULL: IPv4/IPv6 literals become
** iPAddress entries, anything else a dNSName).  FS_PKI_CLIENT: clientAuth
** (san, if given, is ignored).
** Valid from now + not_before_s to now + not_after_s (seconds; either may
** be negative, e.g. to make an already-expired certificate for tests).
** Returns 0; FS_EINVALID for bad arguments (unknown kind, bad names,
** not_after before not_before); FS_ECORRUPT when the CA PEM does not parse
** or the key does not match the certificate; FS_ERROR otherwise.
** On failure *out is zeroed.
*/
int fs_pki__issue(fs_pki_cert *out, const char *ca_cert_pem,
                  const char *ca_key_pem, int kind, const char *cn,
                  const char *ou, const char *const *san,
                  long long not_before_s, long long not_after_s, fs_err *e);

/* Frees the strings (the key text is wiped first).  Accepts NULL. */
void fs_pki__cert_free(fs_pki_cert *c);

/*
** Writes text to path atomically: a temporary file in the same directory
** created with the given mode (0600 for keys), fsync, rename over path,
** fsync of the directory.  On failure path is untouched and the temporary
** file removed.  Returns 0 or FS_ERROR ("<path>: <reason>").
*/
int fs_pki__write_file(const char *path, const char *text, int mode,
                       fs_err *e);

/*
** Reads a whole file of at most 1 MiB into *out (NUL-terminated; the
** caller frees it with free()).  Returns 0; FS_ENOTFOUND if it does not
** exist; FS_EINVALID if it is larger than 1 MiB; FS_ERROR otherwise.
** *out is NULL on failure.
*/
int fs_pki__read_file(char **out, const char *path, fs_err *e);

#endif
