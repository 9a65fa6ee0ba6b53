/*
 * health.c - the tick: time-based state of every subscriber, utilisation
 * alerts, eviction rules; and the host's liveness input and heartbeats.
 *
 * Nothing here runs on the publishing or consuming paths: those only keep
 * counters and a few bits (DROP_FULL, the hard-limit check in sub.c).  The
 * ticker (one thread at a time, in fanq_bus_tick()) samples each
 * subscriber once per tick:
 *  - it drained if it delivered anything or was touched since the previous
 *    tick, or has nothing queued: progress_ns = now;
 *  - it is full if it did not drain and an offer did not fit since the
 *    previous tick (DROP_FULL) or it is at a limit; full_since_ns is the
 *    first tick of the current full run.
 * So times are measured in ticks: a rule acts at the first tick at which
 * its threshold is reached.  The ticker also raises alerts (one event per
 * crossing, with hysteresis), applies the rules, and for an eviction
 * releases the backlog, wakes the group, logs and reports it.  Log and
 * event callbacks run in the ticker's thread, inside rcu_read_lock.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* What the ticker saw of one subscriber. */
struct tick_view {
	uint64_t msgs, held, bytes, max_msgs, max_bytes;
	bool empty, full;
};

/* ------------------------------------------------------------- rules */

/* 0 or FANQ_EINVAL.  See fanq_sub_set_health() in fanq.h. */
int health_rules_check(const fanq_health_rules *r)
{
	if ((r->drops && !r->drops_window_ns) || (r->soft_ns && !r->soft_bytes) ||
	    (r->hard_bytes && r->soft_bytes > r->hard_bytes))
		return FANQ_EINVAL;
	return 0;
}

static bool rules_off(const fanq_health_rules *r)
{
	return !r->full_ns && !r->drops_window_ns && !r->idle_ns &&
	       !r->hard_bytes && !r->soft_bytes;
}

static void health_free_rcu(struct rcu_head *head)
{
	struct health *h = caa_container_of(head, struct health, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(h);
	free(h);
}

/*
 * Owner thread: give s a fresh copy of r (or none when r is all off).
 * Readers (fan-out's hard-limit check, the ticker) hold the old one
 * inside rcu_read_lock; it is freed after a grace period.
 */
int health_attach(struct fanq_sub *s, const fanq_health_rules *r)
{
	struct health *h = NULL, *old;

	if (!rules_off(r)) {
		h = fanq_calloc(1, sizeof(*h));
		if (!h)
			return FANQ_ENOMEM;
		h->rules = *r;
		/* the drop window's first sample: drops before now not counted */
		h->sample[0].ns = bus_now(s->bus);
		h->sample[0].drops = sub_policy_drops(s);
		h->nsamples = 1;
	}
	/* publishes h; pairs with the acquire loads of its readers */
	old = atomic_exchange_explicit(&s->health, h, memory_order_acq_rel);
	if (old) {
		FANQ_TSAN_RELEASE(old);
		urcu_bp_call_rcu(&old->rcu, health_free_rcu);
	}
	return 0;
}

/* Owner thread.  See fanq.h. */
int fanq_sub_set_health(fanq_sub *s, const fanq_health_rules *r)
{
	if (!s || !r)
		return FANQ_EINVAL;
	if (health_rules_check(r))
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	return health_attach(s, r);
}

/*
 * Any thread (a fan-out thread for the hard limit, else the ticker):
 * claim the eviction of s; only one claim ever succeeds.
 */
bool sub_evict_claim(struct fanq_sub *s, enum fanq_evict_reason why)
{
	int none = FANQ_EVICT_NONE;

	if (!atomic_compare_exchange_strong(&s->evicted, &none, (int)why))
		return false;
	atomic_fetch_add_explicit(&s->bus->evicted[why], 1, memory_order_relaxed);
	cursor_kick_sub(s); /* its cursor channel demotes it now */
	return true;
}

int fanq_sub_evicted(const fanq_sub *s, enum fanq_evict_reason *why)
{
	int r;

	if (!s)
		return FANQ_EINVAL;
	r = atomic_load(&s->evicted);
	if (why)
		*why = (enum fanq_evict_reason)r;
	return r != FANQ_EVICT_NONE;
}

/* ------------------------------------------------------- host inputs */

/* Owner thread.  See fanq.h. */
int fanq_sub_touch(fanq_sub *s)
{
	if (!s)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	atomic_store_explicit(&s->touch_ns, bus_now(s->bus), memory_order_relaxed);
	return 0;
}

/* Owner thread (npending is the consumer's).  See fanq.h. */
int fanq_sub_heartbeat_due(fanq_sub *s, uint64_t interval_ns)
{
	uint64_t now;

	if (!s || interval_ns == 0)
		return FANQ_EINVAL;
	if (s->closed || atomic_load_explicit(&s->evicted, memory_order_relaxed))
		return FANQ_ECLOSED;
	if (atomic_load(&s->msgs) || atomic_load(&s->held) || s->npending ||
	    cursor_backlog(s, NULL))
		return 0; /* backlogged: data is on its way, or the socket is stuck */
	now = bus_now(s->bus);
	if (now - atomic_load_explicit(&s->touch_ns, memory_order_relaxed) < interval_ns)
		return 0;
	atomic_store_explicit(&s->touch_ns, now, memory_order_relaxed);
	return 1;
}

/* -------------------------------------------------------------- tick */

static unsigned pct(uint64_t v, uint64_t max)
{
	if (v >= max)
		return 100;
	return (unsigned)((unsigned __int128)v * 100 / max);
}

static unsigned view_fill_pct(const struct tick_view *v)
{
	unsigned m = pct(v->msgs, v->max_msgs), b = pct(v->bytes, v->max_bytes);

	return m > b ? m : b;
}

/* Ticker: sample s and update progress_ns and the full run (see top). */
static void tick_watch(struct fanq_sub *s, uint64_t now, uint64_t prev,
		       struct tick_view *v)
{
	uint64_t delivered = atomic_load(&s->delivered);
	unsigned full_seen = atomic_fetch_and_explicit(&s->drop_state, ~DROP_FULL,
						       memory_order_relaxed) & DROP_FULL;
	unsigned watch = atomic_load_explicit(&s->watch, memory_order_relaxed);
	uint64_t cursor_bytes, cursor_msgs = cursor_backlog(s, &cursor_bytes);
	bool drained;

	v->msgs = atomic_load(&s->msgs) + cursor_msgs;
	v->held = atomic_load(&s->held);
	v->bytes = atomic_load(&s->bytes) + cursor_bytes;
	v->max_msgs = atomic_load(&s->max_msgs);
	v->max_bytes = atomic_load(&s->max_bytes);
	v->empty = v->msgs == 0 && v->held == 0;
	drained = delivered != s->seen_delivered ||
		  atomic_load_explicit(&s->touch_ns, memory_order_relaxed) > prev;
	s->seen_delivered = delivered;
	if (v->empty || drained)
		atomic_store_explicit(&s->progress_ns, now, memory_order_relaxed);
	v->full = !drained && (full_seen || v->msgs >= v->max_msgs ||
			       v->bytes >= v->max_bytes);
	if (!v->full && (watch & WATCH_FULL)) {
		atomic_fetch_and_explicit(&s->watch, ~WATCH_FULL, memory_order_relaxed);
	} else if (v->full && !(watch & WATCH_FULL)) {
		atomic_store_explicit(&s->full_since_ns, now, memory_order_relaxed);
		/* stats readers see the time with the bit */
		atomic_fetch_or_explicit(&s->watch, WATCH_FULL, memory_order_release);
	}
}

static void tick_event(struct fanq_bus *bus, const struct fanq_sub *s,
		       enum fanq_event_kind kind, unsigned fill,
		       enum fanq_evict_reason why)
{
	fanq_event ev = { .kind = kind, .sub_id = s->id, .sub = s,
			  .fill_pct = fill, .evicted = why };

	if (bus->event)
		bus->event(bus->event_arg, &ev);
}

/* Ticker: one alert per crossing of the high level, one back under low. */
static void tick_alert(struct fanq_bus *bus, struct fanq_sub *s,
		       const struct tick_view *v)
{
	unsigned fill = view_fill_pct(v);
	unsigned watch = atomic_load_explicit(&s->watch, memory_order_relaxed);
	fanq_log_record r = { .level = FANQ_LOG_WARN, .event = FANQ_LOG_QUEUE_HIGH };

	if (!(watch & WATCH_HIGH) && fill >= bus->alert_high_pct) {
		atomic_fetch_or_explicit(&s->watch, WATCH_HIGH, memory_order_relaxed);
		log_sub_line(bus, &r, s, "queue at %u%%, over the %u%% alert level",
			     fill, bus->alert_high_pct);
		tick_event(bus, s, FANQ_EVENT_QUEUE_HIGH, fill, FANQ_EVICT_NONE);
	} else if ((watch & WATCH_HIGH) && fill < bus->alert_low_pct) {
		atomic_fetch_and_explicit(&s->watch, ~WATCH_HIGH, memory_order_relaxed);
		r.level = FANQ_LOG_INFO;
		r.event = FANQ_LOG_QUEUE_LOW;
		log_sub_line(bus, &r, s, "queue down to %u%%, under the %u%% alert level",
			     fill, bus->alert_low_pct);
		tick_event(bus, s, FANQ_EVENT_QUEUE_LOW, fill, FANQ_EVICT_NONE);
	}
}

/*
 * Ticker: policy drops within the last window, from the sample ring.
 * Samples are kept at least window/HEALTH_SAMPLES apart; the count runs
 * from the oldest sample inside the window, so it never includes drops
 * older than the window (it may miss up to one sample spacing of them).
 */
static uint64_t drops_in_window(struct health *h, uint64_t total, uint64_t now)
{
	uint64_t w = h->rules.drops_window_ns, base = total;
	unsigned i, last = (h->first + h->nsamples - 1) % HEALTH_SAMPLES;

	for (i = 0; i < h->nsamples; i++) {
		unsigned k = (h->first + i) % HEALTH_SAMPLES;

		if (now >= h->sample[k].ns && now - h->sample[k].ns <= w) {
			base = h->sample[k].drops;
			break;
		}
	}
	if (now - h->sample[last].ns >= w / HEALTH_SAMPLES) {
		if (h->nsamples == HEALTH_SAMPLES)
			h->first = (h->first + 1) % HEALTH_SAMPLES;
		else
			h->nsamples++;
		last = (h->first + h->nsamples - 1) % HEALTH_SAMPLES;
		h->sample[last].ns = now;
		h->sample[last].drops = total;
	}
	return total - base;
}

/* Ticker: over the soft limit for soft_ns? */
static bool soft_limit_hit(struct health *h, const struct tick_view *v, uint64_t now)
{
	if (!h->rules.soft_bytes)
		return false;
	if (v->bytes <= h->rules.soft_bytes) {
		h->soft_over = false;
		return false;
	}
	if (!h->soft_over) {
		h->soft_over = true;
		h->soft_since_ns = now;
	}
	return now - h->soft_since_ns >= h->rules.soft_ns;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

/*
 * Ticker: the first rule s breaks, with why in detail; FANQ_EVICT_NONE if
 * none.  Every rule's state is updated on every tick it is reached.
 */
static enum fanq_evict_reason health_verdict(struct fanq_sub *s,
					     const struct tick_view *v,
					     uint64_t now, char *detail, size_t cap)
{
	/* pairs with the release in health_attach(); RCU-protected */
	struct health *h = atomic_load_explicit(&s->health, memory_order_acquire);
	const fanq_health_rules *r;
	uint64_t t, n;

	if (!h)
		return FANQ_EVICT_NONE;
	r = &h->rules;
	if (r->hard_bytes && v->bytes > r->hard_bytes) {
		snprintf(detail, cap, "queued bytes over the hard limit %llu",
			 (unsigned long long)r->hard_bytes);
		return FANQ_EVICT_HARD_BYTES;
	}
	if (soft_limit_hit(h, v, now)) {
		snprintf(detail, cap, "queued bytes over the soft limit %llu for %.1fs",
			 (unsigned long long)r->soft_bytes, secs(now - h->soft_since_ns));
		return FANQ_EVICT_SOFT_BYTES;
	}
	t = now - atomic_load_explicit(&s->full_since_ns, memory_order_relaxed);
	if (r->full_ns && v->full && t >= r->full_ns) {
		snprintf(detail, cap, "queue full for %.1fs", secs(t));
		return FANQ_EVICT_FULL;
	}
	if (r->drops_window_ns &&
	    (n = drops_in_window(h, sub_policy_drops(s), now)) > r->drops) {
		snprintf(detail, cap, "%llu drops within %.1fs", (unsigned long long)n,
			 secs(r->drops_window_ns));
		return FANQ_EVICT_DROPS;
	}
	t = now - atomic_load_explicit(&s->progress_ns, memory_order_relaxed);
	if (r->idle_ns && !v->empty && t >= r->idle_ns) {
		snprintf(detail, cap, "nothing drained for %.1fs", secs(t));
		return FANQ_EVICT_IDLE;
	}
	return FANQ_EVICT_NONE;
}

/*
 * Ticker, holding a reference to s: finish an eviction claimed here or by
 * a fan-out thread (hard limit): log it with the queue as it was, release
 * the backlog, wake the group so the host hears of it, report it.  Once
 * per subscriber.
 */
static void evict_finish(struct fanq_bus *bus, struct fanq_sub *s,
			 const char *detail)
{
	enum fanq_evict_reason why = (enum fanq_evict_reason)atomic_load(&s->evicted);
	fanq_log_record r = { .level = FANQ_LOG_WARN, .event = FANQ_LOG_EVICTED,
			      .evicted = why };

	atomic_fetch_or_explicit(&s->watch, WATCH_REPORTED, memory_order_relaxed);
	log_sub_line(bus, &r, s, "evicted (%s): %s", fanq_evict_reason_name(why),
		     detail);
	sub_release_backlog(s);
	if (atomic_load(&s->group))
		sub_notify_group(s);
	tick_event(bus, s, FANQ_EVENT_EVICTED, 0, why);
}

/* Ticker, holding a reference to s.  Returns 1 if it reported an eviction. */
static int tick_sub(struct fanq_bus *bus, struct fanq_sub *s, uint64_t now,
		    uint64_t prev)
{
	struct tick_view v;
	char detail[128];
	enum fanq_evict_reason why;

	if (atomic_load(&s->evicted)) { /* claimed by a fan-out thread */
		struct health *h = atomic_load_explicit(&s->health, memory_order_acquire);

		if (atomic_load(&s->watch) & WATCH_REPORTED)
			return 0;
		snprintf(detail, sizeof(detail), "queued bytes passed the hard limit %llu",
			 h ? (unsigned long long)h->rules.hard_bytes : 0ull);
		evict_finish(bus, s, detail);
		return 1;
	}
	tick_watch(s, now, prev, &v);
	log_tick_sub(bus, s, now);
	tick_alert(bus, s, &v);
	why = health_verdict(s, &v, now, detail, sizeof(detail));
	if (why == FANQ_EVICT_NONE || !sub_evict_claim(s, why))
		return 0;
	evict_finish(bus, s, detail);
	return 1;
}

/* One thread at a time.  See fanq.h. */
int fanq_bus_tick(fanq_bus *bus)
{
	struct cds_lfht_iter it;
	struct fanq_sub *s;
	uint64_t now, prev;
	int evicted = 0, idle = 0;

	if (!bus)
		return FANQ_EINVAL;
	if (!atomic_compare_exchange_strong(&bus->ticking, &idle, 1))
		return FANQ_EBUSY;
	now = bus_now(bus);
	prev = atomic_exchange(&bus->tick_ns, now);
	urcu_bp_read_lock();
	bus_for_each_sub(bus, &it, s) {
		/* the reference keeps the lanes: the last one releases them */
		if (s->closed || !sub_tryget(s))
			continue;
		evicted += tick_sub(bus, s, now, prev);
		sub_put(s);
	}
	fanq_read_unlock();
	atomic_store(&bus->ticking, 0);
	return evicted;
}
