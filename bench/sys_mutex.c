/*
 * sys_mutex.c - the design servers use today: per subscriber, a bounded
 * ring of message pointers that grows like a deque (16 slots, doubling up
 * to queue_max), guarded by a mutex, with a condvar signalled when it goes
 * from empty to non-empty and its consumer sleeps on it.  A consumer
 * thread that serves one subscriber sleeps on that condvar; one that
 * serves many sweeps them (it cannot wait on many condvars at once).
 * With churn, the subscriber list gets the lock such servers put on it:
 * publishers hold it while fanning out, a joining or leaving subscriber
 * takes it to change the list.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct mq {
	_Alignas(BENCH_CACHE_LINE) pthread_mutex_t mu;
	pthread_cond_t nonempty;
	struct bench_msg **ring;
	unsigned head, count, cap; /* all under mu */
	int waiting;               /* consumer sleeps on nonempty; under mu */
};

struct mutex_ctx {
	struct mq *q;
	unsigned n, max;
	int drop_oldest;
	int churn;               /* the list below is in use */
	pthread_mutex_t list_mu; /* guards extra */
	struct mq *extra;        /* a churning subscriber, or NULL */
};

static void mq_init(struct mq *q, unsigned max)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	q->cap = 16 < max ? 16 : max;
	if (!(q->ring = malloc(q->cap * sizeof(*q->ring))))
		abort();
}

/* Drop what is queued and free the queue's resources. */
static void mq_destroy(struct mq *q)
{
	unsigned j;

	for (j = 0; j < q->count; j++)
		bench_msg_put(q->ring[(q->head + j) % q->cap], 1);
	free(q->ring);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->nonempty);
}

static void *mutex_setup(const struct bench_params *p, const bool *stalled)
{
	struct mutex_ctx *x = calloc(1, sizeof(*x));
	unsigned i;

	(void)stalled;
	if (!x || !(x->q = aligned_alloc(BENCH_CACHE_LINE, sizeof(*x->q) * p->subs)))
		abort();
	x->n = p->subs;
	x->max = p->queue_max;
	x->drop_oldest = p->drop_oldest;
	x->churn = p->churn;
	pthread_mutex_init(&x->list_mu, NULL);
	for (i = 0; i < p->subs; i++)
		mq_init(&x->q[i], x->max);
	return x;
}

/* Grow a full ring, keeping order; caller holds q->mu. */
static int mq_grow(struct mq *q, unsigned max)
{
	unsigned cap = q->cap * 2 < max ? q->cap * 2 : max, i;
	struct bench_msg **r;

	if (cap <= q->cap || !(r = malloc(cap * sizeof(*r))))
		return -1;
	for (i = 0; i < q->count; i++)
		r[i] = q->ring[(q->head + i) % q->cap];
	free(q->ring);
	q->ring = r;
	q->head = 0;
	q->cap = cap;
	return 0;
}

/*
 * Returns references the publisher must drop (rejected or evicted).
 * Inlined at both call sites, as it was at its one before churn: the
 * baseline must not pay a call (~20 instructions a delivery) for it.
 */
static inline __attribute__((always_inline)) unsigned
mq_push(struct mutex_ctx *x, struct mq *q, struct bench_msg *m)
{
	struct bench_msg *evicted = NULL;
	int wake;

	pthread_mutex_lock(&q->mu);
	if (q->count == q->cap && mq_grow(q, x->max) < 0) {
		if (!x->drop_oldest) {
			pthread_mutex_unlock(&q->mu);
			return 1;
		}
		evicted = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	q->ring[(q->head + q->count++) % q->cap] = m;
	wake = q->count == 1 && q->waiting;
	pthread_mutex_unlock(&q->mu);
	if (wake)
		pthread_cond_signal(&q->nonempty);
	if (evicted)
		bench_msg_put(evicted, 1);
	return 0;
}

static void mutex_pub(void *arg, unsigned pub, const void *data, size_t len)
{
	struct mutex_ctx *x = arg;
	/* a reference per queue it may enter, and the publisher's own */
	struct bench_msg *m = bench_msg_new(data, len, x->n + 1 + (x->churn ? 1 : 0));
	unsigned i, unused = 1;

	(void)pub;
	if (x->churn) {
		pthread_mutex_lock(&x->list_mu);
		unused += x->extra ? mq_push(x, x->extra, m) : 1;
	}
	for (i = 0; i < x->n; i++)
		unused += mq_push(x, &x->q[i], m);
	if (x->churn)
		pthread_mutex_unlock(&x->list_mu);
	bench_msg_put(m, unused);
}

static uint64_t mutex_drain(void *arg, unsigned sub, int wait)
{
	struct mutex_ctx *x = arg;
	struct mq *q = &x->q[sub];
	struct bench_msg *batch[BENCH_BATCH];
	uint64_t got = 0;
	unsigned n, i;

	do {
		pthread_mutex_lock(&q->mu);
		if (wait && !q->count) {
			struct timespec ts;

			/* Bounded sleep so that the end of the pass is seen. */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			q->waiting = 1;
			pthread_cond_timedwait(&q->nonempty, &q->mu, &ts);
			q->waiting = 0;
		}
		for (n = 0; n < BENCH_BATCH && q->count; n++) {
			batch[n] = q->ring[q->head];
			q->head = (q->head + 1) % q->cap;
			q->count--;
		}
		pthread_mutex_unlock(&q->mu);
		for (i = 0; i < n; i++) {
			got += batch[i]->data[0] == BENCH_DATA;
			bench_msg_put(batch[i], 1);
		}
		wait = 0;
	} while (n == BENCH_BATCH);
	return got;
}

/* A subscriber joins the list, takes what arrived, and leaves. */
static int mutex_churn(void *arg)
{
	struct mutex_ctx *x = arg;
	struct mq q;

	mq_init(&q, x->max);
	pthread_mutex_lock(&x->list_mu);
	x->extra = &q;
	pthread_mutex_unlock(&x->list_mu);
	pthread_mutex_lock(&q.mu);
	while (q.count) {
		bench_msg_put(q.ring[q.head], 1);
		q.head = (q.head + 1) % q.cap;
		q.count--;
	}
	pthread_mutex_unlock(&q.mu);
	pthread_mutex_lock(&x->list_mu);
	x->extra = NULL;
	pthread_mutex_unlock(&x->list_mu);
	mq_destroy(&q);
	return 0;
}

static void mutex_consume(void *arg, struct bench_consumer *c)
{
	bench_consume_loop(c, arg, mutex_drain, 1);
}

static void mutex_teardown(void *arg)
{
	struct mutex_ctx *x = arg;
	unsigned i;

	for (i = 0; i < x->n; i++)
		mq_destroy(&x->q[i]);
	pthread_mutex_destroy(&x->list_mu);
	free(x->q);
	free(x);
}

const struct bench_sys bench_sys_mutex = {
	.name = "mutex",
	.about = "per-sub deque-like ring + mutex + condvar, refcounted message pointers",
	.setup = mutex_setup, .publish = mutex_pub, .consume = mutex_consume,
	.teardown = mutex_teardown, .churn = mutex_churn, .exact_drain = 1, .memory = 1,
};
