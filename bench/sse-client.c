/*
 * sse-client - load for bench/sse-vs-pushpin.sh, loopback only.  The same
 * program drives both servers, so both get the same clients and load.
 *
 *   sse-client run --port P --channel a --conns K
 *                  [--messages M] [--rate R] [--duration SEC] [--publishers N]
 *                  --publish fanq|pushpin --publish-port Q
 *                  [--payload B] [--stalled S] [--rss-pids PID,PID...]
 *     opens K GET /events?channel=a streams, then N publisher threads
 *     publish (fanq-sse: POST /publish?channel=a; Pushpin: POST /publish/
 *     on its HTTP control port, one item per request), each message
 *     carrying its send time, until M messages or SEC seconds; R/s in all
 *     (0: each publisher sends its next request as soon as the previous
 *     one was answered).  Each payload is B bytes (default 64):
 *     "t=<send time>;" padded with 'x'.  Counts events per connection and the
 *     publish-to-receive latency; "missing" counts events not received
 *     --linger seconds (default 2) after the last publish returned.
 *     S more streams never read while publishing (a small receive
 *     buffer): afterwards they are read for what they still get, then
 *     one more message is published and read (a server that dropped for
 *     them can say so before it; fanq-sse sends an "event: fanq-gap").
 *     --rss-pids: the server's processes, whose VmRSS is summed before
 *     the streams open and once they are all open (RSS per connection).
 *     Prints one line of key=value.
 *   sse-client origin --port P --channel a
 *     a minimal GRIP origin for Pushpin: every request is answered with
 *     Grip-Hold: stream and Grip-Channel: a.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LAT_CAP (1u << 22)
#define CONN_BUF 8192
#define STALLED_RCVBUF 4096 /* a never-reading client's receive buffer */
#define MAX_PUBLISHERS 16
#define PAYLOAD_MAX 4096

struct conn {
	int fd;
	int headers_done; /* the response head was read */
	int chunked;      /* Transfer-Encoding: chunked (Pushpin) */
	uint64_t chunk_left;
	unsigned size_len;
	char size_line[24];
	uint64_t events, gaps;
	size_t len;
	char buf[CONN_BUF]; /* the head, then the body's incomplete line */
};

struct opts {
	const char *mode, *channel, *publish, *rss_pids;
	int port, publish_port;
	unsigned conns, messages, rate, publishers, stalled, payload;
	double timeout, linger, duration;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int tcp_connect(int port, int rcvbuf)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf) { /* before connect: it sets the advertised window */
		struct timeval tv = { 5, 0 }; /* its head is read blocking */

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Sum of VmRSS over a comma-separated pid list, in bytes (0: none). */
static uint64_t rss_of(const char *pids)
{
	char path[64], line[256];
	const char *p = pids;
	uint64_t sum = 0;

	while (p && *p) {
		long pid = strtol(p, (char **)&p, 10), kb = 0;
		FILE *f;

		if (*p == ',')
			p++;
		snprintf(path, sizeof(path), "/proc/%ld/status", pid);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
				break;
		fclose(f);
		sum += (uint64_t)kb * 1024;
	}
	return sum;
}

/* ------------------------------------------------------------ origin */

static int origin(const struct opts *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	char resp[512], req[4096];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			 "Grip-Hold: stream\r\nGrip-Channel: %s\r\n"
			 "Content-Length: 5\r\nConnection: close\r\n\r\n:ok\n\n", o->channel);

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4096) < 0) {
		perror("sse-client origin");
		return 1;
	}
	for (;;) {
		int fd = accept(ls, NULL, NULL);

		if (fd < 0)
			continue;
		/* One request per connection; its head fits one read. */
		if (read(fd, req, sizeof(req)) > 0)
			write_all(fd, resp, (size_t)n);
		close(fd);
	}
}

/* ------------------------------------------------------------ publish */

/* One message, one request, answered before the next (both servers
 * close the connection after answering). */
static int publish_one(const struct opts *o, uint64_t t)
{
	char data[PAYLOAD_MAX + 1], body[PAYLOAD_MAX + 256], req[PAYLOAD_MAX + 512], sink[1024];
	int fd = tcp_connect(o->publish_port, 0), bl, rl, ok = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	/* "t=<ns>;xxx...": payload bytes, the same for both servers */
	bl = snprintf(data, sizeof(data), "t=%llu;", (unsigned long long)t);
	if ((unsigned)bl < o->payload) {
		memset(data + bl, 'x', o->payload - (unsigned)bl);
		data[o->payload] = 0;
	}
	if (!strcmp(o->publish, "pushpin"))
		bl = snprintf(body, sizeof(body),
			      "{\"items\":[{\"channel\":\"%s\",\"formats\":{\"http-stream\":"
			      "{\"content\":\"data: %s\\n\\n\"}}}]}", o->channel, data);
	else
		bl = snprintf(body, sizeof(body), "%s", data);
	rl = snprintf(req, sizeof(req),
		      "POST %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
		      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
		      !strcmp(o->publish, "pushpin") ? "/publish/" : "/publish?channel=",
		      !strcmp(o->publish, "pushpin") ? "" : o->channel,
		      !strcmp(o->publish, "pushpin") ? "application/json" : "text/plain",
		      bl, body);
	if (write_all(fd, req, (size_t)rl) == 0) {
		while ((r = read(fd, sink, sizeof(sink))) > 0)
			ok |= r > 12 && !memcmp(sink, "HTTP/1.1 200", 12);
	}
	close(fd);
	return ok ? 0 : -1;
}

struct pub_state {
	const struct opts *o;
	pthread_t th[MAX_PUBLISHERS];
	uint64_t start_ns, end_ns;
	_Atomic uint64_t published, failed;
	_Atomic unsigned running;
};

static void *publisher(void *arg)
{
	struct pub_state *ps = arg;
	const struct opts *o = ps->o;
	unsigned share = o->messages / o->publishers;
	uint64_t gap = o->rate ? 1000000000ull * o->publishers / o->rate : 0;
	uint64_t stop = o->duration > 0 ? ps->start_ns + (uint64_t)(o->duration * 1e9) : 0;
	unsigned i;

	for (i = 0; (!share || i < share) && (!stop || now_ns() < stop); i++) {
		uint64_t due = ps->start_ns + i * gap, t = now_ns();

		if (t < due) {
			struct timespec ts = { (time_t)((due - t) / 1000000000ull),
					       (long)((due - t) % 1000000000ull) };

			nanosleep(&ts, NULL);
		}
		if (publish_one(o, now_ns()) == 0)
			atomic_fetch_add(&ps->published, 1);
		else
			atomic_fetch_add(&ps->failed, 1);
	}
	if (atomic_fetch_sub(&ps->running, 1) == 1)
		ps->end_ns = now_ns();
	return NULL;
}

/* ---------------------------------------------------------- subscribe */

static uint64_t *lat;
static size_t nlat;

/* Consume complete body lines; "data: t=NS" is one event, "event:
 * fanq-gap" a gap notice.  record: keep the latency. */
static void parse_lines(struct conn *c, uint64_t t, int record)
{
	char *p = c->buf, *end = c->buf + c->len, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		*nl = 0;
		if (!strncmp(p, "data: t=", 8)) {
			uint64_t sent = strtoull(p + 8, NULL, 10);

			c->events++;
			if (record && nlat < LAT_CAP && sent && t >= sent)
				lat[nlat++] = t - sent;
		} else if (!strncmp(p, "event: fanq-gap", 15)) {
			c->gaps++;
		}
		p = nl + 1;
	}
	c->len = (size_t)(end - p);
	memmove(c->buf, p, c->len);
	if (c->len == CONN_BUF) /* an absurd line: drop it */
		c->len = 0;
}

static void body_bytes(struct conn *c, const char *p, size_t n, uint64_t t, int record)
{
	while (n) {
		size_t k = n < CONN_BUF - c->len ? n : CONN_BUF - c->len;

		memcpy(c->buf + c->len, p, k);
		c->len += k;
		p += k;
		n -= k;
		parse_lines(c, t, record);
	}
}

/* Chunked body: pass chunk data on, skip "<hex size>\r\n" and "\r\n". */
static void body_chunked(struct conn *c, const char *p, size_t n, uint64_t t,
			 int record)
{
	while (n) {
		if (c->chunk_left) {
			size_t k = n < c->chunk_left ? n : (size_t)c->chunk_left;

			body_bytes(c, p, k, t, record);
			p += k;
			n -= k;
			c->chunk_left -= k;
			continue;
		}
		if (*p == '\n' && c->size_len) {
			c->chunk_left = strtoull(c->size_line, NULL, 16);
			c->size_len = 0;
		} else if (*p != '\r' && *p != '\n' && c->size_len < sizeof(c->size_line) - 1) {
			c->size_line[c->size_len++] = *p;
			c->size_line[c->size_len] = 0;
		}
		p++;
		n--;
	}
}

/* Read c once; -1 on EOF or error. */
static int conn_read(struct conn *c, uint64_t t, int record)
{
	char raw[CONN_BUF], *body = raw, *e;
	ssize_t r = read(c->fd, raw, sizeof(raw) - 1);
	size_t n;

	if (r <= 0)
		return -1;
	n = (size_t)r;
	if (!c->headers_done) { /* the head is small: it fits c->buf */
		size_t k = n < CONN_BUF - 1 - c->len ? n : CONN_BUF - 1 - c->len;

		memcpy(c->buf + c->len, raw, k);
		c->len += k;
		c->buf[c->len] = 0;
		if (!(e = strstr(c->buf, "\r\n\r\n")))
			return 0;
		*e = 0;
		c->chunked = strcasestr(c->buf, "transfer-encoding: chunked") != NULL;
		c->headers_done = 1;
		/* what followed the head in this read */
		body = raw + (k - (c->len - (size_t)(e + 4 - c->buf)));
		n = (size_t)(raw + k - body);
		c->len = 0;
	}
	if (c->chunked)
		body_chunked(c, body, n, t, record);
	else
		body_bytes(c, body, n, t, record);
	return 0;
}

static int open_streams(const struct opts *o, struct conn *cs, unsigned n,
			int rcvbuf, int ep, unsigned tag)
{
	char req[512];
	int rl = snprintf(req, sizeof(req),
			  "GET /events?channel=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			  "Accept: text/event-stream\r\n\r\n", o->channel);
	struct epoll_event ev;
	unsigned k;

	for (k = 0; k < n; k++) {
		cs[k].fd = tcp_connect(o->port, rcvbuf);
		if (cs[k].fd < 0 || write_all(cs[k].fd, req, (size_t)rl) < 0) {
			fprintf(stderr, "sse-client: connection %u: %s\n", k, strerror(errno));
			return -1;
		}
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = tag + k };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[k].fd, &ev);
	}
	return 0;
}

/*
 * The never-reading clients: read their response heads, then nothing
 * until publishing is over; afterwards read whatever the server still
 * sends them, until it has been quiet for 300 ms.
 */
static void stalled_wait_heads(struct conn *st, unsigned n, uint64_t deadline)
{
	unsigned k;

	for (k = 0; k < n; k++)
		while (!st[k].headers_done && now_ns() < deadline && conn_read(&st[k], 0, 0) == 0)
			;
}

static void stalled_drain(struct conn *st, unsigned n, unsigned *closed)
{
	int ep = epoll_create1(0), i, m;
	struct epoll_event ev, evs[64];
	uint64_t quiet = now_ns();
	unsigned k;

	for (k = 0; k < n; k++) {
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = k };
		epoll_ctl(ep, EPOLL_CTL_ADD, st[k].fd, &ev);
	}
	while (now_ns() - quiet < 300000000ull) {
		m = epoll_wait(ep, evs, 64, 50);
		for (i = 0; i < m; i++) {
			struct conn *c = &st[evs[i].data.u32];

			quiet = now_ns();
			if (conn_read(c, 0, 0) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				(*closed)++;
			}
		}
	}
	close(ep);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int run(const struct opts *o)
{
	struct conn *cs = calloc(o->conns + o->stalled, sizeof(*cs)), *st = cs + o->conns;
	struct epoll_event evs[256];
	struct pub_state ps = { .o = o };
	int ep = epoll_create1(0), n, i, started = 0;
	unsigned k, ready = 0, closed = 0, st_closed = 0;
	uint64_t total = 0, t_last = 0, deadline, want = 0, st_events = 0, st_gaps = 0;
	uint64_t rss0, rss1 = 0, st_published = 0;

	lat = malloc(LAT_CAP * sizeof(*lat));
	if (!cs || !lat || ep < 0 || o->publishers < 1 || o->publishers > MAX_PUBLISHERS)
		return 1;
	rss0 = rss_of(o->rss_pids);
	if (open_streams(o, cs, o->conns, 0, ep, 0) ||
	    open_streams(o, st, o->stalled, STALLED_RCVBUF, ep, o->conns))
		return 1;
	for (k = 0; k < o->stalled; k++) /* they are read by hand */
		epoll_ctl(ep, EPOLL_CTL_DEL, st[k].fd, NULL);
	deadline = now_ns() + (uint64_t)(o->timeout * 1e9);
	stalled_wait_heads(st, o->stalled, deadline);
	for (;;) {
		uint64_t t, pub;

		n = epoll_wait(ep, evs, 256, 10);
		t = now_ns();
		for (i = 0; i < n; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			uint64_t before = c->events;
			int had = c->headers_done;

			if (conn_read(c, t, 1) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				closed++;
				continue;
			}
			ready += !had && c->headers_done;
			total += c->events - before;
			if (c->events != before)
				t_last = t;
		}
		/* Streams are open: give the server a moment to subscribe them
		 * (Pushpin subscribes after the origin answered), then publish. */
		if (!started && ready == o->conns) {
			rss1 = rss_of(o->rss_pids);
			usleep(500000);
			ps.start_ns = now_ns();
			ps.running = o->publishers;
			for (k = 0; k < o->publishers; k++)
				pthread_create(&ps.th[k], NULL, publisher, &ps);
			started = 1;
		}
		if (closed == o->conns || t > deadline)
			break;
		if (!started || atomic_load(&ps.running))
			continue;
		pub = atomic_load(&ps.published);
		want = pub * o->conns;
		if (total >= want || t > ps.end_ns + (uint64_t)(o->linger * 1e9))
			break;
	}
	if (started)
		for (k = 0; k < o->publishers; k++)
			pthread_join(ps.th[k], NULL);
	want = atomic_load(&ps.published) * o->conns;
	/* what the never-reading clients kept, then one more message: a
	 * server that dropped for them can say so before it */
	stalled_drain(st, o->stalled, &st_closed);
	if (o->stalled && publish_one(o, now_ns()) == 0) {
		stalled_drain(st, o->stalled, &st_closed);
		st_published = 1;
	}
	for (k = 0; k < o->stalled; k++) {
		st_events += st[k].events;
		st_gaps += st[k].gaps;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("conns=%u ready=%u published=%llu publish_failed=%llu expected=%llu "
	       "received=%llu missing=%llu events_per_s=%.0f p50_us=%.0f p99_us=%.0f "
	       "max_us=%.0f rss_before=%llu rss_open=%llu rss_per_conn=%.0f "
	       "stalled=%u stalled_published=%llu stalled_events=%llu stalled_gaps=%llu "
	       "stalled_closed=%u\n",
	       o->conns, ready, (unsigned long long)atomic_load(&ps.published),
	       (unsigned long long)atomic_load(&ps.failed), (unsigned long long)want,
	       (unsigned long long)total, (unsigned long long)(want > total ? want - total : 0),
	       t_last > ps.start_ns && started ? total / ((double)(t_last - ps.start_ns) / 1e9) : 0,
	       nlat ? lat[nlat / 2] / 1e3 : 0, nlat ? lat[nlat * 99 / 100] / 1e3 : 0,
	       nlat ? lat[nlat - 1] / 1e3 : 0, (unsigned long long)rss0,
	       (unsigned long long)rss1,
	       rss1 > rss0 ? (double)(rss1 - rss0) / (o->conns + o->stalled) : 0,
	       o->stalled, (unsigned long long)(atomic_load(&ps.published) + st_published),
	       (unsigned long long)st_events, (unsigned long long)st_gaps,
	       st_closed);
	return started && total == want ? 0 : 3;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f, "usage: sse-client run --port P [--channel a] [--conns K] [--messages M]\n"
		   "                  [--rate R] [--duration SEC] [--publishers N] [--payload B]\n"
		   "                  [--publish fanq|pushpin] [--publish-port Q] [--stalled S]\n"
		   "                  [--rss-pids PID,...] [--timeout SEC] [--linger SEC]\n"
		   "       sse-client origin --port P [--channel a]\n");
}

int main(int argc, char **argv)
{
	struct opts o = { .channel = "a", .publish = "fanq", .conns = 100, .publishers = 1,
			  .payload = 64,
			  .messages = 1000, .rate = 1000, .timeout = 60, .linger = 2 };
	struct rlimit rl;
	int i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	o.mode = argv[1];
	for (i = 2; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];

		if (!strcmp(a, "--port"))
			o.port = atoi(v);
		else if (!strcmp(a, "--publish-port"))
			o.publish_port = atoi(v);
		else if (!strcmp(a, "--channel"))
			o.channel = v;
		else if (!strcmp(a, "--conns"))
			o.conns = (unsigned)atoi(v);
		else if (!strcmp(a, "--messages"))
			o.messages = (unsigned)atoi(v);
		else if (!strcmp(a, "--rate"))
			o.rate = (unsigned)atoi(v);
		else if (!strcmp(a, "--duration"))
			o.duration = atof(v);
		else if (!strcmp(a, "--publishers"))
			o.publishers = (unsigned)atoi(v);
		else if (!strcmp(a, "--payload"))
			o.payload = (unsigned)atoi(v);
		else if (!strcmp(a, "--stalled"))
			o.stalled = (unsigned)atoi(v);
		else if (!strcmp(a, "--rss-pids"))
			o.rss_pids = v;
		else if (!strcmp(a, "--publish"))
			o.publish = v;
		else if (!strcmp(a, "--timeout"))
			o.timeout = atof(v);
		else if (!strcmp(a, "--linger"))
			o.linger = atof(v);
		else {
			usage(stderr);
			return 2;
		}
	}
	if (i != argc || !o.port || o.payload > PAYLOAD_MAX) {
		usage(stderr);
		return 2;
	}
	if (!o.publish_port)
		o.publish_port = o.port;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!strcmp(o.mode, "origin"))
		return origin(&o);
	if (!strcmp(o.mode, "run"))
		return run(&o);
	usage(stderr);
	return 2;
}
