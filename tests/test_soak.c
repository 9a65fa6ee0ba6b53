/*
 * Soak: everything at once for FANQ_SOAK_SECONDS (default 2, so the TSan
 * build stays quick; set it higher to soak for longer).
 *
 *  - publishers: each alternates between a shared channel (priority 0)
 *    and its own channel (random priorities: soak_prio(), a pure function
 *    of the seq, so the checker knows each message's lane without a log);
 *    payload sizes random, now and then a few KiB;
 *  - long-lived subscribers (drop-new, drop-oldest, priority) on every
 *    channel from seq 1, whose consumers stall for random periods, so
 *    their queues overflow under each policy;
 *  - churn threads: subscribers joining live (shared + own channel) or
 *    resuming with fanq_subscribe_after() just behind the channel or far
 *    behind its history, while the publishers run; with health rules
 *    (hard_bytes, or full_ns judged by a ticker thread on the real clock)
 *    that their stalls break, so they are evicted mid-run and see
 *    FANQ_ECLOSED; then they leave;
 *  - every entry any consumer takes goes through the invariant checker
 *    (tests/invariant.h), and each subscriber's payloads are checked:
 *    per channel, publisher and lane, counters only increase.
 *
 * At the end (quiescent: every thread joined) each long-lived and each
 * retired churn subscriber gets the checker's final check: accounting,
 * at most once, gaps matching drops, resume holes, evictions.
 *
 * A subscriber's final check needs it quiescent, so churn subscribers
 * are kept (unsubscribed, rules off) until the end, RETIRED_MAX per churn
 * thread; later rounds are checked entry by entry only.  A resume handed
 * to another fan-out thread reports nothing, so its first seq is unknown
 * (messages handed over before it may have pushed after + 1 out of the
 * history meanwhile): that subscriber is consumed but not checked.
 *
 * Worker threads must not call Check's asserts: they record the first
 * failure and stop; the test thread asserts.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "invariant.h"
#include "test_util.h"

#define SOAK_SECONDS_DEFAULT 2
#define NPUB 3
#define NCH (NPUB + 1)    /* channel 0 is shared, 1 + i is publisher i's */
#define NCONS 2           /* consumer threads of long-lived subscribers */
#define LONG_SUBS 3       /* per consumer: drop-new, drop-oldest, priority */
#define NCHURN 2
#define RETIRED_MAX 192   /* churn subscribers kept for the final check */
#define PAYLOAD_MAX 4096
/*
 * Every channel keeps a history; resumes start up to NEAR_BEHIND behind
 * the channel's last seq, or far behind what the history holds.
 */
#define HISTORY_MSGS 16384
#define HISTORY_BYTES (4u << 20)
#define NEAR_BEHIND 200

struct payload {
	uint32_t pub;
	uint32_t magic;
	uint64_t counter;
};
#define PAYLOAD_MAGIC 0x50a1u

static atomic_int stop;
static struct tu_failure fail = {.stop = &stop};

static bool stopping(void)
{
	return atomic_load_explicit(&stop, memory_order_relaxed);
}

/* xorshift64: one state per thread */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&t, NULL);
}

static fanq_channel *channels[NCH]; /* set before the threads start */
static struct inv_world *world;

static int channel_index(const fanq_channel *ch)
{
	for (int c = 0; c < NCH; c++)
		if (channels[c] == ch)
			return c;
	return -1;
}

/* The priority of seq on an own channel; the shared one uses 0. */
static unsigned soak_prio(const fanq_channel *ch, uint64_t seq)
{
	uint64_t h = (seq + (uint64_t)channel_index(ch)) * 0x9e3779b97f4a7c15ull;

	return (unsigned)(h >> 62);
}

/* ---------------------------------------------------------- consumers */

/* One subscriber and what its consumer has seen. */
struct soaked {
	fanq_sub *sub;
	struct inv_sub *inv;
	unsigned levels;
	int nch, ch[2];      /* channel indexes it subscribed to */
	uint64_t first;      /* exact (single-channel resume): first seq offered */
	bool blind;          /* entries not fed to the checker (see resume_round) */
	bool evicted_seen;   /* a consume call returned FANQ_ECLOSED */
	uint64_t last_counter[NCH][NPUB][FANQ_PRIO_LEVELS];
	uint8_t counter_seen[NCH][NPUB][FANQ_PRIO_LEVELS];
};

static bool payload_ok(struct soaked *s, const char *who, const fanq_entry *e)
{
	int c = channel_index(e->ch);
	size_t len = fanq_msg_len(e->msg);
	const unsigned char *d = fanq_msg_data(e->msg);
	unsigned prio = fanq_msg_priority(e->msg);
	unsigned lane = prio < s->levels ? prio : s->levels - 1;
	struct payload p;

	if (len < sizeof(p)) {
		tu_thread_fail(&fail, "%s: ch %d seq %" PRIu64 ": %zu bytes", who, c, e->seq, len);
		return false;
	}
	memcpy(&p, d, sizeof(p));
	if (p.magic != PAYLOAD_MAGIC || p.pub >= NPUB ||
	    (c > 0 && p.pub != (uint32_t)c - 1) ||
	    (len > sizeof(p) && d[len - 1] != (unsigned char)(p.counter + len))) {
		tu_thread_fail(&fail, "%s: ch %d seq %" PRIu64 ": bad payload", who, c, e->seq);
		return false;
	}
	if (s->counter_seen[c][p.pub][lane] &&
	    p.counter <= s->last_counter[c][p.pub][lane]) {
		tu_thread_fail(&fail, "%s: ch %d lane %u publisher %" PRIu32 " counter %" PRIu64
			  " after %" PRIu64, who, c, lane, p.pub, p.counter,
			  s->last_counter[c][p.pub][lane]);
		return false;
	}
	s->counter_seen[c][p.pub][lane] = 1;
	s->last_counter[c][p.pub][lane] = p.counter;
	return true;
}

static bool entry_ok(struct soaked *s, const char *who, const fanq_entry *e)
{
	if (s->blind)
		return true;
	if (!inv_sub_entry(s->inv, e,
			   e->kind == FANQ_ENTRY_MSG ? fanq_msg_priority(e->msg) : 0)) {
		tu_thread_fail(&fail, "%s: %s", who, inv_sub_error(s->inv));
		return false;
	}
	return e->kind == FANQ_ENTRY_GAP || payload_ok(s, who, e);
}

/*
 * Pop everything ready from s (FANQ_ECLOSED: evicted, noted); false on
 * failure, which is recorded.
 */
static bool consume_ready(struct soaked *s, const char *who)
{
	fanq_entry es[32];
	int n;

	while ((n = fanq_sub_pop_batch(s->sub, es, 32)) > 0) {
		bool ok = true;

		for (int i = 0; i < n; i++) {
			ok = ok && entry_ok(s, who, &es[i]);
			if (es[i].kind == FANQ_ENTRY_MSG)
				fanq_msg_release(es[i].msg);
		}
		if (!ok)
			return false;
	}
	if (n == FANQ_ECLOSED) {
		s->evicted_seen = true;
		return true;
	}
	if (n < 0) {
		tu_thread_fail(&fail, "%s: pop_batch: %s", who, fanq_strerror(n));
		return false;
	}
	return true;
}

/* -------------------------------------------------------- publishers */

struct publisher {
	pthread_t thread;
	uint32_t id;
	uint64_t published;
};

static size_t payload_fill(unsigned char *buf, uint64_t *rng, uint32_t pub,
			   uint64_t counter)
{
	struct payload p = {.pub = pub, .magic = PAYLOAD_MAGIC, .counter = counter};
	uint64_t r = rnd(rng);
	size_t len = sizeof(p) + (r % 16 == 0 ? r % (PAYLOAD_MAX - sizeof(p))
					      : r % 200);

	memcpy(buf, &p, sizeof(p));
	if (len > sizeof(p))
		buf[len - 1] = (unsigned char)(counter + len);
	return len;
}

static void *publisher_main(void *arg)
{
	struct publisher *p = arg;
	fanq_channel *own = channels[1 + p->id];
	uint64_t rng = 0x9e3779b97f4a7c15ull * (p->id + 1), own_seq = 0;
	unsigned char buf[PAYLOAD_MAX];

	for (uint64_t n = 0; !stopping(); n++) {
		bool mine = rnd(&rng) % 2;
		size_t len = payload_fill(buf, &rng, p->id, n);
		/* only this thread publishes on its own channel: seqs 1, 2, ... */
		unsigned prio = mine ? soak_prio(own, own_seq + 1) : 0;
		int rc = tu_publish_retry(mine ? own : channels[0], buf, len, prio);

		if (rc != 0) {
			tu_thread_fail(&fail, "publisher %u: %s", p->id, fanq_strerror(rc));
			break;
		}
		own_seq += mine;
		p->published++;
		if (n % 128 == 0)
			sched_yield();
	}
	return NULL;
}

/* ------------------------------------------- long-lived subscribers */

struct consumer {
	pthread_t thread;
	struct soaked subs[LONG_SUBS];
	unsigned stalls;
};

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	uint64_t rng = (uintptr_t)arg | 1;

	while (!stopping()) {
		if (rnd(&rng) % 64 == 0) { /* stall: the queues overflow */
			sleep_ms(1 + rnd(&rng) % 20);
			c->stalls++;
		}
		for (int i = 0; i < LONG_SUBS; i++) {
			if (!consume_ready(&c->subs[i], "long-lived"))
				return NULL;
			if (c->subs[i].evicted_seen) {
				tu_thread_fail(&fail, "long-lived sub %d evicted (no rules)", i);
				return NULL;
			}
		}
		sched_yield();
	}
	return NULL;
}

/* ------------------------------------------------------------- churn */

struct churn {
	pthread_t thread;
	fanq_bus *bus;
	uint64_t rng;
	unsigned rounds, resumes, short_resumes, blind, evicted;
	unsigned nretired;
	struct soaked retired[RETIRED_MAX]; /* checked at the end */
};

static int churn_sub_new(struct churn *c, struct soaked *s, bool one_lane)
{
	static const enum fanq_policy_kind kinds[] = {FANQ_DROP_NEW,
		FANQ_DROP_OLDEST, FANQ_PRIORITY};
	enum fanq_policy_kind kind = kinds[rnd(&c->rng) % (one_lane ? 2 : 3)];
	fanq_health_rules rules = {0};
	int rc;

	s->levels = kind == FANQ_PRIORITY ? FANQ_PRIO_LEVELS : 1;
	switch (rnd(&c->rng) % 3) {
	case 0:
		rules.hard_bytes = 2048 + rnd(&c->rng) % 8192;
		break;
	case 1:
		rules.full_ns = (1 + rnd(&c->rng) % 4) * TU_MS;
		break;
	default:
		break; /* no rule: leaves when done */
	}
	rc = fanq_sub_new(c->bus, &s->sub);
	if (rc == 0)
		rc = fanq_sub_set_limits(s->sub, 4 + rnd(&c->rng) % 28, 16u << 10);
	if (rc == 0)
		rc = fanq_sub_set_policy(s->sub, kind);
	if (rc == 0)
		rc = fanq_sub_set_health(s->sub, &rules);
	s->inv = inv_sub_new(world, "churn", s->levels);
	if (rc == 0 && !s->inv)
		rc = FANQ_ENOMEM;
	return rc;
}

/* Join live, on the shared channel and one own channel (first unknown). */
static int join_round(struct churn *c, struct soaked *s)
{
	int rc = churn_sub_new(c, s, true);

	s->nch = 2;
	s->ch[0] = 0;
	s->ch[1] = 1 + (int)(rnd(&c->rng) % NPUB);
	for (int i = 0; i < 2 && rc == 0; i++) {
		rc = fanq_subscribe(s->sub, channels[s->ch[i]]);
		if (rc == FANQ_ECLOSED && i > 0) {
			/* the first channel's traffic broke hard_bytes */
			s->nch = i;
			s->evicted_seen = true;
			return 0;
		}
		if (rc == 0 && !inv_sub_subscribed(s->inv, channels[s->ch[i]], 0))
			rc = FANQ_EINVAL;
	}
	return rc;
}

/*
 * Resume on one channel just behind its last seq, or far behind what
 * its history holds (a hole, FANQ_ERANGE).  Applied by this thread, the
 * result names the first seq offered; handed over (deferred), it says
 * nothing and the subscriber goes blind (consumed, not checked).
 */
static int resume_round(struct churn *c, struct soaked *s)
{
	int rc = churn_sub_new(c, s, false);
	fanq_channel *ch;
	uint64_t last, after;
	bool far = rnd(&c->rng) % 3 == 0;
	fanq_resume_result res;

	s->nch = 1;
	s->ch[0] = (int)(rnd(&c->rng) % NCH);
	ch = channels[s->ch[0]];
	if (rc != 0)
		return rc;
	last = fanq_channel_last_seq(ch);
	if (far)
		after = last > 2 * HISTORY_MSGS ? rnd(&c->rng) % (last / 2) : 0;
	else
		after = last - (last < NEAR_BEHIND ? last : rnd(&c->rng) % NEAR_BEHIND);
	rc = fanq_subscribe_after(s->sub, ch, after, &res);
	if (rc != 0 && rc != FANQ_ERANGE)
		return rc;
	c->resumes++;
	if (res.deferred) {
		s->blind = true;
		c->blind++;
		return 0;
	}
	if (rc == FANQ_ERANGE) {
		c->short_resumes++;
		if (res.gap_first != after + 1 || res.gap_last < res.gap_first) {
			tu_thread_fail(&fail, "resume after %" PRIu64 ": range %" PRIu64 "..%" PRIu64,
				  after, res.gap_first, res.gap_last);
			return FANQ_EINVAL;
		}
		s->first = res.gap_last + 1;
	} else {
		s->first = after + 1;
	}
	if (!inv_sub_resumed(s->inv, ch, after, s->first))
		return FANQ_EINVAL;
	return 0;
}

/* Consume with stalls (rules may evict it meanwhile), then leave. */
static bool churn_live(struct churn *c, struct soaked *s)
{
	static const fanq_health_rules off = {0};
	unsigned steps = 1 + (unsigned)(rnd(&c->rng) % 8);
	int rc;

	for (unsigned k = 0; k < steps && !s->evicted_seen && !stopping(); k++) {
		if (rnd(&c->rng) % 3 == 0)
			sleep_ms(2 + rnd(&c->rng) % 12);
		if (!consume_ready(s, "churn"))
			return false;
		sched_yield();
	}
	c->evicted += s->evicted_seen;
	/* leave: the rules off first, so the ticker cannot evict it later */
	rc = fanq_sub_set_health(s->sub, &off);
	for (int i = 0; i < s->nch && rc == 0; i++)
		rc = fanq_unsubscribe(s->sub, channels[s->ch[i]]);
	if (rc != 0) {
		tu_thread_fail(&fail, "churn leave: %s", fanq_strerror(rc));
		return false;
	}
	return consume_ready(s, "churn");
}

static void soaked_free(struct soaked *s)
{
	if (s->sub)
		fanq_sub_close(s->sub);
	inv_sub_free(s->inv);
	memset(s, 0, sizeof(*s));
}

static bool churn_round(struct churn *c)
{
	struct soaked scratch, *s;
	bool keep = c->nretired < RETIRED_MAX, ok;
	int rc;

	s = keep ? &c->retired[c->nretired] : &scratch;
	memset(s, 0, sizeof(*s));
	rc = rnd(&c->rng) % 2 ? join_round(c, s) : resume_round(c, s);
	if (rc != 0) {
		tu_thread_fail(&fail, "churn round %u: %s %s", c->rounds, fanq_strerror(rc),
			  s->inv ? inv_sub_error(s->inv) : "");
		soaked_free(s);
		return false;
	}
	ok = churn_live(c, s);
	if (keep && !s->blind && ok) {
		c->nretired++;
		return true;
	}
	soaked_free(s);
	return ok;
}

static void *churn_main(void *arg)
{
	struct churn *c = arg;

	while (!stopping() && churn_round(c))
		c->rounds++;
	return NULL;
}

/* ------------------------------------------------------------ ticker */

static atomic_uint ticker_evictions, log_lines;

static void count_log(void *arg, const fanq_log_record *r)
{
	(void)arg;
	(void)r;
	atomic_fetch_add_explicit(&log_lines, 1, memory_order_relaxed);
}

static void *ticker_main(void *arg)
{
	fanq_bus *bus = arg;

	while (!stopping()) {
		int n = fanq_bus_tick(bus);

		if (n < 0) {
			tu_thread_fail(&fail, "tick: %s", fanq_strerror(n));
			break;
		}
		atomic_fetch_add_explicit(&ticker_evictions, (unsigned)n,
					  memory_order_relaxed);
		sleep_ms(1);
	}
	return NULL;
}

/* -------------------------------------------------------------- test */

static unsigned soak_seconds(void)
{
	const char *env = getenv("FANQ_SOAK_SECONDS");
	unsigned long v = env ? strtoul(env, NULL, 10) : 0;

	return v > 0 && v < 86400 ? (unsigned)v : SOAK_SECONDS_DEFAULT;
}

/* The final check of a retired churn subscriber (quiescent now). */
static void check_retired(struct soaked *s)
{
	bool evicted;

	ck_assert_msg(consume_ready(s, "retired"), "%s", fail.msg);
	evicted = fanq_sub_evicted(s->sub, NULL) == 1;
	for (int i = 0; i < s->nch; i++) {
		fanq_channel *ch = channels[s->ch[i]];
		/* exact: the seqs offered are first, first + 1, ...; joined
		 * live (first unknown): any bound above what was offered */
		uint64_t last = s->first ? s->first + tu_stats(s->sub).enqueued - 1
					 : fanq_channel_last_seq(ch);

		ck_assert_msg(inv_sub_unsubscribed(s->inv, ch, last), "%s",
			      inv_sub_error(s->inv));
	}
	if (evicted)
		ck_assert_msg(inv_sub_evicted(s->inv), "%s", inv_sub_error(s->inv));
	fanq_sub_stats st = tu_stats(s->sub);
	ck_assert_msg(inv_sub_check(s->inv, s->sub), "%s (ch %d%s, first %" PRIu64
		      ", levels %u, evicted %d, enqueued %" PRIu64 ", dropped "
		      "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 ")",
		      inv_sub_error(s->inv), s->ch[0], s->nch > 1 ? " +" : "",
		      s->first, s->levels, evicted, st.enqueued,
		      st.dropped[0], st.dropped[1], st.dropped[2], st.dropped[3]);
	soaked_free(s);
}

START_TEST(test_soak_churn_stall_evict_resume)
{
	unsigned seconds = soak_seconds();
	fanq_bus *bus = tu_bus_new();
	struct publisher pubs[NPUB];
	static struct consumer cons[NCONS];
	static struct churn churns[NCHURN];
	pthread_t ticker;
	char name[16];

	atomic_store(&stop, 0);
	atomic_store(&fail.failed, 0);
	ck_assert_int_eq(fanq_bus_set_log(bus, count_log, NULL), 0);
	world = inv_world_new();
	ck_assert_ptr_nonnull(world);
	for (int c = 0; c < NCH; c++) {
		snprintf(name, sizeof(name), c ? "own-%d" : "shared", c - 1);
		channels[c] = tu_channel_open(bus, name);
		ck_assert_int_eq(fanq_channel_set_history(channels[c], HISTORY_MSGS,
							  HISTORY_BYTES, 0), 0);
		ck_assert(c ? inv_world_channel_prio(world, channels[c], soak_prio)
			    : inv_world_channel(world, channels[c], false));
	}
	memset(cons, 0, sizeof(cons));
	for (int i = 0; i < NCONS; i++) {
		static const enum fanq_policy_kind kinds[LONG_SUBS] = {
			FANQ_DROP_NEW, FANQ_DROP_OLDEST, FANQ_PRIORITY};
		static const uint64_t msgs[LONG_SUBS] = {256, 16, 32};

		for (int j = 0; j < LONG_SUBS; j++) {
			struct soaked *s = &cons[i].subs[j];

			s->levels = kinds[j] == FANQ_PRIORITY ? FANQ_PRIO_LEVELS : 1;
			s->sub = tu_sub_new(bus, kinds[j], msgs[j], TU_BIG_BYTES);
			s->inv = inv_sub_new(world, "long-lived", s->levels);
			ck_assert_ptr_nonnull(s->inv);
			/* everything is offered to these from seq 1 */
			for (int c = 0; c < NCH; c++) {
				ck_assert_int_eq(fanq_subscribe(s->sub, channels[c]), 0);
				ck_assert(inv_sub_subscribed(s->inv, channels[c], 1));
			}
		}
	}
	for (int i = 0; i < NCONS; i++)
		ck_assert_int_eq(pthread_create(&cons[i].thread, NULL,
						consumer_main, &cons[i]), 0);
	for (int i = 0; i < NCHURN; i++) {
		memset(&churns[i], 0, sizeof(churns[i]));
		churns[i].bus = bus;
		churns[i].rng = 0x2545f4914f6cdd1dull * (uint64_t)(i + 1);
		ck_assert_int_eq(pthread_create(&churns[i].thread, NULL,
						churn_main, &churns[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&ticker, NULL, ticker_main, bus), 0);
	for (int i = 0; i < NPUB; i++) {
		pubs[i].id = (uint32_t)i;
		pubs[i].published = 0;
		ck_assert_int_eq(pthread_create(&pubs[i].thread, NULL,
						publisher_main, &pubs[i]), 0);
	}
	for (unsigned ms = 0; ms < seconds * 1000u && !atomic_load(&fail.failed); ms += 10)
		sleep_ms(10);
	atomic_store(&stop, 1);
	for (int i = 0; i < NPUB; i++)
		pthread_join(pubs[i].thread, NULL);
	for (int i = 0; i < NCHURN; i++)
		pthread_join(churns[i].thread, NULL);
	pthread_join(ticker, NULL);
	for (int i = 0; i < NCONS; i++)
		pthread_join(cons[i].thread, NULL);
	ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);

	/* quiescent: drain, one more message per channel so trailing drops
	 * show as GAPs, drain again, check */
	for (int i = 0; i < NCONS; i++)
		for (int j = 0; j < LONG_SUBS; j++)
			consume_ready(&cons[i].subs[j], "final");
	uint64_t total = NCH;
	for (int c = 0; c < NCH; c++) {
		struct payload last = {.pub = c ? (uint32_t)c - 1 : 0,
				       .magic = PAYLOAD_MAGIC,
				       .counter = UINT64_MAX};
		uint64_t seq = fanq_channel_last_seq(channels[c]) + 1;

		total += seq - 1;
		tu_publish_buf(channels[c], &last, sizeof(last),
			       c ? soak_prio(channels[c], seq) : 0);
	}
	unsigned stalls = 0;
	uint64_t long_drops = 0;
	for (int i = 0; i < NCONS; i++) {
		stalls += cons[i].stalls;
		for (int j = 0; j < LONG_SUBS; j++) {
			struct soaked *s = &cons[i].subs[j];

			consume_ready(s, "final");
			ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);
			ck_assert_msg(inv_sub_check(s->inv, s->sub), "%s",
				      inv_sub_error(s->inv));
			fanq_sub_stats st = tu_stats(s->sub);
			ck_assert_uint_eq(st.enqueued, total);
			ck_assert_uint_eq(st.queued_msgs, 0);
			ck_assert_uint_eq(st.dropped[FANQ_DROP_UNSUBSCRIBED], 0);
			long_drops += tu_dropped_total(&st);
			soaked_free(s);
		}
	}
	unsigned rounds = 0, resumes = 0, short_resumes = 0, blind = 0;
	unsigned evicted = 0, retired = 0;
	for (int i = 0; i < NCHURN; i++) {
		struct churn *c = &churns[i];

		for (unsigned k = 0; k < c->nretired; k++)
			check_retired(&c->retired[k]);
		ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);
		rounds += c->rounds;
		resumes += c->resumes;
		short_resumes += c->short_resumes;
		blind += c->blind;
		evicted += c->evicted;
		retired += c->nretired;
	}
	fanq_bus_stats bst;
	ck_assert_int_eq(fanq_bus_stats_get(bus, &bst), 0);
	fprintf(stderr, "soak %us: %" PRIu64 " published, %u stalls, %" PRIu64
		" long-lived drops, %u churn rounds (%u checked at the end), "
		"%u resumes (%u short, %u unchecked), %u evictions seen "
		"(ticker reported %u; hard %" PRIu64 ", full %" PRIu64 "), "
		"%u log lines\n", seconds, total, stalls, long_drops, rounds,
		retired, resumes, short_resumes, blind, evicted,
		atomic_load(&ticker_evictions), bst.evicted[FANQ_EVICT_HARD_BYTES],
		bst.evicted[FANQ_EVICT_FULL], atomic_load(&log_lines));
	for (int i = 0; i < NPUB; i++)
		ck_assert_uint_gt(pubs[i].published, 0);
	ck_assert_uint_gt(stalls, 0);
	ck_assert_uint_gt(long_drops, 0);
	ck_assert_uint_gt(resumes, 0);
	ck_assert_uint_gt(evicted, 0);
	for (int c = 0; c < NCH; c++)
		fanq_channel_release(channels[c]);
	tu_bus_close(bus);
	inv_world_free(world);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("soak");
	TCase *tc = tu_tcase(s, "soak");

	/* the run bounds itself; this is for a hang */
	tcase_set_timeout(tc, soak_seconds() + 60);
	tcase_add_test(tc, test_soak_churn_stall_evict_resume);
	return s;
}
