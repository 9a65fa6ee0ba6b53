/*
 * Host misuse: what fanq does when the host bends its rules, each a
 * defined result that README "Host misuse" lists.
 *  - callbacks that call back into fanq: a drop-log callback and a
 *    custom policy publishing (on the channel being fanned out: the
 *    message is handed over and sequenced after), a tick callback
 *    ticking again (FANQ_EBUSY) and publishing;
 *  - a consumer thread popping while the owner thread unsubscribes and
 *    resubscribes: exactly once, in order, balanced;
 *  - closing subscribers and releasing channels while publishers run;
 *  - zero-length and FANQ_MSG_MAX-byte messages;
 *  - limits at their extremes (1 and FANQ_QUEUE_MSGS_MAX messages, 1
 *    and UINT64_MAX bytes, one past them).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "invariant.h"
#include "test_util.h"

/* ----------------------------------------------------- re-entrant calls */

struct reenter {
	fanq_channel *ch;
	int calls;
	int rc;                   /* what the nested call returned */
	fanq_publish_result res;
};

/* Log callback, in the publishing thread: publish on the same channel. */
static void log_publishes(void *arg, const fanq_log_record *r)
{
	struct reenter *re = arg;

	if (r->event != FANQ_LOG_DROP_FIRST || re->calls++)
		return;
	re->rc = fanq_publish(re->ch, "from-log", 8, 0, &re->res);
}

START_TEST(test_log_callback_may_publish)
{
	struct reenter re = {0};
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub;
	fanq_publish_result res;

	ck_assert_int_eq(fanq_bus_set_log(bus, log_publishes, &re), 0);
	re.ch = tu_channel_open(bus, "ch");
	sub = tu_sub_new(bus, FANQ_DROP_NEW, 1, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_subscribe(sub, re.ch), 0);
	tu_publish(re.ch, "one", 0);
	res = tu_publish(re.ch, "two", 0); /* dropped: the log line publishes */
	ck_assert_uint_eq(res.seq, 2);
	ck_assert_int_eq(re.calls, 1);
	/* this thread holds the channel's fan-out: handed over, applied
	 * after "two" before the outer publish returned */
	ck_assert_int_eq(re.rc, 0);
	ck_assert_int_eq(re.res.deferred, 1);
	ck_assert_uint_eq(fanq_channel_last_seq(re.ch), 3);
	tu_expect_msg(sub, "one");
	tu_publish(re.ch, "four", 0);
	tu_expect_gap(sub, re.ch, 2, 3, 2); /* "from-log" did not fit either */
	tu_expect_msg(sub, "four");
	tu_assert_balanced(sub);
	tu_sub_close(sub);
	fanq_channel_release(re.ch);
	tu_bus_close(bus);
}
END_TEST

static unsigned lane0(void *arg, const fanq_msg *m)
{
	(void)arg;
	(void)m;
	return 0;
}

/* Custom policy in the fan-out thread: publish on the full channel. */
static int on_full_publishes(void *arg, const fanq_queue_view *q,
			     const fanq_msg *in)
{
	struct reenter *re = arg;

	(void)q;
	(void)in;
	if (!re->calls++)
		re->rc = fanq_publish(re->ch, "nested", 6, 0, &re->res);
	return -1;
}

START_TEST(test_policy_callback_may_publish)
{
	struct reenter re = {0};
	fanq_policy p = {.name = "nested", .levels = 1, .lane_of = lane0,
			 .on_full = on_full_publishes, .arg = &re};
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 2, TU_BIG_BYTES);
	fanq_sub *other = tu_sub_new(w.bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);

	re.ch = w.ch;
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	tu_sub_close(w.sub);
	w.sub = NULL;
	ck_assert_int_eq(fanq_sub_new(w.bus, &w.sub), 0);
	ck_assert_int_eq(fanq_sub_set_custom_policy(w.sub, &p), 0);
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 1, TU_BIG_BYTES), 0);
	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	ck_assert_int_eq(fanq_subscribe(other, w.ch), 0);
	tu_publish(w.ch, "a", 0);
	tu_publish(w.ch, "b", 0); /* full: on_full publishes, then rejects */
	ck_assert_int_eq(re.rc, 0);
	ck_assert_int_eq(re.res.deferred, 1);
	tu_expect_msg(other, "a");
	tu_expect_msg(other, "b");
	tu_expect_msg(other, "nested");
	tu_assert_balanced(w.sub);
	tu_assert_balanced(other);
	tu_sub_close(other);
	tu_one_close(&w);
}
END_TEST

struct tick_reenter {
	fanq_bus *bus;
	fanq_channel *ch;
	int events, tick_rc, publish_rc;
};

/* Event callback, in the ticking thread: tick again, publish. */
static void event_reenters(void *arg, const fanq_event *ev)
{
	struct tick_reenter *t = arg;

	(void)ev;
	t->events++;
	t->tick_rc = fanq_bus_tick(t->bus);
	t->publish_rc = fanq_publish(t->ch, "from-tick", 9, 0, NULL);
}

START_TEST(test_tick_callback_may_publish_not_tick)
{
	struct tick_reenter t = {0};
	struct tu_clock clock = {.ns = TU_SEC};
	fanq_health_rules r = {.idle_ns = TU_SEC};
	fanq_sub *sub, *other;
	fanq_entry e;

	t.bus = tu_bus_new();
	ck_assert_int_eq(fanq_bus_set_clock(t.bus, tu_clock_read, &clock), 0);
	ck_assert_int_eq(fanq_bus_set_event_cb(t.bus, event_reenters, &t), 0);
	t.ch = tu_channel_open(t.bus, "ch");
	sub = tu_sub_new(t.bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	other = tu_sub_new(t.bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_sub_set_health(sub, &r), 0);
	ck_assert_int_eq(fanq_subscribe(sub, t.ch), 0);
	ck_assert_int_eq(fanq_subscribe(other, t.ch), 0);
	tu_publish(t.ch, "x", 0);
	ck_assert_int_eq(fanq_bus_tick(t.bus), 0);
	clock.ns += 2 * TU_SEC;
	ck_assert_int_eq(fanq_bus_tick(t.bus), 1); /* idle: evicted */
	ck_assert_int_ge(t.events, 1);
	ck_assert_int_eq(t.tick_rc, FANQ_EBUSY);
	ck_assert_int_eq(t.publish_rc, 0);
	ck_assert_int_eq(fanq_sub_pop(sub, &e), FANQ_ECLOSED);
	tu_expect_msg(other, "x");
	tu_expect_msg(other, "from-tick");
	tu_assert_balanced(sub);
	tu_sub_close(sub);
	tu_sub_close(other);
	fanq_channel_release(t.ch);
	tu_bus_close(t.bus);
}
END_TEST

/* ------------------------------------------- threads bending the rules */

static atomic_int race_stop;

/* The recorder is fed by both threads: one at a time (invariant.h). */
static pthread_mutex_t race_mu = PTHREAD_MUTEX_INITIALIZER;

struct race {
	fanq_sub *sub;
	fanq_channel *ch;
	struct inv_sub *inv;
	const char *err;
	uint64_t popped;
};

/* Consumer thread: pop everything, through the checker. */
static void *race_consumer(void *arg)
{
	struct race *r = arg;
	fanq_entry e;
	int rc;

	for (;;) {
		rc = fanq_sub_pop(r->sub, &e);
		if (rc == FANQ_EAGAIN) {
			if (atomic_load(&race_stop) == 2)
				return NULL;
			sched_yield();
			continue;
		}
		pthread_mutex_lock(&race_mu);
		if (rc != 0 || !inv_sub_entry(r->inv, &e, 0))
			r->err = rc ? fanq_strerror(rc) : inv_sub_error(r->inv);
		pthread_mutex_unlock(&race_mu);
		if (r->err)
			return NULL;
		if (e.kind == FANQ_ENTRY_MSG) {
			r->popped++;
			fanq_msg_release(e.msg);
		}
	}
}

/*
 * The owner thread unsubscribes and resubscribes while the consumer
 * thread pops and this thread publishes: in-flight messages stay
 * deliverable, each subscription gets exactly what was published during
 * it, nothing twice, in order.
 */
START_TEST(test_unsubscribe_racing_consumer)
{
	fanq_bus *bus = tu_bus_new();
	struct inv_world *w = inv_world_new();
	struct race r = {0};
	pthread_t t;

	atomic_store(&race_stop, 0);
	r.ch = tu_channel_open(bus, "ch");
	ck_assert(inv_world_channel(w, r.ch, false));
	r.inv = inv_sub_new(w, "racing", 1);
	r.sub = tu_sub_new(bus, FANQ_DROP_OLDEST, 4, TU_BIG_BYTES);
	for (int round = 0; round < 200; round++) {
		/* the consumer starts once the link exists: only the owner
		 * thread adds links (fanq.h) */
		if (round == 1)
			ck_assert_int_eq(pthread_create(&t, NULL, race_consumer,
							&r), 0);
		bool ok;

		/* one thread publishes: the first seq of each span is known */
		pthread_mutex_lock(&race_mu);
		ok = inv_sub_subscribed(r.inv, r.ch, fanq_channel_last_seq(r.ch) + 1);
		pthread_mutex_unlock(&race_mu);
		ck_assert(ok);
		ck_assert_int_eq(fanq_subscribe(r.sub, r.ch), 0);
		for (int i = 0; i < 1 + round % 7; i++)
			tu_publish(r.ch, "m", 0);
		ck_assert_int_eq(fanq_unsubscribe(r.sub, r.ch), 0);
		pthread_mutex_lock(&race_mu);
		ok = inv_sub_unsubscribed(r.inv, r.ch, fanq_channel_last_seq(r.ch));
		pthread_mutex_unlock(&race_mu);
		ck_assert(ok);
		tu_publish(r.ch, "not offered", 0);
	}
	tu_publish(r.ch, "end", 0);
	atomic_store(&race_stop, 2);
	pthread_join(t, NULL);
	ck_assert_msg(r.err == NULL, "%s", r.err);
	ck_assert_msg(inv_sub_check(r.inv, r.sub), "%s", inv_sub_error(r.inv));
	ck_assert_uint_gt(r.popped, 0);
	tu_sub_close(r.sub);
	inv_sub_free(r.inv);
	inv_world_free(w);
	fanq_channel_release(r.ch);
	tu_bus_close(bus);
}
END_TEST

struct flood {
	fanq_channel *ch;
	uint64_t published;
};

static void quiet_log(void *arg, const fanq_log_record *r)
{
	(void)arg;
	(void)r;
}

static void *flood_main(void *arg)
{
	struct flood *f = arg;

	for (unsigned n = 1; !atomic_load(&race_stop); n++) {
		if (fanq_publish(f->ch, "flood", 5, 0, NULL) == 0)
			f->published++;
		/* a pause now and then: a subscribe that takes the channel's
		 * fan-out role returns once the queue is empty (README, "A
		 * bounded hand-over"), which a publisher outrunning it under
		 * ThreadSanitizer would never let happen */
		if (n % 32 == 0)
			usleep(50);
	}
	return NULL;
}

/*
 * Subscribers closed with messages queued and in flight, publishers
 * running: the close returns 0, the bus is FANQ_EBUSY until the last
 * handle goes, every channel counts each offer as delivered or dropped.
 */
START_TEST(test_close_with_messages_in_flight)
{
	fanq_bus *bus = tu_bus_new();
	struct flood f[2];
	pthread_t t[2];
	fanq_channel_stats cs;

	atomic_store(&race_stop, 0);
	ck_assert_int_eq(fanq_bus_set_log(bus, quiet_log, NULL), 0);
	for (int i = 0; i < 2; i++) {
		f[i].ch = tu_channel_open(bus, i ? "b" : "a");
		f[i].published = 0;
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, flood_main, &f[i]), 0);
	for (int round = 0; round < 30; round++) {
		fanq_sub *sub = tu_sub_new(bus, round % 2 ? FANQ_DROP_OLDEST
							  : FANQ_DROP_NEW,
					   1 + round % 8, TU_BIG_BYTES);
		fanq_entry e;

		ck_assert_int_eq(fanq_subscribe(sub, f[0].ch), 0);
		ck_assert_int_eq(fanq_subscribe(sub, f[1].ch), 0);
		sched_yield();
		if (round % 3 == 0 && fanq_sub_pop(sub, &e) == 0 &&
		    e.kind == FANQ_ENTRY_MSG)
			fanq_msg_release(e.msg); /* one held elsewhere */
		ck_assert_int_eq(fanq_bus_close(bus), FANQ_EBUSY);
		tu_sub_close(sub);
	}
	atomic_store(&race_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++) {
		uint64_t sum = 0;

		ck_assert_int_eq(fanq_channel_stats_get(f[i].ch, &cs), 0);
		ck_assert_uint_eq(cs.published, f[i].published);
		ck_assert_uint_eq(cs.subscribers, 0);
		for (int d = 0; d < FANQ_DROP_REASONS; d++)
			sum += cs.dropped[d];
		ck_assert_uint_le(sum, cs.enqueued);
		fanq_channel_release(f[i].ch);
	}
	tu_bus_close(bus);
}
END_TEST

/* ------------------------------------------------- sizes and limits */

START_TEST(test_zero_and_max_size_messages)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, UINT64_MAX);
	size_t max = FANQ_MSG_MAX;
	char *big = malloc(max + 1);
	fanq_entry e;

	ck_assert_ptr_nonnull(big);
	memset(big, 'z', max + 1);
	ck_assert_uint_eq(tu_publish_buf(w.ch, "", 0, 0).accepted, 1);
	/* no data to read: NULL is fine for 0 bytes */
	ck_assert_uint_eq(tu_publish_buf(w.ch, NULL, 0, 0).accepted, 1);
	ck_assert_uint_eq(tu_publish_buf(w.ch, big, max, 3).accepted, 1);
	ck_assert_int_eq(fanq_publish(w.ch, big, max + 1, 0, NULL), FANQ_EMSGSIZE);
	for (int i = 0; i < 2; i++) {
		e = tu_pop_msg(w.sub);
		ck_assert_uint_eq(fanq_msg_len(e.msg), 0);
		fanq_msg_release(e.msg);
	}
	e = tu_pop_msg(w.sub);
	ck_assert_uint_eq(fanq_msg_len(e.msg), max);
	ck_assert_int_eq(((const char *)fanq_msg_data(e.msg))[max - 1], 'z');
	fanq_msg_release(e.msg);
	/* at the default byte limit a FANQ_MSG_MAX message is dropped */
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 10, FANQ_DEFAULT_QUEUE_BYTES), 0);
	ck_assert_uint_eq(tu_publish_buf(w.ch, big, max, 0).dropped, 1);
	ck_assert_uint_eq(tu_stats(w.sub).dropped[FANQ_DROP_FULL_NEW], 1);
	tu_assert_balanced(w.sub);
	free(big);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_limits_at_extremes)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 1, 1);
	fanq_msg *held[2];
	fanq_sub_stats st;

	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 0, 1), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, FANQ_QUEUE_MSGS_MAX + 1ull, 1),
			 FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 1, 0), FANQ_EINVAL);
	/* 1 message of at most 1 byte: an empty one and a 1-byte one fit */
	ck_assert_uint_eq(tu_publish_buf(w.ch, "", 0, 0).accepted, 1);
	ck_assert_uint_eq(tu_publish(w.ch, "a", 0).dropped, 1); /* count */
	tu_expect_msg(w.sub, "");
	ck_assert_uint_eq(tu_publish(w.ch, "ab", 0).dropped, 1); /* bytes */
	ck_assert_uint_eq(tu_publish(w.ch, "c", 0).accepted, 1);
	tu_expect_gap(w.sub, w.ch, 2, 3, 2);
	tu_expect_msg(w.sub, "c");
	/* the largest limits take a burst with nothing dropped */
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, FANQ_QUEUE_MSGS_MAX, UINT64_MAX), 0);
	tu_publish_n(w.ch, 1000, 64);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 1000);
	ck_assert_uint_eq(st.max_msgs, FANQ_QUEUE_MSGS_MAX);
	ck_assert_uint_eq(st.max_bytes, UINT64_MAX);
	ck_assert_uint_eq(tu_drain(w.sub), 1000);
	/* history limits at their extremes */
	ck_assert_int_eq(fanq_channel_set_history(w.ch, FANQ_HISTORY_MSGS_MAX,
						  UINT64_MAX, FANQ_HISTORY_AGE_MAX_MS), 0);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, FANQ_HISTORY_MSGS_MAX + 1ull,
						  0, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 1, 1, 0), 0);
	tu_publish(w.ch, "ab", 0); /* over max_bytes: the history restarts */
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, held, 2), 0);
	tu_publish(w.ch, "d", 0);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, held, 2), 1);
	ck_assert_uint_eq(fanq_msg_seq(held[0]), fanq_channel_last_seq(w.ch));
	fanq_msg_release(held[0]);
	tu_drain(w.sub);
	tu_one_close(&w);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("misuse");
	TCase *cb = tu_tcase(s, "callbacks");
	TCase *th = tu_tcase(s, "threads");
	TCase *lim = tu_tcase(s, "limits");

	tcase_add_test(cb, test_log_callback_may_publish);
	tcase_add_test(cb, test_policy_callback_may_publish);
	tcase_add_test(cb, test_tick_callback_may_publish_not_tick);
	tcase_add_test(th, test_unsubscribe_racing_consumer);
	tcase_add_test(th, test_close_with_messages_in_flight);
	tcase_add_test(lim, test_zero_and_max_size_messages);
	tcase_add_test(lim, test_limits_at_extremes);
	return s;
}
