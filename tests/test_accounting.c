/*
 * Accounting: "Every accepted message is either delivered or counted as
 * dropped."  At a quiescent point
 *     enqueued == delivered + sum(dropped) + queued_msgs
 * and each drop is counted under its reason.
 */
#include "test_util.h"

static void publish_n(fanq_channel *ch, unsigned n, unsigned prio)
{
	for (unsigned i = 0; i < n; i++)
		tu_publish(ch, "payload", prio);
}

/* Pop up to n messages (skipping GAP entries), releasing them. */
static void pop_n(fanq_sub *sub, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fanq_msg_release(tu_pop_msg(sub).msg);
}

START_TEST(test_balance_drop_new)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 4, TU_BIG_BYTES);
	fanq_sub_stats st;

	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.enqueued, 0);
	publish_n(w.ch, 10, 0);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.enqueued, 10);
	ck_assert_uint_eq(st.queued_msgs, 4);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 6);
	pop_n(w.sub, 2);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.delivered, 2);
	publish_n(w.ch, 3, 0);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 7);
	ck_assert_uint_eq(tu_drain(w.sub), 4);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.enqueued, 13);
	ck_assert_uint_eq(st.delivered, 6);
	ck_assert_uint_eq(st.queued_msgs, 0);
	ck_assert_uint_eq(st.queued_bytes, 0);
	ck_assert_uint_eq(tu_dropped_total(&st), 7);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_balance_drop_oldest)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 3, TU_BIG_BYTES);
	fanq_sub_stats st;

	publish_n(w.ch, 8, 0);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 5);
	pop_n(w.sub, 1);
	publish_n(w.ch, 2, 0);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 6);
	ck_assert_uint_eq(tu_drain(w.sub), 3);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.enqueued, 10);
	ck_assert_uint_eq(st.delivered, 4);
	ck_assert_uint_eq(tu_dropped_total(&st), 6);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_balance_priority)
{
	struct tu_one w = tu_one_new(FANQ_PRIORITY, 3, TU_BIG_BYTES);
	fanq_sub_stats st;

	publish_n(w.ch, 3, 2);
	publish_n(w.ch, 2, 1); /* lower than all: rejected */
	publish_n(w.ch, 2, 3); /* evict two of level 2 */
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 4);
	ck_assert_uint_eq(st.queued_msgs, 3);
	pop_n(w.sub, 2);
	publish_n(w.ch, 1, 0);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 2);
	ck_assert_uint_eq(tu_drain(w.sub), 2);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.enqueued, 8);
	ck_assert_uint_eq(st.delivered, 4);
	ck_assert_uint_eq(tu_dropped_total(&st), 4);
	tu_one_close(&w);
}
END_TEST

/* One lane; on_full() evicts its oldest while *arg is set, else rejects. */
static unsigned one_lane(void *arg, const fanq_msg *m)
{
	(void)arg;
	(void)m;
	return 0;
}

static int evict_or_reject(void *arg, const fanq_queue_view *q,
			   const fanq_msg *in)
{
	(void)q;
	(void)in;
	return *(const int *)arg ? 0 : -1;
}

/*
 * One subscriber, policies in turn (all one lane, so they may change
 * while messages are queued): each drop lands under its reason.
 */
START_TEST(test_dropped_by_reason)
{
	int evict = 1;
	const fanq_policy custom = {
		.name = "evict-or-reject",
		.levels = 1,
		.lane_of = one_lane,
		.on_full = evict_or_reject,
		.arg = &evict,
	};
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 2, 100);
	fanq_sub_stats st;

	publish_n(w.ch, 3, 0);                 /* 1 x full-new */
	tu_publish_len(w.ch, 101, 'x', 0);     /* too big: full-new */
	ck_assert_int_eq(fanq_sub_set_policy(w.sub, FANQ_DROP_OLDEST), 0);
	publish_n(w.ch, 3, 0);                 /* 3 x evicted-oldest */
	ck_assert_int_eq(fanq_sub_set_custom_policy(w.sub, &custom), 0);
	publish_n(w.ch, 1, 0);                 /* custom evicts */
	evict = 0;
	publish_n(w.ch, 1, 0);                 /* custom rejects */
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 2);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 3);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 2);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_UNSUBSCRIBED], 0);
	ck_assert_uint_eq(st.enqueued, 9);
	ck_assert_uint_eq(st.queued_msgs, 2);
	/* the backlog of two is released (FANQ_DROP_UNSUBSCRIBED) by close;
	 * the leak checkers (check-asan, check-valgrind) see it freed */
	tu_one_close(&w);
}
END_TEST

/*
 * "accepted: subscribers that queued it; dropped: subscribers that
 * rejected it or evicted another": a drop-oldest subscriber that evicts
 * counts in both.
 */
START_TEST(test_publish_result_counts_subscribers)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "fanout");
	fanq_sub *full_new = tu_sub_new(bus, FANQ_DROP_NEW, 1, TU_BIG_BYTES);
	fanq_sub *full_oldest = tu_sub_new(bus, FANQ_DROP_OLDEST, 1, TU_BIG_BYTES);
	fanq_sub *roomy = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_publish_result res;

	ck_assert_int_eq(fanq_subscribe(full_new, ch), 0);
	ck_assert_int_eq(fanq_subscribe(full_oldest, ch), 0);
	ck_assert_int_eq(fanq_subscribe(roomy, ch), 0);
	res = tu_publish(ch, "first", 0);
	ck_assert_uint_eq(res.accepted, 3);
	ck_assert_uint_eq(res.dropped, 0);
	res = tu_publish(ch, "second", 0);
	ck_assert_uint_eq(res.accepted, 2);
	ck_assert_uint_eq(res.dropped, 2);
	ck_assert_uint_eq(tu_assert_balanced(full_new).dropped[FANQ_DROP_FULL_NEW], 1);
	ck_assert_uint_eq(tu_assert_balanced(full_oldest).dropped[FANQ_DROP_EVICTED_OLDEST], 1);
	fanq_sub_stats st = tu_assert_balanced(roomy);
	ck_assert_uint_eq(tu_dropped_total(&st), 0);
	ck_assert_uint_eq(st.queued_msgs, 2);
	tu_sub_close(full_new);
	tu_sub_close(full_oldest);
	tu_sub_close(roomy);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/* A message published on two channels the sub holds is offered twice. */
START_TEST(test_enqueued_counts_every_channel)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *a = tu_channel_open(bus, "a");
	fanq_channel *b = tu_channel_open(bus, "b");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
	fanq_sub_stats st;

	ck_assert_int_eq(fanq_subscribe(sub, a), 0);
	ck_assert_int_eq(fanq_subscribe(sub, b), 0);
	publish_n(a, 3, 0);
	publish_n(b, 4, 0);
	st = tu_assert_balanced(sub);
	ck_assert_uint_eq(st.enqueued, 7);
	ck_assert_uint_eq(st.queued_msgs, 7);
	ck_assert_uint_eq(st.queued_bytes, 7 * strlen("payload"));
	ck_assert_int_eq(fanq_unsubscribe(sub, b), 0);
	publish_n(b, 5, 0);
	st = tu_assert_balanced(sub);
	ck_assert_uint_eq(st.enqueued, 7);
	tu_sub_close(sub);
	fanq_channel_release(a);
	fanq_channel_release(b);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_high_water_and_limits_in_stats)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 50, 4096);
	fanq_sub_stats st;

	publish_n(w.ch, 5, 0);
	ck_assert_uint_eq(tu_drain(w.sub), 5);
	publish_n(w.ch, 2, 0);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.high_water_msgs, 5);
	ck_assert_uint_eq(st.id, fanq_sub_id(w.sub));
	ck_assert_uint_eq(st.max_msgs, 50);
	ck_assert_uint_eq(st.max_bytes, 4096);
	ck_assert_int_eq(st.policy, FANQ_DROP_OLDEST);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_new_sub_has_default_limits)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = NULL;
	fanq_sub_stats st;

	ck_assert_int_eq(fanq_sub_new(bus, &sub), 0);
	st = tu_assert_balanced(sub);
	ck_assert_uint_eq(st.max_msgs, FANQ_DEFAULT_QUEUE_MSGS);
	ck_assert_uint_eq(st.max_bytes, FANQ_DEFAULT_QUEUE_BYTES);
	ck_assert_int_eq(st.policy, FANQ_DROP_NEW);
	ck_assert_uint_eq(st.enqueued, 0);
	ck_assert_uint_eq(st.high_water_msgs, 0);
	tu_sub_close(sub);
	tu_bus_close(bus);
}
END_TEST

/* Ids are unique; a new sub never gets a closed sub's id. */
START_TEST(test_sub_ids_unique)
{
	fanq_bus *bus = tu_bus_new();
	uint64_t ids[16];

	for (unsigned i = 0; i < 16; i++) {
		fanq_sub *sub = NULL;

		ck_assert_int_eq(fanq_sub_new(bus, &sub), 0);
		ids[i] = fanq_sub_id(sub);
		for (unsigned j = 0; j < i; j++)
			ck_assert_uint_ne(ids[i], ids[j]);
		tu_sub_close(sub);
	}
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_sub_meta_set_and_replace)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	char value[] = "10.0.0.1:4242";

	ck_assert_ptr_null(fanq_sub_meta(sub, "peer"));
	ck_assert_int_eq(fanq_sub_set_meta(sub, "peer", value), 0);
	value[0] = 'X'; /* copied: the caller's buffer may change */
	ck_assert_str_eq(fanq_sub_meta(sub, "peer"), "10.0.0.1:4242");
	ck_assert_int_eq(fanq_sub_set_meta(sub, "ua", "curl/8"), 0);
	ck_assert_int_eq(fanq_sub_set_meta(sub, "peer", "10.0.0.2:1"), 0);
	ck_assert_str_eq(fanq_sub_meta(sub, "peer"), "10.0.0.2:1");
	ck_assert_str_eq(fanq_sub_meta(sub, "ua"), "curl/8");
	ck_assert_ptr_null(fanq_sub_meta(sub, "missing"));
	tu_sub_close(sub);
	tu_bus_close(bus);
}
END_TEST

/* Close unsubscribes from every channel: later publishes reach only others. */
START_TEST(test_close_with_backlog_unsubscribes_everywhere)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *a = tu_channel_open(bus, "a");
	fanq_channel *b = tu_channel_open(bus, "b");
	fanq_sub *gone = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_sub *stays = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_subscribe(gone, a), 0);
	ck_assert_int_eq(fanq_subscribe(gone, b), 0);
	ck_assert_int_eq(fanq_subscribe(stays, a), 0);
	publish_n(a, 2, 0);
	publish_n(b, 2, 0);
	ck_assert_uint_eq(tu_assert_balanced(gone).queued_msgs, 4);
	ck_assert_uint_eq(tu_stats(gone).dropped[FANQ_DROP_UNSUBSCRIBED], 0);
	tu_sub_close(gone);
	ck_assert_uint_eq(tu_publish(a, "after", 0).accepted, 1);
	ck_assert_uint_eq(tu_publish(b, "after", 0).accepted, 0);
	fanq_sub_stats st = tu_assert_balanced(stays);
	ck_assert_uint_eq(st.enqueued, 3);
	ck_assert_uint_eq(tu_drain(stays), 3);
	tu_sub_close(stays);
	fanq_channel_release(a);
	fanq_channel_release(b);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("accounting");
	TCase *tc = tu_tcase(s, "balance");

	tcase_add_test(tc, test_balance_drop_new);
	tcase_add_test(tc, test_balance_drop_oldest);
	tcase_add_test(tc, test_balance_priority);
	tcase_add_test(tc, test_dropped_by_reason);
	tcase_add_test(tc, test_publish_result_counts_subscribers);
	tcase_add_test(tc, test_enqueued_counts_every_channel);
	tcase_add_test(tc, test_close_with_backlog_unsubscribes_everywhere);
	tc = tu_tcase(s, "observe");
	tcase_add_test(tc, test_high_water_and_limits_in_stats);
	tcase_add_test(tc, test_new_sub_has_default_limits);
	tcase_add_test(tc, test_sub_ids_unique);
	tcase_add_test(tc, test_sub_meta_set_and_replace);
	return s;
}
