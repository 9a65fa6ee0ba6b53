/*
 * Allocation failure: built only in build-allocfail (`make
 * check-allocfail`: -DFANQ_ALLOC_FAIL, ASan + UBSan with leak detection).
 *
 * One workload touches every allocation site in lib/: bus, channels
 * (new and existing), subscribers of each policy, a custom policy, meta
 * (new key, replaced key, after subscribing), subscribe, resubscribe,
 * publish across lane segments, a group, drain_iov with a framer, pop,
 * peek, a channel history (on, growing, new limits, off), a resume
 * replaying it, health rules (set, replaced), a tick on a fake clock
 * that evicts one subscriber, the stats, top-N and Prometheus calls,
 * close.  The walk runs it with the n-th allocation failing, for
 * n = 0, 1, 2, ... until a run completes with no failure injected.  At
 * every step:
 *  - a call that hit the failure returns FANQ_ENOMEM and changed
 *    nothing: visible state is as before, and the same call then
 *    succeeds (a half-made change would show as FANQ_EEXIST, a leak, or
 *    a broken invariant); no other call swallows a failure;
 *  - a publish whose fan-out could not grow a subscriber's lane counts a
 *    drop for that subscriber, which the invariant checker then finds
 *    as a GAP of exactly that message; one that could not grow the
 *    channel's history makes room by evicting its oldest message (the
 *    resume then reports it as part of its GAP: FANQ_ERANGE);
 *  - a publish that switches a subscriber to its channel's shared log
 *    (applying the request its consumer posted, lib/cursor.c) absorbs a
 *    failure to allocate the log or a group's waiter queue: the
 *    subscriber stays on its own queue, which nothing can observe but
 *    its speed (consume calls only post the request: they allocate
 *    nothing for it);
 *  - every subscriber passes the invariant checker, the bus closes (no
 *    handle left), and LeakSanitizer finds nothing at exit.
 */
#include <inttypes.h>
#include <stdio.h>

#include "../lib/alloc_fail.h"
#include "invariant.h"
#include "test_util.h"

static long walk_step; /* the allocation that fails, for messages */

/*
 * Run a call that may allocate.  If it returns FANQ_ENOMEM the armed
 * failure must have hit it, `unchanged` must hold, and the call is made
 * again (the failure fires once) and must succeed.  `absorbs`: the call
 * may turn the failure into a counted drop and succeed (publish).
 */
#define TRY_(call, absorbs, unchanged)                                        \
	do {                                                                  \
		bool before_ = fanq__alloc_fail_fired();                      \
		int rc_ = (call);                                             \
		if (rc_ == FANQ_ENOMEM) {                                     \
			ck_assert_msg(!before_ && fanq__alloc_fail_fired(),   \
				      "step %ld: %s: ENOMEM not injected",    \
				      walk_step, #call);                      \
			ck_assert_msg((unchanged), "step %ld: %s: not %s "    \
				      "after ENOMEM", walk_step, #call,       \
				      #unchanged);                            \
			rc_ = (call);                                         \
		} else {                                                      \
			ck_assert_msg((absorbs) ||                            \
					      before_ == fanq__alloc_fail_fired(), \
				      "step %ld: %s swallowed a failure",     \
				      walk_step, #call);                      \
		}                                                             \
		ck_assert_msg(rc_ == 0, "step %ld: %s: %s", walk_step, #call, \
			      fanq_strerror(rc_));                            \
	} while (0)
#define TRY(call) TRY_(call, false, true)

#define NSUBS 4
enum { PLAIN, PRIO, OLDEST, CUSTOM };

struct workload {
	fanq_bus *bus;
	struct tu_clock clock;
	fanq_channel *a, *b;
	fanq_sub *subs[NSUBS];
	struct inv_sub *inv[NSUBS];
	fanq_group *group;
	struct inv_world *w;
	struct inv_stream *stream; /* what subs[OLDEST] "wrote" */
};

static void check_inv(bool ok, const struct inv_sub *r)
{
	ck_assert_msg(ok, "step %ld: %s", walk_step, inv_sub_error(r));
}

static bool meta_is(const fanq_sub *s, const char *key, const char *value)
{
	const char *v = fanq_sub_meta(s, key);

	return value ? v && strcmp(v, value) == 0 : v == NULL;
}

static bool policy_is(const fanq_sub *s, enum fanq_policy_kind kind)
{
	return tu_stats(s).policy == kind;
}

/* Custom policy: lane = priority (clamped to 2 lanes), evict lane 1 first. */
static unsigned custom_lane(void *arg, const fanq_msg *m)
{
	(void)arg;
	return fanq_msg_priority(m);
}

static int custom_on_full(void *arg, const fanq_queue_view *q, const fanq_msg *in)
{
	(void)arg;
	(void)in;
	return q->depth[1] ? 1 : -1;
}

static void subscribe(struct workload *wl, int i, fanq_channel *ch)
{
	uint64_t first = fanq_channel_last_seq(ch) + 1;

	TRY(fanq_subscribe(wl->subs[i], ch));
	check_inv(inv_sub_subscribed(wl->inv[i], ch, first), wl->inv[i]);
}

static void publish(struct workload *wl, fanq_channel *ch, unsigned k)
{
	char buf[300];
	size_t len = (k * 37) % sizeof(buf);
	unsigned prio = k % FANQ_PRIO_LEVELS;
	fanq_publish_result res;

	memset(buf, 'a' + (int)(k % 26), len);
	TRY_(fanq_publish(ch, buf, len, prio, &res), true, true);
	ck_assert_int_eq(res.deferred, 0);
	ck_assert(inv_published(wl->w, ch, res.seq, prio));
}

/* Pop up to max entries of sub i into its checker (all when max < 0). */
static void pop(struct workload *wl, int i, int max)
{
	fanq_entry e, peeked;
	int rc;

	for (; max != 0 && (rc = fanq_sub_peek(wl->subs[i], &peeked)) == 0; max--) {
		ck_assert_int_eq(fanq_sub_pop(wl->subs[i], &e), 0);
		ck_assert_int_eq(e.kind, peeked.kind);
		ck_assert_uint_eq(e.seq, peeked.seq);
		check_inv(inv_sub_entry(wl->inv[i], &e, e.kind == FANQ_ENTRY_MSG
					? fanq_msg_priority(e.msg) : 0),
			  wl->inv[i]);
		if (e.kind == FANQ_ENTRY_MSG)
			fanq_msg_release(e.msg);
	}
}

/* drain_iov once, "write" part of it (all with part == 0), commit. */
static size_t drain_some(struct workload *wl, size_t part)
{
	fanq_sub *s = wl->subs[OLDEST];
	struct inv_sub *r = wl->inv[OLDEST];
	struct iovec iov[16];
	size_t bytes = 0;
	fanq_entry e;
	unsigned prio;
	const char *payload;
	size_t len;
	int cnt = 0;

	TRY((cnt = fanq_sub_drain_iov(s, iov, 16, 4096)) < 0 ? cnt : 0);
	for (int i = 0; i < cnt; i++)
		bytes += iov[i].iov_len;
	if (part && part < bytes)
		bytes = part;
	ck_assert(inv_stream_write(wl->stream, iov, cnt, bytes));
	ck_assert_int_eq(fanq_sub_drain_commit(s, bytes), 0);
	while (inv_stream_next(wl->stream, &e, &prio, &payload, &len) == 1)
		check_inv(inv_sub_entry(r, &e, prio), r);
	return bytes;
}

static void quiet_log(void *arg, const fanq_log_record *r)
{
	(void)arg;
	(void)r;
}

static int discard(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

static uint64_t members(const fanq_channel *ch)
{
	fanq_channel_stats st;

	ck_assert_int_eq(fanq_channel_stats_get(ch, &st), 0);
	return st.subscribers;
}

/*
 * History on a, PLAIN resumes on it (3 messages missed); PRIO gets health
 * rules; an idle rule on CUSTOM (never drained) evicts it at a tick;
 * the observers run.  Reading them allocates nothing, but they must
 * hold up against what the failures left.
 */
static void workload_recover(struct workload *wl)
{
	const fanq_health_rules hard = {.hard_bytes = 1u << 20};
	const fanq_health_rules idle = {.idle_ns = TU_SEC};
	fanq_resume_result res;
	fanq_sub_stats top[2];
	fanq_bus_stats bst;
	uint64_t after, n;
	int rc;

	TRY(fanq_channel_set_history(wl->a, 4, 0, 0));
	for (unsigned k = 60; k < 66; k++) /* grows the history's slots */
		publish(wl, wl->a, k);
	TRY(fanq_channel_set_history(wl->a, 40, 1 << 20, 0));
	TRY(fanq_unsubscribe(wl->subs[PLAIN], wl->a));
	after = fanq_channel_last_seq(wl->a); /* the checker's spans ascend */
	check_inv(inv_sub_unsubscribed(wl->inv[PLAIN], wl->a, after),
		  wl->inv[PLAIN]);
	for (unsigned k = 66; k < 69; k++) /* replayed to PLAIN */
		publish(wl, wl->a, k);
	n = members(wl->a);
	TRY_((rc = fanq_subscribe_after(wl->subs[PLAIN], wl->a, after, &res)) ==
		     FANQ_ERANGE ? 0 : rc,
	     true, members(wl->a) == n); /* the replay may count a drop */
	/* FANQ_ERANGE only when a failure cost the history its oldest */
	ck_assert(rc == 0 || (rc == FANQ_ERANGE && fanq__alloc_fail_fired()));
	check_inv(inv_sub_resumed(wl->inv[PLAIN], wl->a, after,
				  rc ? res.gap_last + 1 : after + 1),
		  wl->inv[PLAIN]);
	TRY(fanq_sub_set_health(wl->subs[PRIO], &hard));
	TRY(fanq_sub_set_health(wl->subs[PRIO], &hard)); /* replaced */
	TRY(fanq_sub_set_health(wl->subs[CUSTOM], &idle));
	ck_assert_int_eq(fanq_bus_tick(wl->bus), 0);
	wl->clock.ns += 2 * TU_SEC;
	ck_assert_int_eq(fanq_bus_tick(wl->bus), 1);
	ck_assert_int_eq(fanq_sub_evicted(wl->subs[CUSTOM], NULL), 1);
	check_inv(inv_sub_unsubscribed(wl->inv[CUSTOM], wl->a,
				       fanq_channel_last_seq(wl->a)),
		  wl->inv[CUSTOM]);
	check_inv(inv_sub_evicted(wl->inv[CUSTOM]), wl->inv[CUSTOM]);
	publish(wl, wl->a, 69); /* not offered to CUSTOM */
	ck_assert_int_eq(fanq_bus_stats_get(wl->bus, &bst), 0);
	ck_assert_uint_eq(bst.evicted[FANQ_EVICT_IDLE], 1);
	ck_assert_int_eq(fanq_bus_top(wl->bus, FANQ_TOP_DEPTH, top, 2), 2);
	ck_assert_int_eq(fanq_bus_prometheus(wl->bus, discard, NULL), 0);
	TRY(fanq_channel_set_history(wl->a, 0, 0, 0));
}

static void workload_open(struct workload *wl)
{
	static const fanq_policy custom = {.name = "lane-1-first", .levels = 2,
					   .lane_of = custom_lane,
					   .on_full = custom_on_full};
	const enum fanq_policy_kind kinds[NSUBS] = {FANQ_DROP_NEW, FANQ_PRIORITY,
						    FANQ_DROP_OLDEST, FANQ_CUSTOM};
	const unsigned levels[NSUBS] = {1, FANQ_PRIO_LEVELS, 1, 2};
	fanq_channel *again = NULL;
	fanq_framer framer;

	TRY(fanq_bus_new(&wl->bus));
	wl->clock.ns = TU_SEC;
	ck_assert_int_eq(fanq_bus_set_clock(wl->bus, tu_clock_read, &wl->clock), 0);
	ck_assert_int_eq(fanq_bus_set_log(wl->bus, quiet_log, NULL), 0);
	TRY(fanq_channel_open(wl->bus, "a", &wl->a));
	TRY(fanq_channel_open(wl->bus, "b", &wl->b));
	TRY(fanq_channel_open(wl->bus, "a", &again));
	ck_assert_ptr_eq(again, wl->a);
	fanq_channel_release(again);
	wl->w = inv_world_new();
	wl->stream = inv_stream_new(wl->w);
	ck_assert(wl->w && wl->stream);
	ck_assert(inv_world_channel(wl->w, wl->a, true));
	ck_assert(inv_world_channel(wl->w, wl->b, true));
	for (int i = 0; i < NSUBS; i++) {
		TRY(fanq_sub_new(wl->bus, &wl->subs[i]));
		TRY(fanq_sub_set_limits(wl->subs[i], i == OLDEST ? 8 : 24, 4096));
		if (i == CUSTOM)
			TRY_(fanq_sub_set_custom_policy(wl->subs[i], &custom), false,
			     policy_is(wl->subs[i], FANQ_DROP_NEW));
		else if (i != PLAIN)
			TRY_(fanq_sub_set_policy(wl->subs[i], kinds[i]), false,
			     policy_is(wl->subs[i], FANQ_DROP_NEW));
		wl->inv[i] = inv_sub_new(wl->w, "sub", levels[i]);
		ck_assert_ptr_nonnull(wl->inv[i]);
	}
	TRY(fanq_group_new(wl->bus, &wl->group));
	TRY(fanq_group_attach(wl->group, wl->subs[OLDEST]));
	framer = inv_framer(wl->w);
	TRY(fanq_sub_set_framer(wl->subs[OLDEST], &framer));
	TRY_(fanq_sub_set_meta(wl->subs[PLAIN], "peer", "10.0.0.1"), false,
	     meta_is(wl->subs[PLAIN], "peer", NULL));
	TRY_(fanq_sub_set_meta(wl->subs[PLAIN], "ua", "curl"), false,
	     meta_is(wl->subs[PLAIN], "ua", NULL));
	TRY_(fanq_sub_set_meta(wl->subs[PLAIN], "peer", "10.0.0.2"), false,
	     meta_is(wl->subs[PLAIN], "peer", "10.0.0.1") &&
		     meta_is(wl->subs[PLAIN], "ua", "curl"));
}

static void workload_run(struct workload *wl)
{
	fanq_sub *ready;

	subscribe(wl, PLAIN, wl->a);
	subscribe(wl, PLAIN, wl->b);
	subscribe(wl, PRIO, wl->a);
	subscribe(wl, OLDEST, wl->b);
	subscribe(wl, CUSTOM, wl->a);
	/* 40 messages: lanes of 16-slot segments grow and shrink */
	for (unsigned k = 0; k < 40; k++)
		publish(wl, k % 3 ? wl->a : wl->b, k);
	TRY_(fanq_sub_set_meta(wl->subs[PLAIN], "ua", "wget"), false,
	     meta_is(wl->subs[PLAIN], "ua", "curl"));
	pop(wl, PLAIN, 7);
	pop(wl, PRIO, -1);
	while (fanq_group_next_ready(wl->group, &ready) == 0) {
		ck_assert_ptr_eq(ready, wl->subs[OLDEST]);
		drain_some(wl, 50);
	}
	TRY(fanq_unsubscribe(wl->subs[PLAIN], wl->b));
	check_inv(inv_sub_unsubscribed(wl->inv[PLAIN], wl->b,
				       fanq_channel_last_seq(wl->b)),
		  wl->inv[PLAIN]);
	publish(wl, wl->b, 40); /* not offered to PLAIN */
	subscribe(wl, PLAIN, wl->b);
	TRY_(fanq_sub_set_policy(wl->subs[PLAIN], FANQ_DROP_OLDEST), false,
	     policy_is(wl->subs[PLAIN], FANQ_DROP_NEW));
	for (unsigned k = 41; k < 60; k++)
		publish(wl, k % 2 ? wl->a : wl->b, k);
	workload_recover(wl);
}

/* Everything consumed, checked and closed; the bus must close. */
static void workload_close(struct workload *wl)
{
	for (int i = 0; i < NSUBS; i++)
		if (i != OLDEST)
			pop(wl, i, -1);
	while (drain_some(wl, 0) > 0)
		;
	for (int i = 0; i < NSUBS; i++) {
		check_inv(inv_sub_check(wl->inv[i], wl->subs[i]), wl->inv[i]);
		tu_sub_close(wl->subs[i]);
		inv_sub_free(wl->inv[i]);
	}
	ck_assert_int_eq(fanq_group_close(wl->group), 0);
	fanq_channel_release(wl->a);
	fanq_channel_release(wl->b);
	tu_bus_close(wl->bus);
	inv_stream_free(wl->stream);
	inv_world_free(wl->w);
}

START_TEST(test_allocfail_every_site_fails_cleanly)
{
	bool fired = true;

	for (walk_step = 0; fired; walk_step++) {
		struct workload wl;

		ck_assert_msg(walk_step < 10000, "the workload never ends");
		memset(&wl, 0, sizeof(wl));
		fanq__alloc_fail_after(walk_step);
		workload_open(&wl);
		workload_run(&wl);
		workload_close(&wl);
		fired = fanq__alloc_fail_fired();
	}
	fanq__alloc_fail_after(-1);
	/* proof the walk covered something: lane segments, meta, drain, ... */
	ck_assert_int_gt(walk_step, 40);
	printf("allocation failure walk: %ld allocations failed one by one\n",
	       walk_step - 1);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("allocfail");
	TCase *tc = tu_tcase(s, "walk");

	tcase_add_test(tc, test_allocfail_every_site_fails_cleanly);
	return s;
}
