/*
 * bench.h - what the harness (fanq-bench.c) and each compared system
 * (sys_*.c) share.
 *
 * A system is a table of four functions.  The harness forks one child per
 * (scenario, system, run); in it, setup() builds N subscribers, then a
 * warm-up pass and a measured pass each start P publisher threads calling
 * publish() and C consumer threads running consume(), and teardown() ends.
 * Every system drops a message for a full queue (no backpressure), so a
 * stalled subscriber never slows the others; drops are counted uniformly
 * as (published x drained subscribers) - received.  By default publishers
 * are paced by the consumers' progress (a window of queue_max/4 messages
 * per subscriber, against what consumers report after each subscriber
 * they drain), the same way for every system, so that deliveries/s is a
 * sustained rate without loss rather than a race between malloc and free;
 * --overload lets them run free.
 */
#ifndef FANQ_BENCH_H
#define FANQ_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_CACHE_LINE 64
#define BENCH_BATCH 64
/* First payload byte: data, or a probe some peers use to see a sub joined. */
#define BENCH_DATA 0
#define BENCH_PROBE 1

/* One scenario's parameters. */
struct bench_params {
	unsigned subs;      /* subscribers */
	unsigned pubs;      /* publisher threads */
	unsigned consumers; /* consumer threads; each serves subs/consumers */
	size_t msg_bytes;
	unsigned queue_max; /* messages per subscriber queue */
	int drop_oldest;    /* 0: drop-new, 1: drop-oldest (fanq, mutex) */
	double slow_frac;   /* fraction of subscribers never drained */
	int churn;          /* a thread subscribes and unsubscribes meanwhile */
};

struct bench_consumer;

/* One pass (warm-up or measured), shared by its threads. */
struct bench_pass {
	const struct bench_params *p;
	const bool *stalled;    /* [subs]: never drained */
	_Atomic int pubs_done;  /* set once every publisher returned */
	/* Flow control (0 window: off, publishers run free and queues drop):
	 * publishers wait while published - the slowest consumer's messages
	 * per drained subscriber exceeds window. */
	uint64_t window;
	_Alignas(BENCH_CACHE_LINE) _Atomic uint64_t published;
	struct bench_consumer *cons; /* [consumers] */
};

/* What a consumer thread reports; one cache line each. */
struct bench_consumer {
	_Alignas(BENCH_CACHE_LINE) struct bench_pass *pass;
	unsigned idx;          /* 0 .. consumers-1: serves subs idx, idx+C, ... */
	unsigned nsubs;        /* drained subscribers it serves */
	_Atomic uint64_t received; /* data messages taken; publishers read it */
	uint64_t last_recv_ns; /* when the last of them was taken */
	uint64_t idle_since_ns;
};

struct bench_sys {
	const char *name;
	const char *about; /* one line for --help */
	/* Returns the system's state, or NULL with a reason on stderr. */
	void *(*setup)(const struct bench_params *p, const bool *stalled);
	/* One publish call from publisher thread pub. */
	void (*publish)(void *ctx, unsigned pub, const void *data, size_t len);
	/* Drain this consumer's subscribers until bench_consumer_done(). */
	void (*consume)(void *ctx, struct bench_consumer *c);
	void (*teardown)(void *ctx);
	/* One more subscriber joins, takes what arrived, and leaves, from a
	 * thread of its own while the others publish and drain; 0 when it
	 * did.  NULL: no churn scenario for this system. */
	int (*churn)(void *ctx);
	/* 1: queues are observable, so "empty after publishers finished" ends
	 * a consumer; 0: it ends after BENCH_IDLE_NS without a message. */
	int exact_drain;
	/* 1: run in the memory scenario (in-process queues only). */
	int memory;
};

#define BENCH_IDLE_NS (50 * 1000 * 1000ull)

extern const struct bench_sys bench_sys_fanq, bench_sys_fanq_group,
	bench_sys_mutex, bench_sys_spsc, bench_sys_zmq, bench_sys_nng;

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Takes what one subscriber has queued; returns the data messages taken.
 * may_wait: the consumer serves this subscriber alone and publishers are
 * still running, so it may sleep briefly (about 1 ms at most) for data.
 */
typedef uint64_t (*bench_drain_fn)(void *ctx, unsigned sub, int may_wait);

/*
 * Report n more messages taken by c, at once: publishers pace on it, so a
 * sweep over many subscribers must not hide its progress until its end
 * (that would make publishing and draining take turns).
 */
void bench_consumer_took(struct bench_consumer *c, uint64_t n);

/* One pass of consumer c over the subscribers it serves; reports each. */
uint64_t bench_sweep(struct bench_consumer *c, void *ctx, bench_drain_fn drain,
		     int may_wait);

/*
 * Account one sweep that took n messages; done_before is pubs_done read
 * (acquire) before the sweep began.  Returns true when c should stop.
 */
bool bench_consumer_sweep(struct bench_consumer *c, uint64_t n,
			  int done_before, int exact_drain);

/* The consumer thread of a polling system: sweep until done. */
void bench_consume_loop(struct bench_consumer *c, void *ctx, bench_drain_fn drain,
			int exact_drain);

/*
 * The message the mutex and SPSC peers pass by pointer: copied once,
 * reference-counted, released by whoever drops the last reference (as
 * fanq does, so one delivery costs one pointer and one atomic each way).
 */
struct bench_msg {
	atomic_uint refs;
	uint32_t len;
	unsigned char data[];
};

static inline struct bench_msg *bench_msg_new(const void *data, size_t len,
					      unsigned refs)
{
	struct bench_msg *m = malloc(sizeof(*m) + len);

	if (!m)
		abort();
	atomic_init(&m->refs, refs);
	m->len = (uint32_t)len;
	__builtin_memcpy(m->data, data, len);
	return m;
}

static inline void bench_msg_put(struct bench_msg *m, unsigned n)
{
	/* acq_rel: the last holder sees every other holder's reads done. */
	if (n && atomic_fetch_sub_explicit(&m->refs, n, memory_order_acq_rel) == n)
		free(m);
}

#endif
