/*
 * sys_fanq.c - fanq as the bench drives it: one channel, N subscribers.
 *
 * "fanq": consumer threads sweep their subscribers with
 * fanq_sub_pop_batch().  "fanq-group": each consumer thread owns a
 * consumer group, sleeps in poll() on fanq_group_fd() and drains only the
 * subscribers fanq_group_next_ready() hands it, as an I/O thread would.
 */
#include "bench.h"

#include <fanq.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

struct fanq_ctx {
	fanq_bus *bus;
	fanq_channel *ch;
	fanq_sub **subs;
	fanq_group **groups; /* [consumers], NULL for "fanq" */
	unsigned nsubs, ngroups, queue_max;
};

/*
 * The library's promise, checked at this quiescent point: every message
 * offered to a queue was delivered, dropped or is still queued.
 */
static void check_accounting(const struct fanq_ctx *x)
{
	fanq_sub_stats st;
	uint64_t dropped;
	unsigned i, r, bad = 0;

	for (i = 0; i < x->nsubs; i++) {
		if (fanq_sub_stats_get(x->subs[i], &st))
			continue;
		for (dropped = 0, r = 0; r < FANQ_DROP_REASONS; r++)
			dropped += st.dropped[r];
		bad += st.enqueued != st.delivered + dropped + st.queued_msgs;
	}
	if (bad)
		fprintf(stderr, "fanq-bench: fanq: %u subscribers break enqueued == "
			"delivered + dropped + queued\n", bad);
}

static void fanq_teardown(void *arg)
{
	struct fanq_ctx *x = arg;
	unsigned i;
	int err;

	check_accounting(x);
	for (i = 0; i < x->nsubs; i++)
		fanq_sub_close(x->subs[i]);
	for (i = 0; i < x->ngroups; i++)
		fanq_group_close(x->groups[i]);
	if (x->ch)
		fanq_channel_release(x->ch);
	err = x->bus ? fanq_bus_close(x->bus) : 0;
	if (err)
		fprintf(stderr, "fanq-bench: fanq_bus_close: %s\n", fanq_strerror(err));
	free(x->subs);
	free(x->groups);
	free(x);
}

static int fanq_fail(struct fanq_ctx *x, const char *what, int err)
{
	fprintf(stderr, "fanq-bench: fanq: %s: %s\n", what, fanq_strerror(err));
	fanq_teardown(x);
	return err;
}

static void *fanq_setup_common(const struct bench_params *p, const bool *stalled,
			       int grouped)
{
	struct fanq_ctx *x = calloc(1, sizeof(*x));
	unsigned i;
	int err;

	if (!x || !(x->subs = calloc(p->subs, sizeof(*x->subs))))
		abort();
	x->queue_max = p->queue_max;
	if ((err = fanq_bus_new(&x->bus)) ||
	    (err = fanq_channel_open(x->bus, "bench", &x->ch)))
		return fanq_fail(x, "bus/channel", err), NULL;
	if (grouped) {
		x->groups = calloc(p->consumers, sizeof(*x->groups));
		if (!x->groups)
			abort();
		for (; x->ngroups < p->consumers; x->ngroups++)
			if ((err = fanq_group_new(x->bus, &x->groups[x->ngroups])))
				return fanq_fail(x, "fanq_group_new", err), NULL;
	}
	for (; x->nsubs < p->subs; x->nsubs++) {
		fanq_sub **s = &x->subs[x->nsubs];

		if ((err = fanq_sub_new(x->bus, s)))
			return fanq_fail(x, "fanq_sub_new", err), NULL;
		/* The message limit binds, as for the peers; bytes never do. */
		if ((err = fanq_sub_set_limits(*s, p->queue_max, (uint64_t)1 << 40)) ||
		    (err = fanq_sub_set_policy(*s, p->drop_oldest ? FANQ_DROP_OLDEST
								  : FANQ_DROP_NEW)))
			return fanq_fail(x, "limits/policy", err), NULL;
		i = x->nsubs;
		if (grouped && !stalled[i] &&
		    (err = fanq_group_attach(x->groups[i % p->consumers], *s)))
			return fanq_fail(x, "fanq_group_attach", err), NULL;
		if ((err = fanq_subscribe(*s, x->ch)))
			return fanq_fail(x, "fanq_subscribe", err), NULL;
	}
	return x;
}

static void *fanq_setup(const struct bench_params *p, const bool *stalled)
{
	return fanq_setup_common(p, stalled, 0);
}

static void *fanq_group_setup(const struct bench_params *p, const bool *stalled)
{
	return fanq_setup_common(p, stalled, 1);
}

static void fanq_pub(void *arg, unsigned pub, const void *data, size_t len)
{
	struct fanq_ctx *x = arg;

	(void)pub;
	fanq_publish(x->ch, data, len, 0, NULL);
}

/* Pop everything queued for one subscriber; returns data messages taken. */
static uint64_t drain_one(fanq_sub *s)
{
	fanq_entry e[BENCH_BATCH];
	uint64_t got = 0;
	int n, i;

	do {
		n = fanq_sub_pop_batch(s, e, BENCH_BATCH);
		for (i = 0; i < n; i++) {
			if (e[i].kind != FANQ_ENTRY_MSG)
				continue;
			got += ((const unsigned char *)fanq_msg_data(e[i].msg))[0] == BENCH_DATA;
			fanq_msg_release(e[i].msg);
		}
	} while (n == BENCH_BATCH);
	return got;
}

static uint64_t fanq_drain(void *arg, unsigned sub, int may_wait)
{
	struct fanq_ctx *x = arg;

	(void)may_wait; /* sleeping is fanq-group's business */
	return drain_one(x->subs[sub]);
}

/* A connection comes and goes: its own subscriber, subscribed, drained, closed. */
static int fanq_churn(void *arg)
{
	struct fanq_ctx *x = arg;
	fanq_sub *s;

	if (fanq_sub_new(x->bus, &s))
		return -1;
	if (fanq_sub_set_limits(s, x->queue_max, (uint64_t)1 << 40) == 0 &&
	    fanq_subscribe(s, x->ch) == 0)
		drain_one(s);
	fanq_sub_close(s);
	return 0;
}

static void fanq_consume(void *arg, struct bench_consumer *c)
{
	bench_consume_loop(c, arg, fanq_drain, 1);
}

static void fanq_group_consume(void *arg, struct bench_consumer *c)
{
	struct fanq_ctx *x = arg;
	fanq_group *g = x->groups[c->idx];
	struct pollfd pfd = { .fd = fanq_group_fd(g), .events = POLLIN };
	uint64_t ticks, got;
	fanq_sub *s;
	int done;

	for (;;) {
		done = atomic_load_explicit(&c->pass->pubs_done, memory_order_acquire);
		got = 0;
		if (poll(&pfd, 1, 1) > 0 && read(pfd.fd, &ticks, sizeof(ticks)) < 0)
			ticks = 0;
		while (fanq_group_next_ready(g, &s) == 0) {
			uint64_t n = drain_one(s);

			got += n;
			bench_consumer_took(c, n);
		}
		/* Publishers are gone: one full sweep ends the pass exactly,
		 * whatever the wakeups did. */
		if (done && !got)
			got = bench_sweep(c, x, fanq_drain, 0);
		if (bench_consumer_sweep(c, got, done, 1))
			return;
	}
}

const struct bench_sys bench_sys_fanq = {
	.name = "fanq",
	.about = "fanq_publish; consumers sweep their subs with fanq_sub_pop_batch",
	.setup = fanq_setup, .publish = fanq_pub, .consume = fanq_consume,
	.teardown = fanq_teardown, .churn = fanq_churn, .exact_drain = 1, .memory = 1,
};

const struct bench_sys bench_sys_fanq_group = {
	.name = "fanq-group",
	.about = "fanq; each consumer polls its group's eventfd, drains next_ready subs",
	.setup = fanq_group_setup, .publish = fanq_pub, .consume = fanq_group_consume,
	.teardown = fanq_teardown, .churn = fanq_churn, .exact_drain = 1,
};
