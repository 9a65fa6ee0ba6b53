/*
 * Helpers shared by fanq's Check suites.  Each tests/test_<concept>.c
 * defines fanq_test_suite(); tests/test_main.c runs it.
 *
 * Every test creates and destroys its own bus, channels and subscribers:
 * Check forks one child per test, and liburcu's call_rcu worker must not
 * be started in the parent before the fork (see DEPS-NOTES.md).
 *
 * The helpers assert with Check, so they may only run in the test's own
 * thread (tests/test_stress.c reports from its worker threads by itself).
 */
#ifndef FANQ_TEST_UTIL_H
#define FANQ_TEST_UTIL_H

#include <check.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "fanq.h"

/* Per-test timeout in seconds, generous for sanitizer builds. */
#define TU_TIMEOUT 30
#define TU_BIG_BYTES (1u << 20)

Suite *fanq_test_suite(void);

static inline fanq_bus *tu_bus_new(void)
{
	fanq_bus *bus = NULL;

	ck_assert_int_eq(fanq_bus_new(&bus), 0);
	ck_assert_ptr_nonnull(bus);
	return bus;
}

static inline fanq_channel *tu_channel_open(fanq_bus *bus, const char *name)
{
	fanq_channel *ch = NULL;

	ck_assert_int_eq(fanq_channel_open(bus, name, &ch), 0);
	ck_assert_ptr_nonnull(ch);
	return ch;
}

/* A subscriber with the given policy and limits. */
static inline fanq_sub *tu_sub_new(fanq_bus *bus, enum fanq_policy_kind kind,
				   uint64_t max_msgs, uint64_t max_bytes)
{
	fanq_sub *sub = NULL;

	ck_assert_int_eq(fanq_sub_new(bus, &sub), 0);
	ck_assert_ptr_nonnull(sub);
	ck_assert_int_eq(fanq_sub_set_limits(sub, max_msgs, max_bytes), 0);
	ck_assert_int_eq(fanq_sub_set_policy(sub, kind), 0);
	return sub;
}

/*
 * Publish len bytes from the test's only thread: nothing else fans out
 * the channel, so the publish is never deferred and res is exact.
 */
static inline fanq_publish_result tu_publish_buf(fanq_channel *ch,
						 const void *data, size_t len,
						 unsigned prio)
{
	fanq_publish_result res;

	memset(&res, 0xa5, sizeof(res));
	ck_assert_int_eq(fanq_publish(ch, data, len, prio, &res), 0);
	ck_assert_int_eq(res.deferred, 0);
	return res;
}

static inline fanq_publish_result tu_publish(fanq_channel *ch,
					     const char *text, unsigned prio)
{
	return tu_publish_buf(ch, text, strlen(text), prio);
}

/*
 * Publish from a worker thread, as a host does: a publish refused because
 * the channel's fan-out backlog is full (FANQ_EAGAIN) is retried after a
 * yield.  Returns fanq_publish()'s final code.  No Check asserts.
 */
static inline int tu_publish_retry(fanq_channel *ch, const void *data,
				   size_t len, unsigned prio)
{
	int rc;

	while ((rc = fanq_publish(ch, data, len, prio, NULL)) == FANQ_EAGAIN)
		sched_yield();
	return rc;
}

/* Publish len bytes of one repeated character. */
static inline fanq_publish_result tu_publish_len(fanq_channel *ch, size_t len,
						 char fill, unsigned prio)
{
	char buf[256];

	ck_assert_uint_le(len, sizeof(buf));
	memset(buf, fill, len);
	return tu_publish_buf(ch, buf, len, prio);
}

static inline fanq_entry tu_pop(fanq_sub *sub)
{
	fanq_entry e;

	ck_assert_int_eq(fanq_sub_pop(sub, &e), 0);
	return e;
}

/* Next message entry, skipping GAP entries; the caller releases e.msg. */
static inline fanq_entry tu_pop_msg(fanq_sub *sub)
{
	fanq_entry e = tu_pop(sub);

	while (e.kind == FANQ_ENTRY_GAP)
		e = tu_pop(sub);
	ck_assert_int_eq(e.kind, FANQ_ENTRY_MSG);
	ck_assert_ptr_nonnull(e.msg);
	return e;
}

/* The next message (GAP entries skipped) carries exactly text. */
static inline void tu_expect_msg(fanq_sub *sub, const char *text)
{
	fanq_entry e = tu_pop_msg(sub);
	size_t len = fanq_msg_len(e.msg);

	ck_assert_msg(len == strlen(text) &&
		      memcmp(fanq_msg_data(e.msg), text, len) == 0,
		      "expected message \"%s\", got %zu bytes \"%.*s\"", text,
		      len, (int)(len > 64 ? 64 : len),
		      (const char *)fanq_msg_data(e.msg));
	ck_assert_uint_eq(e.seq, fanq_msg_seq(e.msg));
	fanq_msg_release(e.msg);
}

/* The next entry is a GAP of ch: first..last, count messages. */
static inline void tu_expect_gap(fanq_sub *sub, const fanq_channel *ch,
				 uint64_t first, uint64_t last, uint64_t count)
{
	fanq_entry e = tu_pop(sub);

	ck_assert_msg(e.kind == FANQ_ENTRY_GAP,
		      "expected GAP %llu..%llu, got message seq %llu",
		      (unsigned long long)first, (unsigned long long)last,
		      (unsigned long long)e.seq);
	ck_assert_ptr_eq(e.ch, ch);
	ck_assert_uint_eq(e.gap_first, first);
	ck_assert_uint_eq(e.gap_last, last);
	ck_assert_uint_eq(e.gap_count, count);
}

/* The next entry is message seq of ch (released here). */
static inline void tu_expect_seq(fanq_sub *sub, const fanq_channel *ch,
				 uint64_t seq)
{
	fanq_entry e = tu_pop(sub);

	ck_assert_msg(e.kind == FANQ_ENTRY_MSG,
		      "expected message seq %llu, got GAP %llu..%llu",
		      (unsigned long long)seq, (unsigned long long)e.gap_first,
		      (unsigned long long)e.gap_last);
	ck_assert_ptr_eq(e.ch, ch);
	ck_assert_uint_eq(e.seq, seq);
	fanq_msg_release(e.msg);
}

/* No message is left (trailing GAP entries are allowed and consumed). */
static inline void tu_expect_no_msg(fanq_sub *sub)
{
	fanq_entry e;
	int rc;

	while ((rc = fanq_sub_pop(sub, &e)) == 0)
		ck_assert_msg(e.kind == FANQ_ENTRY_GAP,
			      "unexpected message seq %llu",
			      (unsigned long long)e.seq);
	ck_assert_int_eq(rc, FANQ_EAGAIN);
}

/* Pop and release everything; returns the number of messages. */
static inline uint64_t tu_drain(fanq_sub *sub)
{
	fanq_entry e;
	uint64_t msgs = 0;
	int rc;

	while ((rc = fanq_sub_pop(sub, &e)) == 0) {
		if (e.kind == FANQ_ENTRY_MSG) {
			fanq_msg_release(e.msg);
			msgs++;
		}
	}
	ck_assert_int_eq(rc, FANQ_EAGAIN);
	return msgs;
}

/* The common shape: a bus, one channel, one subscriber subscribed to it. */
struct tu_one {
	fanq_bus *bus;
	fanq_channel *ch;
	fanq_sub *sub;
};

static inline struct tu_one tu_one_new(enum fanq_policy_kind kind,
				       uint64_t max_msgs, uint64_t max_bytes)
{
	struct tu_one w;

	w.bus = tu_bus_new();
	w.ch = tu_channel_open(w.bus, "ch");
	w.sub = tu_sub_new(w.bus, kind, max_msgs, max_bytes);
	ck_assert_int_eq(fanq_subscribe(w.sub, w.ch), 0);
	return w;
}

static inline fanq_sub_stats tu_stats(const fanq_sub *sub)
{
	fanq_sub_stats st;

	ck_assert_int_eq(fanq_sub_stats_get(sub, &st), 0);
	return st;
}

static inline uint64_t tu_dropped_total(const fanq_sub_stats *st)
{
	uint64_t sum = 0;

	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		sum += st->dropped[r];
	return sum;
}

/* The header's invariant at a quiescent point; returns the snapshot. */
static inline fanq_sub_stats tu_assert_balanced(const fanq_sub *sub)
{
	fanq_sub_stats st = tu_stats(sub);

	ck_assert_msg(st.enqueued ==
			      st.delivered + tu_dropped_total(&st) + st.queued_msgs,
		      "enqueued %llu != delivered %llu + dropped %llu + queued %llu",
		      (unsigned long long)st.enqueued,
		      (unsigned long long)st.delivered,
		      (unsigned long long)tu_dropped_total(&st),
		      (unsigned long long)st.queued_msgs);
	return st;
}

static inline void tu_sub_close(fanq_sub *sub)
{
	ck_assert_int_eq(fanq_sub_close(sub), 0);
}

static inline void tu_bus_close(fanq_bus *bus)
{
	ck_assert_int_eq(fanq_bus_close(bus), 0);
}

static inline void tu_one_close(struct tu_one *w)
{
	tu_sub_close(w->sub);
	fanq_channel_release(w->ch);
	tu_bus_close(w->bus);
}

/* ------------------------------------------------------ worker threads */

/*
 * The first failure of a test's worker threads, which must not call
 * Check's asserts: tu_thread_fail() records it and raises *stop (when
 * set) so the others wind down; the test thread asserts
 * !atomic_load(&f->failed) with f->msg as the message.
 */
struct tu_failure {
	atomic_int failed;
	atomic_int *stop;
	char msg[512];
};

__attribute__((format(printf, 2, 3)))
static inline void tu_thread_fail(struct tu_failure *f, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&f->failed, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
		va_end(ap);
	}
	if (f->stop)
		atomic_store(f->stop, 1);
}

/* ------------------------------------------------ monitoring and health */

#define TU_MS 1000000ull       /* nanoseconds */
#define TU_SEC 1000000000ull

/* A fake clock the test moves by hand; tests are single-threaded. */
struct tu_clock {
	uint64_t ns;
};

static inline uint64_t tu_clock_read(void *arg)
{
	return ((struct tu_clock *)arg)->ns;
}

/* Every log line, kept whole; counted per event. */
#define TU_LOG_MAX 64

struct tu_log {
	int lines;
	int by_event[FANQ_LOG_QUEUE_LOW + 1];
	char line[TU_LOG_MAX][512];
	fanq_log_record rec[TU_LOG_MAX]; /* strings not valid after the call */
};

static inline void tu_log_capture(void *arg, const fanq_log_record *r)
{
	struct tu_log *l = arg;

	if (l->lines < TU_LOG_MAX) {
		snprintf(l->line[l->lines], sizeof(l->line[0]), "%s", r->line);
		l->rec[l->lines] = *r;
	}
	l->lines++;
	l->by_event[r->event]++;
}

/* The last line logged (asserts there is one). */
static inline const char *tu_log_last(const struct tu_log *l)
{
	ck_assert_int_gt(l->lines, 0);
	ck_assert_int_le(l->lines, TU_LOG_MAX);
	return l->line[l->lines - 1];
}

/* Index of the last record of event ev (asserts there is one). */
static inline int tu_log_last_idx(const struct tu_log *l, enum fanq_log_event ev)
{
	int i = (l->lines < TU_LOG_MAX ? l->lines : TU_LOG_MAX) - 1;

	while (i >= 0 && l->rec[i].event != ev)
		i--;
	ck_assert_msg(i >= 0, "no log line of event %d", ev);
	return i;
}

static inline const char *tu_log_last_of(const struct tu_log *l,
					 enum fanq_log_event ev)
{
	return l->line[tu_log_last_idx(l, ev)];
}

struct tu_events {
	int n;
	int by_kind[FANQ_EVENT_EVICTED + 1];
	fanq_event last;
};

static inline void tu_event_capture(void *arg, const fanq_event *ev)
{
	struct tu_events *e = arg;

	e->n++;
	e->by_kind[ev->kind]++;
	e->last = *ev;
}

/* A bus on a fake clock starting at 1 s, logging and events captured. */
struct tu_watch {
	fanq_bus *bus;
	struct tu_clock clock;
	struct tu_log log;
	struct tu_events events;
};

static inline void tu_watch_init(struct tu_watch *w)
{
	memset(w, 0, sizeof(*w));
	w->clock.ns = TU_SEC;
	w->bus = tu_bus_new();
	ck_assert_int_eq(fanq_bus_set_clock(w->bus, tu_clock_read, &w->clock), 0);
	ck_assert_int_eq(fanq_bus_set_log(w->bus, tu_log_capture, &w->log), 0);
	ck_assert_int_eq(fanq_bus_set_event_cb(w->bus, tu_event_capture, &w->events), 0);
}

/* Move the fake clock to t_ms (absolute) and tick; returns the tick's result. */
static inline int tu_tick_at(struct tu_watch *w, uint64_t t_ms)
{
	w->clock.ns = t_ms * TU_MS;
	return fanq_bus_tick(w->bus);
}

/* Publish n messages of len bytes; returns how many subscribers dropped. */
static inline uint32_t tu_publish_n(fanq_channel *ch, unsigned n, size_t len)
{
	uint32_t dropped = 0;

	for (unsigned i = 0; i < n; i++)
		dropped += tu_publish_len(ch, len, 'p', 0).dropped;
	return dropped;
}

/* A TCase with the shared timeout, added to suite. */
static inline TCase *tu_tcase(Suite *suite, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TU_TIMEOUT);
	suite_add_tcase(suite, tc);
	return tc;
}

#endif /* FANQ_TEST_UTIL_H */
