/*
 * burst.c - does a channel recover after a burst it cannot keep up with?
 * (README "How it works", the hand-over.)
 *
 *   build/bench/burst [N [BURST [AFTER [SECONDS]]]]   (built by `make`;
 *   defaults 1000 subscribers, 200000 then 30000 publishes/s, 8 s)
 *
 * One publisher thread publishes 16-byte messages on a schedule: BURST a
 * second for the first 1.2 s, AFTER a second from then on; a publish the
 * channel refuses (FANQ_EAGAIN) counts as refused and is not retried.
 * The schedule is a rate, not a debt: more than 10 ms behind it, the
 * publisher skips ahead, so after the burst it offers AFTER a second.
 * One consumer thread sweeps all N drop-oldest subscribers (limit 1024)
 * with fanq_sub_pop_batch.  The subscribers join before the run starts
 * (a subscribe that finds the fan-out role free during the burst would
 * be held there, README "A bounded hand-over").
 * Every 0.4 s a line: subscribers on the shared log, the channel's
 * backlog, publishes made and refused, deliveries and drops so far.
 * fanq's drop log is discarded: a line per subscriber would bury them.
 */
#include <fanq.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BURST_SECONDS 1.2
#define REPORT_NS 400000000L

struct run {
	fanq_channel *ch;
	fanq_sub **subs;
	unsigned nsubs;
	double burst_rate, after_rate;
	atomic_int stop;
	atomic_ulong published, refused;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Messages due t seconds into the run (none before it starts). */
static unsigned long due(const struct run *r, double t)
{
	if (t <= 0)
		return 0;
	if (t < BURST_SECONDS)
		return (unsigned long)(t * r->burst_rate);
	return (unsigned long)(BURST_SECONDS * r->burst_rate +
			       (t - BURST_SECONDS) * r->after_rate);
}

static void *publisher(void *arg)
{
	struct run *r = arg;
	struct timespec nap = {0, 100000L};
	unsigned char msg[16] = {0};
	double t0 = now_s();
	unsigned long sent = 0;

	while (!atomic_load(&r->stop)) {
		double t = now_s() - t0;
		unsigned long want = due(r, t), lag = due(r, t) - due(r, t - 0.01);

		if (sent + lag < want)
			sent = want - lag; /* skipped: see the top */
		if (sent >= want) {
			nanosleep(&nap, NULL);
			continue;
		}
		for (; sent < want; sent++)
			atomic_fetch_add(fanq_publish(r->ch, msg, sizeof(msg), 0, NULL)
						 ? &r->refused : &r->published, 1);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct run *r = arg;
	fanq_entry e[64];
	int n;

	while (!atomic_load(&r->stop))
		for (unsigned i = 0; i < r->nsubs; i++)
			while ((n = fanq_sub_pop_batch(r->subs[i], e, 64)) > 0)
				for (int j = 0; j < n; j++)
					if (e[j].kind == FANQ_ENTRY_MSG)
						fanq_msg_release(e[j].msg);
	return NULL;
}

static void report(struct run *r, double t)
{
	unsigned long on_log = 0, delivered = 0, dropped = 0;
	fanq_channel_stats cs;

	for (unsigned i = 0; i < r->nsubs; i++) {
		fanq_sub_stats st;

		fanq_sub_stats_get(r->subs[i], &st);
		on_log += (unsigned long)st.shared_log;
		delivered += st.delivered;
		for (int k = 0; k < FANQ_DROP_REASONS; k++)
			dropped += st.dropped[k];
	}
	fanq_channel_stats_get(r->ch, &cs);
	printf("t=%4.1fs on_log %5lu/%u backlog %5llu published %9lu refused %8lu "
	       "delivered %11lu dropped %10lu\n", t, on_log, r->nsubs,
	       (unsigned long long)cs.backlog, atomic_load(&r->published),
	       atomic_load(&r->refused), delivered, dropped);
	fflush(stdout);
}

static void log_discard(void *arg, const fanq_log_record *rec)
{
	(void)arg, (void)rec;
}

static int setup(struct run *r, fanq_bus **bus)
{
	if (fanq_bus_new(bus) || fanq_bus_set_log(*bus, log_discard, NULL) ||
	    fanq_channel_open(*bus, "burst", &r->ch))
		return -1;
	r->subs = calloc(r->nsubs, sizeof(*r->subs));
	if (!r->subs)
		return -1;
	for (unsigned i = 0; i < r->nsubs; i++)
		if (fanq_sub_new(*bus, &r->subs[i]) ||
		    fanq_sub_set_limits(r->subs[i], 1024, 1 << 20) ||
		    fanq_sub_set_policy(r->subs[i], FANQ_DROP_OLDEST))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct run r = {
		.nsubs = argc > 1 ? (unsigned)atoi(argv[1]) : 1000,
		.burst_rate = argc > 2 ? atof(argv[2]) : 200000,
		.after_rate = argc > 3 ? atof(argv[3]) : 30000,
	};
	double seconds = argc > 4 ? atof(argv[4]) : 8, t0;
	struct timespec tick = {0, REPORT_NS};
	pthread_t pub, con;
	fanq_bus *bus = NULL;

	if (!r.nsubs || seconds <= 0 || setup(&r, &bus)) {
		fprintf(stderr, "usage: burst [N [BURST [AFTER [SECONDS]]]]\n");
		return 2;
	}
	printf("burst: %u subscribers, %.0f publishes/s for %.1f s, then %.0f/s\n",
	       r.nsubs, r.burst_rate, BURST_SECONDS, r.after_rate);
	for (unsigned i = 0; i < r.nsubs; i++)
		fanq_subscribe(r.subs[i], r.ch);
	t0 = now_s();
	pthread_create(&pub, NULL, publisher, &r);
	pthread_create(&con, NULL, consumer, &r);
	while (now_s() - t0 < seconds) {
		nanosleep(&tick, NULL);
		report(&r, now_s() - t0);
	}
	atomic_store(&r.stop, 1);
	pthread_join(pub, NULL);
	pthread_join(con, NULL);
	for (unsigned i = 0; i < r.nsubs; i++)
		fanq_sub_close(r.subs[i]);
	free(r.subs);
	fanq_channel_release(r.ch);
	return fanq_bus_close(bus) ? 1 : 0;
}
