/*
 * sys_nng.c - nng inproc pub0 -> N sub0.  nng sockets are thread-safe, so
 * every publisher thread sends on the one pub0 socket.  pub0 drops for a
 * pipe whose queue is full; sendbuf (per pipe) and each sub's recvbuf are
 * queue_max / 2 each (nng caps both at 8192).  Consumers poll their sub0
 * sockets with nng_recvmsg(NNG_FLAG_NONBLOCK).
 */
#include "bench.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NNG_URL "inproc://fanq-bench"

struct nng_ctx {
	nng_socket pub;
	nng_socket *sub; /* [n] */
	unsigned n, opened;
	int half;
};

static void nng_teardown(void *arg)
{
	struct nng_ctx *x = arg;
	unsigned i;

	for (i = 0; i < x->opened; i++)
		nng_close(x->sub[i]);
	nng_close(x->pub);
	free(x->sub);
	free(x);
}

/* Messages waiting on one sub; probes are taken but not counted. */
static uint64_t nng_drain_sub(nng_socket s, int *probed)
{
	uint64_t got = 0;
	nng_msg *m;

	while (nng_recvmsg(s, &m, NNG_FLAG_NONBLOCK) == 0) {
		if (((const unsigned char *)nng_msg_body(m))[0] == BENCH_DATA)
			got++;
		else if (probed)
			*probed = 1;
		nng_msg_free(m);
	}
	return got;
}

static void nng_send_copy(nng_socket s, const void *data, size_t len)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, len))
		abort();
	memcpy(nng_msg_body(m), data, len);
	/* pub0 never blocks; on error the message stays ours */
	if (nng_sendmsg(s, m, 0))
		nng_msg_free(m);
}

/* Publish probes until every sub got one (pipes attach asynchronously). */
static int nng_wait_joined(struct nng_ctx *x)
{
	int *seen = calloc(x->n, sizeof(*seen));
	unsigned char probe = BENCH_PROBE;
	unsigned joined = 0, i, tries;

	if (!seen)
		abort();
	for (tries = 0; joined < x->n && tries < 10000; tries++) {
		nng_send_copy(x->pub, &probe, 1);
		usleep(1000);
		for (i = 0, joined = 0; i < x->n; i++) {
			nng_drain_sub(x->sub[i], &seen[i]);
			joined += seen[i];
		}
	}
	usleep(10000);
	for (i = 0; i < x->n; i++)
		nng_drain_sub(x->sub[i], NULL);
	free(seen);
	return joined == x->n ? 0 : -1;
}

static void *nng_setup(const struct bench_params *p, const bool *stalled)
{
	struct nng_ctx *x = calloc(1, sizeof(*x));
	int half = p->queue_max / 2 ? (int)(p->queue_max / 2) : 1, rv;

	(void)stalled;
	if (!x || !(x->sub = calloc(p->subs, sizeof(*x->sub))))
		abort();
	x->n = p->subs;
	half = half > 8192 ? 8192 : half;
	x->half = half;
	if ((rv = nng_pub0_open(&x->pub)) ||
	    (rv = nng_socket_set_int(x->pub, NNG_OPT_SENDBUF, half)) ||
	    (rv = nng_listen(x->pub, NNG_URL, NULL, 0)))
		goto fail;
	for (; x->opened < x->n; x->opened++) {
		nng_socket *s = &x->sub[x->opened];

		if ((rv = nng_sub0_open(s)))
			goto fail;
		if ((rv = nng_socket_set_int(*s, NNG_OPT_RECVBUF, half)) ||
		    (rv = nng_socket_set(*s, NNG_OPT_SUB_SUBSCRIBE, "", 0)) ||
		    (rv = nng_dial(*s, NNG_URL, NULL, 0))) {
			x->opened++;
			goto fail;
		}
	}
	if (nng_wait_joined(x) == 0)
		return x;
	fprintf(stderr, "fanq-bench: nng: subscribers did not join in time\n");
	nng_teardown(x);
	return NULL;
fail:
	fprintf(stderr, "fanq-bench: nng: %s (subs=%u)\n", nng_strerror(rv), x->n);
	nng_teardown(x);
	return NULL;
}

static void nng_pub(void *arg, unsigned pub, const void *data, size_t len)
{
	struct nng_ctx *x = arg;

	(void)pub;
	nng_send_copy(x->pub, data, len);
}

static uint64_t nng_drain(void *arg, unsigned sub, int may_wait)
{
	struct nng_ctx *x = arg;

	(void)may_wait; /* polls with NNG_FLAG_NONBLOCK, like the others */
	return nng_drain_sub(x->sub[sub], NULL);
}

/* A sub0 socket dials the pub0, takes what arrived, and closes. */
static int nng_churn(void *arg)
{
	struct nng_ctx *x = arg;
	nng_socket s;
	int rv;

	if (nng_sub0_open(&s))
		return -1;
	if (!(rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, x->half)) &&
	    !(rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0)) &&
	    !(rv = nng_dial(s, NNG_URL, NULL, 0)))
		nng_drain_sub(s, NULL);
	nng_close(s);
	return rv ? -1 : 0;
}

static void nng_consume(void *arg, struct bench_consumer *c)
{
	bench_consume_loop(c, arg, nng_drain, 0);
}

const struct bench_sys bench_sys_nng = {
	.name = "nng",
	.about = "nng inproc pub0 -> N sub0, sendbuf = recvbuf = queue-max/2 (max 8192)",
	.setup = nng_setup, .publish = nng_pub, .consume = nng_consume,
	.teardown = nng_teardown, .churn = nng_churn, .exact_drain = 0,
};
