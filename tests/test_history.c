/*
 * History and resume: a channel's bounded history (count, bytes, age),
 * read while publishers evict from it, and fanq_subscribe_after():
 * replay then live, exactly once and in order even while publishers run,
 * with a GAP entry (and FANQ_ERANGE) when the history falls short.
 *
 * The threaded tests report from their worker threads by recording the
 * first failure (see tests/test_stress.c); the test thread asserts.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define BIG_QUEUE (1u << 20)

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

/* Publish n messages whose payload is the seq they will get (one thread). */
static void publish_seqs(fanq_channel *ch, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t seq = fanq_channel_last_seq(ch) + 1;

		ck_assert_uint_eq(tu_publish_buf(ch, &seq, sizeof(seq), 0).seq, seq);
	}
}

/* The history holds exactly first..last (payloads from publish_seqs()). */
static void expect_history(fanq_channel *ch, uint64_t first, uint64_t last)
{
	fanq_msg *out[64];
	int n = fanq_channel_history_read(ch, 0, out, 64);

	ck_assert_int_ge(n, 0);
	ck_assert_uint_eq((uint64_t)n, last + 1 - first);
	for (int i = 0; i < n; i++) {
		uint64_t payload;

		ck_assert_uint_eq(fanq_msg_seq(out[i]), first + (uint64_t)i);
		memcpy(&payload, fanq_msg_data(out[i]), sizeof(payload));
		ck_assert_uint_eq(payload, first + (uint64_t)i);
		fanq_msg_release(out[i]);
	}
}

static void expect_seqs(fanq_sub *sub, const fanq_channel *ch, uint64_t first,
			uint64_t last)
{
	for (uint64_t s = first; s <= last; s++)
		tu_expect_seq(sub, ch, s);
}

static void expect_empty(fanq_sub *sub)
{
	fanq_entry e;

	ck_assert_int_eq(fanq_sub_pop(sub, &e), FANQ_EAGAIN);
}

/* A bus and channel "ch" with a history, and a subscriber not yet joined. */
static struct tu_one history_new(uint64_t max_msgs, uint64_t max_bytes,
				 uint64_t max_age_ms, enum fanq_policy_kind kind,
				 uint64_t queue_msgs)
{
	struct tu_one w;

	w.bus = tu_bus_new();
	w.ch = tu_channel_open(w.bus, "ch");
	ck_assert_int_eq(fanq_channel_set_history(w.ch, max_msgs, max_bytes,
						  max_age_ms), 0);
	w.sub = tu_sub_new(w.bus, kind, queue_msgs, TU_BIG_BYTES);
	return w;
}

static int resume(struct tu_one *w, uint64_t after, fanq_resume_result *res)
{
	memset(res, 0xa5, sizeof(*res));
	return fanq_subscribe_after(w->sub, w->ch, after, res);
}

/* ------------------------------------------------------------ history */

START_TEST(test_history_off_until_set)
{
	struct tu_one w = history_new(0, 0, 0, FANQ_DROP_NEW, 10);
	fanq_msg *out[4];

	publish_seqs(w.ch, 3);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, out, 4), 0);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 10, 0, 0), 0);
	publish_seqs(w.ch, 2); /* held from the next publish on */
	expect_history(w.ch, 4, 5);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_history_keeps_last_max_msgs)
{
	struct tu_one w = history_new(5, 0, 0, FANQ_DROP_NEW, 10);
	fanq_msg *out[4];

	publish_seqs(w.ch, 12);
	expect_history(w.ch, 8, 12);
	/* after_seq and n select part of it */
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 9, out, 2), 2);
	ck_assert_uint_eq(fanq_msg_seq(out[0]), 10);
	ck_assert_uint_eq(fanq_msg_seq(out[1]), 11);
	fanq_msg_release(out[0]);
	fanq_msg_release(out[1]);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 12, out, 4), 0);
	tu_one_close(&w);
}
END_TEST

/* 8-byte payloads, 20 bytes allowed: the newest two stay. */
START_TEST(test_history_keeps_last_max_bytes)
{
	struct tu_one w = history_new(100, 20, 0, FANQ_DROP_NEW, 10);
	char big[21];

	publish_seqs(w.ch, 5);
	expect_history(w.ch, 4, 5);
	/* a message over max_bytes empties it: it restarts after that one */
	memset(big, 'b', sizeof(big));
	tu_publish_buf(w.ch, big, sizeof(big), 0);
	expect_history(w.ch, 7, 6);
	publish_seqs(w.ch, 1);
	expect_history(w.ch, 7, 7);
	tu_one_close(&w);
}
END_TEST

/* Readers never see expired messages; the next publish releases them. */
START_TEST(test_history_drops_expired)
{
	struct tu_one w = history_new(100, 0, 200, FANQ_DROP_NEW, 10);

	publish_seqs(w.ch, 3);
	expect_history(w.ch, 1, 3);
	sleep_ms(450);
	expect_history(w.ch, 4, 3);
	publish_seqs(w.ch, 2);
	expect_history(w.ch, 4, 5);
	tu_one_close(&w);
}
END_TEST

/* The history holds the very message subscribers get: no copy. */
START_TEST(test_history_shares_payload)
{
	struct tu_one w = history_new(10, 0, 0, FANQ_DROP_NEW, 10);
	fanq_msg *out[1];
	fanq_entry e;

	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	tu_publish(w.ch, "shared", 0);
	e = tu_pop_msg(w.sub);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, out, 1), 1);
	ck_assert_ptr_eq(out[0], e.msg);
	fanq_msg_release(out[0]);
	fanq_msg_release(e.msg);
	tu_one_close(&w);
}
END_TEST

/* New limits apply at once; off releases everything; on starts empty. */
START_TEST(test_history_limits_change_at_run_time)
{
	struct tu_one w = history_new(100, 0, 0, FANQ_DROP_NEW, 10);

	publish_seqs(w.ch, 40); /* grows its array past the first 16 slots */
	expect_history(w.ch, 1, 40);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 10, 0, 0), 0);
	expect_history(w.ch, 31, 40);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 10, 24, 0), 0);
	expect_history(w.ch, 38, 40);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 0, 0, 0), 0);
	expect_history(w.ch, 41, 40);
	publish_seqs(w.ch, 2);
	expect_history(w.ch, 43, 42);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 1000, 0, 0), 0);
	publish_seqs(w.ch, 1);
	expect_history(w.ch, 43, 43);
	tu_one_close(&w);
}
END_TEST

/* ------------------------------------------------------------- resume */

START_TEST(test_resume_replays_then_live)
{
	struct tu_one w = history_new(100, 0, 0, FANQ_DROP_NEW, 100);
	fanq_resume_result res;

	publish_seqs(w.ch, 10);
	ck_assert_int_eq(resume(&w, 4, &res), 0);
	ck_assert_int_eq(res.deferred, 0);
	ck_assert_uint_eq(res.replayed, 6);
	ck_assert_uint_eq(res.gap_first, 0);
	ck_assert_uint_eq(res.gap_last, 0);
	expect_seqs(w.sub, w.ch, 5, 10);
	expect_empty(w.sub);
	publish_seqs(w.ch, 2);
	expect_seqs(w.sub, w.ch, 11, 12);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).enqueued, 8);
	tu_one_close(&w);
}
END_TEST

/* History holds 8..12; the sub saw 3: GAP 4..7, then 8..12. */
START_TEST(test_resume_too_far_back)
{
	struct tu_one w = history_new(5, 0, 0, FANQ_DROP_NEW, 100);
	fanq_resume_result res;

	publish_seqs(w.ch, 12);
	ck_assert_int_eq(resume(&w, 3, &res), FANQ_ERANGE);
	ck_assert_int_eq(res.deferred, 0);
	ck_assert_uint_eq(res.gap_first, 4);
	ck_assert_uint_eq(res.gap_last, 7);
	ck_assert_uint_eq(res.replayed, 5);
	tu_expect_gap(w.sub, w.ch, 4, 7, 4);
	expect_seqs(w.sub, w.ch, 8, 12);
	publish_seqs(w.ch, 1);
	tu_expect_seq(w.sub, w.ch, 13);
	expect_empty(w.sub);
	/* the GAP is no message: it counts nowhere */
	ck_assert_uint_eq(tu_assert_balanced(w.sub).enqueued, 6);
	tu_one_close(&w);
}
END_TEST

/* Without history the GAP comes at once, alone, and wakes the group. */
START_TEST(test_resume_without_history_reports_gap_alone)
{
	struct tu_one w = history_new(0, 0, 0, FANQ_DROP_NEW, 100);
	fanq_group *g;
	fanq_sub *ready;
	fanq_resume_result res;

	ck_assert_int_eq(fanq_group_new(w.bus, &g), 0);
	ck_assert_int_eq(fanq_group_attach(g, w.sub), 0);
	publish_seqs(w.ch, 5);
	ck_assert_int_eq(resume(&w, 2, &res), FANQ_ERANGE);
	ck_assert_uint_eq(res.gap_first, 3);
	ck_assert_uint_eq(res.gap_last, 5);
	ck_assert_uint_eq(res.replayed, 0);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), 0);
	ck_assert_ptr_eq(ready, w.sub);
	tu_expect_gap(w.sub, w.ch, 3, 5, 3);
	expect_empty(w.sub);
	publish_seqs(w.ch, 1);
	tu_expect_seq(w.sub, w.ch, 6);
	tu_sub_close(w.sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(w.ch);
	tu_bus_close(w.bus);
}
END_TEST

START_TEST(test_resume_from_expired_history)
{
	struct tu_one w = history_new(100, 0, 100, FANQ_DROP_NEW, 100);
	fanq_resume_result res;

	publish_seqs(w.ch, 3);
	sleep_ms(300);
	ck_assert_int_eq(resume(&w, 0, &res), FANQ_ERANGE);
	ck_assert_uint_eq(res.gap_first, 1);
	ck_assert_uint_eq(res.gap_last, 3);
	tu_expect_gap(w.sub, w.ch, 1, 3, 3);
	expect_empty(w.sub);
	tu_one_close(&w);
}
END_TEST

/* At or past the channel's last seq: live, nothing replayed, no GAP. */
START_TEST(test_resume_at_or_ahead_of_channel_is_live)
{
	struct tu_one w = history_new(100, 0, 0, FANQ_DROP_NEW, 100);
	fanq_resume_result res;

	publish_seqs(w.ch, 5);
	ck_assert_int_eq(resume(&w, 5, &res), 0);
	ck_assert_uint_eq(res.replayed, 0);
	expect_empty(w.sub);
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	ck_assert_int_eq(resume(&w, 1000, &res), 0);
	ck_assert_uint_eq(res.replayed, 0);
	ck_assert_uint_eq(res.gap_last, 0);
	publish_seqs(w.ch, 1);
	tu_expect_seq(w.sub, w.ch, 6);
	expect_empty(w.sub);
	tu_one_close(&w);
}
END_TEST

/*
 * A subscriber that left after seq 3 comes back: the replay continues
 * its link's numbering, and a shortfall is reported for its own range
 * (not from where it left off).
 */
START_TEST(test_resume_after_unsubscribe)
{
	struct tu_one w = history_new(2, 0, 0, FANQ_DROP_NEW, 100);
	fanq_resume_result res;

	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	publish_seqs(w.ch, 3);
	expect_seqs(w.sub, w.ch, 1, 3);
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	publish_seqs(w.ch, 5); /* 4..8; the history keeps 7, 8 */
	ck_assert_int_eq(resume(&w, 5, &res), FANQ_ERANGE);
	tu_expect_gap(w.sub, w.ch, 6, 6, 1);
	expect_seqs(w.sub, w.ch, 7, 8);
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	ck_assert_int_eq(resume(&w, 7, &res), 0);
	tu_expect_seq(w.sub, w.ch, 8); /* replayed again: asked for */
	expect_empty(w.sub);
	tu_one_close(&w);
}
END_TEST

/*
 * Regression (fuzz_api): seq 1 was dropped before the consumer took
 * anything of the channel; a resume after 1 must not move the GAP's
 * start past it (it reported 2..1).
 */
START_TEST(test_resume_keeps_earlier_unreported_drops)
{
	struct tu_one w = history_new(2, 0, 0, FANQ_DROP_NEW, 100);
	char big[64];

	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(fanq_sub_set_limits(w.sub, 100, 10), 0);
	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	tu_publish_buf(w.ch, big, sizeof(big), 0); /* seq 1: too big, dropped */
	ck_assert_int_eq(fanq_unsubscribe(w.sub, w.ch), 0);
	ck_assert_int_eq(fanq_subscribe_after(w.sub, w.ch, 1, NULL), 0);
	publish_seqs(w.ch, 1);
	tu_expect_gap(w.sub, w.ch, 1, 1, 1);
	tu_expect_seq(w.sub, w.ch, 2);
	expect_empty(w.sub);
	tu_one_close(&w);
}
END_TEST

/*
 * The replay obeys the subscriber's queue: drop-new keeps 6, 7 of
 * 6..10, and the rejected ones show as a GAP before the next message.
 */
START_TEST(test_resume_replay_into_small_drop_new_queue)
{
	struct tu_one w = history_new(5, 0, 0, FANQ_DROP_NEW, 2);
	fanq_resume_result res;

	publish_seqs(w.ch, 10);
	ck_assert_int_eq(resume(&w, 2, &res), FANQ_ERANGE);
	ck_assert_uint_eq(res.replayed, 5);
	tu_expect_gap(w.sub, w.ch, 3, 5, 3);
	expect_seqs(w.sub, w.ch, 6, 7);
	publish_seqs(w.ch, 1);
	tu_expect_gap(w.sub, w.ch, 8, 10, 3);
	tu_expect_seq(w.sub, w.ch, 11);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).dropped[FANQ_DROP_FULL_NEW], 3);
	tu_one_close(&w);
}
END_TEST

/* Drop-oldest evicts the gap marker too: one GAP covers both holes. */
START_TEST(test_resume_replay_into_small_drop_oldest_queue)
{
	struct tu_one w = history_new(5, 0, 0, FANQ_DROP_OLDEST, 2);
	fanq_resume_result res;

	publish_seqs(w.ch, 10);
	ck_assert_int_eq(resume(&w, 2, &res), FANQ_ERANGE);
	tu_expect_gap(w.sub, w.ch, 3, 8, 6);
	expect_seqs(w.sub, w.ch, 9, 10);
	expect_empty(w.sub);
	ck_assert_uint_eq(tu_assert_balanced(w.sub)
				  .dropped[FANQ_DROP_EVICTED_OLDEST], 3);
	tu_one_close(&w);
}
END_TEST

/* Priority lanes: the GAP is served first, from the highest lane. */
START_TEST(test_resume_priority_gap_first)
{
	struct tu_one w = history_new(2, 0, 0, FANQ_PRIORITY, 100);
	fanq_resume_result res;

	for (unsigned i = 0; i < 4; i++)
		tu_publish(w.ch, "m", i % 2 ? 3 : 0);
	ck_assert_int_eq(resume(&w, 0, &res), FANQ_ERANGE);
	tu_expect_gap(w.sub, w.ch, 1, 2, 2);
	tu_expect_seq(w.sub, w.ch, 4); /* level 3 before level 0 */
	tu_expect_seq(w.sub, w.ch, 3);
	expect_empty(w.sub);
	tu_one_close(&w);
}
END_TEST

/* A subscriber closed with the marker still queued releases it. */
START_TEST(test_resume_close_with_gap_queued)
{
	struct tu_one w = history_new(2, 0, 0, FANQ_DROP_NEW, 100);
	fanq_resume_result res;

	publish_seqs(w.ch, 6);
	ck_assert_int_eq(resume(&w, 0, &res), FANQ_ERANGE);
	fanq_sub_stats st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.queued_msgs, 2);
	tu_one_close(&w);
}
END_TEST

/* ------------------------------------------------------------ threads */

static struct tu_failure fail;

#define RACE_PUBLISHERS 2
#define RACE_PER_PUBLISHER 20000
#define RACE_SUBS 24
/* per publisher; RACE_PUBLISHERS times it fits BIG_QUEUE and RACE_BYTES */
#define RACE_PUBLISH_MAX (20 * RACE_PER_PUBLISHER)
#define RACE_BYTES (64u << 20)

struct race {
	fanq_channel *ch;
	atomic_int subscribing; /* publishers go on at least until it is 0 */
};

static void *race_publisher(void *arg)
{
	struct race *r = arg;

	for (unsigned i = 0; !atomic_load(&fail.failed); i++) {
		if (i >= RACE_PER_PUBLISHER && !atomic_load(&r->subscribing))
			break;
		if (i >= RACE_PUBLISH_MAX)
			break; /* a slow build: stay under the queues' limits */
		if (tu_publish_retry(r->ch, &i, sizeof(i), 0)) {
			tu_thread_fail(&fail, "publish failed");
			break;
		}
		if (i % 64 == 0)
			sched_yield();
	}
	return NULL;
}

/*
 * Subscribers resume at points just behind the channel while publishers
 * run.  Each then holds, in order, entries that tile after+1 .. last
 * exactly: a GAP only where the history fell short (at the start), and
 * every other seq once, as a message.
 */
static void resume_race(uint64_t history_msgs)
{
	fanq_bus *bus = tu_bus_new();
	struct race r = { .ch = tu_channel_open(bus, "race") };
	pthread_t th[RACE_PUBLISHERS];
	fanq_sub *subs[RACE_SUBS];
	uint64_t after[RACE_SUBS];
	fanq_resume_result res[RACE_SUBS];
	int rc[RACE_SUBS];
	unsigned gaps = 0, deferred = 0;
	uint64_t last;

	atomic_store(&fail.failed, 0);
	ck_assert_int_eq(fanq_channel_set_history(r.ch, history_msgs, 0, 0), 0);
	atomic_store(&r.subscribing, 1);
	for (int i = 0; i < RACE_PUBLISHERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_publisher, &r), 0);
	for (unsigned i = 0; i < RACE_SUBS; i++) {
		uint64_t now = fanq_channel_last_seq(r.ch);

		subs[i] = tu_sub_new(bus, FANQ_DROP_NEW, BIG_QUEUE, RACE_BYTES);
		after[i] = now > 100 ? now - (now * 7 + i) % 100 : 0;
		rc[i] = fanq_subscribe_after(subs[i], r.ch, after[i], &res[i]);
		usleep(300);
	}
	atomic_store(&r.subscribing, 0);
	for (int i = 0; i < RACE_PUBLISHERS; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);
	last = fanq_channel_last_seq(r.ch);
	ck_assert_uint_ge(last, RACE_PUBLISHERS * RACE_PER_PUBLISHER);
	for (unsigned i = 0; i < RACE_SUBS; i++) {
		uint64_t next = after[i] + 1;
		fanq_entry e;

		ck_assert(rc[i] == 0 || rc[i] == FANQ_ERANGE);
		deferred += res[i].deferred;
		while (fanq_sub_pop(subs[i], &e) == 0) {
			if (e.kind == FANQ_ENTRY_GAP) {
				ck_assert_msg(next == after[i] + 1 && e.gap_first == next,
					      "sub %u: GAP %" PRIu64 "..%" PRIu64
					      " where %" PRIu64 " was due", i,
					      e.gap_first, e.gap_last, next);
				ck_assert_uint_eq(e.gap_count, e.gap_last - e.gap_first + 1);
				if (rc[i] == FANQ_ERANGE) {
					ck_assert_uint_eq(e.gap_first, res[i].gap_first);
					ck_assert_uint_eq(e.gap_last, res[i].gap_last);
				}
				next = e.gap_last + 1;
				gaps++;
				continue;
			}
			ck_assert_msg(e.seq == next, "sub %u: seq %" PRIu64
				      " where %" PRIu64 " was due", i, e.seq, next);
			ck_assert_uint_eq(fanq_msg_seq(e.msg), e.seq);
			fanq_msg_release(e.msg);
			next++;
		}
		ck_assert_uint_eq(next, last + 1);
		if (rc[i] == FANQ_ERANGE)
			ck_assert_uint_eq(res[i].gap_first, after[i] + 1);
		tu_assert_balanced(subs[i]);
		tu_sub_close(subs[i]);
	}
	if (history_msgs >= last)
		ck_assert_uint_eq(gaps, 0);
	fprintf(stderr, "resume race (history %" PRIu64 "): %" PRIu64 " published, "
		"%u gaps, %u of %u resumes deferred\n", history_msgs, last, gaps,
		deferred, RACE_SUBS);
	fanq_channel_release(r.ch);
	tu_bus_close(bus);
}

START_TEST(test_resume_racing_publishers_exactly_once)
{
	resume_race(FANQ_HISTORY_MSGS_MAX);
}
END_TEST

START_TEST(test_resume_racing_publishers_short_history)
{
	resume_race(48);
}
END_TEST

#define EVICT_MS 1000
#define EVICT_READERS 2

struct evict {
	fanq_channel *ch;
	atomic_int stop;
	atomic_uint_fast64_t reads, msgs;
};

/* The only publisher: the payload is the seq the message gets. */
static void *evict_publisher(void *arg)
{
	struct evict *ev = arg;
	uint64_t seq = 0;

	while (!atomic_load(&ev->stop)) {
		seq++;
		if (tu_publish_retry(ev->ch, &seq, sizeof(seq), 0)) {
			tu_thread_fail(&fail, "publish failed");
			break;
		}
	}
	return NULL;
}

/* Limits shrink, grow, and the history goes off and on again. */
static void *evict_configurer(void *arg)
{
	static const uint64_t limits[][2] = {
		{ 64, 0 }, { 8, 0 }, { 1000, 0 }, { 0, 0 }, { 300, 100 },
		{ 1, 0 }, { 5000, 0 },
	};
	struct evict *ev = arg;

	for (unsigned i = 0; !atomic_load(&ev->stop); i++) {
		const uint64_t *l = limits[i % (sizeof(limits) / sizeof(limits[0]))];

		if (fanq_channel_set_history(ev->ch, l[0], l[1], 0)) {
			tu_thread_fail(&fail, "set_history failed");
			break;
		}
		usleep(2000);
	}
	return NULL;
}

/* Every read is a contiguous run of intact messages after the asked seq. */
static void *evict_reader(void *arg)
{
	struct evict *ev = arg;
	fanq_msg *out[256];

	while (!atomic_load(&ev->stop) && !atomic_load(&fail.failed)) {
		uint64_t last = fanq_channel_last_seq(ev->ch);
		uint64_t after = last > 200 ? last - 200 : 0;
		int n = fanq_channel_history_read(ev->ch, after, out, 256);

		if (n < 0) {
			tu_thread_fail(&fail, "history_read: %d", n);
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t seq = fanq_msg_seq(out[i]), payload;

			memcpy(&payload, fanq_msg_data(out[i]), sizeof(payload));
			if (payload != seq || seq <= after ||
			    (i && seq != fanq_msg_seq(out[i - 1]) + 1))
				tu_thread_fail(&fail, "read after %" PRIu64 ": entry %d seq %"
					    PRIu64 " payload %" PRIu64, after, i,
					    seq, payload);
		}
		for (int i = 0; i < n; i++)
			fanq_msg_release(out[i]);
		atomic_fetch_add(&ev->reads, 1);
		atomic_fetch_add(&ev->msgs, (uint64_t)n);
	}
	return NULL;
}

START_TEST(test_history_eviction_under_concurrent_readers)
{
	fanq_bus *bus = tu_bus_new();
	struct evict ev = { .ch = tu_channel_open(bus, "evict") };
	pthread_t pub, conf, readers[EVICT_READERS];

	atomic_store(&fail.failed, 0);
	ck_assert_int_eq(pthread_create(&pub, NULL, evict_publisher, &ev), 0);
	ck_assert_int_eq(pthread_create(&conf, NULL, evict_configurer, &ev), 0);
	for (int i = 0; i < EVICT_READERS; i++)
		ck_assert_int_eq(pthread_create(&readers[i], NULL, evict_reader, &ev), 0);
	sleep_ms(EVICT_MS);
	atomic_store(&ev.stop, 1);
	pthread_join(pub, NULL);
	pthread_join(conf, NULL);
	for (int i = 0; i < EVICT_READERS; i++)
		pthread_join(readers[i], NULL);
	ck_assert_msg(!atomic_load(&fail.failed), "%s", fail.msg);
	ck_assert_uint_gt(atomic_load(&ev.msgs), 0);
	fprintf(stderr, "eviction: %" PRIu64 " published, %" PRIuFAST64
		" reads, %" PRIuFAST64 " messages read\n",
		fanq_channel_last_seq(ev.ch), atomic_load(&ev.reads),
		atomic_load(&ev.msgs));
	fanq_channel_release(ev.ch);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tu_tcase(s, "history");

	tcase_add_test(tc, test_history_off_until_set);
	tcase_add_test(tc, test_history_keeps_last_max_msgs);
	tcase_add_test(tc, test_history_keeps_last_max_bytes);
	tcase_add_test(tc, test_history_drops_expired);
	tcase_add_test(tc, test_history_shares_payload);
	tcase_add_test(tc, test_history_limits_change_at_run_time);
	tc = tu_tcase(s, "resume");
	tcase_add_test(tc, test_resume_replays_then_live);
	tcase_add_test(tc, test_resume_too_far_back);
	tcase_add_test(tc, test_resume_without_history_reports_gap_alone);
	tcase_add_test(tc, test_resume_from_expired_history);
	tcase_add_test(tc, test_resume_at_or_ahead_of_channel_is_live);
	tcase_add_test(tc, test_resume_after_unsubscribe);
	tcase_add_test(tc, test_resume_keeps_earlier_unreported_drops);
	tcase_add_test(tc, test_resume_replay_into_small_drop_new_queue);
	tcase_add_test(tc, test_resume_replay_into_small_drop_oldest_queue);
	tcase_add_test(tc, test_resume_priority_gap_first);
	tcase_add_test(tc, test_resume_close_with_gap_queued);
	tc = tu_tcase(s, "threads");
	tcase_add_test(tc, test_resume_racing_publishers_exactly_once);
	tcase_add_test(tc, test_resume_racing_publishers_short_history);
	tcase_add_test(tc, test_history_eviction_under_concurrent_readers);
	return s;
}
