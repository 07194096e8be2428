/*
** pki.c -- the company certificate authority: key generation, the
** self-signed CA, issuing server and device certificates, and the small
** file helpers the admin tools use to keep them on disk.  See pki.h.
**
** mbedtls 2.28's certificate writer has no helpers for subjectAltName or
** extendedKeyUsage, so those two extensions are DER-encoded here (asn1write
** writes backwards, from the end of a buffer towards its start).
*/
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>

#include "buf.h"
#include "fieldsync.h"

#define CERT_PEM_MAX  4096      /* a P-256 certificate is ~700 bytes */
#define KEY_PEM_MAX   1024      /* a P-256 private key is ~230 bytes */
#define READ_MAX      ((size_t)1 << 20)
#define CA_YEARS_S    (10LL * 366 * 24 * 3600)
#define CA_BACKDATE_S 3600LL
#define SERIAL_BYTES  16

/* asn1write calls return the bytes written or a negative error. */
#define DER_ADD(len, call)                              \
	do {                                            \
		int der_r_ = (call);                    \
		if (der_r_ < 0) {                       \
			rc = der_r_;                    \
			goto cleanup;                   \
		}                                       \
		(len) += (size_t)der_r_;                \
	} while (0)

/* Everything one issuing run holds; released by rng_done/free at 'done'. */
typedef struct rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
} rng;

static int tls_fail(fs_err *e, int code, int rc, const char *what)
{
	char m[160];

	mbedtls_strerror(rc, m, sizeof(m));
	return fs_err__set(e, code, "%s: %s (-0x%04x)", what, m,
	                   (unsigned int)-rc);
}

static int rng_init(rng *r, fs_err *e)
{
	static const char pers[] = "fieldsync pki";
	int rc;

	mbedtls_entropy_init(&r->entropy);
	mbedtls_ctr_drbg_init(&r->drbg);
	rc = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
	                           (const unsigned char *)pers, sizeof(pers) - 1);
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot seed random generator");
	return 0;
}

static void rng_free(rng *r)
{
	mbedtls_ctr_drbg_free(&r->drbg);
	mbedtls_entropy_free(&r->entropy);
}

/*
** A subject attribute value must survive mbedtls' "CN=...,OU=..." parser,
** which knows one escape ("\,"), drops spaces after a separator and has a
** 256-byte value buffer.  We accept printable text (UTF-8 bytes pass) of
** 1..FS_PKI_NAME_MAX bytes without backslashes or a leading space.
*/
static int check_name(const char *what, const char *v, fs_err *e)
{
	size_t n, i;

	if (!v || !*v)
		return fs_err__set(e, FS_EINVALID, "%s is empty", what);
	n = strlen(v);
	if (n > FS_PKI_NAME_MAX)
		return fs_err__set(e, FS_EINVALID,
		                   "%s is longer than %d bytes", what,
		                   FS_PKI_NAME_MAX);
	if (v[0] == ' ')
		return fs_err__set(e, FS_EINVALID,
		                   "%s starts with a space", what);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			return fs_err__set(e, FS_EINVALID,
			                   "%s contains a control character or "
			                   "backslash", what);
	}
	return 0;
}

/* Appends "key=value" to b with commas escaped; a separator first unless
** b is empty. */
static void put_attr(fs_buf *b, const char *key, const char *v)
{
	if (b->len)
		fs_buf_putc(b, ',');
	fs_buf_puts(b, key);
	fs_buf_putc(b, '=');
	for (; *v; v++) {
		if (*v == ',')
			fs_buf_putc(b, '\\');
		fs_buf_putc(b, *v);
	}
}

/* "YYYYMMDDhhmmss" in UTC, now + offset seconds. */
static int validity_time(char out[16], long long offset, fs_err *e)
{
	time_t now = time(NULL);
	long long t;
	time_t tt;
	struct tm tm;

	if (offset > (long long)200 * 366 * 24 * 3600 ||
	    offset < -(long long)200 * 366 * 24 * 3600)
		return fs_err__set(e, FS_EINVALID,
		                   "validity offset out of range");
	t = (long long)now + offset;
	tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 1950 ||
	    tm.tm_year + 1900 > 9999)
		return fs_err__set(e, FS_EINVALID,
		                   "validity date out of range");
	if (strftime(out, 16, "%Y%m%d%H%M%S", &tm) != 14)
		return fs_err__set(e, FS_EINVALID,
		                   "validity date out of range");
	return 0;
}

/* A random positive serial, 16 octets with the first in 0x40..0x7f. */
static int make_serial(mbedtls_mpi *serial, char hex[40], rng *r, fs_err *e)
{
	unsigned char b[SERIAL_BYTES];
	int rc, i;

	rc = mbedtls_ctr_drbg_random(&r->drbg, b, sizeof(b));
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot make serial");
	b[0] = (unsigned char)((b[0] & 0x3f) | 0x40);
	rc = mbedtls_mpi_read_binary(serial, b, sizeof(b));
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot make serial");
	for (i = 0; i < SERIAL_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	return 0;
}

static int gen_key(mbedtls_pk_context *key, rng *r, fs_err *e)
{
	int rc;

	rc = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (rc == 0)
		rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
		                         mbedtls_pk_ec(*key),
		                         mbedtls_ctr_drbg_random, &r->drbg);
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot generate key");
	return 0;
}

/*
** extendedKeyUsage ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (an OID).
** One purpose here; the extension is not critical (RFC 5280 4.2.1.12
** leaves it to the CA; mbedtls checks it either way).
*/
static int set_eku(mbedtls_x509write_cert *crt, const char *oid,
                   size_t oid_len, fs_err *e)
{
	unsigned char buf[32];
	unsigned char *p = buf + sizeof(buf);
	size_t len = 0;
	int rc = 0;

	DER_ADD(len, mbedtls_asn1_write_oid(&p, buf,
	                                                         oid, oid_len));
	DER_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
	DER_ADD(len, mbedtls_asn1_write_tag(&p, buf,
	        MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	rc = mbedtls_x509write_crt_set_extension(crt,
	        MBEDTLS_OID_EXTENDED_KEY_USAGE,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, p, len);
cleanup:
	if (rc < 0)
		return tls_fail(e, FS_ERROR, rc, "cannot write extendedKeyUsage");
	return 0;
}

/*
** subjectAltName ::= GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName
**   dNSName    [2] IMPLICIT IA5String     tag 0x82
**   iPAddress  [7] IMPLICIT OCTET STRING  tag 0x87, 4 or 16 raw bytes
** Entries are written last to first so that the DER keeps the list order.
*/
static int set_san(mbedtls_x509write_cert *crt, const char *const *san,
                   fs_err *e)
{
	unsigned char *buf = NULL, *p;
	size_t cap = 16, len = 0, n = 0, i, k;
	int rc = 0, error = -1;

	for (n = 0; san[n]; n++) {
		size_t l = strlen(san[n]);
		if (l == 0 || l > 253) {
			error = fs_err__set(e, FS_EINVALID,
			                    "subjectAltName entry %zu is empty or "
			                    "too long", n + 1);
			goto done;
		}
		for (k = 0; k < l; k++) {
			unsigned char c = (unsigned char)san[n][k];
			if (c <= 0x20 || c >= 0x7f) {
				error = fs_err__set(e, FS_EINVALID,
				                    "subjectAltName \"%s\" is not "
				                    "a host name or IP address",
				                    san[n]);
				goto done;
			}
		}
		cap += l + 8;
	}
	if (n == 0) {
		error = 0;
		goto done;
	}
	if (!(buf = malloc(cap))) {
		error = fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	p = buf + cap;
	for (i = n; i-- > 0;) {
		unsigned char ip[16];
		size_t sub = 0, iplen = 0;
		unsigned char tag;

		if (inet_pton(AF_INET, san[i], ip) == 1)
			iplen = 4;
		else if (inet_pton(AF_INET6, san[i], ip) == 1)
			iplen = 16;
		if (iplen) {
			tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
			DER_ADD(sub,
			        mbedtls_asn1_write_raw_buffer(&p, buf, ip, iplen));
		} else {
			tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2;
			DER_ADD(sub,
			        mbedtls_asn1_write_raw_buffer(&p, buf,
			                (const unsigned char *)san[i],
			                strlen(san[i])));
		}
		DER_ADD(sub,
		        mbedtls_asn1_write_len(&p, buf, sub));
		DER_ADD(sub,
		        mbedtls_asn1_write_tag(&p, buf, tag));
		len += sub;
	}
	DER_ADD(len, mbedtls_asn1_write_len(&p, buf, len));
	DER_ADD(len, mbedtls_asn1_write_tag(&p, buf,
	        MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	rc = mbedtls_x509write_crt_set_extension(crt,
	        MBEDTLS_OID_SUBJECT_ALT_NAME,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, p, len);
cleanup:
	if (rc < 0)
		error = tls_fail(e, FS_ERROR, rc, "cannot write subjectAltName");
	else
		error = 0;
done:
	free(buf);
	return error;
}

/* Signs crt and fills out with the certificate and key PEM. */
static int finish(fs_pki_cert *out, mbedtls_x509write_cert *crt,
                  mbedtls_pk_context *key, rng *r, fs_err *e)
{
	int rc;

	if (!(out->cert_pem = calloc(1, CERT_PEM_MAX)) ||
	    !(out->key_pem = calloc(1, KEY_PEM_MAX)))
		return fs_err__set(e, FS_ERROR, "out of memory");
	rc = mbedtls_x509write_crt_pem(crt, (unsigned char *)out->cert_pem,
	                               CERT_PEM_MAX, mbedtls_ctr_drbg_random,
	                               &r->drbg);
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot sign certificate");
	rc = mbedtls_pk_write_key_pem(key, (unsigned char *)out->key_pem,
	                              KEY_PEM_MAX);
	if (rc != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot write private key");
	return 0;
}

/* The settings every certificate shares: version, digest, validity,
** serial, keys and key identifiers.  issuer_key == key for the CA. */
static int common(mbedtls_x509write_cert *crt, mbedtls_pk_context *key,
                  mbedtls_pk_context *issuer_key, mbedtls_mpi *serial,
                  char hex[40], long long nb, long long na, rng *r,
                  fs_err *e)
{
	char from[16], to[16];
	int rc, error;

	if (na <= nb)
		return fs_err__set(e, FS_EINVALID,
		                   "certificate would expire before it starts");
	if ((error = validity_time(from, nb, e)) < 0 ||
	    (error = validity_time(to, na, e)) < 0 ||
	    (error = make_serial(serial, hex, r, e)) < 0)
		return error;
	mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(crt, key);
	mbedtls_x509write_crt_set_issuer_key(crt, issuer_key);
	if ((rc = mbedtls_x509write_crt_set_serial(crt, serial)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_validity(crt, from, to)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_subject_key_identifier(crt)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_authority_key_identifier(crt)) != 0)
		return tls_fail(e, FS_ERROR, rc, "cannot build certificate");
	return 0;
}

void fs_pki__cert_free(fs_pki_cert *c)
{
	if (!c)
		return;
	free(c->cert_pem);
	if (c->key_pem) {
		mbedtls_platform_zeroize(c->key_pem, strlen(c->key_pem));
		free(c->key_pem);
	}
	memset(c, 0, sizeof(*c));
}

int fs_pki__ca_create(fs_pki_cert *out, const char *org, fs_err *e)
{
	mbedtls_x509write_cert crt;
	mbedtls_pk_context key;
	mbedtls_mpi serial;
	fs_buf name = FS_BUF_INIT;
	char cn[FS_PKI_NAME_MAX + 32];
	rng r;
	int rc, error = -1;

	memset(out, 0, sizeof(*out));
	mbedtls_x509write_crt_init(&crt);
	mbedtls_pk_init(&key);
	mbedtls_mpi_init(&serial);
	if ((error = rng_init(&r, e)) < 0)
		goto done;
	if ((error = check_name("organisation name", org, e)) < 0)
		goto done;
	snprintf(cn, sizeof(cn), "%s Fieldsync CA", org);
	if ((error = check_name("CA name", cn, e)) < 0)
		goto done;
	put_attr(&name, "CN", cn);
	put_attr(&name, "O", org);
	if (name.failed) {
		error = fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	if ((error = gen_key(&key, &r, e)) < 0 ||
	    (error = common(&crt, &key, &key, &serial, out->serial,
	                    -CA_BACKDATE_S, CA_YEARS_S, &r, e)) < 0)
		goto done;
	if ((rc = mbedtls_x509write_crt_set_subject_name(&crt, name.ptr)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_issuer_name(&crt, name.ptr)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_key_usage(&crt,
	                MBEDTLS_X509_KU_KEY_CERT_SIGN |
	                MBEDTLS_X509_KU_CRL_SIGN)) != 0) {
		error = tls_fail(e, FS_ERROR, rc, "cannot build CA certificate");
		goto done;
	}
	error = finish(out, &crt, &key, &r, e);
done:
	if (error < 0)
		fs_pki__cert_free(out);
	fs_buf_free(&name);
	mbedtls_mpi_free(&serial);
	mbedtls_pk_free(&key);
	mbedtls_x509write_crt_free(&crt);
	rng_free(&r);
	return error;
}

/*
** The issuer name of a new certificate must equal the CA's subject; we
** rebuild the "CN=...,O=..." string from the parsed CA certificate, in
** its order, with the same escaping the CA was created with.
*/
static int issuer_name(fs_buf *b, const mbedtls_x509_crt *ca, fs_err *e)
{
	const mbedtls_x509_name *n;
	char v[FS_PKI_NAME_MAX + 32];

	for (n = &ca->subject; n && n->oid.p; n = n->next) {
		const char *sn;

		if (mbedtls_oid_get_attr_short_name(&n->oid, &sn) != 0)
			return fs_err__set(e, FS_ECORRUPT,
			                   "CA certificate subject has an "
			                   "unknown attribute");
		if (n->val.len >= sizeof(v) ||
		    memchr(n->val.p, '\0', n->val.len))
			return fs_err__set(e, FS_ECORRUPT,
			                   "CA certificate subject is unusable");
		memcpy(v, n->val.p, n->val.len);
		v[n->val.len] = '\0';
		put_attr(b, sn, v);
	}
	if (b->failed)
		return fs_err__set(e, FS_ERROR, "out of memory");
	if (!b->len)
		return fs_err__set(e, FS_ECORRUPT,
		                   "CA certificate has an empty subject");
	return 0;
}

int fs_pki__issue(fs_pki_cert *out, const char *ca_cert_pem,
                  const char *ca_key_pem, int kind, const char *cn,
                  const char *ou, const char *const *san,
                  long long not_before_s, long long not_after_s, fs_err *e)
{
	mbedtls_x509write_cert crt;
	mbedtls_x509_crt ca;
	mbedtls_pk_context ca_key, key;
	mbedtls_mpi serial;
	fs_buf subject = FS_BUF_INIT, issuer = FS_BUF_INIT;
	rng r;
	int rc, error = -1;

	memset(out, 0, sizeof(*out));
	mbedtls_x509write_crt_init(&crt);
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&ca_key);
	mbedtls_pk_init(&key);
	mbedtls_mpi_init(&serial);
	if ((error = rng_init(&r, e)) < 0)
		goto done;

	if (kind != FS_PKI_SERVER && kind != FS_PKI_CLIENT) {
		error = fs_err__set(e, FS_EINVALID,
		                    "unknown certificate kind %d", kind);
		goto done;
	}
	if ((error = check_name("common name", cn, e)) < 0)
		goto done;
	if (ou && *ou && (error = check_name("organisational unit", ou, e)) < 0)
		goto done;
	if (!ca_cert_pem || !ca_key_pem) {
		error = fs_err__set(e, FS_EINVALID, "no CA certificate or key");
		goto done;
	}

	rc = mbedtls_x509_crt_parse(&ca, (const unsigned char *)ca_cert_pem,
	                            strlen(ca_cert_pem) + 1);
	if (rc != 0) {
		error = tls_fail(e, FS_ECORRUPT, rc,
		                 "CA certificate does not parse");
		goto done;
	}
	rc = mbedtls_pk_parse_key(&ca_key, (const unsigned char *)ca_key_pem,
	                          strlen(ca_key_pem) + 1, NULL, 0);
	if (rc != 0) {
		error = tls_fail(e, FS_ECORRUPT, rc, "CA key does not parse");
		goto done;
	}
	if (mbedtls_pk_check_pair(&ca.pk, &ca_key) != 0) {
		error = fs_err__set(e, FS_ECORRUPT,
		                    "CA key does not belong to the CA certificate");
		goto done;
	}
	if (!ca.ca_istrue) {
		error = fs_err__set(e, FS_EINVALID,
		                    "the issuing certificate is not a CA");
		goto done;
	}

	put_attr(&subject, "CN", cn);
	if (ou && *ou)
		put_attr(&subject, "OU", ou);
	if (subject.failed) {
		error = fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	if ((error = issuer_name(&issuer, &ca, e)) < 0)
		goto done;

	if ((error = gen_key(&key, &r, e)) < 0 ||
	    (error = common(&crt, &key, &ca_key, &serial, out->serial,
	                    not_before_s, not_after_s, &r, e)) < 0)
		goto done;
	if ((rc = mbedtls_x509write_crt_set_subject_name(&crt, subject.ptr)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_issuer_name(&crt, issuer.ptr)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_key_usage(&crt,
	                MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0) {
		error = tls_fail(e, FS_ERROR, rc, "cannot build certificate");
		goto done;
	}
	if (kind == FS_PKI_SERVER) {
		if ((error = set_eku(&crt, MBEDTLS_OID_SERVER_AUTH,
		                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH),
		                     e)) < 0)
			goto done;
		if (san && (error = set_san(&crt, san, e)) < 0)
			goto done;
	} else if ((error = set_eku(&crt, MBEDTLS_OID_CLIENT_AUTH,
	                            MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH),
	                            e)) < 0) {
		goto done;
	}
	error = finish(out, &crt, &key, &r, e);
done:
	if (error < 0)
		fs_pki__cert_free(out);
	fs_buf_free(&subject);
	fs_buf_free(&issuer);
	mbedtls_mpi_free(&serial);
	mbedtls_pk_free(&key);
	mbedtls_pk_free(&ca_key);
	mbedtls_x509_crt_free(&ca);
	mbedtls_x509write_crt_free(&crt);
	rng_free(&r);
	return error;
}

/* ------------------------------------------------------------------ files */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int fs_pki__write_file(const char *path, const char *text, int mode,
                       fs_err *e)
{
	fs_buf tmp = FS_BUF_INIT, dir = FS_BUF_INIT;
	const char *slash;
	int fd = -1, dfd = -1, error = -1;

	fs_buf_printf(&tmp, "%s.tmp.XXXXXX", path);
	slash = strrchr(path, '/');
	if (!slash)
		fs_buf_puts(&dir, ".");
	else if (slash == path)
		fs_buf_puts(&dir, "/");
	else
		fs_buf_put(&dir, path, (size_t)(slash - path));
	if (tmp.failed || dir.failed) {
		error = fs_err__set(e, FS_ERROR, "out of memory");
		goto done;
	}
	/* mkstemp creates the file 0600, so a key is never readable by
	** others, not even for a moment; fchmod then sets the asked mode. */
	if ((fd = mkstemp(tmp.ptr)) < 0) {
		error = fs_err__set(e, FS_ERROR, "%s: cannot create: %s",
		                    tmp.ptr, strerror(errno));
		tmp.len = 0;   /* nothing to unlink */
		goto done;
	}
	if (fchmod(fd, (mode_t)mode) < 0 ||
	    write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
		error = fs_err__set(e, FS_ERROR, "%s: cannot write: %s",
		                    path, strerror(errno));
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		error = fs_err__set(e, FS_ERROR, "%s: cannot write: %s",
		                    path, strerror(errno));
		goto done;
	}
	fd = -1;
	if (rename(tmp.ptr, path) < 0) {
		error = fs_err__set(e, FS_ERROR, "%s: cannot rename: %s",
		                    path, strerror(errno));
		goto done;
	}
	tmp.len = 0;   /* renamed: nothing to unlink */
	/* Make the rename itself durable. */
	if ((dfd = open(dir.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		fsync(dfd);
	error = 0;
done:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (error < 0 && tmp.len)
		unlink(tmp.ptr);
	fs_buf_free(&tmp);
	fs_buf_free(&dir);
	return error;
}

int fs_pki__read_file(char **out, const char *path, fs_err *e)
{
	fs_buf b;
	char chunk[8192];
	int fd, error = -1;

	*out = NULL;
	fs_buf_init(&b, READ_MAX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		error = fs_err__set(e, errno == ENOENT ? FS_ENOTFOUND : FS_ERROR,
		                    "%s: cannot open: %s", path, strerror(errno));
		goto done;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = fs_err__set(e, FS_ERROR, "%s: cannot read: %s",
			                    path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > READ_MAX) {
			error = fs_err__set(e, FS_EINVALID,
			                    "%s: larger than 1 MiB", path);
			goto done;
		}
		if (fs_buf_put(&b, chunk, (size_t)n) < 0) {
			error = fs_err__set(e, FS_ERROR, "%s: out of memory",
			                    path);
			goto done;
		}
	}
	if (!(*out = fs_buf_detach(&b))) {
		error = fs_err__set(e, FS_ERROR, "%s: out of memory", path);
		goto done;
	}
	error = 0;
done:
	if (fd >= 0)
		close(fd);
	fs_buf_free(&b);
	return error;
}
