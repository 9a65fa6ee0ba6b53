/*
 * Drop policies: what a full queue keeps, what it drops and why
 * (README "Drop policies"; fanq.h enum fanq_policy_kind).
 */
#include "test_util.h"

START_TEST(test_drop_new_keeps_oldest)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 3, TU_BIG_BYTES);
	const char *texts[] = {"m1", "m2", "m3", "m4", "m5"};

	for (unsigned i = 0; i < 5; i++) {
		fanq_publish_result res = tu_publish(w.ch, texts[i], 0);

		ck_assert_uint_eq(res.accepted, i < 3 ? 1 : 0);
		ck_assert_uint_eq(res.dropped, i < 3 ? 0 : 1);
	}
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 3);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 2);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 0);
	tu_expect_msg(w.sub, "m1");
	tu_expect_msg(w.sub, "m2");
	tu_expect_msg(w.sub, "m3");
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_drop_oldest_keeps_newest)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 3, TU_BIG_BYTES);
	const char *texts[] = {"m1", "m2", "m3", "m4", "m5"};

	for (unsigned i = 0; i < 5; i++) {
		fanq_publish_result res = tu_publish(w.ch, texts[i], 0);

		ck_assert_uint_eq(res.accepted, 1);
		ck_assert_uint_eq(res.dropped, i < 3 ? 0 : 1);
	}
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 3);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 2);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 0);
	tu_expect_msg(w.sub, "m3");
	tu_expect_msg(w.sub, "m4");
	tu_expect_msg(w.sub, "m5");
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/* Sizes 40+30+20 fit in 100 bytes; 20 more does not; 10 fills it exactly. */
START_TEST(test_drop_new_byte_limit_mixed_sizes)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 100, 100);
	const size_t sizes[] = {40, 30, 20, 20, 10};
	const unsigned accepted[] = {1, 1, 1, 0, 1};

	for (unsigned i = 0; i < 5; i++) {
		fanq_publish_result res =
			tu_publish_len(w.ch, sizes[i], (char)('a' + i), 0);

		ck_assert_uint_eq(res.accepted, accepted[i]);
	}
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 4);
	ck_assert_uint_eq(st.queued_bytes, 100);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 1);
	const size_t kept[] = {40, 30, 20, 10};
	for (unsigned i = 0; i < 4; i++) {
		fanq_entry e = tu_pop_msg(w.sub);

		ck_assert_uint_eq(fanq_msg_len(e.msg), kept[i]);
		fanq_msg_release(e.msg);
	}
	tu_expect_no_msg(w.sub);
	ck_assert_uint_eq(tu_stats(w.sub).queued_bytes, 0);
	tu_one_close(&w);
}
END_TEST

/* 60+30 queued; 50 evicts the 60; 40 evicts the 30: 50+40 remain. */
START_TEST(test_drop_oldest_byte_limit_mixed_sizes)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 100, 100);

	tu_publish_len(w.ch, 60, 'a', 0);
	tu_publish_len(w.ch, 30, 'b', 0);
	tu_publish_len(w.ch, 50, 'c', 0);
	ck_assert_uint_eq(tu_stats(w.sub).queued_bytes, 80);
	tu_publish_len(w.ch, 40, 'd', 0);
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 2);
	ck_assert_uint_eq(st.queued_bytes, 90);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 2);
	fanq_entry e = tu_pop_msg(w.sub);
	ck_assert_uint_eq(fanq_msg_len(e.msg), 50);
	ck_assert_int_eq(((const char *)fanq_msg_data(e.msg))[0], 'c');
	fanq_msg_release(e.msg);
	e = tu_pop_msg(w.sub);
	ck_assert_uint_eq(fanq_msg_len(e.msg), 40);
	ck_assert_int_eq(((const char *)fanq_msg_data(e.msg))[0], 'd');
	fanq_msg_release(e.msg);
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/*
 * A message larger than max_bytes can never fit: it is rejected on
 * arrival (FANQ_DROP_FULL_NEW, "or too big") under every policy, and
 * drop-oldest must not evict what is queued for nothing.
 */
START_TEST(test_message_larger_than_byte_limit)
{
	const enum fanq_policy_kind kinds[] = {FANQ_DROP_NEW, FANQ_DROP_OLDEST,
					       FANQ_PRIORITY};
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "big");

	for (unsigned k = 0; k < 3; k++) {
		fanq_sub *sub = tu_sub_new(bus, kinds[k], 100, 10);

		ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
		tu_publish_len(ch, 5, 's', 0);
		fanq_publish_result res = tu_publish_len(ch, 11, 'B',
							 FANQ_PRIO_LEVELS - 1);
		ck_assert_uint_eq(res.accepted, 0);
		ck_assert_uint_eq(res.dropped, 1);
		fanq_sub_stats st = tu_stats(sub);
		ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 1);
		ck_assert_uint_eq(tu_dropped_total(&st), 1);
		ck_assert_uint_eq(st.queued_msgs, 1);
		tu_expect_msg(sub, "sssss");
		tu_expect_no_msg(sub);
		tu_sub_close(sub);
	}
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_priority_delivers_highest_first)
{
	struct tu_one w = tu_one_new(FANQ_PRIORITY, 100, TU_BIG_BYTES);
	const unsigned prios[] = {1, 3, 2, 3, 0, 2};
	const char *texts[] = {"p1", "p3a", "p2a", "p3b", "p0", "p2b"};
	const char *order[] = {"p3a", "p3b", "p2a", "p2b", "p1", "p0"};
	const unsigned order_prio[] = {3, 3, 2, 2, 1, 0};

	for (unsigned i = 0; i < 6; i++)
		tu_publish(w.ch, texts[i], prios[i]);
	for (unsigned i = 0; i < 6; i++) {
		fanq_entry e = tu_pop_msg(w.sub);

		ck_assert_uint_eq(fanq_msg_priority(e.msg), order_prio[i]);
		ck_assert_uint_eq(fanq_msg_len(e.msg), strlen(order[i]));
		ck_assert_mem_eq(fanq_msg_data(e.msg), order[i], strlen(order[i]));
		fanq_msg_release(e.msg);
	}
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/* Full with A(2) B(1) C(1): D(3) evicts B, the oldest of the lowest level. */
START_TEST(test_priority_evicts_oldest_of_lowest)
{
	struct tu_one w = tu_one_new(FANQ_PRIORITY, 3, TU_BIG_BYTES);

	tu_publish(w.ch, "A", 2);
	tu_publish(w.ch, "B", 1);
	tu_publish(w.ch, "C", 1);
	fanq_publish_result res = tu_publish(w.ch, "D", 3);
	ck_assert_uint_eq(res.accepted, 1);
	ck_assert_uint_eq(res.dropped, 1);
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 1);
	ck_assert_uint_eq(tu_dropped_total(&st), 1);
	tu_expect_msg(w.sub, "D");
	tu_expect_msg(w.sub, "A");
	tu_expect_msg(w.sub, "C");
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/* An incoming message at the lowest queued level evicts that level's oldest. */
START_TEST(test_priority_equal_level_evicts_oldest)
{
	struct tu_one w = tu_one_new(FANQ_PRIORITY, 2, TU_BIG_BYTES);

	tu_publish(w.ch, "A", 3);
	tu_publish(w.ch, "B", 3);
	fanq_publish_result res = tu_publish(w.ch, "C", 3);
	ck_assert_uint_eq(res.accepted, 1);
	ck_assert_uint_eq(tu_stats(w.sub).dropped[FANQ_DROP_EVICTED_PRIORITY], 1);
	tu_expect_msg(w.sub, "B");
	tu_expect_msg(w.sub, "C");
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_priority_drops_incoming_lower_than_all)
{
	struct tu_one w = tu_one_new(FANQ_PRIORITY, 2, TU_BIG_BYTES);

	tu_publish(w.ch, "A", 2);
	tu_publish(w.ch, "B", 3);
	fanq_publish_result res = tu_publish(w.ch, "C", 1);
	ck_assert_uint_eq(res.accepted, 0);
	ck_assert_uint_eq(res.dropped, 1);
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 1);
	ck_assert_uint_eq(tu_dropped_total(&st), 1);
	ck_assert_uint_eq(st.queued_msgs, 2);
	tu_expect_msg(w.sub, "B");
	tu_expect_msg(w.sub, "A");
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/* Custom rule: when full, evict from the lane holding most (ties: lowest). */
struct most_lane_policy {
	unsigned on_full_calls;
	int reject; /* 1: on_full answers -1 instead */
	fanq_queue_view last_view;
};

static unsigned most_lane_lane_of(void *arg, const fanq_msg *m)
{
	(void)arg;
	return fanq_msg_priority(m) > 2 ? 2 : fanq_msg_priority(m);
}

static int most_lane_on_full(void *arg, const fanq_queue_view *q,
			     const fanq_msg *in)
{
	struct most_lane_policy *p = arg;
	unsigned most = 0;

	(void)in;
	p->on_full_calls++;
	p->last_view = *q;
	if (p->reject)
		return -1;
	for (unsigned l = 1; l < q->levels; l++)
		if (q->depth[l] > q->depth[most])
			most = l;
	return (int)most;
}

/* A subscriber under pol, set before it subscribes anywhere. */
static fanq_sub *custom_sub(fanq_bus *bus, const fanq_policy *pol,
			    uint64_t max_msgs)
{
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, max_msgs, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, pol), 0);
	ck_assert_int_eq(tu_stats(sub).policy, FANQ_CUSTOM);
	return sub;
}

static fanq_sub *most_lane_sub(fanq_bus *bus, struct most_lane_policy *p,
			       uint64_t max_msgs)
{
	const fanq_policy pol = {
		.name = "most-lane",
		.levels = 3,
		.lane_of = most_lane_lane_of,
		.on_full = most_lane_on_full,
		.arg = p,
	};

	return custom_sub(bus, &pol, max_msgs);
}

START_TEST(test_custom_policy_evicts_from_fullest_lane)
{
	struct most_lane_policy p = {0};
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "custom");
	fanq_sub *sub = most_lane_sub(bus, &p, 4);

	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish(ch, "a0", 0);
	tu_publish(ch, "b0", 0);
	tu_publish(ch, "c2", 2);
	tu_publish(ch, "d1", 1);
	ck_assert_uint_eq(p.on_full_calls, 0);
	/* depth {2,1,1}: lane 0 holds most, a0 goes */
	tu_publish(ch, "e2", 2);
	ck_assert_uint_eq(p.on_full_calls, 1);
	ck_assert_uint_eq(p.last_view.levels, 3);
	ck_assert_uint_eq(p.last_view.depth[0], 2);
	ck_assert_uint_eq(p.last_view.depth[1], 1);
	ck_assert_uint_eq(p.last_view.depth[2], 1);
	ck_assert_uint_eq(p.last_view.msgs, 4);
	ck_assert_uint_eq(p.last_view.max_msgs, 4);
	ck_assert_uint_eq(p.last_view.max_bytes, TU_BIG_BYTES);
	/* depth {1,1,2}: lane 2 holds most, c2 goes */
	tu_publish(ch, "f1", 1);
	ck_assert_uint_eq(p.on_full_calls, 2);
	ck_assert_uint_eq(p.last_view.depth[2], 2);
	fanq_sub_stats st = tu_stats(sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 2);
	ck_assert_uint_eq(tu_dropped_total(&st), 2);
	tu_expect_msg(sub, "e2");
	tu_expect_msg(sub, "d1");
	tu_expect_msg(sub, "f1");
	tu_expect_msg(sub, "b0");
	tu_expect_no_msg(sub);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/* on_full() answering -1 rejects the incoming message only. */
START_TEST(test_custom_policy_reject_keeps_queue)
{
	struct most_lane_policy p = {.reject = 1};
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "custom");
	fanq_sub *sub = most_lane_sub(bus, &p, 2);

	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish(ch, "x1", 1);
	tu_publish(ch, "y1", 1);
	fanq_publish_result res = tu_publish(ch, "z2", 2);
	ck_assert_uint_eq(res.accepted, 0);
	ck_assert_uint_eq(res.dropped, 1);
	ck_assert_uint_eq(p.on_full_calls, 1);
	ck_assert_uint_eq(p.last_view.depth[1], 2);
	fanq_sub_stats st = tu_stats(sub);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_PRIORITY], 1);
	ck_assert_uint_eq(tu_dropped_total(&st), 1);
	ck_assert_uint_eq(st.queued_msgs, 2);
	tu_expect_msg(sub, "x1");
	tu_expect_msg(sub, "y1");
	tu_expect_no_msg(sub);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/* Always answers lane 0, which this test keeps empty. */
static int empty_lane_on_full(void *arg, const fanq_queue_view *q,
			      const fanq_msg *in)
{
	(void)arg;
	(void)q;
	(void)in;
	return 0;
}

START_TEST(test_custom_policy_empty_lane_rejects)
{
	const fanq_policy pol = {
		.name = "empty-lane",
		.levels = 3,
		.lane_of = most_lane_lane_of,
		.on_full = empty_lane_on_full,
	};
	struct tu_one w;

	w.bus = tu_bus_new();
	w.ch = tu_channel_open(w.bus, "custom");
	w.sub = custom_sub(w.bus, &pol, 2);
	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	tu_publish(w.ch, "a2", 2);
	tu_publish(w.ch, "b1", 1);
	fanq_publish_result res = tu_publish(w.ch, "c2", 2);
	ck_assert_uint_eq(res.accepted, 0);
	ck_assert_uint_eq(res.dropped, 1);
	ck_assert_uint_eq(tu_stats(w.sub).dropped[FANQ_DROP_EVICTED_PRIORITY], 1);
	tu_expect_msg(w.sub, "a2");
	tu_expect_msg(w.sub, "b1");
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/* "a lowered limit does not evict at once": new arrivals see it. */
START_TEST(test_lowered_limit_does_not_evict_at_once)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);

	for (unsigned i = 0; i < 5; i++)
		tu_publish(w.ch, "x", 0);
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 2, TU_BIG_BYTES), 0);
	fanq_sub_stats st = tu_stats(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 5);
	ck_assert_uint_eq(st.max_msgs, 2);
	ck_assert_uint_eq(tu_dropped_total(&st), 0);
	fanq_publish_result res = tu_publish(w.ch, "y", 0);
	ck_assert_uint_eq(res.accepted, 0);
	ck_assert_uint_eq(tu_drain(w.sub), 5);
	tu_one_close(&w);
}
END_TEST

/* Switching to or from a multi-lane policy needs an empty queue. */
START_TEST(test_lane_count_change_only_before_subscribe)
{
	fanq_bus *bus;
	fanq_channel *ch;
	fanq_sub *sub;
	fanq_sub_stats st;

	ck_assert_int_eq(fanq_bus_new(&bus), 0);
	ck_assert_int_eq(fanq_channel_open(bus, "c", &ch), 0);
	ck_assert_int_eq(fanq_sub_new(bus, &sub), 0);
	/* before any subscribe: any policy, any lane count */
	ck_assert_int_eq(fanq_sub_set_policy(sub, FANQ_PRIORITY), 0);
	ck_assert_int_eq(fanq_sub_set_policy(sub, FANQ_DROP_NEW), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	/* same lane count: allowed at any time */
	ck_assert_int_eq(fanq_sub_set_policy(sub, FANQ_DROP_OLDEST), 0);
	/* another lane count once subscribed: refused, nothing changed */
	ck_assert_int_eq(fanq_sub_set_policy(sub, FANQ_PRIORITY), FANQ_EBUSY);
	ck_assert_int_eq(fanq_sub_stats_get(sub, &st), 0);
	ck_assert_int_eq(st.policy, FANQ_DROP_OLDEST);
	ck_assert_int_eq(fanq_sub_close(sub), 0);
	fanq_channel_release(ch);
	ck_assert_int_eq(fanq_bus_close(bus), 0);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tu_tcase(s, "single-lane");

	tcase_add_test(tc, test_drop_new_keeps_oldest);
	tcase_add_test(tc, test_drop_oldest_keeps_newest);
	tcase_add_test(tc, test_drop_new_byte_limit_mixed_sizes);
	tcase_add_test(tc, test_drop_oldest_byte_limit_mixed_sizes);
	tcase_add_test(tc, test_message_larger_than_byte_limit);
	tcase_add_test(tc, test_lowered_limit_does_not_evict_at_once);
	tcase_add_test(tc, test_lane_count_change_only_before_subscribe);
	tc = tu_tcase(s, "priority");
	tcase_add_test(tc, test_priority_delivers_highest_first);
	tcase_add_test(tc, test_priority_evicts_oldest_of_lowest);
	tcase_add_test(tc, test_priority_equal_level_evicts_oldest);
	tcase_add_test(tc, test_priority_drops_incoming_lower_than_all);
	tc = tu_tcase(s, "custom");
	tcase_add_test(tc, test_custom_policy_evicts_from_fullest_lane);
	tcase_add_test(tc, test_custom_policy_reject_keeps_queue);
	tcase_add_test(tc, test_custom_policy_empty_lane_rejects);
	return s;
}
