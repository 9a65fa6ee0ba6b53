/*
 * Stress, bounded in time (STRESS_SECONDS): three publishers on a shared
 * channel and one channel each, consumers draining long-lived
 * subscribers (drop-new, and small drop-oldest queues racing their
 * consumer), and a thread whose subscribers join and leave.
 *
 * Each payload is (publisher id, per-publisher counter).  Every entry
 * goes through the invariant checker (tests/invariant.h): at most once,
 * FIFO per channel, GAP entries counting exactly the missing messages.
 * At the end, per long-lived subscriber, its final check (accounting,
 * every message offered from seq 1 delivered or counted dropped); per
 * channel and publisher, counters increase.
 *
 * Worker threads must not call Check's asserts: they record the first
 * failure and stop; the test thread asserts.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "invariant.h"
#include "test_util.h"

#define STRESS_SECONDS 2
#define NPUB 3
#define NCH (NPUB + 1)     /* channel 0 is shared, 1 + i is publisher i's */
#define NCONS 2            /* consumer threads */
#define SUBS_PER_CONS 2    /* one drop-new, one small drop-oldest */

struct payload {
	uint32_t pub;
	uint32_t magic;
	uint64_t counter;
};
#define PAYLOAD_MAGIC 0xfa17u

static atomic_int stop;
static struct tu_failure fail = {.stop = &stop};

static fanq_channel *channels[NCH];
static struct inv_world *world; /* filled before the threads start */

static int channel_index(const fanq_channel *ch)
{
	for (int c = 0; c < NCH; c++)
		if (channels[c] == ch)
			return c;
	return -1;
}

/*
 * What one subscriber has seen: the checker's record, and per channel
 * the last counter per publisher.
 */
struct seen {
	struct inv_sub *inv;
	uint64_t last_counter[NCH][NPUB];
	int counter_seen[NCH][NPUB];
};

/* Check one entry against what came before on its channel; 0 if bad. */
static int seen_entry(struct seen *s, const char *who, const fanq_entry *e)
{
	int c = channel_index(e->ch);

	if (!inv_sub_entry(s->inv, e, 0)) {
		tu_thread_fail(&fail, "%s: %s", who, inv_sub_error(s->inv));
		return 0;
	}
	if (e->kind == FANQ_ENTRY_GAP)
		return 1;
	const struct payload *p = fanq_msg_data(e->msg);
	if (fanq_msg_len(e->msg) != sizeof(*p) || p->magic != PAYLOAD_MAGIC ||
	    p->pub >= NPUB || (c > 0 && p->pub != (uint32_t)c - 1)) {
		tu_thread_fail(&fail, "%s: ch %d seq %" PRIu64 " bad payload (%zu bytes)",
			    who, c, e->seq, fanq_msg_len(e->msg));
		return 0;
	}
	if (s->counter_seen[c][p->pub] &&
	    p->counter <= s->last_counter[c][p->pub]) {
		tu_thread_fail(&fail, "%s: ch %d publisher %" PRIu32 " counter %" PRIu64
			    " after %" PRIu64,
			    who, c, p->pub, p->counter,
			    s->last_counter[c][p->pub]);
		return 0;
	}
	s->counter_seen[c][p->pub] = 1;
	s->last_counter[c][p->pub] = p->counter;
	return 1;
}

/* Pop everything ready from sub, checking each entry; 0 on failure. */
static int consume_ready(fanq_sub *sub, struct seen *s, const char *who)
{
	fanq_entry es[32];
	int n;

	while ((n = fanq_sub_pop_batch(sub, es, 32)) > 0) {
		int ok = 1;

		for (int i = 0; i < n; i++) {
			ok = ok && seen_entry(s, who, &es[i]);
			if (es[i].kind == FANQ_ENTRY_MSG)
				fanq_msg_release(es[i].msg);
		}
		if (!ok)
			return 0;
	}
	if (n < 0) {
		tu_thread_fail(&fail, "%s: pop_batch: %s", who, fanq_strerror(n));
		return 0;
	}
	return 1;
}

struct publisher {
	pthread_t thread;
	uint32_t id;
	uint64_t published; /* counter: messages published successfully */
};

static void *publisher_main(void *arg)
{
	struct publisher *p = arg;
	struct payload msg = {.pub = p->id, .magic = PAYLOAD_MAGIC};

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* alternate: shared channel, own channel */
		fanq_channel *ch = channels[msg.counter % 2 ? 1 + p->id : 0];
		int rc = tu_publish_retry(ch, &msg, sizeof(msg), 0);

		if (rc != 0) {
			tu_thread_fail(&fail, "publisher %u: %s", p->id, fanq_strerror(rc));
			break;
		}
		msg.counter++;
	}
	p->published = msg.counter;
	return NULL;
}

struct consumer {
	pthread_t thread;
	fanq_sub *subs[SUBS_PER_CONS];
	struct seen seen[SUBS_PER_CONS];
};

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (int i = 0; i < SUBS_PER_CONS; i++)
			if (!consume_ready(c->subs[i], &c->seen[i], "consumer"))
				return NULL;
		sched_yield();
	}
	return NULL;
}

struct churn {
	pthread_t thread;
	fanq_bus *bus;
	unsigned rounds;
};

/* One late subscriber's life: join, read a little, maybe unsubscribe. */
static int churn_round(fanq_bus *bus, unsigned r)
{
	fanq_channel *mine[2] = {channels[0], channels[1 + r % NPUB]};
	struct seen s;
	fanq_sub *sub;
	int ok = 1;
	int rc;

	memset(&s, 0, sizeof(s));
	s.inv = inv_sub_new(world, "churn", 1);
	if (!s.inv) {
		tu_thread_fail(&fail, "churn round %u: out of memory", r);
		return 0;
	}
	rc = fanq_sub_new(bus, &sub);
	if (rc == 0)
		rc = fanq_sub_set_limits(sub, 4 + r % 16, TU_BIG_BYTES);
	if (rc == 0)
		rc = fanq_sub_set_policy(sub, r % 2 ? FANQ_DROP_OLDEST : FANQ_DROP_NEW);
	for (int c = 0; c < 2 && rc == 0; c++) {
		rc = fanq_subscribe(sub, mine[c]);
		/* joined while publishers run: the first seq is not known */
		if (rc == 0 && !inv_sub_subscribed(s.inv, mine[c], 0))
			rc = FANQ_EINVAL;
	}
	if (rc != 0) {
		tu_thread_fail(&fail, "churn round %u: %s %s", r, fanq_strerror(rc),
			    inv_sub_error(s.inv));
		inv_sub_free(s.inv);
		return 0;
	}
	for (unsigned k = 0; k < 1 + r % 5 && ok; k++) {
		ok = consume_ready(sub, &s, "churn");
		sched_yield();
	}
	if (ok && r % 3 == 0) {
		rc = fanq_unsubscribe(sub, mine[0]);
		if (rc != 0)
			tu_thread_fail(&fail, "churn unsubscribe: %s", fanq_strerror(rc));
		ok = rc == 0 && consume_ready(sub, &s, "churn");
	}
	rc = fanq_sub_close(sub);
	if (rc != 0)
		tu_thread_fail(&fail, "churn close: %s", fanq_strerror(rc));
	inv_sub_free(s.inv);
	return ok && rc == 0;
}

static void *churn_main(void *arg)
{
	struct churn *ch = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
	       churn_round(ch->bus, ch->rounds))
		ch->rounds++;
	return NULL;
}

START_TEST(test_stress_publish_consume_churn)
{
	fanq_bus *bus = tu_bus_new();
	struct publisher pubs[NPUB];
	struct consumer cons[NCONS];
	struct churn churn = {.bus = bus};
	char name[16];

	atomic_store(&stop, 0);
	atomic_store(&fail.failed, 0);
	world = inv_world_new();
	ck_assert_ptr_nonnull(world);
	for (int c = 0; c < NCH; c++) {
		snprintf(name, sizeof(name), c ? "own-%d" : "shared", c - 1);
		channels[c] = tu_channel_open(bus, name);
		ck_assert(inv_world_channel(world, channels[c], false));
	}
	memset(cons, 0, sizeof(cons));
	for (int i = 0; i < NCONS; i++) {
		/* subs[0] drop-new, subs[1] drop-oldest (checked at the end) */
		cons[i].subs[0] = tu_sub_new(bus, FANQ_DROP_NEW, 256, TU_BIG_BYTES);
		cons[i].subs[1] = tu_sub_new(bus, FANQ_DROP_OLDEST, 8, TU_BIG_BYTES);
		for (int j = 0; j < SUBS_PER_CONS; j++) {
			struct inv_sub *inv = inv_sub_new(world, j ? "drop-oldest"
								   : "drop-new", 1);

			ck_assert_ptr_nonnull(inv);
			cons[i].seen[j].inv = inv;
			/* everything is offered to these from seq 1 */
			for (int c = 0; c < NCH; c++) {
				ck_assert_int_eq(fanq_subscribe(cons[i].subs[j],
								channels[c]), 0);
				ck_assert(inv_sub_subscribed(inv, channels[c], 1));
			}
		}
	}
	for (int i = 0; i < NCONS; i++)
		ck_assert_int_eq(pthread_create(&cons[i].thread, NULL,
						consumer_main, &cons[i]), 0);
	ck_assert_int_eq(pthread_create(&churn.thread, NULL, churn_main, &churn), 0);
	for (int i = 0; i < NPUB; i++) {
		pubs[i].id = (uint32_t)i;
		ck_assert_int_eq(pthread_create(&pubs[i].thread, NULL,
						publisher_main, &pubs[i]), 0);
	}
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += STRESS_SECONDS;
	do {
		struct timespec tick = {0, 10 * 1000 * 1000};

		nanosleep(&tick, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (!atomic_load(&fail.failed) &&
		 (now.tv_sec < end.tv_sec ||
		  (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec)));
	atomic_store(&stop, 1);
	for (int i = 0; i < NPUB; i++)
		pthread_join(pubs[i].thread, NULL);
	pthread_join(churn.thread, NULL);
	for (int i = 0; i < NCONS; i++)
		pthread_join(cons[i].thread, NULL);
	ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);

	/* quiescent: drain, then one more message per channel so trailing
	 * drops show as GAPs, then drain again and check */
	uint64_t total = 0;
	ck_assert_uint_gt(churn.rounds, 0);
	for (int i = 0; i < NPUB; i++) {
		ck_assert_uint_gt(pubs[i].published, 0);
		total += pubs[i].published;
	}
	for (int i = 0; i < NCONS; i++)
		for (int j = 0; j < SUBS_PER_CONS; j++)
			consume_ready(cons[i].subs[j], &cons[i].seen[j], "final");
	for (int c = 0; c < NCH; c++) {
		struct payload last = {.pub = c ? (uint32_t)c - 1 : 0,
				       .magic = PAYLOAD_MAGIC,
				       .counter = UINT64_MAX};

		tu_publish_buf(channels[c], &last, sizeof(last), 0);
	}
	total += NCH;
	for (int i = 0; i < NCONS; i++) {
		for (int j = 0; j < SUBS_PER_CONS; j++) {
			fanq_sub *sub = cons[i].subs[j];
			struct seen *s = &cons[i].seen[j];

			consume_ready(sub, s, "final");
			ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);
			ck_assert_msg(inv_sub_check(s->inv, sub), "%s",
				      inv_sub_error(s->inv));
			fanq_sub_stats st = tu_stats(sub);
			ck_assert_uint_eq(st.enqueued, total);
			ck_assert_uint_eq(st.queued_msgs, 0);
			/* each policy drops under its own reason only: a
			 * drop-oldest queue evicts, it never rejects a
			 * (small) arrival */
			ck_assert_msg(st.dropped[j ? FANQ_DROP_FULL_NEW
						   : FANQ_DROP_EVICTED_OLDEST] == 0,
				      "%s sub dropped %" PRIu64 " under %s",
				      j ? "drop-oldest" : "drop-new",
				      st.dropped[j ? FANQ_DROP_FULL_NEW
						   : FANQ_DROP_EVICTED_OLDEST],
				      j ? "FANQ_DROP_FULL_NEW"
					: "FANQ_DROP_EVICTED_OLDEST");
			ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 0);
			ck_assert_uint_eq(st.dropped[FANQ_DROP_UNSUBSCRIBED], 0);
			tu_sub_close(sub);
			inv_sub_free(s->inv);
		}
	}
	for (int c = 0; c < NCH; c++)
		fanq_channel_release(channels[c]);
	tu_bus_close(bus);
	inv_world_free(world);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tu_tcase(s, "stress");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stress_publish_consume_churn);
	return s;
}
