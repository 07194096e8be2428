/*
** json_read.c -- reading the members of a flat JSON object in one pass.
**
** A record travels as one JSON object of its fields (docs/protocol.md,
** entries `I`).  Applying one through SQLite's json_extract() cost three
** times the plain INSERT it feeds (tools/bench/apply_bench, BENCHMARKS.md):
** one lookup and one value copy per column.  This scanner walks the object
** once and hands each member to a callback already typed, so the caller
** binds it straight to a prepared statement.
**
** It accepts exactly RFC 8259 JSON for the top-level object; member values
** that are objects or arrays are checked for balance and handed over as
** their JSON text (what json_extract() returns for them).  Strings are
** unescaped (\uXXXX and surrogate pairs to UTF-8).  Anything else is
** FS_ECORRUPT with the byte offset.
*/
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fieldsync.h"

typedef struct scan {
	const char *p, *start, *end;
	fs_err *e;
} scan;

static int bad(scan *s, const char *what)
{
	return fs_err__set(s->e, FS_ECORRUPT, "malformed JSON at byte %ld: %s",
	                   (long)(s->p - s->start), what);
}

static void ws(scan *s)
{
	/* Usually there is none: one test for the common case. */
	while (s->p < s->end && (unsigned char)*s->p <= ' ' &&
	       (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
	        *s->p == '\r'))
		s->p++;
}

static int hex4(scan *s, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (s->end - s->p < 4)
		return bad(s, "short \\u escape");
	for (i = 0; i < 4; i++) {
		char c = s->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return bad(s, "bad \\u escape");
	}
	s->p += 4;
	*out = v;
	return 0;
}

static void utf8(fs_buf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	fs_buf_put(b, u, n);
}

static int string(scan *s, fs_buf *b);

/* A string at s->p (the opening quote).  Without escapes, *view and
** *vlen point into the input (no copy); otherwise it is unescaped into b
** (cleared), NUL-terminated, and *view = b->ptr. */
static int string_view(scan *s, fs_buf *b, const char **view, size_t *vlen)
{
	const char *from = s->p + 1, *q = from;

	/* One test per byte for the bytes a plain string is made of: the
	** quote (0x22), the backslash (0x5C) and controls are all below
	** 0x23 or equal to 0x5C.  (Eight bytes at a time was tried: most
	** keys and values are shorter than a word, and it cost more.) */
	while (q < s->end && ((unsigned char)*q > '"' ? *q != '\\'
	                                              : *q == ' ' || *q == '!'))
		q++;
	if (q < s->end && *q == '"') {
		*view = from;
		*vlen = (size_t)(q - from);
		s->p = q + 1;
		return 0;
	}
	if (string(s, b) < 0)
		return s->e->code;
	*view = b->ptr ? b->ptr : "";
	*vlen = b->len;
	return 0;
}

/* A string at s->p (the opening quote), unescaped into b (cleared). */
static int string(scan *s, fs_buf *b)
{
	const char *run;

	fs_buf_clear(b);
	s->p++;
	run = s->p;
	for (;;) {
		unsigned char c;
		if (s->p >= s->end)
			return bad(s, "unterminated string");
		c = (unsigned char)*s->p;
		if (c == '"')
			break;
		if (c < 0x20)
			return bad(s, "control character in a string");
		if (c != '\\') {
			s->p++;
			continue;
		}
		fs_buf_put(b, run, (size_t)(s->p - run));
		s->p++;
		if (s->p >= s->end)
			return bad(s, "unterminated escape");
		switch (*s->p++) {
		case '"':  fs_buf_putc(b, '"'); break;
		case '\\': fs_buf_putc(b, '\\'); break;
		case '/':  fs_buf_putc(b, '/'); break;
		case 'b':  fs_buf_putc(b, '\b'); break;
		case 'f':  fs_buf_putc(b, '\f'); break;
		case 'n':  fs_buf_putc(b, '\n'); break;
		case 'r':  fs_buf_putc(b, '\r'); break;
		case 't':  fs_buf_putc(b, '\t'); break;
		case 'u': {
			unsigned cp, lo;
			if (hex4(s, &cp) < 0)
				return s->e->code;
			if (cp >= 0xD800 && cp < 0xDC00) {
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
					return bad(s, "lone surrogate");
				s->p += 2;
				if (hex4(s, &lo) < 0)
					return s->e->code;
				if (lo < 0xDC00 || lo >= 0xE000)
					return bad(s, "lone surrogate");
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp < 0xE000) {
				return bad(s, "lone surrogate");
			}
			utf8(b, cp);
			break;
		}
		default:
			s->p--;
			return bad(s, "unknown escape");
		}
		run = s->p;
	}
	fs_buf_put(b, run, (size_t)(s->p - run));
	s->p++;
	if (fs_buf_putc(b, '\0') < 0)
		return fs_err__set(s->e, FS_ERROR, "out of memory reading JSON");
	b->len--;
	return 0;
}

static int digits(scan *s)
{
	const char *from = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > from ? 0 : bad(s, "digit expected");
}

/* A number at s->p: an integer when it has no fraction or exponent and
** fits in 64 bits, a real otherwise. */
static int number(scan *s, fs_json_member *m)
{
	const char *from = s->p;
	char tmp[64], *endp;
	size_t n;
	int real = 0;

	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s) < 0)
		return s->e->code;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		real = 1;
		if (digits(s) < 0)
			return s->e->code;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		real = 1;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) < 0)
			return s->e->code;
	}
	n = (size_t)(s->p - from);
	if (n >= sizeof(tmp))
		real = 1;   /* too long for an int64 anyway */
	m->val = from;
	m->vlen = n;
	if (!real && n - (*from == '-') <= 18) {
		/* Up to 18 digits cannot overflow: no strtoll (and no copy). */
		const char *d = from + (*from == '-');
		int64_t v = 0;
		while (d < s->p)
			v = v * 10 + (*d++ - '0');
		m->i = *from == '-' ? -v : v;
		m->type = FS_JSON_INT;
		return 0;
	}
	if (!real) {
		memcpy(tmp, from, n);
		tmp[n] = '\0';
		errno = 0;
		m->i = strtoll(tmp, &endp, 10);
		if (errno == 0 && *endp == '\0') {
			m->type = FS_JSON_INT;
			return 0;
		}
	}
	{
		/* strtod wants a terminated string: the stack unless it is long. */
		char *text = n < sizeof(tmp) ? tmp : malloc(n + 1);
		if (!text)
			return fs_err__set(s->e, FS_ERROR, "out of memory reading JSON");
		memcpy(text, from, n);
		text[n] = '\0';
		m->d = strtod(text, NULL);
		if (text != tmp)
			free(text);
	}
	m->type = FS_JSON_REAL;
	return 0;
}

/* Skips a nested object or array, checking it is well formed. */
static int nested(scan *s, fs_buf *tmp, int depth)
{
	char close = *s->p == '{' ? '}' : ']';
	int first = 1;

	if (depth > 64)
		return bad(s, "nested too deeply");
	s->p++;
	for (;;) {
		ws(s);
		if (s->p >= s->end)
			return bad(s, "unterminated object or array");
		if (*s->p == close && first) {
			s->p++;
			return 0;
		}
		if (close == '}') {
			if (*s->p != '"')
				return bad(s, "member name expected");
			if (string(s, tmp) < 0)
				return s->e->code;
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				return bad(s, "':' expected");
			s->p++;
			ws(s);
		}
		if (s->p >= s->end)
			return bad(s, "value expected");
		if (*s->p == '{' || *s->p == '[') {
			if (nested(s, tmp, depth + 1) < 0)
				return s->e->code;
		} else if (*s->p == '"') {
			if (string(s, tmp) < 0)
				return s->e->code;
		} else {
			fs_json_member m;
			if (fs_json__scalar(&m, &s->p, s->end, tmp, s->e) < 0)
				return s->e->code;
		}
		ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			first = 0;
			continue;
		}
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return 0;
		}
		return bad(s, "',' or end expected");
	}
}

int fs_json__scalar(fs_json_member *m, const char **pp, const char *end,
                    fs_buf *text, fs_err *e)
{
	scan s;

	s.p = *pp;
	s.start = *pp;
	s.end = end;
	s.e = e;
	m->val = NULL;
	m->vlen = 0;
	if (s.p >= s.end)
		return bad(&s, "value expected");
	if (*s.p == '"') {
		if (string_view(&s, text, &m->val, &m->vlen) < 0)
			return e->code;
		m->type = FS_JSON_TEXT;
		m->copied = m->val == text->ptr;
	} else if (*s.p == '-' || (*s.p >= '0' && *s.p <= '9')) {
		if (number(&s, m) < 0)
			return e->code;
	} else if (s.end - s.p >= 4 && !memcmp(s.p, "null", 4)) {
		m->type = FS_JSON_NULL;
		s.p += 4;
	} else if (s.end - s.p >= 4 && !memcmp(s.p, "true", 4)) {
		m->type = FS_JSON_INT;
		m->i = 1;
		s.p += 4;
	} else if (s.end - s.p >= 5 && !memcmp(s.p, "false", 5)) {
		m->type = FS_JSON_INT;
		m->i = 0;
		s.p += 5;
	} else {
		return bad(&s, "value expected");
	}
	*pp = s.p;
	return 0;
}

int fs_json__object_each(const char *json, size_t len, fs_json_member_cb cb,
                         void *payload, fs_err *e)
{
	fs_buf key = FS_BUF_INIT, val = FS_BUF_INIT;
	fs_json_member m;
	scan s;
	int rc = 0, first = 1;

	s.start = s.p = json;
	s.end = json + len;
	s.e = e;
	ws(&s);
	if (s.p >= s.end || *s.p != '{') {
		rc = bad(&s, "an object expected");
		goto done;
	}
	s.p++;
	for (;;) {
		ws(&s);
		if (first && s.p < s.end && *s.p == '}') {
			s.p++;
			break;
		}
		if (s.p >= s.end || *s.p != '"') {
			rc = bad(&s, "member name expected");
			goto done;
		}
		if ((rc = string_view(&s, &key, &m.key, &m.klen)) < 0)
			goto done;
		ws(&s);
		if (s.p >= s.end || *s.p != ':') {
			rc = bad(&s, "':' expected");
			goto done;
		}
		s.p++;
		ws(&s);
		{
			const char *k = m.key;
			size_t kl = m.klen;
			memset(&m, 0, sizeof(m));
			m.key = k;
			m.klen = kl;
		}
		if (s.p < s.end && (*s.p == '{' || *s.p == '[')) {
			const char *from = s.p;
			if ((rc = nested(&s, &val, 0)) < 0)
				goto done;
			m.type = FS_JSON_NESTED;
			m.val = from;
			m.vlen = (size_t)(s.p - from);
		} else {
			const char *at = s.p;
			if ((rc = fs_json__scalar(&m, &s.p, s.end, &val, e)) < 0) {
				fs_err__set(e, rc, "malformed JSON at byte %ld: %s",
				            (long)(at - s.start) , "bad value");
				goto done;
			}
		}
		if ((rc = cb(payload, &m)) != 0)
			goto done;
		ws(&s);
		first = 0;
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			continue;
		}
		if (s.p < s.end && *s.p == '}') {
			s.p++;
			break;
		}
		rc = bad(&s, "',' or '}' expected");
		goto done;
	}
	ws(&s);
	if (s.p != s.end)
		rc = bad(&s, "text after the object");
done:
	fs_buf_free(&key);
	fs_buf_free(&val);
	return rc;
}

char *fs_json__member_text(const fs_json_member *m, int *oom)
{
	char *s;

	if (m->type == FS_JSON_NULL)
		return NULL;
	if (!m->val) {
		/* true and false carry no text: 1 and 0, as json_extract() */
		char num[24];
		snprintf(num, sizeof(num), "%lld", (long long)m->i);
		s = strdup(num);
	} else if ((s = malloc(m->vlen + 1)) != NULL) {
		memcpy(s, m->val, m->vlen);
		s[m->vlen] = '\0';
	}
	if (!s)
		*oom = 1;
	return s;
}
