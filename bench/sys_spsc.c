/*
 * sys_spsc.c - the hardware-limit reference for one delivery: a bare
 * single-producer single-consumer ring of message pointers per (subscriber,
 * publisher), power-of-two sized, free-running indices, producer and
 * consumer fields on separate cache lines, each side caching the other's
 * index (as Linux ptr_ring and ck_ring do).  One refcounted message pointer
 * per delivery, like fanq.  No drop policy beyond rejecting when full, no
 * wakeup, no channels, no accounting: what fanq's extra features cost is
 * the gap to this line.
 */
#include "bench.h"

#include <string.h>

struct spsc {
	/* producer's line */
	_Alignas(BENCH_CACHE_LINE) _Atomic uint32_t tail; /* pairs with the
		acquire load in spsc_pop() */
	uint32_t head_cache; /* producer's last view of head */
	/* consumer's line */
	_Alignas(BENCH_CACHE_LINE) _Atomic uint32_t head; /* pairs with the
		acquire load in spsc_push() */
	uint32_t tail_cache; /* consumer's last view of tail */
	/* read-only after setup */
	_Alignas(BENCH_CACHE_LINE) struct bench_msg **slot;
	uint32_t mask;
};

struct spsc_ctx {
	struct spsc *ring; /* [sub * pubs + pub] */
	unsigned n, pubs;
};

static void *spsc_setup(const struct bench_params *p, const bool *stalled)
{
	struct spsc_ctx *x = calloc(1, sizeof(*x));
	unsigned size = 1, i;

	(void)stalled;
	while (size < p->queue_max)
		size *= 2;
	x->n = p->subs;
	x->pubs = p->pubs;
	x->ring = aligned_alloc(BENCH_CACHE_LINE, sizeof(*x->ring) * x->n * x->pubs);
	if (!x->ring)
		abort();
	memset(x->ring, 0, sizeof(*x->ring) * x->n * x->pubs);
	for (i = 0; i < x->n * x->pubs; i++) {
		x->ring[i].mask = size - 1;
		if (!(x->ring[i].slot = malloc(size * sizeof(*x->ring[i].slot))))
			abort();
	}
	return x;
}

/* Producer side; returns 1 when the ring is full (message rejected). */
static inline unsigned spsc_push(struct spsc *r, struct bench_msg *m)
{
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (t - r->head_cache > r->mask) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t - r->head_cache > r->mask)
			return 1;
	}
	r->slot[t & r->mask] = m;
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return 0;
}

/* Consumer side: takes up to n pointers. */
static inline unsigned spsc_pop(struct spsc *r, struct bench_msg **out, unsigned n)
{
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed), i;

	if (h == r->tail_cache) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h == r->tail_cache)
			return 0;
	}
	if (n > r->tail_cache - h)
		n = r->tail_cache - h;
	for (i = 0; i < n; i++)
		out[i] = r->slot[(h + i) & r->mask];
	/* one release per batch frees the slots */
	atomic_store_explicit(&r->head, h + n, memory_order_release);
	return n;
}

static void spsc_pub(void *arg, unsigned pub, const void *data, size_t len)
{
	struct spsc_ctx *x = arg;
	struct bench_msg *m = bench_msg_new(data, len, x->n + 1);
	unsigned i, unused = 1;

	for (i = 0; i < x->n; i++)
		unused += spsc_push(&x->ring[i * x->pubs + pub], m);
	bench_msg_put(m, unused);
}

static uint64_t spsc_drain_ring(struct spsc *r)
{
	struct bench_msg *batch[BENCH_BATCH];
	uint64_t got = 0;
	unsigned n, i;

	do {
		n = spsc_pop(r, batch, BENCH_BATCH);
		for (i = 0; i < n; i++) {
			got += batch[i]->data[0] == BENCH_DATA;
			bench_msg_put(batch[i], 1);
		}
	} while (n == BENCH_BATCH);
	return got;
}

/* A subscriber's rings, one per publisher; never sleeps (no wakeup). */
static uint64_t spsc_drain(void *arg, unsigned sub, int may_wait)
{
	struct spsc_ctx *x = arg;
	uint64_t got = 0;
	unsigned k;

	(void)may_wait;
	for (k = 0; k < x->pubs; k++)
		got += spsc_drain_ring(&x->ring[sub * x->pubs + k]);
	return got;
}

static void spsc_consume(void *arg, struct bench_consumer *c)
{
	bench_consume_loop(c, arg, spsc_drain, 1);
}

static void spsc_teardown(void *arg)
{
	struct spsc_ctx *x = arg;
	struct bench_msg *batch[BENCH_BATCH];
	unsigned i, n, j;

	for (i = 0; i < x->n * x->pubs; i++) {
		while ((n = spsc_pop(&x->ring[i], batch, BENCH_BATCH)))
			for (j = 0; j < n; j++)
				bench_msg_put(batch[j], 1);
		free(x->ring[i].slot);
	}
	free(x->ring);
	free(x);
}

const struct bench_sys bench_sys_spsc = {
	.name = "spsc",
	.about = "bare SPSC pointer ring per sub (x publisher): the hardware reference",
	.setup = spsc_setup, .publish = spsc_pub, .consume = spsc_consume,
	.teardown = spsc_teardown, .exact_drain = 1, .memory = 1,
};
