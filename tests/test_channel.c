/*
 * Channels: names, sequence numbers, subscriptions, shared (zero-copy)
 * messages, and GAP entries standing in for dropped messages.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "test_util.h"

START_TEST(test_open_same_name_same_channel)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *a = tu_channel_open(bus, "news");
	fanq_channel *again = tu_channel_open(bus, "news");
	fanq_channel *other = tu_channel_open(bus, "sport");

	ck_assert_ptr_eq(a, again);
	ck_assert_ptr_ne(a, other);
	ck_assert_str_eq(fanq_channel_name(a), "news");
	ck_assert_str_eq(fanq_channel_name(other), "sport");
	fanq_channel_release(a);
	fanq_channel_release(again);
	fanq_channel_release(other);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_seq_starts_at_one_and_increases)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_channel *other = tu_channel_open(bus, "sport");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	ck_assert_uint_eq(fanq_channel_last_seq(ch), 0);
	for (uint64_t i = 1; i <= 5; i++) {
		ck_assert_uint_eq(tu_publish(ch, "x", 0).seq, i);
		ck_assert_uint_eq(fanq_channel_last_seq(ch), i);
	}
	/* each channel has its own sequence */
	ck_assert_uint_eq(tu_publish(other, "y", 0).seq, 1);
	ck_assert_uint_eq(fanq_channel_last_seq(ch), 5);
	for (uint64_t i = 1; i <= 5; i++) {
		fanq_entry e = tu_pop(sub);

		ck_assert_int_eq(e.kind, FANQ_ENTRY_MSG);
		ck_assert_uint_eq(e.seq, i);
		ck_assert_uint_eq(fanq_msg_seq(e.msg), i);
		ck_assert_ptr_eq(e.ch, ch);
		ck_assert_ptr_eq(fanq_msg_channel(e.msg), ch);
		fanq_msg_release(e.msg);
	}
	tu_expect_no_msg(sub);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	fanq_channel_release(other);
	tu_bus_close(bus);
}
END_TEST

/*
 * Messages published while not subscribed were never offered: after a
 * resubscribe the next entry is the next message, not a GAP.
 */
START_TEST(test_subscribe_unsubscribe)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
	fanq_entry e;

	ck_assert_uint_eq(tu_publish(ch, "before", 0).accepted, 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	ck_assert_uint_eq(tu_publish(ch, "in", 0).accepted, 1);
	tu_expect_msg(sub, "in");
	ck_assert_int_eq(fanq_unsubscribe(sub, ch), 0);
	ck_assert_uint_eq(tu_publish(ch, "out", 0).accepted, 0);
	ck_assert_int_eq(fanq_sub_pop(sub, &e), FANQ_EAGAIN);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	ck_assert_uint_eq(tu_publish(ch, "back", 0).accepted, 1);
	e = tu_pop(sub);
	ck_assert_int_eq(e.kind, FANQ_ENTRY_MSG);
	ck_assert_uint_eq(e.seq, 4);
	ck_assert_mem_eq(fanq_msg_data(e.msg), "back", 4);
	fanq_msg_release(e.msg);
	ck_assert_uint_eq(tu_assert_balanced(sub).enqueued, 2);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_multiple_channels_per_sub)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *chs[3] = {tu_channel_open(bus, "a"),
				tu_channel_open(bus, "b"),
				tu_channel_open(bus, "c")};
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
	const unsigned order[] = {0, 1, 0, 2, 2, 1, 0};
	uint64_t seqs[3] = {0, 0, 0};

	for (unsigned c = 0; c < 3; c++)
		ck_assert_int_eq(fanq_subscribe(sub, chs[c]), 0);
	for (unsigned i = 0; i < 7; i++) {
		char text[2] = {(char)('0' + i), 0};

		tu_publish(chs[order[i]], text, 0);
	}
	/* one lane: FIFO across channels, each in its own sequence */
	for (unsigned i = 0; i < 7; i++) {
		fanq_entry e = tu_pop(sub);
		unsigned c = order[i];

		ck_assert_int_eq(e.kind, FANQ_ENTRY_MSG);
		ck_assert_ptr_eq(e.ch, chs[c]);
		ck_assert_uint_eq(e.seq, ++seqs[c]);
		ck_assert_int_eq(((const char *)fanq_msg_data(e.msg))[0], '0' + (int)i);
		fanq_msg_release(e.msg);
	}
	tu_expect_no_msg(sub);
	tu_sub_close(sub);
	for (unsigned c = 0; c < 3; c++)
		fanq_channel_release(chs[c]);
	tu_bus_close(bus);
}
END_TEST

/* One publish is copied once and shared by every subscriber. */
START_TEST(test_message_shared_zero_copy)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_sub *s1 = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_sub *s2 = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	char buf[] = "shared payload";

	ck_assert_int_eq(fanq_subscribe(s1, ch), 0);
	ck_assert_int_eq(fanq_subscribe(s2, ch), 0);
	ck_assert_uint_eq(tu_publish(ch, buf, 3).accepted, 2);
	memset(buf, 'Z', sizeof(buf) - 1); /* fanq copied it at publish */
	fanq_entry e1 = tu_pop(s1);
	fanq_entry e2 = tu_pop(s2);
	ck_assert_ptr_eq(e1.msg, e2.msg);
	ck_assert_ptr_eq(fanq_msg_data(e1.msg), fanq_msg_data(e2.msg));
	ck_assert_ptr_ne(fanq_msg_data(e1.msg), buf);
	ck_assert_uint_eq(fanq_msg_len(e1.msg), strlen("shared payload"));
	ck_assert_mem_eq(fanq_msg_data(e1.msg), "shared payload", 14);
	ck_assert_uint_eq(fanq_msg_priority(e1.msg), 3);
	fanq_msg_release(e1.msg);
	/* still readable through the second reference */
	ck_assert_mem_eq(fanq_msg_data(e2.msg), "shared payload", 14);
	fanq_msg_release(e2.msg);
	tu_sub_close(s1);
	tu_sub_close(s2);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/* A reference taken with fanq_msg_ref() outlives the subscriber. */
START_TEST(test_msg_ref_outlives_sub)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish(ch, "kept", 0);
	fanq_entry e = tu_pop(sub);
	fanq_msg_ref(e.msg);
	fanq_msg_release(e.msg);
	tu_sub_close(sub);
	ck_assert_uint_eq(fanq_msg_len(e.msg), 4);
	ck_assert_mem_eq(fanq_msg_data(e.msg), "kept", 4);
	fanq_msg_release(e.msg);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_peek_then_pop_same_entry)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_entry peeked, again;

	ck_assert_int_eq(fanq_sub_peek(w.sub, &peeked), FANQ_EAGAIN);
	tu_publish(w.ch, "one", 0);
	tu_publish(w.ch, "two", 0);
	ck_assert_int_eq(fanq_sub_peek(w.sub, &peeked), 0);
	ck_assert_int_eq(fanq_sub_peek(w.sub, &again), 0);
	ck_assert_ptr_eq(peeked.msg, again.msg);
	ck_assert_uint_eq(tu_stats(w.sub).delivered, 0);
	fanq_entry e = tu_pop(w.sub);
	ck_assert_ptr_eq(e.msg, peeked.msg);
	ck_assert_uint_eq(e.seq, 1);
	fanq_msg_release(e.msg);
	tu_expect_msg(w.sub, "two");
	tu_one_close(&w);
}
END_TEST

START_TEST(test_pop_batch_returns_up_to_n)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_entry es[4];

	ck_assert_int_eq(fanq_sub_pop_batch(w.sub, es, 4), 0);
	for (unsigned i = 0; i < 6; i++)
		tu_publish(w.ch, "m", 0);
	ck_assert_int_eq(fanq_sub_pop_batch(w.sub, es, 4), 4);
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_uint_eq(es[i].seq, i + 1);
		fanq_msg_release(es[i].msg);
	}
	ck_assert_int_eq(fanq_sub_pop_batch(w.sub, es, 4), 2);
	ck_assert_uint_eq(es[0].seq, 5);
	ck_assert_uint_eq(es[1].seq, 6);
	fanq_msg_release(es[0].msg);
	fanq_msg_release(es[1].msg);
	ck_assert_int_eq(fanq_sub_pop_batch(w.sub, es, 4), 0);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).delivered, 6);
	tu_one_close(&w);
}
END_TEST

/* Drain sub into es (at most cap entries), n entries per pop_batch call. */
static unsigned drain_batched(fanq_sub *sub, fanq_entry *es, unsigned cap, size_t n)
{
	unsigned got = 0;
	int rc;

	while ((rc = fanq_sub_pop_batch(sub, es + got, n)) > 0) {
		ck_assert_int_le(rc, n);
		got += (unsigned)rc;
		ck_assert_uint_le(got + n, cap);
	}
	ck_assert_int_eq(rc, 0);
	return got;
}

/*
 * The batch path (one CAS per run of ready slots, a GAP needing a slot of
 * its own in the caller's array) hands out exactly what single pops do,
 * whatever the array size, with drops on two channels interleaved.
 */
START_TEST(test_pop_batch_same_entries_as_pop)
{
	static const enum fanq_policy_kind kinds[] = { FANQ_DROP_NEW, FANQ_DROP_OLDEST,
						       FANQ_PRIORITY };
	static const size_t sizes[] = { 1, 2, 3, 5, 64 };
	enum fanq_policy_kind kind = kinds[_i];
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch[2] = { tu_channel_open(bus, "a"), tu_channel_open(bus, "b") };
	fanq_sub *one = tu_sub_new(bus, kind, 5, TU_BIG_BYTES);
	fanq_sub *batch = tu_sub_new(bus, kind, 5, TU_BIG_BYTES);
	fanq_entry want[64], got[128];
	unsigned round, i, nw, ng;

	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(fanq_subscribe(one, ch[i]), 0);
		ck_assert_int_eq(fanq_subscribe(batch, ch[i]), 0);
	}
	for (round = 0; round < 5 * (sizeof(sizes) / sizeof(sizes[0])); round++) {
		/* 9 publishes into room for 5: drops on both channels */
		for (i = 0; i < 9; i++)
			tu_publish(ch[(i * 7 + round) % 3 == 0], "m",
				   kind == FANQ_PRIORITY ? (i + round) % FANQ_PRIO_LEVELS : 0);
		for (nw = 0; fanq_sub_pop(one, &want[nw]) == 0; nw++)
			ck_assert_uint_lt(nw, 63);
		ng = drain_batched(batch, got, 128, sizes[round % 5]);
		ck_assert_uint_eq(ng, nw);
		for (i = 0; i < nw; i++) {
			ck_assert_int_eq(got[i].kind, want[i].kind);
			ck_assert_ptr_eq(got[i].ch, want[i].ch);
			if (want[i].kind == FANQ_ENTRY_MSG) {
				ck_assert_uint_eq(got[i].seq, want[i].seq);
				ck_assert_ptr_eq(got[i].msg, want[i].msg);
				fanq_msg_release(want[i].msg);
				fanq_msg_release(got[i].msg);
			} else {
				ck_assert_uint_eq(got[i].gap_first, want[i].gap_first);
				ck_assert_uint_eq(got[i].gap_last, want[i].gap_last);
				ck_assert_uint_eq(got[i].gap_count, want[i].gap_count);
			}
		}
	}
	tu_assert_balanced(one);
	tu_assert_balanced(batch);
	tu_sub_close(one);
	tu_sub_close(batch);
	fanq_channel_release(ch[0]);
	fanq_channel_release(ch[1]);
	tu_bus_close(bus);
}
END_TEST

/* 1..6 into room for 3: 1..3 evicted, one GAP, then 4 5 6. */
START_TEST(test_gap_after_drop_oldest)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 3, TU_BIG_BYTES);
	fanq_entry e;

	for (unsigned i = 0; i < 6; i++)
		tu_publish(w.ch, "m", 0);
	tu_expect_gap(w.sub, w.ch, 1, 3, 3);
	tu_expect_seq(w.sub, w.ch, 4);
	tu_expect_seq(w.sub, w.ch, 5);
	tu_expect_seq(w.sub, w.ch, 6);
	ck_assert_int_eq(fanq_sub_pop(w.sub, &e), FANQ_EAGAIN);
	tu_one_close(&w);
}
END_TEST

/* A hole in the middle: 1 delivered, 2..3 evicted later, 4 5 kept. */
START_TEST(test_gap_after_drop_oldest_mid_stream)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 3, TU_BIG_BYTES);

	for (unsigned i = 0; i < 3; i++)
		tu_publish(w.ch, "m", 0);
	tu_expect_seq(w.sub, w.ch, 1);
	tu_publish(w.ch, "m", 0);
	tu_publish(w.ch, "m", 0);
	tu_publish(w.ch, "m", 0);
	tu_expect_gap(w.sub, w.ch, 2, 3, 2);
	tu_expect_seq(w.sub, w.ch, 4);
	tu_expect_seq(w.sub, w.ch, 5);
	tu_expect_seq(w.sub, w.ch, 6);
	tu_one_close(&w);
}
END_TEST

/* 1..5 into room for 2: 3..5 rejected; the GAP precedes 6. */
START_TEST(test_gap_after_drop_new)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 2, TU_BIG_BYTES);
	fanq_entry e;

	for (unsigned i = 0; i < 5; i++)
		tu_publish(w.ch, "m", 0);
	tu_expect_seq(w.sub, w.ch, 1);
	tu_expect_seq(w.sub, w.ch, 2);
	tu_publish(w.ch, "m", 0);
	tu_expect_gap(w.sub, w.ch, 3, 5, 3);
	tu_expect_seq(w.sub, w.ch, 6);
	ck_assert_int_eq(fanq_sub_pop(w.sub, &e), FANQ_EAGAIN);
	tu_one_close(&w);
}
END_TEST

/*
 * The README's priority example, limit 3: 1(0) 2(3) 3(0) queued, 4(1)
 * evicts 1, 5(0) evicts 3.  Level 0 lost two messages: its GAP spans
 * 1..4 with count 2, before 5; levels 3 and 1 lost none.
 */
START_TEST(test_gap_after_priority_eviction)
{
	struct tu_one w = tu_one_new(FANQ_PRIORITY, 3, TU_BIG_BYTES);
	const unsigned prio[] = {0, 3, 0, 1, 0};

	for (unsigned i = 0; i < 5; i++)
		tu_publish(w.ch, "m", prio[i]);
	tu_expect_seq(w.sub, w.ch, 2);
	tu_expect_seq(w.sub, w.ch, 4);
	tu_expect_gap(w.sub, w.ch, 1, 4, 2);
	tu_expect_seq(w.sub, w.ch, 5);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).dropped[FANQ_DROP_EVICTED_PRIORITY], 2);
	tu_one_close(&w);
}
END_TEST

/* Each channel's GAP precedes that channel's next message and names it. */
START_TEST(test_gap_per_channel)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *a = tu_channel_open(bus, "a");
	fanq_channel *b = tu_channel_open(bus, "b");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_OLDEST, 2, TU_BIG_BYTES);
	int gap_seen[2] = {0, 0};
	int msg_seen[2] = {0, 0};
	fanq_entry e;

	ck_assert_int_eq(fanq_subscribe(sub, a), 0);
	ck_assert_int_eq(fanq_subscribe(sub, b), 0);
	tu_publish(a, "a1", 0);
	tu_publish(b, "b1", 0);
	tu_publish(a, "a2", 0); /* evicts a1 */
	tu_publish(b, "b2", 0); /* evicts b1 */
	for (unsigned i = 0; i < 4; i++) {
		e = tu_pop(sub);
		int c = e.ch == b;

		ck_assert(e.ch == a || e.ch == b);
		if (e.kind == FANQ_ENTRY_GAP) {
			ck_assert_msg(!msg_seen[c], "GAP after the message");
			ck_assert_uint_eq(e.gap_first, 1);
			ck_assert_uint_eq(e.gap_last, 1);
			ck_assert_uint_eq(e.gap_count, 1);
			gap_seen[c]++;
		} else {
			ck_assert_msg(gap_seen[c] == 1, "message before its GAP");
			ck_assert_uint_eq(e.seq, 2);
			msg_seen[c]++;
			fanq_msg_release(e.msg);
		}
	}
	ck_assert_int_eq(fanq_sub_pop(sub, &e), FANQ_EAGAIN);
	tu_sub_close(sub);
	fanq_channel_release(a);
	fanq_channel_release(b);
	tu_bus_close(bus);
}
END_TEST

/* Only the subscriber that dropped sees a GAP. */
START_TEST(test_gap_only_for_subscriber_that_dropped)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_sub *fast = tu_sub_new(bus, FANQ_DROP_OLDEST, 100, TU_BIG_BYTES);
	fanq_sub *slow = tu_sub_new(bus, FANQ_DROP_OLDEST, 2, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_subscribe(fast, ch), 0);
	ck_assert_int_eq(fanq_subscribe(slow, ch), 0);
	for (unsigned i = 0; i < 5; i++)
		tu_publish(ch, "m", 0);
	for (uint64_t s = 1; s <= 5; s++)
		tu_expect_seq(fast, ch, s);
	tu_expect_gap(slow, ch, 1, 3, 3);
	tu_expect_seq(slow, ch, 4);
	tu_expect_seq(slow, ch, 5);
	tu_sub_close(fast);
	tu_sub_close(slow);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/*
 * Messages dropped before an unsubscribe, reported after resubscribing
 * with nothing consumed in between: the GAP spans from the first
 * subscription's first seq (found by fuzz_api: it started at the second
 * subscription's, after the hole).
 */
START_TEST(test_gap_across_resubscribe)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 1, TU_BIG_BYTES);

	tu_publish(w.ch, "1", 0);
	tu_publish(w.ch, "2", 0); /* evicts 1 */
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	tu_publish(w.ch, "3", 0); /* not offered */
	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	tu_publish(w.ch, "4", 0); /* evicts 2 */
	tu_expect_gap(w.sub, w.ch, 1, 3, 2);
	tu_expect_seq(w.sub, w.ch, 4);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).dropped[FANQ_DROP_EVICTED_OLDEST], 2);
	tu_one_close(&w);
}
END_TEST

/*
 * A fan-out thread held up (here: inside a custom policy's lane_of) while
 * another thread publishes: the handed-over publishes stop at
 * FANQ_CHANNEL_BACKLOG_MAX (plus one per racing thread) and the next one
 * is refused with FANQ_EAGAIN, counted in the channel's stats; once the
 * fan-out thread goes on, every accepted publish is fanned out.
 */
struct held_fanout {
	sem_t entered, go;
	atomic_int calls;
	fanq_channel *ch;
};

static unsigned held_lane_of(void *arg, const fanq_msg *m)
{
	struct held_fanout *h = arg;

	(void)m;
	if (atomic_fetch_add(&h->calls, 1) == 0) {
		sem_post(&h->entered);
		sem_wait(&h->go);
	}
	return 0;
}

static int held_on_full(void *arg, const fanq_queue_view *q, const fanq_msg *in)
{
	(void)arg;
	(void)q;
	(void)in;
	return -1; /* not reached: the queue is far from full */
}

static void *held_publisher(void *arg)
{
	struct held_fanout *h = arg;

	fanq_publish(h->ch, "first", 5, 0, NULL); /* fans out, held in lane_of */
	return NULL;
}

START_TEST(test_publish_refused_when_backlog_full)
{
	static struct held_fanout h;
	fanq_bus *bus = tu_bus_new();
	fanq_policy pol = { .name = "held", .levels = 2, .lane_of = held_lane_of,
			    .on_full = held_on_full, .arg = &h };
	fanq_sub *sub = NULL;
	fanq_channel_stats st;
	pthread_t th;
	unsigned accepted = 0;
	int rc;

	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(sem_init(&h.entered, 0, 0), 0);
	ck_assert_int_eq(sem_init(&h.go, 0, 0), 0);
	h.ch = tu_channel_open(bus, "busy");
	ck_assert_int_eq(fanq_sub_new(bus, &sub), 0);
	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, &pol), 0);
	ck_assert_int_eq(fanq_sub_set_limits(sub, FANQ_QUEUE_MSGS_MAX, 1u << 30), 0);
	ck_assert_int_eq(fanq_subscribe(sub, h.ch), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, held_publisher, &h), 0);
	sem_wait(&h.entered);
	while ((rc = fanq_publish(h.ch, "x", 1, 0, NULL)) == 0)
		ck_assert_uint_le(++accepted, FANQ_CHANNEL_BACKLOG_MAX);
	ck_assert_int_eq(rc, FANQ_EAGAIN);
	/* the held publish counts too: it is applied, not yet given back */
	ck_assert_uint_eq(accepted, FANQ_CHANNEL_BACKLOG_MAX - 1);
	ck_assert_int_eq(fanq_channel_stats_get(h.ch, &st), 0);
	ck_assert_uint_eq(st.refused, 1);
	ck_assert_uint_eq(st.backlog, FANQ_CHANNEL_BACKLOG_MAX);
	sem_post(&h.go);
	pthread_join(th, NULL);
	ck_assert_int_eq(fanq_channel_stats_get(h.ch, &st), 0);
	ck_assert_uint_eq(st.backlog, 0);
	ck_assert_uint_eq(st.published, accepted + 1);
	ck_assert_uint_eq(tu_drain(sub), accepted + 1);
	tu_assert_balanced(sub);
	tu_sub_close(sub);
	fanq_channel_release(h.ch);
	tu_bus_close(bus);
	sem_destroy(&h.entered);
	sem_destroy(&h.go);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("channel");
	TCase *tc = tu_tcase(s, "channel");

	tcase_add_test(tc, test_open_same_name_same_channel);
	tcase_add_test(tc, test_seq_starts_at_one_and_increases);
	tcase_add_test(tc, test_subscribe_unsubscribe);
	tcase_add_test(tc, test_multiple_channels_per_sub);
	tc = tu_tcase(s, "messages");
	tcase_add_test(tc, test_message_shared_zero_copy);
	tcase_add_test(tc, test_msg_ref_outlives_sub);
	tcase_add_test(tc, test_peek_then_pop_same_entry);
	tcase_add_test(tc, test_pop_batch_returns_up_to_n);
	tcase_add_loop_test(tc, test_pop_batch_same_entries_as_pop, 0, 3);
	tcase_add_test(tc, test_publish_refused_when_backlog_full);
	tc = tu_tcase(s, "gaps");
	tcase_add_test(tc, test_gap_after_drop_oldest);
	tcase_add_test(tc, test_gap_after_drop_oldest_mid_stream);
	tcase_add_test(tc, test_gap_after_drop_new);
	tcase_add_test(tc, test_gap_after_priority_eviction);
	tcase_add_test(tc, test_gap_per_channel);
	tcase_add_test(tc, test_gap_only_for_subscriber_that_dropped);
	tcase_add_test(tc, test_gap_across_resubscribe);
	return s;
}
