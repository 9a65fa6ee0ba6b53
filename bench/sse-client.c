/*
 * sse-client - load for bench/sse-vs-pushpin.sh, loopback only.
 *
 *   sse-client run --port P --channel a --conns K --messages M --rate R
 *                  --publish fanq|pushpin --publish-port Q
 *     opens K GET /events?channel=a streams, then publishes M messages at
 *     R/s (fanq-sse: POST /publish?channel=a; Pushpin: POST /publish/ on
 *     its HTTP control port), each carrying its send time; counts events
 *     per connection and the publish-to-receive latency.  Prints one line;
 *     "missing" counts events not received --linger seconds (default 2)
 *     after the last publish returned.
 *   sse-client origin --port P --channel a
 *     a minimal GRIP origin for Pushpin: every request is answered with
 *     Grip-Hold: stream and Grip-Channel: a.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAT_CAP (1u << 22)
#define CONN_BUF 8192

struct conn {
	int fd;
	int headers_done; /* the 200 response head was read */
	uint64_t events;
	size_t len;
	char buf[CONN_BUF];
};

struct opts {
	const char *mode, *channel, *publish;
	int port, publish_port;
	unsigned conns, messages, rate;
	double timeout, linger;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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

static void publish_one(const struct opts *o, uint64_t t)
{
	char body[256], req[1024], sink[1024];
	int fd = tcp_connect(o->publish_port), bl, rl;

	if (fd < 0) {
		perror("sse-client: publish connect");
		return;
	}
	if (!strcmp(o->publish, "pushpin"))
		bl = snprintf(body, sizeof(body),
			      "{\"items\":[{\"channel\":\"%s\",\"formats\":{\"http-stream\":"
			      "{\"content\":\"data: t=%llu\\n\\n\"}}}]}",
			      o->channel, (unsigned long long)t);
	else
		bl = snprintf(body, sizeof(body), "t=%llu", (unsigned long long)t);
	rl = snprintf(req, sizeof(req),
		      "POST %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
		      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
		      !strcmp(o->publish, "pushpin") ? "/publish/" : "/publish?channel=",
		      !strcmp(o->publish, "pushpin") ? "" : o->channel,
		      !strcmp(o->publish, "pushpin") ? "application/json" : "text/plain",
		      bl, body);
	if (write_all(fd, req, (size_t)rl) == 0)
		while (read(fd, sink, sizeof(sink)) > 0)
			;
	close(fd);
}

struct pub_state {
	const struct opts *o;
	volatile int finished;
	uint64_t end_ns;
};

static void *publisher(void *arg)
{
	struct pub_state *ps = arg;
	uint64_t start = now_ns(), gap = 1000000000ull / (ps->o->rate ? ps->o->rate : 1);
	unsigned i;

	for (i = 0; i < ps->o->messages; i++) {
		uint64_t due = start + i * gap, t = now_ns();

		if (t < due) {
			struct timespec ts = { 0, (long)(due - t) };

			nanosleep(&ts, NULL);
		}
		publish_one(ps->o, now_ns());
	}
	ps->end_ns = now_ns();
	__atomic_store_n(&ps->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ---------------------------------------------------------- subscribe */

static uint64_t *lat;
static size_t nlat;

/* Consume complete lines; "data: t=NS" is one event. */
static void parse_lines(struct conn *c, uint64_t t)
{
	char *p = c->buf, *end = c->buf + c->len, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		*nl = 0;
		if (!c->headers_done) {
			if (p == nl || (p[0] == '\r' && p + 1 == nl))
				c->headers_done = 1;
		} else if (!strncmp(p, "data: t=", 8)) {
			uint64_t sent = strtoull(p + 8, NULL, 10);

			c->events++;
			if (nlat < LAT_CAP && sent && t >= sent)
				lat[nlat++] = t - sent;
		}
		p = nl + 1;
	}
	c->len = (size_t)(end - p);
	memmove(c->buf, p, c->len);
	if (c->len == CONN_BUF) /* an absurd line: drop it */
		c->len = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int run(const struct opts *o)
{
	struct conn *cs = calloc(o->conns, sizeof(*cs));
	struct epoll_event ev, evs[256];
	struct pub_state ps = { .o = o };
	pthread_t pt;
	char req[512];
	int ep = epoll_create1(0), rl, n, i, started = 0;
	unsigned k, ready = 0, closed = 0;
	uint64_t total = 0, want = (uint64_t)o->conns * o->messages, t0 = now_ns(), deadline;

	lat = malloc(LAT_CAP * sizeof(*lat));
	if (!cs || !lat || ep < 0)
		return 1;
	rl = snprintf(req, sizeof(req),
		      "GET /events?channel=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		      "Accept: text/event-stream\r\n\r\n", o->channel);
	for (k = 0; k < o->conns; k++) {
		cs[k].fd = tcp_connect(o->port);
		if (cs[k].fd < 0 || write_all(cs[k].fd, req, (size_t)rl) < 0) {
			fprintf(stderr, "sse-client: connection %u: %s\n", k, strerror(errno));
			return 1;
		}
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u32 = k };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[k].fd, &ev);
	}
	deadline = now_ns() + (uint64_t)(o->timeout * 1e9);
	for (;;) {
		uint64_t t;

		n = epoll_wait(ep, evs, 256, 10);
		t = now_ns();
		for (i = 0; i < n; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			uint64_t before = c->events;
			int had = c->headers_done;
			ssize_t r = read(c->fd, c->buf + c->len, CONN_BUF - c->len);

			if (r <= 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				closed++;
				continue;
			}
			c->len += (size_t)r;
			parse_lines(c, t);
			ready += !had && c->headers_done;
			total += c->events - before;
		}
		/* Streams are open: give the server a moment to subscribe them
		 * (Pushpin subscribes after the origin answered), then publish. */
		if (!started && ready == o->conns) {
			usleep(500000);
			pthread_create(&pt, NULL, publisher, &ps);
			started = 1;
			t0 = now_ns();
		}
		if (total >= want || closed == o->conns || t > deadline)
			break;
		if (started && __atomic_load_n(&ps.finished, __ATOMIC_ACQUIRE) &&
		    t > ps.end_ns + (uint64_t)(o->linger * 1e9))
			break;
	}
	if (started)
		pthread_join(pt, NULL);
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("conns=%u ready=%u published=%u expected=%llu received=%llu missing=%llu "
	       "events_per_s=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
	       o->conns, ready, started ? o->messages : 0, (unsigned long long)want,
	       (unsigned long long)total, (unsigned long long)(want - total),
	       total / ((double)(now_ns() - t0) / 1e9),
	       nlat ? lat[nlat / 2] / 1e3 : 0, nlat ? lat[nlat * 99 / 100] / 1e3 : 0,
	       nlat ? lat[nlat - 1] / 1e3 : 0);
	return total == want ? 0 : 3;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f, "usage: sse-client run --port P [--channel a] [--conns K] [--messages M]\n"
		   "                  [--rate R] [--publish fanq|pushpin] [--publish-port Q]\n"
		   "                  [--timeout SEC] [--linger SEC]\n"
		   "       sse-client origin --port P [--channel a]\n");
}

int main(int argc, char **argv)
{
	struct opts o = { .channel = "a", .publish = "fanq", .conns = 100,
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
	if (i != argc || !o.port) {
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
