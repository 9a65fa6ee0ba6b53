/*
 * fanq-sse - a Server-Sent Events server on fanq, in one binary.
 *
 *   GET  /events?channel=a[,b...][&policy=P][&lastEventId=a:5[,b:7...]]
 *                                              text/event-stream; resumes
 *                                              after Last-Event-ID (header
 *                                              first, then the parameter)
 *   POST /publish?channel=a[&priority=P]       body -> every subscriber
 *                                   (P: 0 .. FANQ_PRIO_LEVELS-1, default 0)
 *   GET  /metrics                              Prometheus text
 *   GET  /subscribers?top=N[&by=depth|bytes|drops]   JSON, worst first
 *
 * Each of --threads workers owns an epoll loop, a fanq_group and the
 * connections it accepted (sse-worker.c).  This file holds what they
 * share: options, the channel table, /metrics and /subscribers, plus
 * main(), which ticks fanq.  Functions without a thread named in their
 * comment are startup or shutdown steps and run in the main thread.
 */
#include "sse.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char _usage[] =
	"usage: fanq-sse --port P [--threads N] [--queue-max MSGS]\n"
	"                [--queue-bytes BYTES] [--policy drop-new|drop-oldest|priority]\n"
	"                [--bind ADDR] [--keepalive SECS] [--max-body BYTES]\n"
	"                [--history N [--history-bytes B] [--history-age MS]]\n"
	"                [--log-interval-ms MS] [--evict-full-ms MS]\n"
	"                [--evict-drops D/MS] [--evict-idle-ms MS]\n"
	"                [--hard-bytes BYTES] [--soft-bytes BYTES/MS]\n"
	"\n"
	"  --port P         TCP port (0: any free port, printed at start)\n"
	"  --threads N      I/O threads, each with its own epoll loop (default 2)\n"
	"  --queue-max M    per-connection queue limit in messages (default %u)\n"
	"  --queue-bytes B  per-connection queue limit in bytes (default %u)\n"
	"  --policy P       what a full queue drops (default drop-new);\n"
	"                   /events?policy=P overrides it per connection\n"
	"  --bind ADDR      listen address (default 127.0.0.1)\n"
	"  --keepalive S    idle /events get a comment every S s (default 15)\n"
	"  --max-body B     larger POST bodies get 413 (default 1 MiB)\n"
	"  --history N      keep each channel's last N messages (default: none),\n"
	"                   so that a client reconnecting with Last-Event-ID\n"
	"                   gets what it missed\n"
	"  --history-bytes B  ... and at most B bytes of them (default: no limit)\n"
	"  --history-age MS   ... none older than MS ms (default: no limit)\n"
	"  --log-interval-ms MS  drop summaries per connection at most this\n"
	"                   often (default 10000)\n"
	"  Eviction rules (fanq_health_rules; all off by default).  An evicted\n"
	"  connection is closed and logged with its peer and User-Agent:\n"
	"  --evict-full-ms MS     queue full, nothing written, for MS\n"
	"  --evict-drops D/MS     more than D messages dropped within MS\n"
	"  --evict-idle-ms MS     nothing written for MS while messages wait\n"
	"  --hard-bytes B         more than B bytes queued, at once\n"
	"  --soft-bytes B/MS      more than B bytes queued for MS\n"
	"\n"
	"  GET /events?channel=a,b[&lastEventId=a:5,b:7]\n"
	"  POST /publish?channel=a[&priority=0..%u]\n"
	"  GET /metrics   GET /subscribers?top=N[&by=depth|bytes|drops]\n";

/* --------------------------------------------------- shared helpers */

/* Any thread. */
bool sse_channel_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SSE_CHANNEL_NAME_MAX)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Any thread.  Returns 0, or -1 for an unknown name. */
int sse_policy_parse(const char *s, enum fanq_policy_kind *out)
{
	if (!strcmp(s, "drop-new"))
		*out = FANQ_DROP_NEW;
	else if (!strcmp(s, "drop-oldest"))
		*out = FANQ_DROP_OLDEST;
	else if (!strcmp(s, "priority"))
		*out = FANQ_PRIORITY;
	else
		return -1;
	return 0;
}

/* Open a channel with the server's history settings.  Any worker thread. */
static int _channel_open(struct server *srv, const char *name,
			 fanq_channel **out)
{
	const struct options *o = &srv->opt;
	int rc = fanq_channel_open(srv->bus, name, out);

	if (rc || !o->history_msgs)
		return rc;
	rc = fanq_channel_set_history(*out, o->history_msgs, o->history_bytes,
				      o->history_age_ms);
	if (rc)
		fanq_channel_release(*out);
	return rc;
}

/*
 * The server's handle for a channel, opened on first use and kept until
 * exit; the caller does not release it.  Any worker thread (takes the
 * table's mutex).  Returns 0, a FANQ_E* code, or FANQ_ENOMEM when
 * SSE_CHANNELS_MAX channels are open already.
 */
int sse_channel_get(struct server *srv, const char *name, fanq_channel **out)
{
	struct channel_table *t = &srv->channels;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->n && strcmp(t->slot[i].name, name); i++)
		;
	if (i == t->n) {
		if (t->n == SSE_CHANNELS_MAX)
			rc = FANQ_ENOMEM;
		else
			rc = _channel_open(srv, name, &t->slot[i].ch);
		if (rc == 0) {
			strcpy(t->slot[i].name, name);
			t->n++;
		}
	}
	if (rc == 0)
		*out = t->slot[i].ch;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* Main thread, after the workers stopped. */
static void _channels_release(struct channel_table *t)
{
	unsigned i;

	for (i = 0; i < t->n; i++)
		fanq_channel_release(t->slot[i].ch);
	t->n = 0;
}

/* ------------------------------------------------- /metrics, /subscribers */

static void _metric(FILE *f, const char *name, const char *type,
		    const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
		type, name, (unsigned long long)v);
}

static int _fwrite_all(void *arg, const char *data, size_t len)
{
	return fwrite(data, 1, len, arg) == len ? 0 : -1;
}

/*
 * Prometheus text: the server's own counters, then fanq's exposition of
 * the bus (queues, drops, evictions; README "Operating fanq").  Any
 * worker thread.
 */
void sse_metrics_write(struct server *srv, FILE *f)
{
	_metric(f, "fanq_sse_connections", "gauge",
		"Open /events connections.", atomic_load(&srv->connections));
	_metric(f, "fanq_sse_connections_total", "counter",
		"/events connections accepted.",
		atomic_load(&srv->connections_total));
	_metric(f, "fanq_sse_publishes_total", "counter",
		"Messages published with POST /publish.",
		atomic_load(&srv->publishes));
	fanq_bus_prometheus(srv->bus, _fwrite_all, f);
}

/* s as a JSON string: client strings (User-Agent) escaped byte by byte. */
static void _json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void _json_meta(FILE *f, struct server *srv, uint64_t id, const char *key)
{
	char buf[256];

	if (fanq_bus_sub_meta(srv->bus, id, key, buf, sizeof(buf)) < 0)
		buf[0] = 0;
	_json_string(f, buf);
}

static const char *_policy_name(enum fanq_policy_kind k)
{
	static const char *const names[] = { "drop-new", "drop-oldest", "priority",
					     "custom" };

	return (unsigned)k < 4 ? names[k] : "?";
}

static void _subscriber_json(FILE *f, struct server *srv, const fanq_sub_stats *st)
{
	int r;

	fprintf(f, "{\"id\":%llu,\"peer\":", (unsigned long long)st->id);
	_json_meta(f, srv, st->id, "peer");
	fprintf(f, ",\"ua\":");
	_json_meta(f, srv, st->id, "ua");
	fprintf(f, ",\"policy\":\"%s\",\"depth\":%llu,\"bytes\":%llu,"
		"\"max_msgs\":%llu,\"max_bytes\":%llu,\"high_water\":%llu,"
		"\"enqueued\":%llu,\"delivered\":%llu,\"drops\":{",
		_policy_name(st->policy), (unsigned long long)st->queued_msgs,
		(unsigned long long)st->queued_bytes, (unsigned long long)st->max_msgs,
		(unsigned long long)st->max_bytes, (unsigned long long)st->high_water_msgs,
		(unsigned long long)st->enqueued, (unsigned long long)st->delivered);
	for (r = 0; r < FANQ_DROP_REASONS; r++)
		fprintf(f, "%s\"%s\":%llu", r ? "," : "", fanq_drop_reason_name(r),
			(unsigned long long)st->dropped[r]);
	fprintf(f, "},\"since_drain_ms\":%llu,\"full_ms\":%llu,\"over_high\":%s,"
		"\"shared_log\":%s,\"evicted\":",
		(unsigned long long)(st->since_drain_ns / 1000000u),
		(unsigned long long)(st->full_for_ns / 1000000u),
		st->over_high ? "true" : "false", st->shared_log ? "true" : "false");
	if (st->evicted == FANQ_EVICT_NONE)
		fprintf(f, "null}");
	else
		fprintf(f, "\"%s\"}", fanq_evict_reason_name(st->evicted));
}

/*
 * The top subscribers as a JSON array, worst first, one per line.  Any
 * worker thread; fanq ranks them (O(subscribers log top)).
 */
void sse_subscribers_write(struct server *srv, FILE *f, size_t top,
			   enum fanq_top_by by)
{
	fanq_sub_stats *st = calloc(top, sizeof(*st));
	int i, n = st ? fanq_bus_top(srv->bus, by, st, top) : 0;

	fprintf(f, "[");
	for (i = 0; i < n; i++) {
		fprintf(f, "%s\n", i ? "," : "");
		_subscriber_json(f, srv, &st[i]);
	}
	fprintf(f, "\n]\n");
	free(st);
}

/* ------------------------------------------------------------- startup */

/* Any thread.  Decimal digits only; 0, or -1 when not in min..max. */
int sse_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void _usage_exit(FILE *f, int rc)
{
	fprintf(f, _usage, FANQ_DEFAULT_QUEUE_MSGS, FANQ_DEFAULT_QUEUE_BYTES,
		FANQ_PRIO_LEVELS - 1);
	exit(rc);
}

/* Milliseconds, as fanq's nanoseconds (up to a day). */
static int _parse_ms(const char *s, uint64_t *ns)
{
	uint64_t v;

	if (sse_parse_u64(s, 1, 86400000, &v))
		return -1;
	*ns = v * 1000000u;
	return 0;
}

/* "N/MS": a count and a duration. */
static int _parse_pair(const char *arg, uint64_t *n, uint64_t *ns)
{
	char buf[64];
	char *slash;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	slash = strchr(buf, '/');
	if (!slash)
		return -1;
	*slash = 0;
	return sse_parse_u64(buf, 0, UINT64_MAX, n) || _parse_ms(slash + 1, ns) ? -1 : 0;
}

/* fanq's logging and eviction options; returns 0 or -1. */
static int _parse_fanq_option(int opt, const char *arg, struct options *o)
{
	fanq_health_rules *r = &o->health;
	uint64_t ns;

	switch (opt) {
	case 'L':
		if (_parse_ms(arg, &ns))
			return -1;
		o->log_interval_ms = ns / 1000000u;
		return 0;
	case 'F':
		return _parse_ms(arg, &r->full_ns);
	case 'D':
		return _parse_pair(arg, &r->drops, &r->drops_window_ns);
	case 'I':
		return _parse_ms(arg, &r->idle_ns);
	case 'H':
		return sse_parse_u64(arg, 1, UINT64_MAX, &r->hard_bytes);
	case 'S':
		if (_parse_pair(arg, &r->soft_bytes, &r->soft_ns) || !r->soft_bytes)
			return -1;
		return 0;
	default:
		return -1;
	}
}

/* One option; returns 0 or -1 for a bad value. */
static int _parse_option(int opt, const char *arg, struct options *o)
{
	uint64_t v;

	switch (opt) {
	case 'p':
		if (sse_parse_u64(arg, 0, 65535, &v))
			return -1;
		o->port = (int)v;
		return 0;
	case 't':
		if (sse_parse_u64(arg, 1, 256, &v))
			return -1;
		o->threads = (int)v;
		return 0;
	case 'm':
		return sse_parse_u64(arg, 1, FANQ_QUEUE_MSGS_MAX, &o->queue_max);
	case 'b':
		return sse_parse_u64(arg, 1, UINT64_MAX, &o->queue_bytes);
	case 'P':
		return sse_policy_parse(arg, &o->policy);
	case 'B':
		o->bind = arg;
		return 0;
	case 'k':
		if (sse_parse_u64(arg, 1, 86400, &v))
			return -1;
		o->keepalive_ms = (int64_t)v * 1000;
		return 0;
	case 'x':
		if (sse_parse_u64(arg, 0, SSE_BODY_MAX_LIMIT, &v))
			return -1;
		o->body_max = (size_t)v;
		return 0;
	case 'R':
		return sse_parse_u64(arg, 1, FANQ_HISTORY_MSGS_MAX, &o->history_msgs);
	case 'Y':
		return sse_parse_u64(arg, 1, UINT64_MAX, &o->history_bytes);
	case 'A':
		return sse_parse_u64(arg, 1, FANQ_HISTORY_AGE_MAX_MS, &o->history_age_ms);
	default:
		return _parse_fanq_option(opt, arg, o);
	}
}

static void _parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "queue-max", required_argument, NULL, 'm' },
		{ "queue-bytes", required_argument, NULL, 'b' },
		{ "policy", required_argument, NULL, 'P' },
		{ "bind", required_argument, NULL, 'B' },
		{ "keepalive", required_argument, NULL, 'k' },
		{ "max-body", required_argument, NULL, 'x' },
		{ "history", required_argument, NULL, 'R' },
		{ "history-bytes", required_argument, NULL, 'Y' },
		{ "history-age", required_argument, NULL, 'A' },
		{ "log-interval-ms", required_argument, NULL, 'L' },
		{ "evict-full-ms", required_argument, NULL, 'F' },
		{ "evict-drops", required_argument, NULL, 'D' },
		{ "evict-idle-ms", required_argument, NULL, 'I' },
		{ "hard-bytes", required_argument, NULL, 'H' },
		{ "soft-bytes", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct options){ .bind = "127.0.0.1", .port = -1, .threads = 2,
			       .queue_max = FANQ_DEFAULT_QUEUE_MSGS,
			       .queue_bytes = FANQ_DEFAULT_QUEUE_BYTES,
			       .policy = FANQ_DROP_NEW, .keepalive_ms = 15000,
			       .body_max = 1u << 20, .log_interval_ms = 10000 };
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h')
			_usage_exit(stdout, 0);
		if (_parse_option(opt, optarg, o)) {
			if (opt != '?')
				fprintf(stderr, "fanq-sse: bad value '%s'\n", optarg);
			_usage_exit(stderr, 2);
		}
	}
	if (!o->history_msgs && (o->history_bytes || o->history_age_ms)) {
		fprintf(stderr, "fanq-sse: --history-bytes and --history-age "
			"limit a --history N\n");
		_usage_exit(stderr, 2);
	}
	if (optind != argc || o->port < 0)
		_usage_exit(stderr, 2);
	if (o->health.hard_bytes && o->health.soft_bytes > o->health.hard_bytes) {
		fprintf(stderr, "fanq-sse: --soft-bytes above --hard-bytes\n");
		_usage_exit(stderr, 2);
	}
}

/* Non-blocking listening socket; prints the address actually bound. */
static int _listen(const struct options *o)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST };
	struct addrinfo *ai;
	char port[8], host[NI_MAXHOST], serv[NI_MAXSERV];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, one = 1, rc;

	snprintf(port, sizeof(port), "%d", o->port);
	rc = getaddrinfo(o->bind, port, &hints, &ai);
	if (rc) {
		fprintf(stderr, "fanq-sse: --bind %s: %s\n", o->bind, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv,
			sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
		perror("fanq-sse: listen");
		if (fd >= 0)
			close(fd);
		fd = -1;
	} else {
		printf("fanq-sse: listening on %s port %s, %d threads\n", host,
		       serv, o->threads);
		fflush(stdout);
	}
	freeaddrinfo(ai);
	return fd;
}

/* Stop workers [0, started) and release [started, n). */
static void _workers_unwind(struct server *srv, int started, int n)
{
	int i;

	atomic_store(&srv->stop, true);
	for (i = 0; i < n; i++) {
		if (i < started)
			worker_stop_and_join(&srv->workers[i]);
		else
			worker_release(&srv->workers[i]);
	}
	free(srv->workers);
}

/* Every worker is set up before any thread starts (see worker_init()). */
static int _workers_start(struct server *srv)
{
	int i, n = srv->opt.threads;

	srv->workers = calloc((size_t)n, sizeof(*srv->workers));
	if (!srv->workers)
		return -1;
	for (i = 0; i < n; i++) {
		if (worker_init(&srv->workers[i], srv)) {
			_workers_unwind(srv, 0, i);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (worker_start(&srv->workers[i])) {
			_workers_unwind(srv, i, n);
			return -1;
		}
	}
	return 0;
}

static void _workers_stop(struct server *srv)
{
	_workers_unwind(srv, srv->opt.threads, srv->opt.threads);
}

/* SIGINT/SIGTERM go to sigwait() in main only: block them everywhere. */
static void _signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Main thread: tick fanq every SSE_TICK_MS until SIGINT/SIGTERM. */
static void _tick_until_signal(struct server *srv, const sigset_t *set)
{
	const struct timespec period = { 0, SSE_TICK_MS * 1000000L };
	int sig;

	while ((sig = sigtimedwait(set, NULL, &period)) < 0)
		fanq_bus_tick(srv->bus);
	fprintf(stderr, "fanq-sse: %s, shutting down\n", strsignal(sig));
}

/* Main thread: serve until SIGINT/SIGTERM, then tear down in order. */
static int _serve(struct server *srv)
{
	sigset_t set;
	int rc;
	bool started;

	_signals_block(&set);
	started = _workers_start(srv) == 0;
	if (started) {
		_tick_until_signal(srv, &set);
		_workers_stop(srv);
	}
	_channels_release(&srv->channels);
	rc = fanq_bus_close(srv->bus);
	if (rc)
		fprintf(stderr, "fanq-sse: fanq_bus_close: %s\n", fanq_strerror(rc));
	return rc || !started;
}

int main(int argc, char **argv)
{
	static struct server srv;
	int rc;

	_parse_args(argc, argv, &srv.opt);
	pthread_mutex_init(&srv.channels.mu, NULL);
	srv.listen_fd = _listen(&srv.opt);
	if (srv.listen_fd < 0)
		return 1;
	rc = fanq_bus_new(&srv.bus);
	if (rc == 0)
		rc = fanq_bus_set_log_interval(srv.bus, srv.opt.log_interval_ms * 1000000u);
	if (rc) {
		fprintf(stderr, "fanq-sse: fanq_bus_new: %s\n", fanq_strerror(rc));
		if (srv.bus)
			fanq_bus_close(srv.bus);
		close(srv.listen_fd);
		return 1;
	}
	rc = _serve(&srv);
	close(srv.listen_fd);
	return rc;
}
