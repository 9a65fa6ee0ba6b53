/*
 * sys_zmq.c - ZeroMQ inproc PUB -> N SUB.  One PUB socket per publisher
 * thread (zmq sockets are single-threaded), every SUB connects to all of
 * them.  PUB drops for a SUB whose pipe is full; the inproc pipe holds
 * SNDHWM + RCVHWM messages, so each is set to queue_max / 2.  Consumers
 * poll their SUB sockets with ZMQ_DONTWAIT and zmq_msg_recv (no copy).
 */
#include "bench.h"

#include <stdio.h>
#include <unistd.h>
#include <zmq.h>

struct zmq_ctx {
	void *ctx;
	void **pub; /* [pubs] */
	void **sub; /* [n] */
	unsigned n, pubs;
	int hwm;
};

static void zmq_teardown_ctx(void *arg)
{
	struct zmq_ctx *x = arg;
	unsigned i;

	for (i = 0; i < x->n; i++)
		if (x->sub[i])
			zmq_close(x->sub[i]);
	for (i = 0; i < x->pubs; i++)
		if (x->pub[i])
			zmq_close(x->pub[i]);
	zmq_ctx_term(x->ctx);
	free(x->sub);
	free(x->pub);
	free(x);
}

/* Messages waiting on one SUB; probes are taken but not counted. */
static uint64_t zmq_drain_sub(void *s, uint64_t *probed)
{
	uint64_t got = 0;
	zmq_msg_t m;

	zmq_msg_init(&m);
	while (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0) {
		const unsigned char *d = zmq_msg_data(&m);

		if (d[0] == BENCH_DATA)
			got++;
		else if (probed && zmq_msg_size(&m) == 2)
			*probed |= 1ull << d[1]; /* from PUB d[1] */
	}
	zmq_msg_close(&m);
	return got;
}

/* Publish probes until every SUB got one from every PUB (slow joiners). */
static int zmq_wait_joined(struct zmq_ctx *x)
{
	uint64_t *seen = calloc(x->n, sizeof(*seen));
	uint64_t all = x->pubs == 64 ? ~0ull : (1ull << x->pubs) - 1;
	unsigned joined = 0, i, k, tries;

	if (!seen)
		abort();
	for (tries = 0; joined < x->n && tries < 10000; tries++) {
		for (k = 0; k < x->pubs; k++) {
			unsigned char probe[2] = { BENCH_PROBE, (unsigned char)k };

			zmq_send(x->pub[k], probe, 2, ZMQ_DONTWAIT);
		}
		usleep(1000);
		for (i = 0, joined = 0; i < x->n; i++) {
			zmq_drain_sub(x->sub[i], &seen[i]);
			joined += seen[i] == all;
		}
	}
	usleep(10000);
	for (i = 0; i < x->n; i++)
		zmq_drain_sub(x->sub[i], NULL);
	free(seen);
	return joined == x->n ? 0 : -1;
}

static void *zmq_setup(const struct bench_params *p, const bool *stalled)
{
	struct zmq_ctx *x = calloc(1, sizeof(*x));
	int hwm = p->queue_max / 2 ? (int)(p->queue_max / 2) : 1;
	char url[64];
	unsigned i, k;

	(void)stalled;
	if (!x || !(x->ctx = zmq_ctx_new()))
		abort();
	x->n = p->subs;
	x->pubs = p->pubs;
	x->hwm = hwm;
	if (p->pubs > 64) {
		fprintf(stderr, "fanq-bench: zmq: at most 64 publishers\n");
		zmq_ctx_term(x->ctx);
		free(x);
		return NULL;
	}
	x->pub = calloc(x->pubs, sizeof(*x->pub));
	x->sub = calloc(x->n, sizeof(*x->sub));
	if (!x->pub || !x->sub)
		abort();
	/* churn closes sockets faster than zmq's reaper may free them */
	zmq_ctx_set(x->ctx, ZMQ_MAX_SOCKETS, (int)(x->n + x->pubs + 1024));
	for (k = 0; k < x->pubs; k++) {
		snprintf(url, sizeof(url), "inproc://fanq-bench-%u", k);
		x->pub[k] = zmq_socket(x->ctx, ZMQ_PUB);
		if (!x->pub[k] || zmq_setsockopt(x->pub[k], ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
		    zmq_bind(x->pub[k], url))
			goto fail;
	}
	for (i = 0; i < x->n; i++) {
		x->sub[i] = zmq_socket(x->ctx, ZMQ_SUB);
		if (!x->sub[i] || zmq_setsockopt(x->sub[i], ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
		    zmq_setsockopt(x->sub[i], ZMQ_SUBSCRIBE, "", 0))
			goto fail;
		for (k = 0; k < x->pubs; k++) {
			snprintf(url, sizeof(url), "inproc://fanq-bench-%u", k);
			if (zmq_connect(x->sub[i], url))
				goto fail;
		}
	}
	if (zmq_wait_joined(x) == 0)
		return x;
	fprintf(stderr, "fanq-bench: zmq: subscribers did not join in time\n");
	zmq_teardown_ctx(x);
	return NULL;
fail:
	fprintf(stderr, "fanq-bench: zmq: %s (subs=%u; raise ulimit -n?)\n",
		zmq_strerror(zmq_errno()), x->n);
	zmq_teardown_ctx(x);
	return NULL;
}

static void zmq_pub(void *arg, unsigned pub, const void *data, size_t len)
{
	struct zmq_ctx *x = arg;

	zmq_send(x->pub[pub], data, len, 0);
}

static uint64_t zmq_drain(void *arg, unsigned sub, int may_wait)
{
	struct zmq_ctx *x = arg;

	(void)may_wait; /* polls with ZMQ_DONTWAIT, like the in-process queues */
	return zmq_drain_sub(x->sub[sub], NULL);
}

static void zmq_consume(void *arg, struct bench_consumer *c)
{
	bench_consume_loop(c, arg, zmq_drain, 0);
}

/* A SUB socket connects to every PUB, takes what arrived, and closes. */
static int zmq_churn(void *arg)
{
	struct zmq_ctx *x = arg;
	void *s = zmq_socket(x->ctx, ZMQ_SUB);
	int zero = 0, rc = 0;
	char url[64];
	unsigned k;

	if (!s)
		return -1;
	zmq_setsockopt(s, ZMQ_RCVHWM, &x->hwm, sizeof(x->hwm));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
	for (k = 0; k < x->pubs; k++) {
		snprintf(url, sizeof(url), "inproc://fanq-bench-%u", k);
		rc |= zmq_connect(s, url);
	}
	zmq_drain_sub(s, NULL);
	zmq_close(s);
	return rc ? -1 : 0;
}

static void zmq_teardown(void *arg)
{
	struct zmq_ctx *x = arg;
	int zero = 0;
	unsigned i;

	for (i = 0; i < x->n; i++)
		zmq_setsockopt(x->sub[i], ZMQ_LINGER, &zero, sizeof(zero));
	for (i = 0; i < x->pubs; i++)
		zmq_setsockopt(x->pub[i], ZMQ_LINGER, &zero, sizeof(zero));
	zmq_teardown_ctx(x);
}

const struct bench_sys bench_sys_zmq = {
	.name = "zmq",
	.about = "ZeroMQ inproc PUB -> N SUB, SNDHWM = RCVHWM = queue-max/2",
	.setup = zmq_setup, .publish = zmq_pub, .consume = zmq_consume,
	.teardown = zmq_teardown, .churn = zmq_churn, .exact_drain = 0,
};
