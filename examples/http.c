/*
 * http.c - request-head parsing for fanq-sse (see http.h).
 *
 * Strict where a lenient reading could be exploited (one space between
 * request-line parts, token header names, digits-only Content-Length, no
 * line folding, no chunked bodies), lenient about LF without CR.
 */
#include "http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar; header names and methods are made of these. */
static int _is_tchar(int c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

size_t http_head_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Cut the line starting at *pos: NUL its end, advance *pos past it. */
static char *_next_line(char *buf, size_t len, size_t *pos)
{
	char *line = buf + *pos;
	char *nl = memchr(line, '\n', len - *pos);

	if (!nl)
		return NULL;
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	*pos = (size_t)(nl - buf) + 1;
	return line;
}

/* "GET /path?q HTTP/1.1": exactly three parts, one space apart. */
static int _parse_request_line(char *line, struct http_req *req)
{
	char *target = strchr(line, ' ');
	char *version, *q;
	size_t mlen, i;

	if (!target)
		return 400;
	mlen = (size_t)(target - line);
	if (mlen == 0 || mlen >= sizeof(req->method))
		return 400;
	for (i = 0; i < mlen; i++)
		if (!_is_tchar((unsigned char)line[i]))
			return 400;
	memcpy(req->method, line, mlen);
	req->method[mlen] = '\0';
	*target++ = '\0';
	version = strchr(target, ' ');
	if (!version || target[0] != '/')
		return 400;
	*version++ = '\0';
	if (strcmp(version, "HTTP/1.1") && strcmp(version, "HTTP/1.0"))
		return 400;
	for (i = 0; target[i]; i++)
		if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f)
			return 400;
	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	req->path = target;
	req->query = q ? q : "";
	return 0;
}

/* Digits only, at most max (413 above, 400 if malformed). */
static int _parse_content_length(const char *v, size_t max, size_t *out)
{
	size_t n = 0;

	if (!*v)
		return 400;
	for (; *v; v++) {
		if (!isdigit((unsigned char)*v))
			return 400;
		n = n * 10 + (size_t)(*v - '0');
		if (n > max)
			return 413;
	}
	*out = n;
	return 0;
}

static int _parse_header(char *line, size_t body_max, struct http_req *req,
			 int *seen_length)
{
	char *colon = strchr(line, ':');
	char *v, *end;
	char *p;
	size_t len;
	int rc;

	if (!colon || colon == line)
		return 400;
	for (p = line; p < colon; p++)
		if (!_is_tchar((unsigned char)*p))
			return 400;
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (!strcasecmp(line, "Transfer-Encoding"))
		return 501;
	if (!strcasecmp(line, "User-Agent"))
		req->user_agent = v;
	if (!strcasecmp(line, "Last-Event-ID"))
		req->last_event_id = v;
	if (strcasecmp(line, "Content-Length"))
		return 0;
	rc = _parse_content_length(v, body_max, &len);
	if (rc)
		return rc;
	if (*seen_length && len != req->content_length)
		return 400;
	*seen_length = 1;
	req->content_length = len;
	return 0;
}

int http_parse_head(char *buf, size_t head_len, size_t body_max,
		    struct http_req *req)
{
	size_t pos = 0;
	int seen_length = 0;
	char *line;
	int rc;

	memset(req, 0, sizeof(*req));
	req->user_agent = "";
	req->last_event_id = "";
	line = _next_line(buf, head_len, &pos);
	if (!line)
		return 400;
	rc = _parse_request_line(line, req);
	while (!rc && (line = _next_line(buf, head_len, &pos)) && *line) {
		if (*line == ' ' || *line == '\t') /* obsolete line folding */
			return 400;
		rc = _parse_header(line, body_max, req, &seen_length);
	}
	return rc;
}

int http_query_param(const struct http_req *req, const char *key, char *out,
		     size_t cap)
{
	size_t klen = strlen(key);
	const char *p = req->query;

	while (*p) {
		size_t plen = strcspn(p, "&");

		if (plen > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			size_t vlen = plen - klen - 1;

			if (vlen >= cap)
				return HTTP_PARAM_TOO_LONG;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = '\0';
			return (int)vlen;
		}
		p += plen + (p[plen] == '&');
	}
	return HTTP_PARAM_ABSENT;
}

static int _hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int http_percent_decode(char *s)
{
	char *out = s;

	for (; *s; s++) {
		int hi, lo;

		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		hi = _hex((unsigned char)s[1]);
		lo = hi < 0 ? -1 : _hex((unsigned char)s[2]);
		if (lo < 0 || (hi | lo) == 0)
			return -1;
		*out++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*out = '\0';
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}
