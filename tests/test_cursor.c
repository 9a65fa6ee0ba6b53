/*
 * Keeping-up subscribers read their channel's shared log (README "How it
 * works", lib/cursor.c).  A subscriber switches in and out of that mode
 * as it keeps up or falls behind; these tests pin down that nothing it
 * can observe changes across a switch: order, seqs, GAPs, drops and
 * their reasons, the limits, and every counter.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "invariant.h"
#include "test_util.h"

static int shared(const fanq_sub *sub)
{
	return tu_stats(sub).shared_log;
}

/*
 * One message published and taken: an idle subscriber asks to switch.
 * The request waits for the channel's next operation (the consumer never
 * fans out): the next publish switches it, then goes to the log.
 */
static void keep_up(struct tu_one *w)
{
	tu_publish(w->ch, "warm", 0);
	tu_expect_msg(w->sub, "warm");
	ck_assert_int_eq(shared(w->sub), 0);
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

/*
 * A request posted on a channel the subscriber has just left (a message
 * of it was still queued) waits there for an operation that may never
 * come; closing the subscriber has it applied, so the subscriber is freed
 * and its backlog counted without traffic on the channel it left.
 */
START_TEST(test_close_applies_a_request_on_a_left_channel)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 64, TU_BIG_BYTES);
	fanq_channel *b = tu_channel_open(w.bus, "b");
	struct timespec ten_ms = {0, 10 * 1000000L};
	fanq_bus_stats bst;

	ck_assert_int_eq(fanq_subscribe(w.sub, b), 0);
	tu_publish(w.ch, "left", 0); /* two channels: into the lane */
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	tu_expect_msg(w.sub, "left"); /* lanes empty, one channel: a request */
	tu_publish(b, "stays", 0);
	tu_sub_close(w.sub);
	/* freed after a grace period: "stays" is then dropped (unsubscribed) */
	for (int i = 0; i < 1000; i++) { /* 10 s at most */
		ck_assert_int_eq(fanq_bus_stats_get(w.bus, &bst), 0);
		if (bst.dropped[FANQ_DROP_UNSUBSCRIBED])
			break;
		nanosleep(&ten_ms, NULL);
	}
	ck_assert_uint_eq(bst.dropped[FANQ_DROP_UNSUBSCRIBED], 1);
	ck_assert_uint_eq(bst.queued_msgs, 0);
	ck_assert_uint_eq(bst.enqueued, 2);
	ck_assert_uint_eq(bst.delivered, 1);
	fanq_channel_release(b);
	fanq_channel_release(w.ch);
	tu_bus_close(w.bus);
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
	tu_publish(w.ch, "z", 0); /* seq 33: caught up again, on the log */
	ck_assert_int_eq(shared(w.sub), 1);
	tu_expect_seq(w.sub, w.ch, 33);
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

/*
 * The group tests' shape: one drop-new member of a group on channel "ch";
 * clock and rules (either may be NULL) are set where they must be, before
 * the channel is opened and before the member is attached.
 */
struct grouped {
	fanq_bus *bus;
	fanq_channel *ch;
	fanq_sub *sub;
	fanq_group *g;
	struct pollfd pfd;
};

static void grouped_open(struct grouped *w, uint64_t max_msgs, struct tu_clock *clock,
			 const fanq_health_rules *rules)
{
	w->bus = tu_bus_new();
	if (clock)
		ck_assert_int_eq(fanq_bus_set_clock(w->bus, tu_clock_read, clock), 0);
	w->ch = tu_channel_open(w->bus, "ch");
	w->sub = tu_sub_new(w->bus, FANQ_DROP_NEW, max_msgs, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_group_new(w->bus, &w->g), 0);
	if (rules)
		ck_assert_int_eq(fanq_group_set_health(w->g, rules), 0);
	ck_assert_int_eq(fanq_group_attach(w->g, w->sub), 0);
	ck_assert_int_eq(fanq_subscribe(w->sub, w->ch), 0);
	w->pfd = (struct pollfd){ .fd = fanq_group_fd(w->g), .events = POLLIN };
}

static void grouped_close(struct grouped *w)
{
	tu_sub_close(w->sub);
	ck_assert_int_eq(fanq_group_close(w->g), 0);
	fanq_channel_release(w->ch);
	tu_bus_close(w->bus);
}

/* A group member reading the log is woken by the append, once per drain. */
START_TEST(test_group_member_is_woken_from_the_log)
{
	struct grouped w;
	fanq_sub *got;

	grouped_open(&w, 64, NULL, NULL);
	for (uint64_t seq = 1; seq <= 4; seq++) {
		ck_assert_int_eq(poll(&w.pfd, 1, 0), 0);
		tu_publish(w.ch, "m", 0);
		tu_publish(w.ch, "m", 0); /* the second append finds no waiter */
		ck_assert_int_eq(poll(&w.pfd, 1, 0), 1);
		ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
		ck_assert_ptr_eq(got, w.sub);
		tu_expect_seq(w.sub, w.ch, 2 * seq - 1);
		tu_expect_seq(w.sub, w.ch, 2 * seq);
		tu_expect_no_msg(w.sub);
		ck_assert_int_eq(fanq_group_next_ready(w.g, &got), FANQ_EAGAIN);
		/* switched by the first publish after the first drain */
		ck_assert_int_eq(shared(w.sub), seq > 1);
	}
	grouped_close(&w);
}
END_TEST

/* A group member that falls behind is woken by its lane again, and back. */
START_TEST(test_group_member_falls_behind_and_back)
{
	struct grouped w;
	fanq_sub *got;

	grouped_open(&w, 16, NULL, NULL);
	tu_publish(w.ch, "m", 0); /* seq 1: lane; seq 2 switches it */
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
	tu_expect_seq(w.sub, w.ch, 1);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), FANQ_EAGAIN);
	for (unsigned i = 0; i < 30; i++) /* seqs 2..31: 16 kept */
		tu_publish(w.ch, "m", 0);
	ck_assert_int_eq(shared(w.sub), 0);
	ck_assert_int_eq(poll(&w.pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
	ck_assert_ptr_eq(got, w.sub);
	for (uint64_t seq = 2; seq <= 17; seq++)
		tu_expect_seq(w.sub, w.ch, seq);
	tu_expect_no_msg(w.sub); /* back on the log from here */
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), FANQ_EAGAIN);
	ck_assert_int_eq(poll(&w.pfd, 1, 0), 0);
	tu_publish(w.ch, "m", 0); /* seq 32 */
	ck_assert_int_eq(poll(&w.pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
	tu_expect_gap(w.sub, w.ch, 18, 31, 14);
	tu_expect_seq(w.sub, w.ch, 32);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), FANQ_EAGAIN);
	tu_publish(w.ch, "m", 0); /* seq 33: the switch, then the append */
	ck_assert_int_eq(shared(w.sub), 1);
	ck_assert_int_eq(poll(&w.pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
	tu_expect_seq(w.sub, w.ch, 33);
	grouped_close(&w);
}
END_TEST

/*
 * A member waiting on its log (ready flag set) and woken once by the
 * append, then left there: the first two steps of the tests below.
 */
static void grouped_wait(struct grouped *w)
{
	fanq_sub *got;

	tu_publish(w->ch, "a", 0);
	ck_assert_int_eq(fanq_group_next_ready(w->g, &got), 0);
	tu_expect_seq(w->sub, w->ch, 1); /* on the log from here */
	tu_publish(w->ch, "b", 0);
	ck_assert_int_eq(fanq_group_next_ready(w->g, &got), 0); /* waits on ch */
}

/* A waiting group member (ready flag set, parked on its log) is woken by
 * a push from a second channel: nothing else would ever move it. */
START_TEST(test_waiting_member_hears_a_second_channel)
{
	struct grouped w;
	fanq_channel *c2;
	fanq_sub *got;

	grouped_open(&w, 64, NULL, NULL);
	c2 = tu_channel_open(w.bus, "c2");
	grouped_wait(&w);
	tu_expect_seq(w.sub, w.ch, 2);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), FANQ_EAGAIN);
	ck_assert_int_eq(fanq_subscribe(w.sub, c2), 0); /* ch goes quiet */
	tu_publish(c2, "x", 0);
	ck_assert_int_eq(poll(&w.pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
	tu_expect_seq(w.sub, c2, 1);
	ck_assert_int_eq(shared(w.sub), 0);
	fanq_channel_release(c2);
	grouped_close(&w);
}
END_TEST

/* ...and by its eviction, on a channel that goes quiet. */
START_TEST(test_waiting_member_hears_its_eviction)
{
	struct tu_clock clock = { .ns = 1000 };
	fanq_health_rules rules = { .idle_ns = 1000000 };
	enum fanq_evict_reason why;
	struct grouped w;
	fanq_sub *got;

	grouped_open(&w, 64, &clock, &rules);
	grouped_wait(&w); /* "b" is on the log; the host never drains it */
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), FANQ_EAGAIN);
	for (int i = 0; i < 5; i++) {
		clock.ns += 10 * TU_MS;
		fanq_bus_tick(w.bus);
	}
	ck_assert_int_eq(fanq_sub_evicted(w.sub, &why), 1);
	ck_assert_int_eq(why, FANQ_EVICT_IDLE);
	ck_assert_int_eq(poll(&w.pfd, 1, 0), 1);
	ck_assert_int_eq(fanq_group_next_ready(w.g, &got), 0);
	ck_assert_ptr_eq(got, w.sub);
	grouped_close(&w);
}
END_TEST

/*
 * Under load: two publishers, subscribers that keep up, stall, catch up
 * and have their limits lowered and raised, alone and in a group, so
 * that they switch between the log and their lanes while messages flow.
 * Every entry goes through the invariant checker.  The run lasts a
 * second, longer if it has not yet seen a subscriber on the log and one
 * leaving it, and fails if it sees neither in LOAD_MAX_SECONDS.
 */
#define LOAD_SECONDS 1      /* at least, with every switch checked */
#define LOAD_MAX_SECONDS 20 /* at most, waiting to see both kinds of switch */
#define LOAD_SUBS 6         /* 0-3 swept by two threads, 4-5 in a group */

static atomic_int load_stop;
static struct tu_failure load_fail = {.stop = &load_stop};

struct load_sub {
	fanq_sub *sub;
	struct inv_sub *inv;
};

struct load {
	fanq_channel *ch;
	fanq_group *g;
	struct load_sub s[LOAD_SUBS];
	atomic_uint published;
};

static void load_nap(unsigned *seed, unsigned one_in)
{
	if (rand_r(seed) % one_in == 0) {
		struct timespec t = {0, (long)(rand_r(seed) % 3 + 1) * 1000000L};

		nanosleep(&t, NULL);
	}
}

/* Pop everything ready through the checker; false after a failure. */
static bool load_drain(struct load_sub *ls, const char *who)
{
	fanq_entry es[24];
	int n;

	while ((n = fanq_sub_pop_batch(ls->sub, es, 24)) > 0)
		for (int i = 0; i < n; i++) {
			bool ok = inv_sub_entry(ls->inv, &es[i], 0);

			if (es[i].kind == FANQ_ENTRY_MSG)
				fanq_msg_release(es[i].msg);
			if (!ok) {
				tu_thread_fail(&load_fail, "%s: %s", who,
					       inv_sub_error(ls->inv));
				return false;
			}
		}
	if (n < 0)
		tu_thread_fail(&load_fail, "%s: pop_batch: %s", who, fanq_strerror(n));
	return n == 0;
}

/*
 * A switch to the log is granted only when nothing was offered since the
 * consumer found its lanes empty.  Two publishers back to back on a slow
 * host (TSan, loaded) keep the fan-out thousands of publishes behind and
 * the consumers with it, and nothing switches.  So the publishers wait
 * while the fan-out is more than LOAD_BACKLOG publishes behind, and stay
 * quiet for the first 10 ms of every 50: the consumers catch up.
 */
#define LOAD_BACKLOG 64

static bool load_hold(fanq_channel *ch)
{
	fanq_channel_stats st;
	struct timespec now;

	if (fanq_channel_stats_get(ch, &st) || st.backlog > LOAD_BACKLOG)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_nsec / 1000000L % 50 < 10;
}

/* Bursts of 1 to 64 messages, a pause after each: consumers catch up. */
static void *load_publisher(void *arg)
{
	struct load *l = arg;
	unsigned seed = (unsigned)atomic_fetch_add(&l->published, 0) + 11;
	struct timespec pause = {0, 200 * 1000L}, hold = {0, 1000 * 1000L};
	uint64_t x = 0;

	while (!atomic_load(&load_stop)) {
		if (load_hold(l->ch)) {
			nanosleep(&hold, NULL);
			continue;
		}
		for (unsigned n = rand_r(&seed) % 64 + 1; n; n--, x++) {
			if (tu_publish_retry(l->ch, &x, sizeof(x), 0)) {
				tu_thread_fail(&load_fail, "publish failed");
				return NULL;
			}
			atomic_fetch_add(&l->published, 1);
		}
		nanosleep(&pause, NULL);
	}
	return NULL;
}

struct load_sweeper {
	struct load *l;
	unsigned first, seed;
};

/* Sweeps subscribers first and first + 1, stalling now and then. */
static void *load_sweeper_main(void *arg)
{
	struct load_sweeper *w = arg;

	while (!atomic_load(&load_stop)) {
		for (unsigned i = w->first; i < w->first + 2; i++)
			if (!load_drain(&w->l->s[i], "sweeper"))
				return NULL;
		load_nap(&w->seed, 16);
	}
	return NULL;
}

/* The group's owner: sleeps in poll, drains what next_ready hands it. */
static void *load_group_main(void *arg)
{
	struct load *l = arg;
	struct pollfd pfd = { .fd = fanq_group_fd(l->g), .events = POLLIN };
	unsigned seed = 7;
	fanq_sub *sub;

	while (!atomic_load(&load_stop)) {
		poll(&pfd, 1, 1);
		while (fanq_group_next_ready(l->g, &sub) == 0) {
			unsigned i = sub == l->s[4].sub ? 4 : 5;

			if (!load_drain(&l->s[i], "group"))
				return NULL;
		}
		load_nap(&seed, 32);
	}
	return NULL;
}

/* Lowers and raises subscriber 3's message limit, forcing rescans. */
static void *load_tweaker(void *arg)
{
	struct load *l = arg;
	struct timespec t = {0, 3 * 1000000L};

	for (unsigned k = 0; !atomic_load(&load_stop); k++) {
		if (fanq_sub_set_limits(l->s[3].sub, k % 2 ? 12 : 256, TU_BIG_BYTES))
			tu_thread_fail(&load_fail, "set_limits failed");
		nanosleep(&t, NULL);
	}
	return NULL;
}

START_TEST(test_switches_under_load)
{
	static const struct { enum fanq_policy_kind kind; uint64_t msgs, bytes; } cfg[] = {
		{ FANQ_DROP_NEW, 16, TU_BIG_BYTES }, { FANQ_DROP_OLDEST, 16, TU_BIG_BYTES },
		{ FANQ_DROP_NEW, 1024, 200 * 8 }, { FANQ_DROP_OLDEST, 256, TU_BIG_BYTES },
		{ FANQ_DROP_NEW, 64, TU_BIG_BYTES }, { FANQ_DROP_OLDEST, 32, TU_BIG_BYTES },
	};
	fanq_bus *bus = tu_bus_new();
	struct inv_world *world = inv_world_new();
	struct load l = { .ch = tu_channel_open(bus, "hot") };
	struct load_sweeper sw[2] = { { &l, 0, 1 }, { &l, 2, 2 } };
	pthread_t pub[2], swt[2], grp, twk;
	unsigned on_log = 0, left_log = 0, was[LOAD_SUBS] = {0};
	struct timespec start, now, tick = {0, 2 * 1000000L};
	double ran;

	ck_assert_ptr_nonnull(world);
	ck_assert(inv_world_channel(world, l.ch, false));
	ck_assert_int_eq(fanq_group_new(bus, &l.g), 0);
	for (unsigned i = 0; i < LOAD_SUBS; i++) {
		l.s[i].sub = tu_sub_new(bus, cfg[i].kind, cfg[i].msgs, cfg[i].bytes);
		l.s[i].inv = inv_sub_new(world, "load", 1);
		ck_assert_ptr_nonnull(l.s[i].inv);
		if (i >= 4)
			ck_assert_int_eq(fanq_group_attach(l.g, l.s[i].sub), 0);
		ck_assert_int_eq(fanq_subscribe(l.s[i].sub, l.ch), 0);
		ck_assert(inv_sub_subscribed(l.s[i].inv, l.ch, 1));
	}
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_create(&pub[i], NULL, load_publisher, &l), 0);
		ck_assert_int_eq(pthread_create(&swt[i], NULL, load_sweeper_main, &sw[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&grp, NULL, load_group_main, &l), 0);
	ck_assert_int_eq(pthread_create(&twk, NULL, load_tweaker, &l), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do { /* watch the switches as they happen */
		for (unsigned i = 0; i < LOAD_SUBS; i++) {
			unsigned now_on = (unsigned)tu_stats(l.s[i].sub).shared_log;

			on_log += now_on;
			left_log += was[i] && !now_on;
			was[i] = now_on;
		}
		nanosleep(&tick, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		ran = (double)(now.tv_sec - start.tv_sec) +
		      (double)(now.tv_nsec - start.tv_nsec) / 1e9;
	} while (!atomic_load(&load_fail.failed) &&
		 (ran < LOAD_SECONDS ||
		  ((!on_log || !left_log) && ran < LOAD_MAX_SECONDS)));
	atomic_store(&load_stop, 1);
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(pub[i], NULL);
		pthread_join(swt[i], NULL);
	}
	pthread_join(grp, NULL);
	pthread_join(twk, NULL);
	ck_assert_msg(!atomic_load(&load_fail.failed), "%s", load_fail.msg);
	ck_assert_uint_gt(atomic_load(&l.published), 0);
	ck_assert_uint_gt(on_log, 0);
	ck_assert_uint_gt(left_log, 0);
	/* quiescent: one more message so trailing drops show as GAPs */
	for (unsigned i = 0; i < LOAD_SUBS; i++)
		ck_assert(load_drain(&l.s[i], "final"));
	tu_publish(l.ch, "last", 0);
	for (unsigned i = 0; i < LOAD_SUBS; i++) {
		ck_assert_msg(load_drain(&l.s[i], "final"), "%s", load_fail.msg);
		ck_assert_msg(inv_sub_check(l.s[i].inv, l.s[i].sub), "sub %u: %s", i,
			      inv_sub_error(l.s[i].inv));
		ck_assert_uint_eq(tu_stats(l.s[i].sub).enqueued,
				  atomic_load(&l.published) + 1);
		tu_sub_close(l.s[i].sub);
		inv_sub_free(l.s[i].inv);
	}
	ck_assert_int_eq(fanq_group_close(l.g), 0);
	fanq_channel_release(l.ch);
	tu_bus_close(bus);
	inv_world_free(world);
}
END_TEST

/*
 * A consumer never fans out.  A publisher keeps the channel busy (a slow
 * custom policy on one subscriber makes every publish long) while one
 * consumer keeps up with BUSY_FAST subscribers, which a tweaker moves off
 * the log and back by lowering and raising their limits: each comes back
 * with a switch request from the consumer.  If a request took the fan-out
 * role when it found it free, between two publishes, the consumer would
 * apply the publishes queued meanwhile, for as long as they keep coming,
 * and deliver nothing: the policy's lane_of() would run on its thread.
 */
#define BUSY_SECONDS 1
#define BUSY_FAST 16

struct busy {
	fanq_channel *ch;
	fanq_sub *fast[BUSY_FAST];
	pthread_t consumer;
	atomic_int stop, on_consumer;
	atomic_uint taken;
};

static unsigned busy_lane_of(void *arg, const fanq_msg *m)
{
	struct busy *b = arg;
	struct timespec t0, t;

	(void)m;
	if (pthread_equal(pthread_self(), b->consumer))
		atomic_store(&b->on_consumer, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do /* 20 us of work: the callbacks must not block */
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 20000);
	return 0;
}

static int busy_on_full(void *arg, const fanq_queue_view *q, const fanq_msg *in)
{
	(void)arg, (void)q, (void)in;
	return -1;
}

static void *busy_publisher(void *arg)
{
	struct busy *b = arg;
	uint64_t x = 0;

	while (!atomic_load(&b->stop))
		if (tu_publish_retry(b->ch, &x, sizeof(x), 0))
			break;
	return NULL;
}

static void *busy_consumer(void *arg)
{
	struct busy *b = arg;
	fanq_entry es[16];
	int n;

	while (!atomic_load(&b->stop))
		for (unsigned i = 0; i < BUSY_FAST; i++)
			while ((n = fanq_sub_pop_batch(b->fast[i], es, 16)) > 0) {
				atomic_fetch_add(&b->taken, (unsigned)n);
				for (int j = 0; j < n; j++)
					if (es[j].kind == FANQ_ENTRY_MSG)
						fanq_msg_release(es[j].msg);
			}
	return NULL;
}

/* Limits under the smallest window take the fast ones off the log. */
static void *busy_tweaker(void *arg)
{
	struct busy *b = arg;
	struct timespec t = {0, 1000 * 1000L};

	for (unsigned k = 0; !atomic_load(&b->stop); k++) {
		for (unsigned i = 0; i < BUSY_FAST; i++)
			fanq_sub_set_limits(b->fast[i], k % 2 ? 4 : 1024, TU_BIG_BYTES);
		nanosleep(&t, NULL);
	}
	return NULL;
}

START_TEST(test_consumer_never_fans_out)
{
	struct busy b = {0};
	fanq_policy slow = { .name = "slow", .levels = 2, .lane_of = busy_lane_of,
			     .on_full = busy_on_full, .arg = &b };
	fanq_bus *bus = tu_bus_new();
	fanq_sub *other;
	pthread_t pub, twk;
	struct timespec run = {BUSY_SECONDS, 0};

	b.ch = tu_channel_open(bus, "busy");
	for (unsigned i = 0; i < BUSY_FAST; i++) {
		b.fast[i] = tu_sub_new(bus, FANQ_DROP_NEW, 1024, TU_BIG_BYTES);
		ck_assert_int_eq(fanq_subscribe(b.fast[i], b.ch), 0);
	}
	ck_assert_int_eq(fanq_sub_new(bus, &other), 0);
	ck_assert_int_eq(fanq_sub_set_custom_policy(other, &slow), 0);
	ck_assert_int_eq(fanq_subscribe(other, b.ch), 0);
	ck_assert_int_eq(pthread_create(&b.consumer, NULL, busy_consumer, &b), 0);
	ck_assert_int_eq(pthread_create(&pub, NULL, busy_publisher, &b), 0);
	ck_assert_int_eq(pthread_create(&twk, NULL, busy_tweaker, &b), 0);
	nanosleep(&run, NULL);
	atomic_store(&b.stop, 1);
	pthread_join(pub, NULL);
	pthread_join(twk, NULL);
	pthread_join(b.consumer, NULL);
	ck_assert_uint_gt(atomic_load(&b.taken), 0);
	ck_assert_msg(!atomic_load(&b.on_consumer), "a publish was fanned out on "
		      "the consumer's thread");
	tu_sub_close(other);
	for (unsigned i = 0; i < BUSY_FAST; i++)
		tu_sub_close(b.fast[i]);
	fanq_channel_release(b.ch);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tu_tcase(s, "switch");

	tcase_add_test(tc, test_idle_subscriber_reads_the_log);
	tcase_add_test(tc, test_close_applies_a_request_on_a_left_channel);
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
	tcase_add_test(tc, test_waiting_member_hears_a_second_channel);
	tcase_add_test(tc, test_waiting_member_hears_its_eviction);
	tc = tu_tcase(s, "load");
	tcase_add_test(tc, test_switches_under_load);
	tcase_add_test(tc, test_consumer_never_fans_out);
	return s;
}
