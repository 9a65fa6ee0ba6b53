/*
 * fuzz_http.c - libFuzzer target for fanq-sse's request-head parser
 * (examples/http.c): the code that reads what untrusted clients send.
 *
 * The input is the bytes a client sends, cut at HTTP_HEAD_MAX as
 * fanq-sse cuts them.  Checked:
 *  - http_head_end() finds the first blank line: it gives the same end
 *    for every prefix that holds it and 0 for the prefix one byte short;
 *  - http_parse_head() gets exactly the head, in a buffer of exactly
 *    that size (ASan catches a read past it), and returns 0, 400, 413 or
 *    501; on 0 every string it gives is NUL-terminated inside the buffer
 *    (or the empty literal), the method is a token, the path starts with
 *    '/', and Content-Length is within the limit;
 *  - http_query_param() with the keys and buffer sizes fanq-sse uses,
 *    and a few more: a found value fits, holds no '&', and is what the
 *    query says.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/http.h"

#define BODY_MAX (1u << 20) /* fanq-sse's default --body-max */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void fz_fail(const char *what)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	abort();
}

/* s is "" (a literal) or a string that ends inside buf[0..len). */
static void check_string(const char *s, const char *buf, size_t len,
			 const char *what)
{
	if (s && *s == '\0' && (s < buf || s >= buf + len))
		return;
	if (!s || s < buf || s >= buf + len || !memchr(s, '\0', len - (size_t)(s - buf)))
		fz_fail(what);
}

static void check_params(const struct http_req *req)
{
	static const char *const keys[] = {"channel", "policy", "priority", "",
					   "c", "channel="};
	static const size_t caps[] = {1, 2, 16, 256, 4096};
	char out[4096];

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
			int n = http_query_param(req, keys[k], out, caps[c]);

			if (n == HTTP_PARAM_ABSENT || n == HTTP_PARAM_TOO_LONG)
				continue;
			if (n < 0 || (size_t)n >= caps[c] || strlen(out) != (size_t)n ||
			    memchr(out, '&', (size_t)n) || !strstr(req->query, out))
				fz_fail("http_query_param gave a bad value");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t len = size < HTTP_HEAD_MAX ? size : HTTP_HEAD_MAX;
	size_t end = http_head_end(in, len);
	struct http_req req;
	char *head;
	int rc;

	if (!end)
		return 0;
	if (end > len || http_head_end(in, end) != end ||
	    http_head_end(in, end - 1) != 0)
		fz_fail("http_head_end is not the first blank line");
	head = malloc(end);
	if (!head)
		return 0;
	memcpy(head, in, end);
	rc = http_parse_head(head, end, BODY_MAX, &req);
	if (rc != 0 && rc != 400 && rc != 413 && rc != 501)
		fz_fail("http_parse_head returned an unexpected status");
	if (!http_reason(rc ? rc : 200))
		fz_fail("http_reason returned NULL");
	if (rc == 0) {
		if (!req.method[0] || !memchr(req.method, '\0', sizeof(req.method)))
			fz_fail("bad method");
		for (const char *m = req.method; *m; m++)
			if ((unsigned char)*m <= ' ' || *m == 0x7f)
				fz_fail("method is not a token");
		check_string(req.path, head, end, "path");
		check_string(req.query, head, end, "query");
		check_string(req.user_agent, head, end, "user agent");
		if (req.path[0] != '/')
			fz_fail("path does not start with '/'");
		if (req.content_length > BODY_MAX)
			fz_fail("Content-Length over the limit accepted");
		check_params(&req);
	}
	free(head);
	return 0;
}
