/*
** pki.c -- tests of sync/pki.c: the CA and the certificates it issues,
** read back with mbedtls' parser and verifier (not with our own code), and
** the atomic file helpers.
*/
#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "fieldsync.h"
#include "check.h"

/* The value of the first subject attribute with this OID, or "". */
static const char *attr(const mbedtls_x509_crt *crt, const char *oid,
                        size_t oid_len, char *buf, size_t size)
{
	const mbedtls_x509_name *n;

	buf[0] = '\0';
	for (n = &crt->subject; n; n = n->next) {
		if (n->oid.len == oid_len && memcmp(n->oid.p, oid, oid_len) == 0 &&
		    n->val.len < size) {
			memcpy(buf, n->val.p, n->val.len);
			buf[n->val.len] = '\0';
			break;
		}
	}
	return buf;
}
#define CN(crt, b) attr(crt, MBEDTLS_OID_AT_CN, \
                        MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), b, sizeof(b))
#define OU(crt, b) attr(crt, MBEDTLS_OID_AT_ORG_UNIT, \
                        MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT), b, sizeof(b))

static int parse(mbedtls_x509_crt *crt, const char *pem)
{
	mbedtls_x509_crt_init(crt);
	return mbedtls_x509_crt_parse(crt, (const unsigned char *)pem,
	                              strlen(pem) + 1);
}

static uint32_t verify(mbedtls_x509_crt *crt, mbedtls_x509_crt *ca,
                       const char *name)
{
	uint32_t flags = 0;

	mbedtls_x509_crt_verify(crt, ca, NULL, name, &flags, NULL, NULL);
	return flags;
}

/* The serial as a hex string, computed from the DER bytes. */
static void serial_hex(const mbedtls_x509_crt *crt, char *out)
{
	size_t i;

	for (i = 0; i < crt->serial.len; i++)
		snprintf(out + 2 * i, 3, "%02x", crt->serial.p[i]);
	out[2 * crt->serial.len] = '\0';
}

static int is_lower_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int has_san(const mbedtls_x509_crt *crt, unsigned char tag,
                   const void *v, size_t len)
{
	const mbedtls_x509_sequence *cur;

	for (cur = &crt->subject_alt_names; cur; cur = cur->next)
		if (cur->buf.tag == tag && cur->buf.len == len &&
		    memcmp(cur->buf.p, v, len) == 0)
			return 1;
	return 0;
}

/* Years between two mbedtls_x509_time values, roughly. */
static int years(const mbedtls_x509_time *a, const mbedtls_x509_time *b)
{
	return b->year - a->year;
}

static void test_ca(void)
{
	fs_pki_cert ca = { 0 }, ca2 = { 0 };
	mbedtls_x509_crt crt;
	fs_err e = { 0, "" };
	char b[128], hex[64];

	CHECK(fs_pki__ca_create(&ca, "Acme, Inc", &e) == 0);
	CHECK(ca.cert_pem && strstr(ca.cert_pem, "BEGIN CERTIFICATE"));
	CHECK(ca.key_pem && strstr(ca.key_pem, "BEGIN EC PRIVATE KEY"));
	CHECK(strlen(ca.serial) == 32 && is_lower_hex(ca.serial));

	CHECK(parse(&crt, ca.cert_pem) == 0);
	CHECK_STR(CN(&crt, b), "Acme, Inc Fieldsync CA");
	CHECK(crt.ca_istrue == 1);
	CHECK(crt.version == 3);
	CHECK(crt.sig_md == MBEDTLS_MD_SHA256);
	CHECK(crt.sig_pk == MBEDTLS_PK_ECDSA);
	CHECK(mbedtls_pk_get_type(&crt.pk) == MBEDTLS_PK_ECKEY);
	CHECK(mbedtls_pk_get_bitlen(&crt.pk) == 256);
	CHECK(mbedtls_x509_crt_check_key_usage(&crt,
	        MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN) == 0);
	CHECK(mbedtls_x509_crt_check_key_usage(&crt,
	        MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0);
	CHECK(years(&crt.valid_from, &crt.valid_to) == 10);
	CHECK(!mbedtls_x509_time_is_past(&crt.valid_to));
	CHECK(!mbedtls_x509_time_is_future(&crt.valid_from));
	serial_hex(&crt, hex);
	CHECK_STR(hex, ca.serial);
	/* Self-signed and trusted as its own anchor. */
	CHECK(verify(&crt, &crt, NULL) == 0);
	mbedtls_x509_crt_free(&crt);

	/* Two CAs never share a serial or a key. */
	CHECK(fs_pki__ca_create(&ca2, "Acme, Inc", &e) == 0);
	CHECK(strcmp(ca.serial, ca2.serial) != 0);
	CHECK(strcmp(ca.key_pem, ca2.key_pem) != 0);

	/* Bad organisation names. */
	fs_pki__cert_free(&ca2);
	CHECK(fs_pki__ca_create(&ca2, "", &e) == FS_EINVALID);
	CHECK(ca2.cert_pem == NULL && ca2.key_pem == NULL);
	CHECK(fs_pki__ca_create(&ca2, "bad\\name", &e) == FS_EINVALID);
	CHECK(fs_pki__ca_create(&ca2, "tab\there", &e) == FS_EINVALID);
	CHECK(fs_pki__ca_create(&ca2,
	        "an organisation name that is far too long for a CN!!",
	        &e) == FS_EINVALID);
	CHECK(strstr(e.msg, "longer than") != NULL);

	fs_pki__cert_free(&ca);
	fs_pki__cert_free(&ca2);
	fs_pki__cert_free(&ca2);   /* twice is harmless */
	fs_pki__cert_free(NULL);
}

static void test_issue(void)
{
	static const char *const san[] = { "127.0.0.1", "localhost", "::1",
	                                   "sync.example.com", NULL };
	static const unsigned char lo4[4] = { 127, 0, 0, 1 };
	unsigned char lo6[16] = { 0 };
	fs_pki_cert ca = { 0 }, other = { 0 }, srv = { 0 }, cli = { 0 },
	            cli2 = { 0 }, old = { 0 }, bad = { 0 };
	mbedtls_x509_crt cac, otherc, s, c, o;
	fs_err e = { 0, "" };
	char b[128], hex[64];

	lo6[15] = 1;
	CHECK(fs_pki__ca_create(&ca, "Acme", &e) == 0);
	CHECK(fs_pki__ca_create(&other, "Evil", &e) == 0);
	CHECK(parse(&cac, ca.cert_pem) == 0);
	CHECK(parse(&otherc, other.cert_pem) == 0);

	/* A server certificate. */
	CHECK(fs_pki__issue(&srv, ca.cert_pem, ca.key_pem, FS_PKI_SERVER,
	                    "fieldsync-server", NULL, san, -60, 86400, &e) == 0);
	CHECK(parse(&s, srv.cert_pem) == 0);
	CHECK_STR(CN(&s, b), "fieldsync-server");
	CHECK_STR(OU(&s, b), "");
	CHECK(s.ca_istrue == 0);
	CHECK(mbedtls_x509_crt_check_extended_key_usage(&s,
	        MBEDTLS_OID_SERVER_AUTH,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) == 0);
	CHECK(mbedtls_x509_crt_check_extended_key_usage(&s,
	        MBEDTLS_OID_CLIENT_AUTH,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0);
	CHECK(mbedtls_x509_crt_check_key_usage(&s,
	        MBEDTLS_X509_KU_DIGITAL_SIGNATURE) == 0);
	CHECK(s.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME);
	/* GeneralName tags: [7] iPAddress = 0x87, [2] dNSName = 0x82. */
	CHECK(has_san(&s, 0x87, lo4, 4));
	CHECK(has_san(&s, 0x87, lo6, 16));
	CHECK(has_san(&s, 0x82, "localhost", 9));
	CHECK(has_san(&s, 0x82, "sync.example.com", 16));
	CHECK(!has_san(&s, 0x82, "127.0.0.1", 9));
	CHECK(verify(&s, &cac, NULL) == 0);
	CHECK(verify(&s, &cac, "localhost") == 0);
	CHECK(verify(&s, &cac, "sync.example.com") == 0);
	CHECK(verify(&s, &cac, "other.example.com") ==
	      MBEDTLS_X509_BADCERT_CN_MISMATCH);
	CHECK(verify(&s, &otherc, NULL) & MBEDTLS_X509_BADCERT_NOT_TRUSTED);
	serial_hex(&s, hex);
	CHECK_STR(hex, srv.serial);
	CHECK(strlen(srv.serial) == 32 && is_lower_hex(srv.serial));
	CHECK(strcmp(srv.serial, ca.serial) != 0);

	/* A client certificate: a comma in the CN survives, OU is set. */
	CHECK(fs_pki__issue(&cli, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT,
	                    "Doe, Jane", "north=1", NULL, 0, 3600, &e) == 0);
	CHECK(parse(&c, cli.cert_pem) == 0);
	CHECK_STR(CN(&c, b), "Doe, Jane");
	CHECK_STR(OU(&c, b), "north=1");
	CHECK(mbedtls_x509_crt_check_extended_key_usage(&c,
	        MBEDTLS_OID_CLIENT_AUTH,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) == 0);
	CHECK(mbedtls_x509_crt_check_extended_key_usage(&c,
	        MBEDTLS_OID_SERVER_AUTH,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0);
	CHECK(!(c.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME));
	CHECK(verify(&c, &cac, NULL) == 0);
	/* About an hour of validity. */
	CHECK(c.valid_to.hour != c.valid_from.hour ||
	      c.valid_to.day != c.valid_from.day);
	/* Same CN again: a new key and serial. */
	CHECK(fs_pki__issue(&cli2, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT,
	                    "Doe, Jane", NULL, NULL, 0, 3600, &e) == 0);
	CHECK(strcmp(cli.serial, cli2.serial) != 0);
	CHECK(strcmp(cli.key_pem, cli2.key_pem) != 0);

	/* Already expired. */
	CHECK(fs_pki__issue(&old, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT,
	                    "old", NULL, NULL, -7200, -3600, &e) == 0);
	CHECK(parse(&o, old.cert_pem) == 0);
	CHECK(verify(&o, &cac, NULL) == MBEDTLS_X509_BADCERT_EXPIRED);

	/* Refusals leave *out zeroed. */
	CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem, 3, "x", NULL, NULL,
	                    0, 60, &e) == FS_EINVALID);
	CHECK(bad.cert_pem == NULL && bad.key_pem == NULL && !bad.serial[0]);
	CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT, "",
	                    NULL, NULL, 0, 60, &e) == FS_EINVALID);
	CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT,
	                    "a\\b", NULL, NULL, 0, 60, &e) == FS_EINVALID);
	CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT,
	                    "x", "line\nbreak", NULL, 0, 60, &e) == FS_EINVALID);
	CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT,
	                    "0123456789012345678901234567890123456789"
	                    "01234567890123456789012345", NULL, NULL, 0, 60,
	                    &e) == FS_EINVALID);
	CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem, FS_PKI_CLIENT, "x",
	                    NULL, NULL, 60, 60, &e) == FS_EINVALID);
	CHECK(strstr(e.msg, "expire") != NULL);
	{
		static const char *const bad_san[] = { "has space", NULL };
		CHECK(fs_pki__issue(&bad, ca.cert_pem, ca.key_pem,
		                    FS_PKI_SERVER, "x", NULL, bad_san, 0, 60,
		                    &e) == FS_EINVALID);
	}
	/* Wrong or damaged CA material. */
	CHECK(fs_pki__issue(&bad, ca.cert_pem, other.key_pem, FS_PKI_CLIENT,
	                    "x", NULL, NULL, 0, 60, &e) == FS_ECORRUPT);
	CHECK(strstr(e.msg, "does not belong") != NULL);
	CHECK(fs_pki__issue(&bad, "not a certificate", ca.key_pem,
	                    FS_PKI_CLIENT, "x", NULL, NULL, 0, 60,
	                    &e) == FS_ECORRUPT);
	CHECK(fs_pki__issue(&bad, ca.cert_pem, "not a key", FS_PKI_CLIENT,
	                    "x", NULL, NULL, 0, 60, &e) == FS_ECORRUPT);
	/* An end-entity certificate cannot issue. */
	CHECK(fs_pki__issue(&bad, cli.cert_pem, cli.key_pem, FS_PKI_CLIENT,
	                    "x", NULL, NULL, 0, 60, &e) == FS_EINVALID);
	CHECK(bad.cert_pem == NULL && bad.key_pem == NULL);

	mbedtls_x509_crt_free(&cac);
	mbedtls_x509_crt_free(&otherc);
	mbedtls_x509_crt_free(&s);
	mbedtls_x509_crt_free(&c);
	mbedtls_x509_crt_free(&o);
	fs_pki__cert_free(&ca);
	fs_pki__cert_free(&other);
	fs_pki__cert_free(&srv);
	fs_pki__cert_free(&cli);
	fs_pki__cert_free(&cli2);
	fs_pki__cert_free(&old);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_files(void)
{
	char dir[] = "/tmp/fs-test-pki-XXXXXX";
	char path[128], big_path[128], bad_path[160];
	fs_err e = { 0, "" };
	struct stat st;
	char *text = NULL, *big;
	size_t big_len = ((size_t)1 << 20) + 1;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	snprintf(big_path, sizeof(big_path), "%s/big", dir);
	snprintf(bad_path, sizeof(bad_path), "%s/missing/key.pem", dir);

	CHECK(fs_pki__write_file(path, "secret\n", 0600, &e) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(fs_pki__read_file(&text, path, &e) == 0);
	CHECK_STR(text, "secret\n");
	free(text);

	/* Replacing keeps one file and takes the new mode. */
	CHECK(fs_pki__write_file(path, "public\n", 0644, &e) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	CHECK(fs_pki__read_file(&text, path, &e) == 0);
	CHECK_STR(text, "public\n");
	free(text);
	CHECK(count_entries(dir) == 1);

	/* Empty file. */
	CHECK(fs_pki__write_file(path, "", 0600, &e) == 0);
	CHECK(fs_pki__read_file(&text, path, &e) == 0);
	CHECK_STR(text, "");
	free(text);

	CHECK(fs_pki__read_file(&text, bad_path, &e) == FS_ENOTFOUND);
	CHECK(text == NULL);
	CHECK(strstr(e.msg, "missing/key.pem") != NULL);
	CHECK(fs_pki__write_file(bad_path, "x", 0600, &e) == FS_ERROR);
	CHECK(count_entries(dir) == 1);

	/* Exactly 1 MiB is fine, one byte more is not. */
	big = malloc(big_len + 1);
	CHECK(big != NULL);
	if (big) {
		memset(big, 'a', big_len);
		big[big_len - 1] = '\0';
		CHECK(fs_pki__write_file(big_path, big, 0600, &e) == 0);
		CHECK(fs_pki__read_file(&text, big_path, &e) == 0);
		CHECK(text && strlen(text) == big_len - 1);
		free(text);
		big[big_len - 1] = 'a';
		big[big_len] = '\0';
		CHECK(fs_pki__write_file(big_path, big, 0600, &e) == 0);
		CHECK(fs_pki__read_file(&text, big_path, &e) == FS_EINVALID);
		CHECK(text == NULL);
		free(big);
	}
	unlink(big_path);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_ca();
	test_issue();
	test_files();
	return CHECK_EXIT();
}
