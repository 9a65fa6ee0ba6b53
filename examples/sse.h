/*
 * sse.h - shared state of the fanq-sse example server.
 *
 * Threads: the main thread parses options, creates the bus, the listening
 * socket and one worker per --threads, then calls fanq_bus_tick() every
 * SSE_TICK_MS until SIGINT/SIGTERM: fanq's drop summaries, alerts and
 * eviction rules run in it, and fanq logs from it (to stderr).  Each
 * worker (sse-worker.c) runs one epoll loop that owns one fanq_group and
 * every connection it accepted; nothing else touches those connections.
 * /metrics and /subscribers read fanq's own stats, which any thread may.
 */
#ifndef FANQ_EXAMPLES_SSE_H
#define FANQ_EXAMPLES_SSE_H

#include <fanq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SSE_CHANNEL_NAME_MAX 32  /* [A-Za-z0-9_.-], so no escaping anywhere */
#define SSE_CHANNELS_MAX 1024    /* distinct channels the server will open */
#define SSE_SUB_CHANNELS_MAX 16  /* channels one /events connection may ask */
#define SSE_SUB_BUCKETS 1024     /* per-worker fanq_sub -> connection table */
/* A body becomes "data: " lines: at worst 7 bytes per byte (all newlines). */
#define SSE_BODY_MAX_LIMIT (FANQ_MSG_MAX / 7)
#define SSE_TICK_MS 100          /* fanq_bus_tick() period */
#define SSE_TOP_MAX 1000         /* /subscribers?top=N at most */

struct options {
	const char *bind;
	int port;
	int threads;
	uint64_t queue_max, queue_bytes;
	enum fanq_policy_kind policy;
	int64_t keepalive_ms;   /* idle /events get ": keepalive" this often */
	size_t body_max;        /* POST bodies above this get 413 */
	uint64_t history_msgs;  /* per-channel history (0: none), */
	uint64_t history_bytes; /*   its byte and age limits (0: none) */
	uint64_t history_age_ms;
	uint64_t log_interval_ms; /* fanq's drop summaries at most this often */
	fanq_health_rules health; /* eviction rules of every /events sub */
};

/* Channel handles opened so far, released at exit.  Guarded by mu. */
struct channel_table {
	pthread_mutex_t mu;
	unsigned n;
	struct {
		char name[SSE_CHANNEL_NAME_MAX + 1];
		fanq_channel *ch;
	} slot[SSE_CHANNELS_MAX];
};

struct conn;
struct server;

struct worker {
	pthread_t thread;
	struct server *srv;
	int epfd;
	int stopfd;             /* eventfd: the main thread asks to stop */
	fanq_group *group;
	struct conn *conns;     /* every connection of this worker */
	struct conn *dead;      /* closed in this epoll batch, freed after it */
	struct conn *by_sub[SSE_SUB_BUCKETS];
};

struct server {
	struct options opt;
	fanq_bus *bus;
	int listen_fd;
	struct worker *workers;
	struct channel_table channels;
	atomic_uint_fast64_t connections, connections_total, publishes;
	atomic_bool stop;
};

/* fanq-sse.c: any worker thread. */
bool sse_channel_name_ok(const char *name);
int sse_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int sse_channel_get(struct server *srv, const char *name, fanq_channel **out);
int sse_policy_parse(const char *s, enum fanq_policy_kind *out);
void sse_metrics_write(struct server *srv, FILE *f);
void sse_subscribers_write(struct server *srv, FILE *f, size_t top,
			   enum fanq_top_by by);

/* sse-worker.c */
int worker_init(struct worker *w, struct server *srv);
int worker_start(struct worker *w);
void worker_stop_and_join(struct worker *w);
void worker_release(struct worker *w);

#endif /* FANQ_EXAMPLES_SSE_H */
