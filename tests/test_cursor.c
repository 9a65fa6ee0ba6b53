/*
 * Keeping-up subscribers read their channel's shared log (README "How it
 * works", lib/cursor.c).  A subscriber switches in and out of that mode
 * as it keeps up or falls behind; these tests pin down that nothing it
 * can observe changes across a switch: order, seqs, GAPs, drops and
 * their reasons, the limits, and every counter.
 */
#include <poll.h>

#include "test_util.h"

static int shared(const fanq_sub *sub)
{
	return tu_stats(sub).shared_log;
}

/* One message published and taken: an idle subscriber asks to switch. */
static void keep_up(struct tu_one *w)
{
	tu_publish(w->ch, "warm", 0);
	tu_expect_msg(w->sub, "warm");
	ck_assert_int_eq(shared(w->sub), 1);
}

START_TEST(test_idle_subscriber_reads_the_log)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);
	const char *texts[] = {"a", "bb", "ccc", "dddd", "eeeee"};
	fanq_sub_stats st;
	fanq_bus_stats bst;

	ck_assert_int_eq(shared(w.sub), 0);
	keep_up(&w);
	for (unsigned i = 0; i < 5; i++) {
		fanq_publish_result res = tu_publish(w.ch, texts[i], 0);

		ck_assert_uint_eq(res.accepted, 1);
		ck_assert_uint_eq(res.dropped, 0);
	}
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 5);
	ck_assert_uint_eq(st.queued_bytes, 15);
	ck_assert_uint_eq(st.enqueued, 6);
	ck_assert_uint_eq(st.delivered, 1);
	ck_assert_int_eq(fanq_bus_stats_get(w.bus, &bst), 0);
	ck_assert_uint_eq(bst.shared_log, 1);
	ck_assert_uint_eq(bst.queued_msgs, 5);
	for (unsigned i = 0; i < 5; i++)
		tu_expect_msg(w.sub, texts[i]);
	tu_expect_no_msg(w.sub);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.delivered, 6);
	ck_assert_uint_ge(st.high_water_msgs, 5);
	ck_assert_int_eq(st.shared_log, 1);
	tu_one_close(&w);
}
END_TEST

/* Drop-new: the first 16 are kept, the rest dropped and reported. */
START_TEST(test_drop_new_across_the_switch)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 16, TU_BIG_BYTES);
	fanq_sub_stats st;

	keep_up(&w); /* seq 1 */
	for (unsigned i = 0; i < 30; i++) /* seqs 2..31 */
		ck_assert_uint_eq(tu_publish(w.ch, "x", 0).accepted, i < 16);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 16);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 14);
	ck_assert_uint_eq(st.high_water_msgs, 16);
	ck_assert_int_eq(st.shared_log, 0); /* fell behind: its own queue */
	for (uint64_t seq = 2; seq <= 17; seq++)
		tu_expect_seq(w.sub, w.ch, seq);
	tu_publish(w.ch, "y", 0); /* seq 32 */
	tu_expect_gap(w.sub, w.ch, 18, 31, 14);
	tu_expect_seq(w.sub, w.ch, 32);
	ck_assert_int_eq(shared(w.sub), 1); /* caught up again */
	tu_assert_balanced(w.sub);
	tu_one_close(&w);
}
END_TEST

/* Drop-oldest: the newest 16 are kept, a GAP stands for the rest. */
START_TEST(test_drop_oldest_across_the_switch)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 16, TU_BIG_BYTES);
	fanq_sub_stats st;

	keep_up(&w);
	for (unsigned i = 0; i < 30; i++) {
		fanq_publish_result res = tu_publish(w.ch, "x", 0);

		ck_assert_uint_eq(res.accepted, 1);
		ck_assert_uint_eq(res.dropped, i >= 16);
	}
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 16);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 14);
	tu_expect_gap(w.sub, w.ch, 2, 15, 14);
	for (uint64_t seq = 16; seq <= 31; seq++)
		tu_expect_seq(w.sub, w.ch, seq);
	tu_expect_no_msg(w.sub);
	tu_assert_balanced(w.sub);
	tu_one_close(&w);
}
END_TEST

/* The byte limit binds as in a queue of its own: 10 x 100 B of 1000 B. */
START_TEST(test_byte_limit_across_the_switch)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, 1000);
	fanq_sub_stats st;

	keep_up(&w);
	for (unsigned i = 0; i < 15; i++)
		ck_assert_uint_eq(tu_publish_len(w.ch, 100, 'b', 0).accepted, i < 10);
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 10);
	ck_assert_uint_eq(st.queued_bytes, 1000);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 5);
	for (uint64_t seq = 2; seq <= 11; seq++)
		tu_expect_seq(w.sub, w.ch, seq);
	tu_expect_no_msg(w.sub);
	tu_one_close(&w);
}
END_TEST

/* Lowered limits drop nothing already queued, in either mode. */
START_TEST(test_lowered_limit_keeps_the_log_backlog)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);
	fanq_sub_stats st;

	keep_up(&w);
	for (unsigned i = 0; i < 10; i++) /* seqs 2..11 */
		tu_publish(w.ch, "x", 0);
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 4, TU_BIG_BYTES), 0);
	ck_assert_uint_eq(tu_stats(w.sub).queued_msgs, 10);
	ck_assert_uint_eq(tu_publish(w.ch, "y", 0).accepted, 0); /* seq 12 */
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 10);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_FULL_NEW], 1);
	ck_assert_int_eq(st.shared_log, 0);
	for (uint64_t seq = 2; seq <= 11; seq++)
		tu_expect_seq(w.sub, w.ch, seq);
	tu_publish(w.ch, "z", 0); /* seq 13 */
	tu_expect_gap(w.sub, w.ch, 12, 12, 1);
	tu_expect_seq(w.sub, w.ch, 13);
	/* a limit under the smallest window keeps it in its own queue */
	ck_assert_int_eq(shared(w.sub), 0);
	tu_one_close(&w);
}
END_TEST

/* A second channel: the first's backlog moves into the queue, in order. */
START_TEST(test_second_channel_leaves_the_log)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);
	fanq_channel *ch2 = tu_channel_open(w.bus, "ch2");
	uint64_t next[2] = {2, 1};
	fanq_sub_stats st;
	fanq_entry e;

	keep_up(&w);
	for (unsigned i = 0; i < 3; i++) /* ch seqs 2..4 */
		tu_publish(w.ch, "one", 0);
	ck_assert_int_eq(fanq_subscribe(w.sub, ch2), 0);
	tu_publish(ch2, "two", 0);
	tu_publish(ch2, "two", 0);
	ck_assert_uint_eq(tu_stats(w.sub).queued_msgs, 5);
	tu_publish(w.ch, "one", 0); /* seq 5: ch demotes it */
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 6);
	ck_assert_int_eq(st.shared_log, 0);
	for (unsigned i = 0; i < 6; i++) {
		e = tu_pop(w.sub);
		ck_assert_int_eq(e.kind, FANQ_ENTRY_MSG);
		ck_assert_uint_eq(e.seq, next[e.ch == ch2]++);
		fanq_msg_release(e.msg);
	}
	tu_expect_no_msg(w.sub);
	ck_assert_uint_eq(next[0], 6);
	ck_assert_uint_eq(next[1], 3);
	tu_publish(w.ch, "one", 0);
	tu_expect_seq(w.sub, w.ch, 6);
	ck_assert_int_eq(shared(w.sub), 0); /* two channels: its own queue */
	tu_assert_balanced(w.sub);
	fanq_channel_release(ch2);
	tu_one_close(&w);
}
END_TEST

/* Unsubscribing leaves what was queued deliverable. */
START_TEST(test_unsubscribe_keeps_the_log_backlog)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);

	keep_up(&w);
	for (unsigned i = 0; i < 3; i++)
		tu_publish(w.ch, "x", 0);
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	ck_assert_int_eq(shared(w.sub), 0);
	tu_publish(w.ch, "not for it", 0);
	for (uint64_t seq = 2; seq <= 4; seq++)
		tu_expect_seq(w.sub, w.ch, seq);
	tu_expect_no_msg(w.sub);
	tu_assert_balanced(w.sub);
	tu_one_close(&w);
}
END_TEST

/* Closing counts the log backlog dropped (unsubscribed), as a queue's. */
START_TEST(test_close_counts_the_log_backlog)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);
	fanq_bus_stats bst;

	keep_up(&w);
	for (unsigned i = 0; i < 5; i++)
		tu_publish(w.ch, "x", 0);
	tu_sub_close(w.sub);
	ck_assert_int_eq(fanq_bus_stats_get(w.bus, &bst), 0);
	ck_assert_uint_eq(bst.enqueued, 6);
	ck_assert_uint_eq(bst.delivered, 1);
	/* queued until the subscriber is freed (after a grace period), then
	 * dropped: one or the other in any one snapshot */
	ck_assert_uint_eq(bst.dropped[FANQ_DROP_UNSUBSCRIBED] + bst.queued_msgs, 5);
	ck_assert_uint_eq(bst.shared_log, 0);
	fanq_channel_release(w.ch);
	tu_bus_close(w.bus);
}
END_TEST

/*
 * Bursts of 600 with a limit of 1024: at first the log is too short for
 * such a backlog (the subscriber falls back to its own queue, the log
 * grows); nothing is dropped or reordered at any point.
 */
START_TEST(test_bursts_grow_the_log)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 1024, TU_BIG_BYTES);
	fanq_entry es[64];
	uint64_t seq = 2;
	fanq_sub_stats st;
	int n;

	keep_up(&w);
	for (unsigned round = 0; round < 12; round++) {
		for (unsigned i = 0; i < 600; i++)
			ck_assert_uint_eq(tu_publish(w.ch, "burst", 0).accepted, 1);
		ck_assert_uint_eq(tu_stats(w.sub).queued_msgs, 600);
		while ((n = fanq_sub_pop_batch(w.sub, es, 64)) > 0)
			for (int i = 0; i < n; i++) {
				ck_assert_int_eq(es[i].kind, FANQ_ENTRY_MSG);
				ck_assert_uint_eq(es[i].seq, seq++);
				fanq_msg_release(es[i].msg);
			}
		ck_assert_int_eq(n, 0);
	}
	st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(tu_dropped_total(&st), 0);
	ck_assert_uint_eq(st.delivered, 1 + 12 * 600);
	ck_assert_int_eq(st.shared_log, 1);
	tu_one_close(&w);
}
END_TEST

/* Peek and pop one at a time read the log as they read a queue. */
START_TEST(test_peek_and_pop_read_the_log)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);
	fanq_entry e;

	keep_up(&w);
	tu_publish(w.ch, "p1", 0);
	tu_publish(w.ch, "p2", 0);
	ck_assert_int_eq(fanq_sub_peek(w.sub, &e), 0);
	ck_assert_uint_eq(e.seq, 2);
	ck_assert_uint_eq(tu_stats(w.sub).queued_msgs, 2); /* held counts */
	tu_expect_msg(w.sub, "p1");
	tu_expect_msg(w.sub, "p2");
	tu_expect_no_msg(w.sub);
	tu_assert_balanced(w.sub);
	tu_one_close(&w);
}
END_TEST

/* A group member reading the log is woken by the append, once per drain. */
START_TEST(test_group_member_is_woken_from_the_log)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "ch");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 64, TU_BIG_BYTES), *got;
	struct pollfd pfd;
	fanq_group *g;

	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	ck_assert_int_eq(fanq_group_attach(g, sub), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	pfd = (struct pollfd){ .fd = fanq_group_fd(g), .events = POLLIN };
	for (uint64_t seq = 1; seq <= 4; seq++) {
		ck_assert_int_eq(poll(&pfd, 1, 0), 0);
		tu_publish(ch, "m", 0);
		tu_publish(ch, "m", 0); /* the second append finds no waiter */
		ck_assert_int_eq(poll(&pfd, 1, 0), 1);
		ck_assert_int_eq(fanq_group_next_ready(g, &got), 0);
		ck_assert_ptr_eq(got, sub);
		tu_expect_seq(sub, ch, 2 * seq - 1);
		tu_expect_seq(sub, ch, 2 * seq);
		tu_expect_no_msg(sub);
		ck_assert_int_eq(fanq_group_next_ready(g, &got), FANQ_EAGAIN);
		ck_assert_int_eq(shared(sub), 1); /* from the first drain on */
	}
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/* A group member that falls behind is woken by its lane again, and back. */
START_TEST(test_group_member_falls_behind_and_back)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "ch");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 16, TU_BIG_BYTES), *got;
	struct pollfd pfd;
	fanq_group *g;

	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	ck_assert_int_eq(fanq_group_attach(g, sub), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	pfd = (struct pollfd){ .fd = fanq_group_fd(g), .events = POLLIN };
	tu_publish(ch, "m", 0); /* seq 1: lane, then the switch */
	ck_assert_int_eq(fanq_group_next_ready(g, &got), 0);
	tu_expect_seq(sub, ch, 1);
	ck_assert_int_eq(shared(sub), 1);
	ck_assert_int_eq(fanq_group_next_ready(g, &got), FANQ_EAGAIN);
	for (unsigned i = 0; i < 30; i++) /* seqs 2..31: 16 kept */
		tu_publish(ch, "m", 0);
	ck_assert_int_eq(shared(sub), 0);
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(g, &got), 0);
	ck_assert_ptr_eq(got, sub);
	for (uint64_t seq = 2; seq <= 17; seq++)
		tu_expect_seq(sub, ch, seq);
	tu_expect_no_msg(sub); /* back on the log from here */
	ck_assert_int_eq(fanq_group_next_ready(g, &got), FANQ_EAGAIN);
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	tu_publish(ch, "m", 0); /* seq 32 */
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(g, &got), 0);
	tu_expect_gap(sub, ch, 18, 31, 14);
	tu_expect_seq(sub, ch, 32);
	ck_assert_int_eq(shared(sub), 1);
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tu_tcase(s, "switch");

	tcase_add_test(tc, test_idle_subscriber_reads_the_log);
	tcase_add_test(tc, test_drop_new_across_the_switch);
	tcase_add_test(tc, test_drop_oldest_across_the_switch);
	tcase_add_test(tc, test_byte_limit_across_the_switch);
	tcase_add_test(tc, test_lowered_limit_keeps_the_log_backlog);
	tcase_add_test(tc, test_second_channel_leaves_the_log);
	tcase_add_test(tc, test_unsubscribe_keeps_the_log_backlog);
	tcase_add_test(tc, test_close_counts_the_log_backlog);
	tcase_add_test(tc, test_bursts_grow_the_log);
	tcase_add_test(tc, test_peek_and_pop_read_the_log);
	tc = tu_tcase(s, "group");
	tcase_add_test(tc, test_group_member_is_woken_from_the_log);
	tcase_add_test(tc, test_group_member_falls_behind_and_back);
	return s;
}
