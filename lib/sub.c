/*
 * sub.c - subscribers: lifecycle, settings, memberships, and the offer
 * path a fan-out thread runs for each member (admission, eviction, push).
 *
 * Capacity is reserved before a push (msgs and bytes, each with a CAS
 * that checks its limit) and released when an entry leaves the lanes, so
 * the limits hold at every instant.  Accounting: every offer counts
 * `enqueued`; each message then ends in exactly one of delivered,
 * dropped[reason] or still queued/held.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Atomic uint64_t next_sub_id = 1;

static struct policy *policy_new(enum fanq_policy_kind kind, const fanq_policy *ops)
{
	struct policy *p = calloc(1, sizeof(*p));

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
	s->lanes = fanq_zalloc_aligned(sizeof(*s->lanes));
	s->policy = policy_new(FANQ_DROP_NEW, NULL);
	if (!s->lanes || !s->policy)
		goto fail;
	s->id = atomic_fetch_add(&next_sub_id, 1);
	s->bus = bus;
	atomic_init(&s->max_msgs, FANQ_DEFAULT_QUEUE_MSGS);
	atomic_init(&s->max_bytes, FANQ_DEFAULT_QUEUE_BYTES);
	atomic_init(&s->refs, 1);
	cds_wfcq_node_init(&s->ready_node);
	atomic_fetch_add(&bus->live_subs, 1);
	*out = s;
	return 0;
fail:
	if (s) {
		free(s->lanes);
		free(s->policy);
	}
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

static void meta_free(struct meta_kv *kv)
{
	for (struct meta_kv *p = kv; p && p->key; p++) {
		free(p->key);
		free(p->value);
	}
	free(kv);
}

/* Last reference: no fan-out thread can reach s any more. */
static void sub_free(struct fanq_sub *s)
{
	uint64_t left = 0;

	sub_release_held(s, FANQ_DROP_UNSUBSCRIBED);
	drain_free(s);
	for (unsigned i = 0; i < s->levels; i++)
		left += lane_destroy(&s->lanes[i]);
	atomic_fetch_add(&s->dropped[FANQ_DROP_UNSUBSCRIBED], left);
	while (s->links) {
		struct link *n = s->links->next;

		free(s->links);
		s->links = n;
	}
	free(s->lanes);
	free(atomic_load(&s->policy));
	meta_free(atomic_load(&s->meta));
	free(s);
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
	if (!s)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	s->closed = true;
	for (struct link *lk = s->links; lk; lk = lk->next)
		if (lk->member)
			fanq_unsubscribe(s, lk->ch);
	if (s->group)
		group_detach(s->group);
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
		struct lane *lanes;

		if (s->links) { /* fan-out threads may be in the lanes */
			free(p);
			return FANQ_EBUSY;
		}
		lanes = fanq_zalloc_aligned(levels * sizeof(*lanes));
		if (!lanes) {
			free(p);
			return FANQ_ENOMEM;
		}
		free(s->lanes);
		s->lanes = lanes;
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
struct link *sub_link_find(struct fanq_sub *s, const struct fanq_channel *ch)
{
	for (struct link *lk = s->links; lk; lk = lk->next)
		if (lk->ch == ch)
			return lk;
	return NULL;
}

/* Owner thread.  See fanq.h. */
int fanq_subscribe(fanq_sub *s, fanq_channel *ch)
{
	struct link *lk;
	struct member *mb;

	if (!s || !ch || ch->bus != s->bus)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	lk = sub_link_find(s, ch);
	if (lk && lk->member)
		return FANQ_EEXIST;
	mb = calloc(1, sizeof(*mb));
	if (!mb)
		return FANQ_ENOMEM;
	if (!lk) {
		lk = fanq_zalloc_aligned(sizeof(*lk));
		if (!lk) {
			free(mb);
			return FANQ_ENOMEM;
		}
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
	channel_queue_op(ch, &mb->add);
	return 0;
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
	channel_queue_op(ch, &mb->del);
	return 0;
}

/* Fan-out thread: reserve room for len bytes, or fail without change. */
static bool sub_reserve(struct fanq_sub *s, uint64_t len)
{
	uint64_t max_m = atomic_load_explicit(&s->max_msgs, memory_order_relaxed);
	uint64_t max_b = atomic_load_explicit(&s->max_bytes, memory_order_relaxed);
	uint64_t c = atomic_load_explicit(&s->msgs, memory_order_relaxed);
	uint64_t b, hw;

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
	hw = atomic_load_explicit(&s->high_water, memory_order_relaxed);
	while (c + 1 > hw && !atomic_compare_exchange_weak(&s->high_water, &hw, c + 1))
		;
	return true;
}

/* Any taker: msgs entries of bytes bytes in all left the lanes. */
void sub_unreserve(struct fanq_sub *s, uint64_t msgs, uint64_t bytes)
{
	if (bytes)
		atomic_fetch_sub_explicit(&s->bytes, bytes, memory_order_relaxed);
	if (msgs)
		atomic_fetch_sub_explicit(&s->msgs, msgs, memory_order_relaxed);
}

void sub_count_drop(struct fanq_sub *s, enum fanq_drop_reason why)
{
	atomic_fetch_add_explicit(&s->dropped[why], 1, memory_order_relaxed);
}

/* Evictor, inside rcu_read_lock: drop the oldest entry of a lane. */
static bool sub_evict(struct fanq_sub *s, unsigned lane, const struct policy *p)
{
	fanq_msg *m = lane_evict(&s->lanes[lane]);

	if (!m)
		return false;
	if (m == LANE_EVICTED)
		return true; /* its producer counts the drop and frees the room */
	sub_unreserve(s, 1, m->len);
	sub_count_drop(s, policy_evict_reason(p));
	fanq_msg_release(m);
	return true;
}

/* Fan-out thread (or owner at attach): s has data; wake its group once. */
void sub_notify_group(struct fanq_sub *s)
{
	/* seq_cst exchange after the push: pairs with the exchange that
	 * clears ready in fanq_group_next_ready() (lib/group.c, step 2) */
	if (atomic_exchange(&s->ready, 1) == 0)
		group_enqueue(s->group, s);
}

/* Fan-out thread: the incoming message is dropped for why. */
static int sub_reject(struct fanq_sub *s, enum fanq_drop_reason why)
{
	sub_count_drop(s, why);
	return OFFER_DROPPED;
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
 * under its policy; returns OFFER_* bits.  With OFFER_ACCEPTED the lane
 * has taken one of the references the caller holds for this purpose
 * (apply_publish() takes one per member up front).  Lock-free: every loop
 * iteration reserves room, evicts an entry, or counts towards the bound.
 */
int sub_offer(struct fanq_sub *s, struct link *lk, fanq_msg *m)
{
	struct policy *p = atomic_load_explicit(&s->policy, memory_order_acquire);
	/* one lane: nothing to choose (a custom lane_of is not asked) */
	unsigned lane = s->levels > 1 ? policy_lane(p, s->levels, m) : 0;
	uint64_t ord = ++lk->prod_ord[lane];
	int r = 0, retries = 0, rc;

	atomic_fetch_add_explicit(&s->enqueued, 1, memory_order_relaxed);
	if (m->len > atomic_load_explicit(&s->max_bytes, memory_order_relaxed))
		return sub_reject(s, FANQ_DROP_FULL_NEW);
	while (!sub_reserve(s, m->len)) {
		int victim = policy_on_full(p, s, m, lane);

		if (victim >= 0 && sub_evict(s, (unsigned)victim, p)) {
			r = OFFER_DROPPED;
			continue;
		}
		if (victim < 0 || ++retries > OFFER_RETRIES)
			return sub_reject(s, policy_reject_reason(p));
		caa_cpu_relax();
	}
	rc = lane_push(&s->lanes[lane], m, ord);
	if (rc) {
		sub_unreserve(s, 1, m->len);
		/* FANQ_ECLOSED: another fan-out thread evicted it in flight */
		return sub_reject(s, rc == FANQ_ECLOSED ? policy_evict_reason(p)
							 : FANQ_DROP_FULL_NEW);
	}
	if (s->group)
		sub_notify_group(s);
	return r | OFFER_ACCEPTED;
}

/* Owner thread.  Copies key and value; replaces an existing key. */
int fanq_sub_set_meta(fanq_sub *s, const char *key, const char *value)
{
	struct meta_kv *old, *kv;
	size_t n = 0, i, j = 0;

	if (!s || !key || !*key || !value)
		return FANQ_EINVAL;
	old = atomic_load(&s->meta);
	while (old && old[n].key)
		n++;
	kv = calloc(n + 2, sizeof(*kv));
	if (!kv)
		return FANQ_ENOMEM;
	for (i = 0; i < n; i++) {
		if (strcmp(old[i].key, key) == 0)
			continue;
		kv[j].key = strdup(old[i].key);
		kv[j].value = strdup(old[i].value);
		if (!kv[j].key || !kv[j].value)
			goto nomem;
		j++;
	}
	kv[j].key = strdup(key);
	kv[j].value = strdup(value);
	if (!kv[j].key || !kv[j].value)
		goto nomem;
	atomic_store_explicit(&s->meta, kv, memory_order_release);
	/* readers (logging, stats) can only hold it once s is subscribed */
	if (old && s->links)
		urcu_bp_synchronize_rcu();
	meta_free(old);
	return 0;
nomem:
	meta_free(kv);
	return FANQ_ENOMEM;
}

/* Owner thread (the pointer is valid until the key is set again). */
const char *fanq_sub_meta(const fanq_sub *s, const char *key)
{
	struct meta_kv *kv;

	if (!s || !key)
		return NULL;
	kv = atomic_load_explicit(&s->meta, memory_order_acquire);
	for (; kv && kv->key; kv++)
		if (strcmp(kv->key, key) == 0)
			return kv->value;
	return NULL;
}

/* Any thread.  See fanq.h. */
int fanq_sub_stats_get(const fanq_sub *s, fanq_sub_stats *out)
{
	if (!s || !out)
		return FANQ_EINVAL;
	memset(out, 0, sizeof(*out));
	out->id = s->id;
	out->queued_msgs = atomic_load(&s->msgs) + atomic_load(&s->held);
	out->queued_bytes = atomic_load(&s->bytes);
	out->high_water_msgs = atomic_load(&s->high_water);
	out->enqueued = atomic_load(&s->enqueued);
	out->delivered = atomic_load(&s->delivered);
	for (int i = 0; i < FANQ_DROP_REASONS; i++)
		out->dropped[i] = atomic_load(&s->dropped[i]);
	out->max_msgs = atomic_load(&s->max_msgs);
	out->max_bytes = atomic_load(&s->max_bytes);
	out->policy = atomic_load(&s->policy)->kind;
	return 0;
}
