/*
 * sub.c - subscribers: lifecycle, settings, memberships, and the offer
 * path a fan-out thread runs for each member (admission, eviction, push).
 *
 * Capacity is reserved before a push (msgs and bytes, each with a CAS
 * that checks its limit) and released when an entry leaves the lanes, so
 * the limits hold at every instant.  Accounting: every offer counts
 * `enqueued`; each message then ends in exactly one of delivered,
 * dropped[reason] or still queued/held.  An evicted subscriber is offered
 * nothing more (not counted).
 *
 * Lifetime: the owner's handle, each channel membership and the group's
 * ready list hold references.  The last one releases what is left, folds
 * the counters into the bus totals and removes the subscriber from the
 * bus registry; the memory goes a grace period later, because registry
 * readers (ticker, stats) may still be looking at it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Atomic uint64_t next_sub_id = 1;

static struct policy *policy_new(enum fanq_policy_kind kind, const fanq_policy *ops)
{
	struct policy *p = fanq_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->kind = kind;
	if (ops)
		p->ops = *ops;
	return p;
}

/* Any thread.  See fanq.h. */
int fanq_sub_new(fanq_bus *bus, fanq_sub **out)
{
	struct fanq_sub *s;

	if (!bus || !out)
		return FANQ_EINVAL;
	s = fanq_zalloc_aligned(sizeof(*s));
	if (!s)
		goto fail;
	s->levels = 1;
	s->lanes = &s->lane0;
	s->policy = policy_new(FANQ_DROP_NEW, NULL);
	if (!s->policy)
		goto fail;
	s->id = atomic_fetch_add(&next_sub_id, 1);
	s->bus = bus;
	atomic_init(&s->max_msgs, FANQ_DEFAULT_QUEUE_MSGS);
	atomic_init(&s->max_bytes, FANQ_DEFAULT_QUEUE_BYTES);
	atomic_init(&s->refs, 1);
	cds_wfcq_node_init(&s->ready_node);
	/* the idle rule and heartbeats count from creation */
	atomic_init(&s->touch_ns, bus_now(bus));
	atomic_init(&s->progress_ns, atomic_load(&s->touch_ns));
	atomic_fetch_add(&bus->live_subs, 1);
	bus_sub_register(bus, s);
	*out = s;
	return 0;
fail:
	free(s);
	return FANQ_ENOMEM;
}

uint64_t fanq_sub_id(const fanq_sub *s)
{
	return s ? s->id : 0;
}

void sub_get(struct fanq_sub *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

/*
 * A registry reader (inside rcu_read_lock) that needs the lanes: take a
 * reference unless the last one is gone (s is being freed).
 */
bool sub_tryget(struct fanq_sub *s)
{
	unsigned r = atomic_load_explicit(&s->refs, memory_order_relaxed);

	do {
		if (r == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&s->refs, &r, r + 1,
							memory_order_acquire,
							memory_order_relaxed));
	return true;
}

static void meta_free(struct meta *m)
{
	if (!m)
		return;
	for (struct meta_kv *p = m->kv; p->key; p++) {
		free(p->key);
		free(p->value);
	}
	free(m);
}

static void meta_free_rcu(struct rcu_head *head)
{
	struct meta *m = caa_container_of(head, struct meta, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(m);
	meta_free(m);
}

/* A grace period after sub_free(): no registry reader can see s. */
static void sub_free_rcu(struct rcu_head *head)
{
	struct fanq_sub *s = caa_container_of(head, struct fanq_sub, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(s);
	for (unsigned i = 0; i < s->levels; i++)
		lane_destroy(&s->lanes[i]);
	while (s->links) {
		struct link *n = s->links->next;

		if (s->links != &s->link0)
			free(s->links);
		s->links = n;
	}
	free(s->lanes_more);
	free(atomic_load(&s->policy));
	meta_free(atomic_load(&s->meta));
	free(atomic_load(&s->health));
	free(s);
}

/*
 * Last reference: no fan-out thread, consumer or ticker can reach the
 * lanes any more.  Release everything left, then fold the final counts
 * into the bus totals.
 */
static void sub_free(struct fanq_sub *s)
{
	sub_release_held(s, FANQ_DROP_UNSUBSCRIBED);
	drain_free(s);
	sub_release_backlog(s);
	stats_fold(s);
	FANQ_TSAN_RELEASE(s);
	urcu_bp_call_rcu(&s->rcu, sub_free_rcu);
}

/*
 * Any taker: release every entry of the lanes, counted
 * FANQ_DROP_UNSUBSCRIBED.  A slot still being written is claimed like an
 * evictor does (its producer then counts it).  Returns how many.
 */
uint64_t sub_release_backlog(struct fanq_sub *s)
{
	uint64_t n = 0;
	fanq_msg *m;

	urcu_bp_read_lock();
	for (unsigned i = 0; i < s->levels; i++) {
		while ((m = lane_evict(&s->lanes[i]))) {
			if (m == LANE_EVICTED)
				continue;
			if (!m->gap_marker) { /* a marker holds no room */
				sub_unreserve(s, 1, m->len);
				sub_count_drop(s, m, FANQ_DROP_UNSUBSCRIBED);
				n++;
			}
			fanq_msg_release(m);
		}
	}
	n += cursor_release(s); /* inside the section: the log may be replaced */
	fanq_read_unlock();
	return n;
}

/*
 * Consumer thread, at the top of every consume call: 0, or FANQ_ECLOSED
 * when closed or evicted.  The consumer of an evicted subscriber releases
 * what it holds and what a racing publisher pushed after the eviction.
 */
int sub_consumer_check(struct fanq_sub *s)
{
	if (s->closed)
		return FANQ_ECLOSED;
	if (!atomic_load_explicit(&s->evicted, memory_order_relaxed))
		return 0;
	sub_release_held(s, FANQ_DROP_UNSUBSCRIBED);
	drain_release(s);
	sub_release_backlog(s);
	return FANQ_ECLOSED;
}

/* Any thread holding a reference. */
void sub_put(struct fanq_sub *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		sub_free(s);
}

/* Owner thread.  See fanq.h. */
int fanq_sub_close(fanq_sub *s)
{
	struct fanq_group *g;

	if (!s)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	s->closed = true;
	for (struct link *lk = s->links; lk; lk = lk->next)
		if (lk->member)
			fanq_unsubscribe(s, lk->ch);
	cursor_close_requests(s);
	g = atomic_load(&s->group);
	if (g)
		group_detach(g);
	atomic_fetch_sub(&s->bus->live_subs, 1);
	sub_put(s);
	return 0;
}

/* Any thread. */
int fanq_sub_set_limits(fanq_sub *s, uint64_t max_msgs, uint64_t max_bytes)
{
	if (!s || max_msgs == 0 || max_msgs > FANQ_QUEUE_MSGS_MAX || max_bytes == 0)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	atomic_store(&s->max_msgs, max_msgs);
	atomic_store(&s->max_bytes, max_bytes);
	cursor_rescan(s); /* a cursor window may have shrunk */
	return 0;
}

static void policy_free_rcu(struct rcu_head *head)
{
	struct policy *p = caa_container_of(head, struct policy, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(p);
	free(p);
}

/*
 * Owner thread.  Swaps the policy; the old one is freed after a grace
 * period (fan-out threads read it inside rcu_read_lock).  A change of lane
 * count needs a subscriber that was never subscribed.
 */
static int sub_swap_policy(struct fanq_sub *s, struct policy *p)
{
	unsigned levels = policy_levels(p);
	struct policy *old;

	if (levels != s->levels) {
		if (s->links) { /* fan-out threads may be in the lanes */
			free(p);
			return FANQ_EBUSY;
		}
		/* never pushed to before the first subscribe: still empty */
		if (levels > 1 && !s->lanes_more)
			s->lanes_more = fanq_zalloc_aligned(FANQ_PRIO_LEVELS *
							    sizeof(struct lane));
		if (levels > 1 && !s->lanes_more) {
			free(p);
			return FANQ_ENOMEM;
		}
		s->lanes = levels > 1 ? s->lanes_more : &s->lane0;
		s->levels = levels;
	}
	old = atomic_exchange(&s->policy, p);
	FANQ_TSAN_RELEASE(old);
	urcu_bp_call_rcu(&old->rcu, policy_free_rcu);
	return 0;
}

int fanq_sub_set_policy(fanq_sub *s, enum fanq_policy_kind kind)
{
	struct policy *p;

	if (!s || (kind != FANQ_DROP_NEW && kind != FANQ_DROP_OLDEST &&
		   kind != FANQ_PRIORITY))
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	p = policy_new(kind, NULL);
	return p ? sub_swap_policy(s, p) : FANQ_ENOMEM;
}

int fanq_sub_set_custom_policy(fanq_sub *s, const fanq_policy *ops)
{
	struct policy *p;

	if (!s || !ops || !ops->on_full || ops->levels == 0 ||
	    ops->levels > FANQ_PRIO_LEVELS)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	p = policy_new(FANQ_CUSTOM, ops);
	return p ? sub_swap_policy(s, p) : FANQ_ENOMEM;
}

/* Owner thread: the link for ch, or NULL. */
struct link *sub_link_find(const struct fanq_sub *s,
			   const struct fanq_channel *ch)
{
	for (struct link *lk = s->links; lk; lk = lk->next)
		if (lk->ch == ch)
			return lk;
	return NULL;
}

/* Owner thread: 0 if s may join ch, else the FANQ_E* code. */
static int sub_join_check(const struct fanq_sub *s, const fanq_channel *ch)
{
	struct link *lk;

	if (!s || !ch || ch->bus != s->bus)
		return FANQ_EINVAL;
	/* an evicted subscriber is offered nothing (sub_offer()): joining
	 * would succeed for nothing, and a resume would report a range */
	if (s->closed || atomic_load_explicit(&s->evicted, memory_order_relaxed))
		return FANQ_ECLOSED;
	lk = sub_link_find(s, ch);
	return lk && lk->member ? FANQ_EEXIST : 0;
}

/*
 * Owner thread, after sub_join_check(): a membership of s in ch (and the
 * link, on first use), not yet queued on the channel.  NULL: no memory,
 * nothing changed.
 */
static struct member *sub_member_new(struct fanq_sub *s, fanq_channel *ch)
{
	struct link *lk = sub_link_find(s, ch);
	struct member *mb = fanq_calloc(1, sizeof(*mb));

	if (!mb)
		return NULL;
	if (!lk) {
		lk = s->link0_used ? fanq_zalloc_aligned(sizeof(*lk)) : &s->link0;
		if (!lk) {
			free(mb);
			return NULL;
		}
		s->link0_used = true;
		atomic_init(&lk->cur, CURSOR_OFF);
		atomic_init(&lk->cur_from, CURSOR_OFF);
		lk->promote.kind = OP_PROMOTE;
		lk->ch = ch;
		lk->sub_owner = s;
		lk->next = s->links;
		s->links = lk;
	}
	mb->add.kind = OP_SUBSCRIBE;
	mb->del.kind = OP_UNSUBSCRIBE;
	mb->link = lk;
	lk->member = mb;
	sub_get(s); /* released by member_free_rcu() */
	return mb;
}

/* Owner thread.  See fanq.h. */
int fanq_subscribe(fanq_sub *s, fanq_channel *ch)
{
	struct member *mb;
	int rc = sub_join_check(s, ch);

	if (rc)
		return rc;
	mb = sub_member_new(s, ch);
	if (!mb)
		return FANQ_ENOMEM;
	channel_queue_op(ch, &mb->add, NULL);
	return 0;
}

/*
 * Owner thread.  See fanq.h.  Everything the fan-out thread needs is
 * allocated here, so applying the resume never fails.
 */
int fanq_subscribe_after(fanq_sub *s, fanq_channel *ch, uint64_t last_seen_seq,
			 fanq_resume_result *res)
{
	fanq_resume_result local = { .deferred = 1 }; /* until applied here */
	struct resume_op *ro;
	int rc = sub_join_check(s, ch);

	if (rc)
		return rc;
	ro = fanq_calloc(1, sizeof(*ro));
	if (!ro)
		return FANQ_ENOMEM;
	ro->marker = msg_gap_marker_new(ch);
	ro->mb = ro->marker ? sub_member_new(s, ch) : NULL;
	if (!ro->mb) {
		fanq_msg_release(ro->marker);
		free(ro);
		return FANQ_ENOMEM;
	}
	ro->op.kind = OP_RESUME;
	ro->after_seq = last_seen_seq;
	channel_queue_op(ch, &ro->op, &local); /* frees ro */
	if (res)
		*res = local;
	return local.gap_last ? FANQ_ERANGE : 0;
}

/* Owner thread.  Messages already queued stay deliverable. */
int fanq_unsubscribe(fanq_sub *s, fanq_channel *ch)
{
	struct link *lk;
	struct member *mb;

	if (!s || !ch)
		return FANQ_EINVAL;
	lk = sub_link_find(s, ch);
	if (!lk || !lk->member)
		return FANQ_ENOENT;
	mb = lk->member;
	lk->member = NULL;
	channel_queue_op(ch, &mb->del, NULL);
	return 0;
}

/* Fan-out thread: reserve room for len bytes, or fail without change. */
static bool sub_reserve(struct fanq_sub *s, uint64_t len)
{
	uint64_t max_m = atomic_load_explicit(&s->max_msgs, memory_order_relaxed);
	uint64_t max_b = atomic_load_explicit(&s->max_bytes, memory_order_relaxed);
	uint64_t c = atomic_load_explicit(&s->msgs, memory_order_relaxed);
	uint64_t b;

	/* on a second channel while still in cursor mode on another (until
	 * that channel's next publish demotes it): its backlog counts too */
	if (atomic_load_explicit(&s->cursor_link, memory_order_relaxed)) {
		uint64_t cb = cursor_backlog(s, NULL);

		max_m = cb < max_m ? max_m - cb : 0;
	}
	do {
		if (c >= max_m)
			return false;
	} while (!atomic_compare_exchange_weak(&s->msgs, &c, c + 1));
	b = atomic_load_explicit(&s->bytes, memory_order_relaxed);
	do {
		if (b + len > max_b) {
			atomic_fetch_sub(&s->msgs, 1);
			return false;
		}
	} while (!atomic_compare_exchange_weak(&s->bytes, &b, b + len));
	sub_high_water(s, c + 1);
	return true;
}

/* Any thread that saw s hold depth messages: raise its high-water mark. */
void sub_high_water(struct fanq_sub *s, uint64_t depth)
{
	uint64_t hw = atomic_load_explicit(&s->high_water, memory_order_relaxed);

	while (depth > hw && !atomic_compare_exchange_weak(&s->high_water, &hw, depth))
		;
}

/* Any taker: msgs entries of bytes bytes in all left the lanes. */
void sub_unreserve(struct fanq_sub *s, uint64_t msgs, uint64_t bytes)
{
	if (bytes)
		atomic_fetch_sub_explicit(&s->bytes, bytes, memory_order_relaxed);
	if (msgs)
		atomic_fetch_sub_explicit(&s->msgs, msgs, memory_order_relaxed);
}

/*
 * Any thread that drops m from s: count it for the subscriber and for m's
 * channel; a drop by the policy also goes to the drop log (log.c).
 */
void sub_count_drop(struct fanq_sub *s, const fanq_msg *m,
		    enum fanq_drop_reason why)
{
	atomic_fetch_add_explicit(&s->dropped[why], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->ch->dropped[why], 1, memory_order_relaxed);
	if (why != FANQ_DROP_UNSUBSCRIBED)
		log_drop(s, m, why);
}

/* Any thread: drops by the queue's policy (everything but unsubscribed). */
uint64_t sub_policy_drops(const struct fanq_sub *s)
{
	uint64_t n = 0;

	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		if (r != FANQ_DROP_UNSUBSCRIBED)
			n += atomic_load_explicit(&s->dropped[r], memory_order_relaxed);
	return n;
}

/* Evictor, inside rcu_read_lock: drop the oldest message of a lane. */
static bool sub_evict(struct fanq_sub *s, unsigned lane, const struct policy *p)
{
	fanq_msg *m;

	/* a gap marker holds no room: drop it and go on to a message (the
	 * next offer number still tells the consumer of its gap) */
	while ((m = lane_evict(&s->lanes[lane])) && m != LANE_EVICTED &&
	       m->gap_marker)
		fanq_msg_release(m);
	if (!m)
		return false;
	if (m == LANE_EVICTED)
		return true; /* its producer counts the drop and frees the room */
	sub_unreserve(s, 1, m->len);
	sub_count_drop(s, m, policy_evict_reason(p));
	fanq_msg_release(m);
	return true;
}

/*
 * Fan-out thread (or owner at attach, or the ticker evicting s, inside
 * rcu_read_lock): s has news; wake its group once.
 */
void sub_notify_group(struct fanq_sub *s)
{
	/* seq_cst exchange after the push: pairs with the exchange that
	 * clears ready in fanq_group_next_ready() (lib/group.c, step 2) */
	if (atomic_exchange(&s->ready, 1) == 0)
		group_enqueue(atomic_load(&s->group), s);
	else
		cursor_kick_sub(s); /* it may be waiting on a log: see cursor.c */
}

/* Fan-out thread: the incoming message is dropped for why. */
static int sub_reject(struct fanq_sub *s, const fanq_msg *m,
		      enum fanq_drop_reason why)
{
	sub_count_drop(s, m, why);
	return OFFER_DROPPED;
}

/*
 * Fan-out thread: the hard byte limit of the health rules is checked
 * after each push, so no burst slips past it between ticks; the ticker
 * reports the eviction and releases the backlog.
 */
static void sub_check_hard_limit(struct fanq_sub *s)
{
	/* RCU: the rules are freed after a grace period (health.c) */
	struct health *h = atomic_load_explicit(&s->health, memory_order_acquire);

	if (h && h->rules.hard_bytes &&
	    atomic_load_explicit(&s->bytes, memory_order_relaxed) > h->rules.hard_bytes)
		sub_evict_claim(s, FANQ_EVICT_HARD_BYTES);
}

/*
 * How many times an offer re-checks a full subscriber whose oldest entry
 * cannot be taken yet (reserved by another fan-out thread but not yet
 * written, or being taken by the consumer): such room frees within a few
 * instructions unless a thread is preempted there.
 */
#define OFFER_RETRIES 256

/*
 * Fan-out thread of lk's channel, inside rcu_read_lock.  Offers m to s
 * under its policy; returns OFFER_* bits (0: s is evicted and m was not
 * offered).  With OFFER_ACCEPTED the lane has taken one of the
 * references the caller holds for this purpose (apply_publish() takes one
 * per member up front).  Lock-free: every loop iteration reserves room,
 * evicts an entry, or counts towards the bound.
 */
int sub_offer(struct fanq_sub *s, struct link *lk, fanq_msg *m)
{
	struct policy *p;
	unsigned lane;
	uint64_t ord;
	int r = 0, retries = 0, rc;

	if (atomic_load_explicit(&s->evicted, memory_order_relaxed))
		return 0;
	p = atomic_load_explicit(&s->policy, memory_order_acquire);
	/* one lane: nothing to choose (a custom lane_of is not asked) */
	lane = s->levels > 1 ? policy_lane(p, s->levels, m) : 0;
	ord = ++lk->prod_ord[lane];
	atomic_fetch_add_explicit(&s->enqueued, 1, memory_order_relaxed);
	if (m->len > atomic_load_explicit(&s->max_bytes, memory_order_relaxed))
		return sub_reject(s, m, FANQ_DROP_FULL_NEW);
	while (!sub_reserve(s, m->len)) {
		int victim = policy_on_full(p, s, m, lane);

		if (victim >= 0 && sub_evict(s, (unsigned)victim, p)) {
			r = OFFER_DROPPED;
			continue;
		}
		if (victim < 0 || ++retries > OFFER_RETRIES)
			return sub_reject(s, m, policy_reject_reason(p));
		caa_cpu_relax();
	}
	rc = lane_push(&s->lanes[lane], m, ord);
	if (rc) {
		sub_unreserve(s, 1, m->len);
		/* FANQ_ECLOSED: claimed in flight by another fan-out thread's
		 * eviction, or by the release of an evicted subscriber */
		if (rc != FANQ_ECLOSED)
			return sub_reject(s, m, FANQ_DROP_FULL_NEW);
		return sub_reject(s, m, atomic_load(&s->evicted)
						? FANQ_DROP_UNSUBSCRIBED
						: policy_evict_reason(p));
	}
	sub_check_hard_limit(s);
	if (atomic_load_explicit(&s->group, memory_order_relaxed))
		sub_notify_group(s);
	return r | OFFER_ACCEPTED;
}

/*
 * Fan-out thread of lk's channel, inside rcu_read_lock: queue m, already
 * counted enqueued and within the limits when it was (a cursor's backlog
 * moving into the lane, cursor.c): as a lane keeps what it holds when the
 * limits are lowered, it takes room without a limit check.  Returns
 * OFFER_ACCEPTED, or 0 with the drop counted (the caller releases m).
 */
int sub_offer_moved(struct fanq_sub *s, struct link *lk, fanq_msg *m)
{
	uint64_t ord = ++lk->prod_ord[0], c;
	int rc;

	if (atomic_load_explicit(&s->evicted, memory_order_relaxed)) {
		sub_count_drop(s, m, FANQ_DROP_UNSUBSCRIBED);
		return 0;
	}
	c = atomic_fetch_add(&s->msgs, 1) + 1;
	atomic_fetch_add(&s->bytes, m->len);
	sub_high_water(s, c);
	rc = lane_push(&s->lanes[0], m, ord);
	if (rc) {
		sub_unreserve(s, 1, m->len);
		sub_count_drop(s, m, atomic_load(&s->evicted) ? FANQ_DROP_UNSUBSCRIBED
							      : FANQ_DROP_FULL_NEW);
		return 0;
	}
	return OFFER_ACCEPTED;
}

/*
 * Fan-out thread of lk's channel, inside rcu_read_lock: s will never be
 * offered marker->gap_first .. marker->seq - 1 (a resume the history fell
 * short of).  Takes over the marker and queues it on the highest lane,
 * which the consumer serves first; taking no room, it is never rejected.
 * If the push fails, the offer number it advanced still reports the gap,
 * before that lane's next message.
 */
void sub_offer_gap(struct fanq_sub *s, struct link *lk, fanq_msg *marker)
{
	unsigned lane = s->levels - 1;

	lk->prod_ord[lane] += marker->seq - marker->gap_first;
	if (lane_push(&s->lanes[lane], marker, lk->prod_ord[lane])) {
		fanq_msg_release(marker);
		return;
	}
	if (s->group)
		sub_notify_group(s);
}

/*
 * Owner thread.  Copies key and value; replaces an existing key.  The old
 * array is freed after a grace period: registry readers (logging, stats)
 * read it inside rcu_read_lock at any time.
 */
int fanq_sub_set_meta(fanq_sub *s, const char *key, const char *value)
{
	struct meta *old, *m;
	size_t n = 0, i, j = 0;

	if (!s || !key || !*key || !value)
		return FANQ_EINVAL;
	old = atomic_load(&s->meta);
	while (old && old->kv[n].key)
		n++;
	m = fanq_calloc(1, sizeof(*m) + (n + 2) * sizeof(m->kv[0]));
	if (!m)
		return FANQ_ENOMEM;
	for (i = 0; i < n; i++) {
		if (strcmp(old->kv[i].key, key) == 0)
			continue;
		m->kv[j].key = fanq_strdup(old->kv[i].key);
		m->kv[j].value = fanq_strdup(old->kv[i].value);
		if (!m->kv[j].key || !m->kv[j].value)
			goto nomem;
		j++;
	}
	m->kv[j].key = fanq_strdup(key);
	m->kv[j].value = fanq_strdup(value);
	if (!m->kv[j].key || !m->kv[j].value)
		goto nomem;
	atomic_store_explicit(&s->meta, m, memory_order_release);
	if (old) {
		FANQ_TSAN_RELEASE(old);
		urcu_bp_call_rcu(&old->rcu, meta_free_rcu);
	}
	return 0;
nomem:
	/* meta_free() stops at the first NULL key: a pair whose key copy
	 * failed may still hold its value copy */
	if (!m->kv[j].key)
		free(m->kv[j].value);
	meta_free(m);
	return FANQ_ENOMEM;
}

/*
 * The owner thread (valid until the key is set again), or a reader inside
 * rcu_read_lock (valid until it unlocks): see fanq.h.
 */
const char *fanq_sub_meta(const fanq_sub *s, const char *key)
{
	struct meta *m;

	if (!s || !key)
		return NULL;
	/* pairs with the release store in fanq_sub_set_meta() */
	m = atomic_load_explicit(&s->meta, memory_order_acquire);
	for (struct meta_kv *kv = m ? m->kv : NULL; kv && kv->key; kv++)
		if (strcmp(kv->key, key) == 0)
			return kv->value;
	return NULL;
}
