/*
 * sse-worker.c - one I/O thread of fanq-sse: an epoll loop that accepts
 * connections, parses their requests, answers them, and streams /events
 * subscribers from its fanq_group with writev().
 *
 * Everything here runs in the worker's own thread unless its comment says
 * otherwise.  Epoll is level-triggered; EPOLLOUT is asked for only while
 * a connection has bytes it could not write.
 */
#include "sse.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_TIMEOUT_MS 5000   /* for the head, each body read, the response */
#define LINGER_MS 2000         /* after answering, wait this long for EOF */
#define SCAN_MS 1000           /* timers are checked this often */
#define SSE_IOV 64             /* iovecs per writev */
#define SSE_WRITE_BYTES (256u << 10) /* bytes per writev, about */
#define SSE_ROUNDS 8           /* writevs per turn, for fairness */
#define ACCEPTS_PER_EVENT 64

enum conn_state {
	CONN_HEAD,    /* reading the request head */
	CONN_BODY,    /* reading a POST body */
	CONN_RESPOND, /* writing a whole response, then CONN_LINGER */
	CONN_LINGER,  /* response sent and write side shut; reading to EOF */
	CONN_SSE,     /* streaming /events */
};

struct conn {
	struct worker *w;
	int fd;
	enum conn_state state;
	bool dead, want_out;
	struct conn *prev, *next; /* w->conns, or w->dead once dead */
	struct conn *hnext;       /* w->by_sub bucket */
	int64_t deadline_ms;      /* timeout (fanq times CONN_SSE keepalives) */
	char *head;               /* HTTP_HEAD_MAX bytes while reading it */
	size_t head_len, head_end;
	struct http_req req;
	char *body;
	size_t body_got;
	char *out;                /* pending bytes: response, SSE head, ... */
	size_t out_len, out_off;
	fanq_sub *sub;            /* CONN_SSE */
	fanq_channel *chans[SSE_SUB_CHANNELS_MAX];
	unsigned nchans;
	char peer[INET6_ADDRSTRLEN + 8];
};

/* Tags that tell epoll events of the listener and the eventfds apart. */
static char _tag_listen, _tag_stop, _tag_group;

static int64_t _now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void _conn_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* CONN_SSE listens for EOF always; EPOLLOUT only while backlogged. */
static void _conn_want_out(struct conn *c, bool on)
{
	if (c->want_out == on)
		return;
	c->want_out = on;
	_conn_events(c, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0));
}

/* ------------------------------------------------- sub -> conn table */

static unsigned _sub_bucket(const fanq_sub *s)
{
	return (unsigned)(fanq_sub_id(s) % SSE_SUB_BUCKETS);
}

static void _sub_table_add(struct conn *c)
{
	struct conn **b = &c->w->by_sub[_sub_bucket(c->sub)];

	c->hnext = *b;
	*b = c;
}

static void _sub_table_del(struct conn *c)
{
	struct conn **p = &c->w->by_sub[_sub_bucket(c->sub)];

	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
}

static struct conn *_sub_table_find(struct worker *w, const fanq_sub *s)
{
	struct conn *c = w->by_sub[_sub_bucket(s)];

	while (c && c->sub != s)
		c = c->hnext;
	return c;
}

/* ------------------------------------------------------------ closing */

/* fanq folds the subscriber's counts into its bus totals (/metrics). */
static void _conn_finish_sub(struct conn *c)
{
	_sub_table_del(c);
	fanq_sub_close(c->sub);
	c->sub = NULL;
	atomic_fetch_sub(&c->w->srv->connections, 1);
}

/* Close now; the memory lives until the current epoll batch is done. */
static void _conn_close(struct conn *c)
{
	struct worker *w = c->w;

	if (c->dead)
		return;
	c->dead = true;
	close(c->fd);
	if (c->sub)
		_conn_finish_sub(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = w->dead;
	w->dead = c;
}

/* Log characters of a client string that cannot break a log line. */
static void _log_safe(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"')
			*s = '?';
}

/* A fanq health rule evicted c's subscriber: say who and why, and close. */
static void _conn_close_evicted(struct conn *c, enum fanq_evict_reason why)
{
	const char *ua = fanq_sub_meta(c->sub, "ua");
	char safe_ua[128];

	snprintf(safe_ua, sizeof(safe_ua), "%s", ua ? ua : "");
	_log_safe(safe_ua);
	fprintf(stderr, "fanq-sse: closing %s ua=\"%s\": evicted by rule %s\n",
		c->peer, safe_ua, fanq_evict_reason_name(why));
	_conn_close(c);
}

/* Closes c if its subscriber was evicted; returns true then. */
static bool _conn_evicted(struct conn *c)
{
	enum fanq_evict_reason why;

	if (fanq_sub_evicted(c->sub, &why) != 1)
		return false;
	_conn_close_evicted(c, why);
	return true;
}

static void _conn_free(struct conn *c)
{
	free(c->head);
	free(c->body);
	free(c->out);
	free(c);
}

static void _worker_reap(struct worker *w)
{
	while (w->dead) {
		struct conn *c = w->dead;

		w->dead = c->next;
		_conn_free(c);
	}
}

/* ------------------------------------------------------------ writing */

static ssize_t _send_iov(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return w;
}

/* Write c->out.  Returns 1 once it is all written, 0 if not yet (or closed). */
static int _out_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		struct iovec iov = { c->out + c->out_off, c->out_len - c->out_off };
		ssize_t n = _send_iov(c->fd, &iov, 1);

		if (n < 0) {
			_conn_close(c);
			return 0;
		}
		if (n == 0)
			return 0;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 1;
}

/* Answer written: shut our side and read until the peer closes. */
static void _conn_linger(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->state = CONN_LINGER;
	c->deadline_ms = _now_ms() + LINGER_MS;
	_conn_events(c, EPOLLIN | EPOLLRDHUP);
}

static void _respond_flush(struct conn *c)
{
	if (_out_flush(c))
		_conn_linger(c);
}

/* Take ownership of out (len bytes) as the whole response and send it. */
static void _respond_raw(struct conn *c, char *out, size_t len)
{
	free(c->head);
	c->head = NULL;
	free(c->body);
	c->body = NULL;
	if (!out) {
		_conn_close(c);
		return;
	}
	c->out = out;
	c->out_len = len;
	c->out_off = 0;
	c->state = CONN_RESPOND;
	c->deadline_ms = _now_ms() + HEAD_TIMEOUT_MS;
	_conn_events(c, EPOLLOUT);
	_respond_flush(c);
}

static void _respond(struct conn *c, int status, const char *ctype,
		     const char *extra, const char *body, size_t body_len)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f) {
		_conn_close(c);
		return;
	}
	fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
		status, http_reason(status), ctype, body_len, extra);
	fwrite(body, 1, body_len, f);
	if (fclose(f)) {
		free(out);
		out = NULL;
	}
	_respond_raw(c, out, len);
}

static void _respond_error(struct conn *c, int status, const char *extra)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "%d %s\n", status,
			 http_reason(status));

	_respond(c, status, "text/plain", extra, body, (size_t)n);
}

/*
 * Write what fits: the pending head or keepalive, then queue entries
 * straight from the subscriber.  Stops after SSE_ROUNDS writevs, leaving
 * EPOLLOUT on so the loop comes back: other connections get a turn.
 */
static void _sse_flush(struct conn *c)
{
	int round;

	if (!_out_flush(c)) {
		if (!c->dead)
			_conn_want_out(c, true);
		return;
	}
	for (round = 0; round < SSE_ROUNDS; round++) {
		struct iovec iov[SSE_IOV];
		size_t total = 0;
		ssize_t w;
		int i, n = fanq_sub_drain_iov(c->sub, iov, SSE_IOV, SSE_WRITE_BYTES);

		if (n == 0) {
			_conn_want_out(c, false);
			return;
		}
		if (n < 0) {
			if (!_conn_evicted(c))
				_conn_close(c);
			return;
		}
		for (i = 0; i < n; i++)
			total += iov[i].iov_len;
		w = _send_iov(c->fd, iov, n);
		fanq_sub_drain_commit(c->sub, w > 0 ? (size_t)w : 0);
		if (w < 0) {
			_conn_close(c);
			return;
		}
		if (w > 0) /* liveness for the idle rule; restarts heartbeats */
			fanq_sub_touch(c->sub);
		if ((size_t)w < total)
			break;
	}
	_conn_want_out(c, true);
}

/* ----------------------------------------------------------- /events */

/*
 * "id: news:42\n" before a message (58 bytes at most with our names); a
 * whole gap event before a GAP, short of its numbers if they would not
 * fit in cap (at least 128).
 */
static size_t _sse_prefix(void *arg, const fanq_entry *e, char *buf, size_t cap)
{
	const char *ch = fanq_channel_name(e->ch);
	int n;

	(void)arg;
	if (e->kind == FANQ_ENTRY_MSG)
		return (size_t)snprintf(buf, cap, "id: %s:%llu\n", ch,
					(unsigned long long)e->seq);
	n = snprintf(buf, cap, "event: fanq-gap\ndata: {\"channel\":"
		     "\"%s\",\"first\":%llu,\"last\":%llu,\"count\":%llu}\n",
		     ch, (unsigned long long)e->gap_first,
		     (unsigned long long)e->gap_last,
		     (unsigned long long)e->gap_count);
	if (n < 0 || (size_t)n >= cap)
		n = snprintf(buf, cap, "event: fanq-gap\ndata: {\"channel\":\"%s\"}\n",
			     ch);
	return (size_t)n;
}

/* Payloads are published as "data: ...\n" lines (see the POST handler). */
static const fanq_framer _sse_framer = {
	.prefix = _sse_prefix, .suffix = "\n", .suffix_len = 1,
};

static const char _sse_head[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	"Cache-Control: no-cache\r\nConnection: close\r\n"
	"X-Accel-Buffering: no\r\n\r\n";

/* Index of the channel named name in c->chans, or -1. */
static int _events_channel_index(const struct conn *c, const char *name)
{
	unsigned i;

	for (i = 0; i < c->nchans; i++)
		if (!strcmp(fanq_channel_name(c->chans[i]), name))
			return (int)i;
	return -1;
}

/*
 * Fill c->chans from "a,b,c" (a name repeated counts once).  Returns 0 or
 * an HTTP status.
 */
static int _events_channels(struct conn *c, char *list)
{
	char *save = NULL;
	char *name;

	for (name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		if (c->nchans == SSE_SUB_CHANNELS_MAX || !sse_channel_name_ok(name))
			return 400;
		if (_events_channel_index(c, name) >= 0)
			continue;
		if (sse_channel_get(c->w->srv, name, &c->chans[c->nchans]))
			return 503;
		c->nchans++;
	}
	return c->nchans ? 0 : 400;
}

/*
 * Where a reconnecting client left off, per channel of the request.  The
 * ids fanq-sse sends are "<channel>:<seq>"; a resume names one or more,
 * comma-joined ("a:5,b:7").  A browser's EventSource sends back only the
 * last id it saw, so for a stream of several channels it names one; the
 * others' positions are unknown (see _events_head()).
 */
struct resume {
	bool any;                             /* some id was given */
	bool known[SSE_SUB_CHANNELS_MAX];
	uint64_t after[SSE_SUB_CHANNELS_MAX]; /* last seq seen, if known */
};

/* Longest id list: every channel of a request with a 20-digit seq. */
#define SSE_RESUME_IDS_MAX \
	(SSE_SUB_CHANNELS_MAX * (SSE_CHANNEL_NAME_MAX + 22) + 1)

/* Record the positions "a:5,b:7" gives (in place).  0, or -1 if malformed. */
static int _resume_parse(const struct conn *c, char *ids, struct resume *r)
{
	char *save = NULL;
	char *item;

	for (item = strtok_r(ids, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		uint64_t seq;
		int i;

		if (!colon)
			return -1;
		*colon = '\0';
		if (!sse_channel_name_ok(item) ||
		    sse_parse_u64(colon + 1, 0, UINT64_MAX, &seq))
			return -1;
		r->any = true;
		i = _events_channel_index(c, item);
		if (i >= 0) { /* a channel not asked for now is ignored */
			r->known[i] = true;
			r->after[i] = seq;
		}
	}
	return 0;
}

/*
 * The lastEventId parameter (percent-encoded, for clients that cannot
 * set headers), then the Last-Event-ID header, which wins for the
 * channels both name: a browser reconnecting keeps the URL it was given
 * but sends the newest id in the header.  0, or -1 if malformed.
 */
static int _events_resume(const struct conn *c, struct resume *r)
{
	char ids[SSE_RESUME_IDS_MAX];
	int n = http_query_param(&c->req, "lastEventId", ids, sizeof(ids));

	memset(r, 0, sizeof(*r));
	if (n == HTTP_PARAM_TOO_LONG ||
	    (n >= 0 && (http_percent_decode(ids) || _resume_parse(c, ids, r))))
		return -1;
	if (strlen(c->req.last_event_id) >= sizeof(ids))
		return -1;
	strcpy(ids, c->req.last_event_id);
	return _resume_parse(c, ids, r);
}

/* Options, metadata and group first, then the channels (fanq.h order). */
static int _events_sub_setup(struct conn *c, fanq_sub *sub,
			     enum fanq_policy_kind policy,
			     const struct resume *r)
{
	const struct options *o = &c->w->srv->opt;
	unsigned i;
	int rc;

	/* the group gives it the --evict-* rules (fanq_group_set_health) */
	if ((rc = fanq_sub_set_limits(sub, o->queue_max, o->queue_bytes)) ||
	    (rc = fanq_sub_set_policy(sub, policy)) ||
	    (rc = fanq_sub_set_framer(sub, &_sse_framer)) ||
	    (rc = fanq_sub_set_meta(sub, "peer", c->peer)) ||
	    (rc = fanq_sub_set_meta(sub, "ua", c->req.user_agent)) ||
	    (rc = fanq_group_attach(c->w->group, sub)))
		return rc;
	for (i = 0; i < c->nchans; i++) {
		/* FANQ_ERANGE: subscribed; the GAP entry becomes a fanq-gap */
		if (r->known[i])
			rc = fanq_subscribe_after(sub, c->chans[i], r->after[i], NULL);
		else
			rc = fanq_subscribe(sub, c->chans[i]);
		if (rc && rc != FANQ_ERANGE)
			return rc;
	}
	return 0;
}

/*
 * The response head, then, when resuming, a fanq-gap without a range for
 * each channel whose position the ids did not give: the client must
 * resync it.  NULL when out of memory.
 */
static char *_events_head(const struct conn *c, const struct resume *r,
			  size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);
	unsigned i;

	if (!f)
		return NULL;
	fputs(_sse_head, f);
	for (i = 0; r->any && i < c->nchans; i++)
		if (!r->known[i])
			fprintf(f, "event: fanq-gap\ndata: {\"channel\":\"%s\"}\n\n",
				fanq_channel_name(c->chans[i]));
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

static int _events_policy(const struct conn *c, enum fanq_policy_kind *out)
{
	char buf[16];
	int n = http_query_param(&c->req, "policy", buf, sizeof(buf));

	*out = c->w->srv->opt.policy;
	if (n == HTTP_PARAM_ABSENT)
		return 0;
	return n < 0 ? -1 : sse_policy_parse(buf, out);
}

static void _events_start(struct conn *c)
{
	char list[SSE_SUB_CHANNELS_MAX * (SSE_CHANNEL_NAME_MAX + 1) + 1];
	enum fanq_policy_kind policy;
	struct resume r;
	fanq_sub *sub;
	int status;

	if (http_query_param(&c->req, "channel", list, sizeof(list)) < 0 ||
	    _events_policy(c, &policy)) {
		_respond_error(c, 400, "");
		return;
	}
	status = _events_channels(c, list);
	if (!status && _events_resume(c, &r))
		status = 400;
	if (status) {
		_respond_error(c, status, "");
		return;
	}
	if (fanq_sub_new(c->w->srv->bus, &sub)) {
		_respond_error(c, 503, "");
		return;
	}
	if (_events_sub_setup(c, sub, policy, &r)) {
		fanq_sub_close(sub);
		_respond_error(c, 503, "");
		return;
	}
	c->out = _events_head(c, &r, &c->out_len);
	if (!c->out) {
		fanq_sub_close(sub);
		_conn_close(c);
		return;
	}
	free(c->head);
	c->head = NULL;
	c->sub = sub;
	c->state = CONN_SSE;
	_sub_table_add(c);
	atomic_fetch_add(&c->w->srv->connections, 1);
	atomic_fetch_add(&c->w->srv->connections_total, 1);
	_sse_flush(c);
}

/*
 * fanq says when: nothing queued or half-written in fanq, nothing written
 * (fanq_sub_touch) for --keepalive.  Our own bytes pending: not idle.
 */
static void _sse_keepalive(struct conn *c)
{
	static const char ka[] = ": keepalive\n\n";
	int64_t every_ms = c->w->srv->opt.keepalive_ms;

	if (c->want_out || fanq_sub_heartbeat_due(c->sub, (uint64_t)every_ms * 1000000u) != 1)
		return;
	c->out = strdup(ka);
	c->out_len = c->out ? sizeof(ka) - 1 : 0;
	c->out_off = 0;
	_sse_flush(c);
}

/* ---------------------------------------------------------- /publish */

/*
 * Turn a body into SSE "data: <line>\n" lines (CRLF, LF or CR end a
 * line; a final line ending adds no empty line), so that it is framed
 * once here and every subscriber writes the same bytes.
 */
static char *_sse_data_lines(const char *body, size_t len, size_t *out_len)
{
	static const char tag[] = "data: ";
	size_t i, lines = 1, o = 0;
	char *out;

	for (i = 0; i < len; i++)
		lines += body[i] == '\n' || body[i] == '\r';
	out = malloc(len + lines * sizeof(tag));
	if (!out)
		return NULL;
	for (i = 0; i == 0 || i < len;) {
		memcpy(out + o, tag, sizeof(tag) - 1);
		o += sizeof(tag) - 1;
		while (i < len && body[i] != '\n' && body[i] != '\r')
			out[o++] = body[i++];
		out[o++] = '\n';
		if (i < len && body[i] == '\r' && i + 1 < len && body[i + 1] == '\n')
			i++;
		if (i < len)
			i++;
		if (i == len)
			break;
	}
	*out_len = o;
	return out;
}

static int _publish_priority(const struct conn *c, unsigned *prio)
{
	char buf[2];
	int n = http_query_param(&c->req, "priority", buf, sizeof(buf));

	*prio = 0;
	if (n == HTTP_PARAM_ABSENT)
		return 0;
	if (n != 1 || buf[0] < '0' || buf[0] >= '0' + FANQ_PRIO_LEVELS)
		return -1;
	*prio = (unsigned)(buf[0] - '0');
	return 0;
}

static void _publish_reply(struct conn *c, const fanq_publish_result *r)
{
	char body[160];
	int n = snprintf(body, sizeof(body),
			 "{\"seq\":%llu,\"accepted\":%u,\"dropped\":%u,"
			 "\"deferred\":%s}\n", (unsigned long long)r->seq,
			 r->accepted, r->dropped, r->deferred ? "true" : "false");

	_respond(c, 200, "application/json", "", body, (size_t)n);
}

static void _publish(struct conn *c)
{
	char name[SSE_CHANNEL_NAME_MAX + 1];
	fanq_publish_result res;
	fanq_channel *ch;
	unsigned prio;
	size_t len;
	char *data;
	int rc;

	if (http_query_param(&c->req, "channel", name, sizeof(name)) < 0 ||
	    !sse_channel_name_ok(name) || _publish_priority(c, &prio)) {
		_respond_error(c, 400, "");
		return;
	}
	if (sse_channel_get(c->w->srv, name, &ch)) {
		_respond_error(c, 503, "");
		return;
	}
	data = _sse_data_lines(c->body, c->req.content_length, &len);
	if (!data) {
		_respond_error(c, 503, "");
		return;
	}
	rc = fanq_publish(ch, data, len, prio, &res);
	free(data);
	if (rc) {
		_respond_error(c, rc == FANQ_EMSGSIZE ? 413 : 503, "");
		return;
	}
	atomic_fetch_add(&c->w->srv->publishes, 1);
	_publish_reply(c, &res);
}

/* Body bytes that came with the head, then read the rest. */
static void _publish_begin(struct conn *c)
{
	size_t have = c->head_len - c->head_end;
	size_t want = c->req.content_length;

	c->body = malloc(want ? want : 1);
	if (!c->body) {
		_respond_error(c, 503, "");
		return;
	}
	c->body_got = have < want ? have : want;
	memcpy(c->body, c->head + c->head_end, c->body_got);
	if (c->body_got == want) {
		_publish(c);
		return;
	}
	c->state = CONN_BODY;
	c->deadline_ms = _now_ms() + HEAD_TIMEOUT_MS;
}

/* ----------------------------------------------------------- /metrics */

/* /subscribers?top=N&by=depth|bytes|drops (default 10, depth). */
static int _subscribers_query(const struct conn *c, size_t *top, enum fanq_top_by *by)
{
	char buf[16];
	char *end;
	unsigned long v;
	int n = http_query_param(&c->req, "top", buf, sizeof(buf));

	*top = 10;
	*by = FANQ_TOP_DEPTH;
	if (n >= 0) {
		v = strtoul(buf, &end, 10);
		if (n == 0 || *end || v == 0 || v > SSE_TOP_MAX)
			return -1;
		*top = v;
	} else if (n != HTTP_PARAM_ABSENT) {
		return -1;
	}
	n = http_query_param(&c->req, "by", buf, sizeof(buf));
	if (n == HTTP_PARAM_ABSENT)
		return 0;
	if (n < 0)
		return -1;
	if (!strcmp(buf, "bytes"))
		*by = FANQ_TOP_BYTES;
	else if (!strcmp(buf, "drops"))
		*by = FANQ_TOP_DROPS;
	else if (strcmp(buf, "depth"))
		return -1;
	return 0;
}

/* GET /metrics (Prometheus text) or /subscribers (JSON), built in memory. */
static void _observe(struct conn *c, bool metrics)
{
	char *out = NULL;
	size_t len = 0, top = 0;
	enum fanq_top_by by = FANQ_TOP_DEPTH;
	FILE *f;

	if (!metrics && _subscribers_query(c, &top, &by)) {
		_respond_error(c, 400, "");
		return;
	}
	f = open_memstream(&out, &len);
	if (!f) {
		_respond_error(c, 503, "");
		return;
	}
	if (metrics)
		sse_metrics_write(c->w->srv, f);
	else
		sse_subscribers_write(c->w->srv, f, top, by);
	if (fclose(f)) {
		free(out);
		_respond_error(c, 503, "");
		return;
	}
	_respond(c, 200, metrics ? "text/plain; version=0.0.4" : "application/json",
		 "", out, len);
	free(out);
}

/* ------------------------------------------------------------ reading */

static void _route(struct conn *c)
{
	const char *path = c->req.path, *m = c->req.method;

	if (!strcmp(path, "/events")) {
		if (strcmp(m, "GET"))
			_respond_error(c, 405, "Allow: GET\r\n");
		else
			_events_start(c);
	} else if (!strcmp(path, "/publish")) {
		if (strcmp(m, "POST"))
			_respond_error(c, 405, "Allow: POST\r\n");
		else
			_publish_begin(c);
	} else if (!strcmp(path, "/metrics") || !strcmp(path, "/subscribers")) {
		if (strcmp(m, "GET"))
			_respond_error(c, 405, "Allow: GET\r\n");
		else
			_observe(c, !strcmp(path, "/metrics"));
	} else {
		_respond_error(c, 404, "");
	}
}

/* Read into buf; returns bytes, 0 for EOF or error (closed), -1 for EAGAIN. */
static ssize_t _read_some(struct conn *c, char *buf, size_t cap)
{
	ssize_t n = read(c->fd, buf, cap);

	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	_conn_close(c);
	return 0;
}

static void _read_head(struct conn *c)
{
	ssize_t n = _read_some(c, c->head + c->head_len,
			       HTTP_HEAD_MAX - c->head_len);
	int status;

	if (n <= 0)
		return;
	c->head_len += (size_t)n;
	c->head_end = http_head_end(c->head, c->head_len);
	if (!c->head_end) {
		if (c->head_len == HTTP_HEAD_MAX)
			_respond_error(c, 431, "");
		return;
	}
	status = http_parse_head(c->head, c->head_end, c->w->srv->opt.body_max,
				 &c->req);
	if (status)
		_respond_error(c, status, "");
	else
		_route(c);
}

static void _read_body(struct conn *c)
{
	ssize_t n = _read_some(c, c->body + c->body_got,
			       c->req.content_length - c->body_got);

	if (n <= 0)
		return;
	c->body_got += (size_t)n;
	c->deadline_ms = _now_ms() + HEAD_TIMEOUT_MS;
	if (c->body_got == c->req.content_length)
		_publish(c);
}

/* Bytes a client sends after its request are read and ignored. */
static void _read_discard(struct conn *c)
{
	char buf[4096];

	_read_some(c, buf, sizeof(buf));
}

static void _conn_event(struct conn *c, uint32_t ev)
{
	if (c->dead)
		return;
	if (ev & (EPOLLERR | EPOLLHUP)) { /* nothing more can be said or heard */
		_conn_close(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP)) {
		if (c->state == CONN_HEAD)
			_read_head(c);
		else if (c->state == CONN_BODY)
			_read_body(c);
		else if (c->state != CONN_RESPOND)
			_read_discard(c);
	}
	if (c->dead || !(ev & EPOLLOUT))
		return;
	if (c->state == CONN_RESPOND)
		_respond_flush(c);
	else if (c->state == CONN_SSE)
		_sse_flush(c);
}

/* ---------------------------------------------------------- accepting */

static void _peer_name(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 ip, port);
}

static void _conn_add(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

	if (c)
		c->head = malloc(HTTP_HEAD_MAX);
	ev.data.ptr = c;
	if (!c || !c->head || epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		if (c)
			_conn_free(c);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->state = CONN_HEAD;
	c->deadline_ms = _now_ms() + HEAD_TIMEOUT_MS;
	_peer_name(fd, c->peer, sizeof(c->peer));
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
}

static void _worker_accept(struct worker *w)
{
	int i;

	for (i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(w->srv->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		_conn_add(w, fd);
	}
}

/* -------------------------------------------------------------- loop */

/*
 * fanq_group_next_ready() resets the eventfd itself once the list is
 * empty.  A subscriber fanq evicted comes out here too: close it now,
 * even if its socket has our own bytes pending (no drain would run).
 */
static void _worker_group_ready(struct worker *w)
{
	fanq_sub *s;

	while (fanq_group_next_ready(w->group, &s) == 0) {
		struct conn *c = _sub_table_find(w, s);

		if (c && !_conn_evicted(c))
			_sse_flush(c);
	}
}

/* Slow or silent clients: head/body/linger deadlines, SSE keepalives. */
static void _worker_timers(struct worker *w, int64_t now)
{
	struct conn *c, *next;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_SSE) {
			if (!_conn_evicted(c))
				_sse_keepalive(c);
		} else if (now >= c->deadline_ms)
			_conn_close(c);
	}
}

static void _worker_dispatch(struct worker *w, struct epoll_event *ev)
{
	void *p = ev->data.ptr;

	if (p == &_tag_listen)
		_worker_accept(w);
	else if (p == &_tag_group)
		_worker_group_ready(w);
	else if (p != &_tag_stop)
		_conn_event(p, ev->events);
}

static void *_worker_main(void *arg)
{
	struct worker *w = arg;
	int64_t next_scan = _now_ms() + SCAN_MS;

	while (!atomic_load(&w->srv->stop)) {
		struct epoll_event evs[64];
		int i, n = epoll_wait(w->epfd, evs, 64, SCAN_MS);
		int64_t now;

		for (i = 0; i < n; i++)
			_worker_dispatch(w, &evs[i]);
		now = _now_ms();
		if (now >= next_scan) {
			_worker_timers(w, now);
			next_scan = now + SCAN_MS;
		}
		_worker_reap(w);
	}
	while (w->conns)
		_conn_close(w->conns);
	_worker_reap(w);
	return NULL;
}

static int _epoll_add(int epfd, int fd, uint32_t events, void *tag)
{
	struct epoll_event ev = { .events = events, .data.ptr = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * Release what worker_init() made.  Main thread, for a worker whose
 * thread is not running (never started, or joined).
 */
void worker_release(struct worker *w)
{
	if (w->group)
		fanq_group_close(w->group);
	if (w->stopfd >= 0)
		close(w->stopfd);
	if (w->epfd >= 0)
		close(w->epfd);
}

/*
 * Create the worker's epoll set, group and stop eventfd; no thread yet,
 * so that every worker is whole before any of them serves /metrics.
 * Main thread.  Returns 0 or -1 (the cause logged).
 */
int worker_init(struct worker *w, struct server *srv)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->srv = srv;
	w->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	rc = fanq_group_new(srv->bus, &w->group);
	if (rc == 0)
		rc = fanq_group_set_health(w->group, &srv->opt.health);
	if (rc) {
		fprintf(stderr, "fanq-sse: fanq_group_new: %s\n", fanq_strerror(rc));
		if (w->group)
			fanq_group_close(w->group);
		w->group = NULL;
	}
	if (!w->group || w->stopfd < 0 || w->epfd < 0 ||
	    _epoll_add(w->epfd, srv->listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &_tag_listen) ||
	    _epoll_add(w->epfd, w->stopfd, EPOLLIN, &_tag_stop) ||
	    _epoll_add(w->epfd, fanq_group_fd(w->group), EPOLLIN, &_tag_group)) {
		if (!rc)
			perror("fanq-sse: worker");
		worker_release(w);
		return -1;
	}
	return 0;
}

/* Start the worker's thread.  Main thread.  Returns 0 or -1. */
int worker_start(struct worker *w)
{
	int rc = pthread_create(&w->thread, NULL, _worker_main, w);

	if (rc)
		fprintf(stderr, "fanq-sse: pthread_create: %s\n", strerror(rc));
	return rc ? -1 : 0;
}

/*
 * Ask a started worker to stop, wait for it (it closes its connections)
 * and release it.  Main thread, after srv->stop was set.
 */
void worker_stop_and_join(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->stopfd, &one, sizeof(one)) < 0)
		perror("fanq-sse: wake worker");
	pthread_join(w->thread, NULL);
	worker_release(w);
}
