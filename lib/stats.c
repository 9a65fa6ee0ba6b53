/*
 * stats.c - counters: one subscriber's snapshot, a channel's and the
 * bus's totals, the walk over subscribers and the top-N ranking.
 *
 * Bus totals stay monotonic: a subscriber is counted from the registry
 * while it is in it, and its final counts are folded into bus->folded at
 * the moment it leaves, both under fold_mu, which the totals walk holds
 * too.  So every subscriber is counted exactly once by every walk, and
 * its counters only grow.  fold_mu is never taken on a publishing or
 * consuming path: only by the last reference of a subscriber and by
 * readers of the totals.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *fanq_drop_reason_name(enum fanq_drop_reason r)
{
	static const char *const names[FANQ_DROP_REASONS] = {
		"full_new", "evicted_oldest", "evicted_priority", "unsubscribed",
	};

	return (unsigned)r < FANQ_DROP_REASONS ? names[r] : "unknown";
}

const char *fanq_evict_reason_name(enum fanq_evict_reason r)
{
	static const char *const names[FANQ_EVICT_REASONS] = {
		"none", "full", "drops", "idle", "hard_bytes", "soft_bytes",
	};

	return (unsigned)r < FANQ_EVICT_REASONS ? names[r] : "unknown";
}

/* The ticker's view: elapsed time from then to the last tick, or 0. */
static uint64_t since_tick(const struct fanq_bus *bus, uint64_t then)
{
	uint64_t tick = atomic_load_explicit(&bus->tick_ns, memory_order_relaxed);

	return tick > then ? tick - then : 0;
}

/*
 * Any thread: the messages s holds (lanes, taken and not yet delivered,
 * its cursor's backlog) and, unless bytes is NULL, their bytes.
 */
static uint64_t sub_queued(const struct fanq_sub *s, uint64_t *bytes)
{
	uint64_t cursor_bytes, cursor_msgs = cursor_backlog(s, bytes ? &cursor_bytes : NULL);

	if (bytes)
		*bytes = atomic_load(&s->bytes) + cursor_bytes;
	return atomic_load(&s->msgs) + atomic_load(&s->held) + cursor_msgs;
}

/* Any thread that can see s (a handle, or inside rcu_read_lock). */
void stats_sub_snapshot(const struct fanq_sub *s, fanq_sub_stats *out)
{
	unsigned watch = atomic_load_explicit(&s->watch, memory_order_acquire);

	memset(out, 0, sizeof(*out));
	out->id = s->id;
	out->queued_msgs = sub_queued(s, &out->queued_bytes);
	out->high_water_msgs = atomic_load(&s->high_water);
	out->enqueued = cursor_sub_enqueued(s);
	out->delivered = atomic_load(&s->delivered);
	for (int i = 0; i < FANQ_DROP_REASONS; i++)
		out->dropped[i] = atomic_load(&s->dropped[i]);
	out->max_msgs = atomic_load(&s->max_msgs);
	out->max_bytes = atomic_load(&s->max_bytes);
	out->policy = atomic_load(&s->policy)->kind;
	out->shared_log = atomic_load(&s->cursor_link) != NULL;
	if (atomic_load_explicit(&s->bus->tick_ns, memory_order_relaxed))
		out->since_drain_ns = since_tick(s->bus, atomic_load(&s->progress_ns));
	/* full_since_ns is written before WATCH_FULL is set (release) */
	if (watch & WATCH_FULL)
		out->full_for_ns = since_tick(s->bus, atomic_load(&s->full_since_ns));
	out->over_high = !!(watch & WATCH_HIGH);
	out->evicted = (enum fanq_evict_reason)atomic_load(&s->evicted);
}

/* Any thread.  See fanq.h. */
int fanq_sub_stats_get(const fanq_sub *s, fanq_sub_stats *out)
{
	if (!s || !out)
		return FANQ_EINVAL;
	urcu_bp_read_lock(); /* the policy is freed after a grace period */
	stats_sub_snapshot(s, out);
	fanq_read_unlock();
	return 0;
}

int fanq_channel_stats_get(const fanq_channel *ch, fanq_channel_stats *out)
{
	if (!ch || !out)
		return FANQ_EINVAL;
	memset(out, 0, sizeof(*out));
	out->published = atomic_load(&ch->seq);
	out->subscribers = atomic_load(&ch->subscribers);
	out->enqueued = atomic_load(&ch->enqueued);
	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		out->dropped[r] = atomic_load(&ch->dropped[r]);
	out->refused = atomic_load(&ch->refused);
	out->backlog = atomic_load(&ch->backlog);
	return 0;
}

/* The last reference of s: it leaves the registry and its counts move to
 * the folded totals in one step for every totals walk. */
void stats_fold(struct fanq_sub *s)
{
	struct fanq_bus *bus = s->bus;
	struct bus_folded *f = &bus->folded;

	pthread_mutex_lock(&bus->fold_mu);
	urcu_bp_read_lock();
	cds_lfht_del(bus->subs, &s->reg_node);
	fanq_read_unlock();
	f->enqueued += atomic_load(&s->enqueued);
	f->delivered += atomic_load(&s->delivered);
	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		f->dropped[r] += atomic_load(&s->dropped[r]);
	pthread_mutex_unlock(&bus->fold_mu);
	/* this subscriber's last touch of the bus and its channels, often
	 * in a call_rcu callback: pairs with the acquire after
	 * urcu_bp_barrier() in fanq_bus_close() (TSan cannot see it wait) */
	FANQ_TSAN_RELEASE(bus);
}

static const uint64_t depth_bounds[STATS_DEPTH_BUCKETS] = {
	0, 1, 10, 100, 1000, 10000, 100000,
};

const uint64_t *stats_depth_bounds(void)
{
	return depth_bounds;
}

static void walk_sub(struct stats_walk *w, const struct fanq_sub *s)
{
	fanq_bus_stats *t = &w->t;
	uint64_t bytes, depth = sub_queued(s, &bytes);

	t->enqueued += cursor_sub_enqueued(s);
	t->delivered += atomic_load(&s->delivered);
	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		t->dropped[r] += atomic_load(&s->dropped[r]);
	t->queued_msgs += depth;
	t->queued_bytes += bytes;
	if (s->closed)
		return; /* counted until freed; not a subscriber any more */
	if (depth > t->queued_msgs_max)
		t->queued_msgs_max = depth;
	t->over_high += !!(atomic_load(&s->watch) & WATCH_HIGH);
	t->shared_log += atomic_load(&s->cursor_link) != NULL;
	for (int b = 0; b < STATS_DEPTH_BUCKETS; b++)
		w->depth_le[b] += depth <= depth_bounds[b];
	w->depth_count++;
	w->depth_sum += depth;
}

/* Any thread: totals and the depth histogram in one walk. */
void stats_collect(struct fanq_bus *bus, struct stats_walk *w)
{
	struct cds_lfht_iter it;
	struct fanq_sub *s;
	struct fanq_channel *ch;
	fanq_bus_stats *t = &w->t;

	memset(w, 0, sizeof(*w));
	pthread_mutex_lock(&bus->fold_mu);
	urcu_bp_read_lock();
	bus_for_each_sub(bus, &it, s)
		walk_sub(w, s);
	bus_for_each_channel(bus, &it, ch)
		t->channels++;
	fanq_read_unlock();
	t->enqueued += bus->folded.enqueued;
	t->delivered += bus->folded.delivered;
	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		t->dropped[r] += bus->folded.dropped[r];
	pthread_mutex_unlock(&bus->fold_mu);
	t->subscribers = atomic_load(&bus->live_subs);
	for (int r = 0; r < FANQ_EVICT_REASONS; r++)
		t->evicted[r] = atomic_load(&bus->evicted[r]);
}

int fanq_bus_stats_get(fanq_bus *bus, fanq_bus_stats *out)
{
	struct stats_walk w;

	if (!bus || !out)
		return FANQ_EINVAL;
	stats_collect(bus, &w);
	*out = w.t;
	return 0;
}

/* Any thread.  See fanq.h. */
int fanq_bus_foreach_sub(fanq_bus *bus, fanq_sub_visit_fn fn, void *arg)
{
	struct cds_lfht_iter it;
	struct fanq_sub *s;
	fanq_sub_stats st;
	int n = 0;

	if (!bus || !fn)
		return FANQ_EINVAL;
	urcu_bp_read_lock();
	bus_for_each_sub(bus, &it, s) {
		if (s->closed)
			continue;
		stats_sub_snapshot(s, &st);
		n++;
		if (fn(arg, s, &st))
			break;
	}
	fanq_read_unlock();
	return n;
}

/* ---------------------------------------------------------------- top N */

static uint64_t top_key(const fanq_sub_stats *st, enum fanq_top_by by)
{
	switch (by) {
	case FANQ_TOP_DEPTH:
		return st->queued_msgs;
	case FANQ_TOP_BYTES:
		return st->queued_bytes;
	case FANQ_TOP_DROPS:
		break;
	}
	return st->dropped[FANQ_DROP_FULL_NEW] + st->dropped[FANQ_DROP_EVICTED_OLDEST] +
	       st->dropped[FANQ_DROP_EVICTED_PRIORITY];
}

/* The key without a full snapshot, to skip most subscribers cheaply. */
static uint64_t top_key_of(const struct fanq_sub *s, enum fanq_top_by by)
{
	uint64_t bytes;

	switch (by) {
	case FANQ_TOP_DEPTH:
		return sub_queued(s, NULL);
	case FANQ_TOP_BYTES:
		sub_queued(s, &bytes);
		return bytes;
	case FANQ_TOP_DROPS:
		break;
	}
	return sub_policy_drops(s);
}

/* a ranks below b: a smaller key, or the same key and a younger sub. */
static bool top_below(const fanq_sub_stats *a, const fanq_sub_stats *b,
		      enum fanq_top_by by)
{
	uint64_t ka = top_key(a, by), kb = top_key(b, by);

	return ka < kb || (ka == kb && a->id > b->id);
}

/* Min-heap on h[0..n): restore it from i down. */
static void heap_down(fanq_sub_stats *h, size_t n, size_t i, enum fanq_top_by by)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		fanq_sub_stats tmp;

		if (l < n && top_below(&h[l], &h[m], by))
			m = l;
		if (l + 1 < n && top_below(&h[l + 1], &h[m], by))
			m = l + 1;
		if (m == i)
			return;
		tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
}

static void heap_up(fanq_sub_stats *h, size_t i, enum fanq_top_by by)
{
	while (i > 0 && top_below(&h[i], &h[(i - 1) / 2], by)) {
		fanq_sub_stats tmp = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

/* Any thread.  out[] is the heap (its root is the lowest kept), then it
 * is sorted highest first by moving each root to the end. */
int fanq_bus_top(fanq_bus *bus, enum fanq_top_by by, fanq_sub_stats *out, size_t n)
{
	struct cds_lfht_iter it;
	struct fanq_sub *s;
	fanq_sub_stats st;
	size_t k = 0;

	if (!bus || !out || n == 0 || n > INT32_MAX ||
	    (by != FANQ_TOP_DEPTH && by != FANQ_TOP_BYTES && by != FANQ_TOP_DROPS))
		return FANQ_EINVAL;
	urcu_bp_read_lock();
	bus_for_each_sub(bus, &it, s) {
		if (s->closed || (k == n && top_key_of(s, by) < top_key(&out[0], by)))
			continue;
		stats_sub_snapshot(s, &st);
		if (k < n) {
			out[k] = st;
			heap_up(out, k++, by);
		} else if (top_below(&out[0], &st, by)) {
			out[0] = st;
			heap_down(out, k, 0, by);
		}
	}
	fanq_read_unlock();
	for (size_t i = k; i > 1; i--) {
		st = out[0];
		out[0] = out[i - 1];
		out[i - 1] = st;
		heap_down(out, i - 1, 0, by);
	}
	return (int)k;
}

/* Any thread.  See fanq.h. */
int fanq_bus_sub_meta(fanq_bus *bus, uint64_t id, const char *key, char *buf,
		      size_t cap)
{
	struct fanq_sub *s;
	const char *v = NULL;
	size_t len = 0;

	if (!bus || !key || !buf || cap == 0)
		return FANQ_EINVAL;
	urcu_bp_read_lock();
	s = bus_sub_find(bus, id);
	if (s && !s->closed)
		v = fanq_sub_meta(s, key);
	if (v) {
		len = strlen(v);
		snprintf(buf, cap, "%s", v);
	}
	fanq_read_unlock();
	if (!v)
		return FANQ_ENOENT;
	return len > INT32_MAX ? INT32_MAX : (int)len;
}
