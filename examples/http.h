/*
 * http.h - the small part of HTTP/1.1 that fanq-sse speaks.
 *
 * Requests are parsed in place from one buffer that holds the whole head
 * (request line and headers, at most HTTP_HEAD_MAX bytes).  Every function
 * here is pure: any thread may call it on buffers it owns.
 */
#ifndef FANQ_EXAMPLES_HTTP_H
#define FANQ_EXAMPLES_HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX 8192u       /* request line + headers: else 431 */

struct http_req {
	char method[8];         /* "GET", "POST", ... */
	const char *path;       /* "/events"; points into the head buffer */
	const char *query;      /* after '?', "" when none */
	const char *user_agent; /* "" when absent */
	const char *last_event_id; /* the Last-Event-ID header, "" when absent */
	size_t content_length;  /* 0 when absent */
};

/*
 * Length of the head in buf[0..len), blank line included, or 0 while it
 * is incomplete.  Lines may end in CRLF or LF.
 */
size_t http_head_end(const char *buf, size_t len);

/*
 * Parse a complete head of head_len bytes (from http_head_end()), writing
 * NULs into it; req points into buf afterwards.  Returns 0, or the HTTP
 * status to answer with: 400 (malformed), 413 (Content-Length over
 * body_max), 501 (Transfer-Encoding).
 */
int http_parse_head(char *buf, size_t head_len, size_t body_max,
		    struct http_req *req);

/*
 * Copy the value of query parameter key into out (NUL-terminated, not
 * percent-decoded).  Returns its length, HTTP_PARAM_ABSENT, or
 * HTTP_PARAM_TOO_LONG when it does not fit in cap - 1 bytes.
 */
#define HTTP_PARAM_ABSENT (-1)
#define HTTP_PARAM_TOO_LONG (-2)
int http_query_param(const struct http_req *req, const char *key, char *out,
		     size_t cap);

/*
 * Decode %XX escapes in s in place (a parameter value from
 * http_query_param()).  Returns 0, or -1 for a malformed escape or one
 * that decodes to NUL.
 */
int http_percent_decode(char *s);

/* "Not Found" for 404, ...; "Error" for a status it does not know. */
const char *http_reason(int status);

#endif /* FANQ_EXAMPLES_HTTP_H */
