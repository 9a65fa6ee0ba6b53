/*
 * ring.c - the per-subscriber lane: an MPSC FIFO of segments.
 *
 * Producers (fan-out threads of the subscriber's channels) reserve an index
 * with a CAS on `tail`, after making sure the segment holding it exists, so
 * a reserved slot can always be filled (an allocation failure happens
 * before the reservation and rejects the message).  The slot is published
 * with a release store of its message pointer.
 *
 * Takers (the consumer, and evictors under drop-oldest/priority) claim the
 * head index with a CAS on `head`, after reading the slot; the consumer
 * claims the ready slots it read in the head segment with one CAS.  A
 * slot whose index is reserved but whose message is not yet stored reads
 * NULL: the taker reports "nothing ready" instead of waiting, so nobody
 * ever waits for anybody.
 *
 * The taker of a segment's last slot retires the segment: it moves
 * head_seg and tail_seg past it, then frees it with call_rcu().  Producers
 * and takers only touch segments inside rcu_read_lock(), so a pointer they
 * loaded before the retirement stays valid until they unlock.  A producer
 * reserving a segment's last index first links the next segment, so the
 * retiring taker always finds a successor.
 */
#include <stdlib.h>

#include "internal.h"

static struct lane_seg *seg_new(uint64_t base)
{
	struct lane_seg *s = fanq_calloc(1, sizeof(*s));

	if (s)
		s->base = base;
	return s;
}

static void seg_free_rcu(struct rcu_head *head)
{
	struct lane_seg *s = caa_container_of(head, struct lane_seg, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(s);
	free(s);
}

/* Producer, inside rcu_read_lock: the successor of s, created if missing. */
static struct lane_seg *seg_next(struct lane_seg *s)
{
	/* pairs with the release CAS below and in other producers */
	struct lane_seg *n = atomic_load_explicit(&s->next, memory_order_acquire);
	struct lane_seg *expect = NULL;

	if (n)
		return n;
	n = seg_new(s->base + LANE_SEG);
	if (!n)
		return NULL;
	if (atomic_compare_exchange_strong_explicit(&s->next, &expect, n,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return n;
	free(n);
	return expect;
}

/* Producer: the first segment of a fresh lane. */
static struct lane_seg *lane_first_seg(struct lane *l)
{
	struct lane_seg *expect = NULL, *s = seg_new(0);

	if (!s)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(&l->tail_seg, &expect, s,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		free(s);
		return expect;
	}
	/* takers see head_seg only after it is complete: pairs with the
	 * acquire load in lane_find_head_seg() */
	atomic_store_explicit(&l->head_seg, s, memory_order_release);
	return s;
}

/*
 * Producer, inside rcu_read_lock: the segment holding index t, creating
 * it (and, for a segment's last index, its successor).  NULL: no memory,
 * or tail_seg already moved past t (the caller's CAS on tail will fail).
 */
static struct lane_seg *lane_seg_for_push(struct lane *l, uint64_t t)
{
	struct lane_seg *s = atomic_load_explicit(&l->tail_seg, memory_order_acquire);

	if (!s)
		s = lane_first_seg(l);
	while (s && t >= s->base + LANE_SEG) {
		struct lane_seg *n = seg_next(s);
		struct lane_seg *cur = s;

		if (!n)
			return NULL;
		atomic_compare_exchange_strong(&l->tail_seg, &cur, n);
		s = n;
	}
	if (!s || t < s->base)
		return NULL;
	if (t == s->base + LANE_SEG - 1 && !seg_next(s))
		return NULL;
	return s;
}

/*
 * Producer, inside rcu_read_lock.  Appends m (the lane takes over the
 * caller's reference).  Returns 0, or FANQ_ENOMEM with nothing changed.
 */
int lane_push(struct lane *l, fanq_msg *m, uint64_t ord)
{
	for (;;) {
		uint64_t t = atomic_load_explicit(&l->tail, memory_order_acquire);
		struct lane_seg *s = lane_seg_for_push(l, t);

		if (!s) {
			if (atomic_load(&l->tail) != t)
				continue; /* raced: another producer moved on */
			return FANQ_ENOMEM;
		}
		if (!atomic_compare_exchange_weak_explicit(&l->tail, &t, t + 1,
							   memory_order_acq_rel,
							   memory_order_relaxed))
			continue;
		struct lane_slot *slot = &s->slot[t - s->base];

		fanq_msg *expect = NULL;

		slot->ord = ord;
		/* publishes ord and the message; pairs with the acquire load
		 * in lane_read().  Fails only if an evictor already claimed
		 * the slot (LANE_EVICTED): the message was dropped in flight */
		if (atomic_compare_exchange_strong_explicit(&slot->msg, &expect, m,
							    memory_order_acq_rel,
							    memory_order_acquire))
			return 0;
		return FANQ_ECLOSED;
	}
}

/* Taker, inside rcu_read_lock: segment holding index h, or NULL. */
static struct lane_seg *lane_find_head_seg(struct lane *l, uint64_t h)
{
	struct lane_seg *s = atomic_load_explicit(&l->head_seg, memory_order_acquire);

	while (s && h >= s->base + LANE_SEG)
		s = atomic_load_explicit(&s->next, memory_order_acquire);
	if (!s || h < s->base)
		return NULL;
	return s;
}

/* Taker: read the entry at head h without claiming it. */
static fanq_msg *lane_read(struct lane *l, uint64_t h, struct lane_seg **segp,
			   uint64_t *ord)
{
	struct lane_seg *s;
	fanq_msg *m;

	if (h >= atomic_load_explicit(&l->tail, memory_order_acquire))
		return NULL;
	s = lane_find_head_seg(l, h);
	if (!s)
		return NULL;
	/* pairs with the release CAS in lane_push() */
	m = atomic_load_explicit(&s->slot[h - s->base].msg, memory_order_acquire);
	*segp = s;
	if (!m || m == LANE_EVICTED)
		return m; /* reserved and not yet written, or evicted so */
	*ord = s->slot[h - s->base].ord;
	return m;
}

/*
 * Taker, inside rcu_read_lock: move *p forward until it is past s.  Both
 * segment pointers only ever move forward (CAS from a segment to its
 * successor), so two takers retiring neighbouring segments in either
 * order leave them past both.
 */
static void seg_ptr_advance(_Atomic(struct lane_seg *) *p, struct lane_seg *s)
{
	for (;;) {
		struct lane_seg *cur = atomic_load_explicit(p, memory_order_acquire);
		struct lane_seg *n;

		if (!cur || cur->base > s->base)
			return;
		/* cur->next exists: the producer of cur's last index linked it */
		n = atomic_load_explicit(&cur->next, memory_order_acquire);
		atomic_compare_exchange_strong_explicit(p, &cur, n,
							memory_order_acq_rel,
							memory_order_acquire);
	}
}

/* Taker that claimed the last slot of s: unlink s, free after a grace period. */
static void lane_retire(struct lane *l, struct lane_seg *s)
{
	seg_ptr_advance(&l->head_seg, s);
	seg_ptr_advance(&l->tail_seg, s);
	FANQ_TSAN_RELEASE(s);
	urcu_bp_call_rcu(&s->rcu, seg_free_rcu);
}

/* Taker: claim index h of segment s; the claimer of a last slot retires. */
static bool lane_claim(struct lane *l, uint64_t h, struct lane_seg *s)
{
	if (!atomic_compare_exchange_strong_explicit(&l->head, &h, h + 1,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return false;
	if (h == s->base + LANE_SEG - 1)
		lane_retire(l, s);
	return true;
}

/*
 * Evictor, inside rcu_read_lock.  Takes the oldest entry and the caller
 * gets the lane's reference.  NULL when empty.  A slot still being written
 * is claimed as LANE_EVICTED instead (its producer then counts the drop
 * and releases the room) and LANE_EVICTED is returned.  Lock-free: a
 * failed CAS means another taker made progress.
 */
fanq_msg *lane_evict(struct lane *l)
{
	for (;;) {
		uint64_t h = atomic_load_explicit(&l->head, memory_order_acquire);
		struct lane_seg *s = NULL;
		uint64_t ord;
		fanq_msg *m = lane_read(l, h, &s, &ord);

		if (!m && s) {
			fanq_msg *expect = NULL;

			/* fails if the producer wrote it meanwhile: read again;
			 * another evictor's mark is claimed like our own */
			if (!atomic_compare_exchange_strong(&s->slot[h - s->base].msg,
							    &expect, LANE_EVICTED) &&
			    expect != LANE_EVICTED)
				continue;
			m = LANE_EVICTED;
		}
		if (!m)
			return NULL;
		if (lane_claim(l, h, s))
			return m;
	}
}

/*
 * Consumer, inside rcu_read_lock: read up to max (<= LANE_SEG) entries
 * from the head without taking them or copying them, stopping at a slot
 * still being written and at the end of the head segment; the caller
 * reads them with lane_batch_msg() and lane_batch_ord().  Entries an
 * evictor claimed in flight read LANE_EVICTED.  Returns how many.
 */
unsigned lane_read_batch(struct lane *l, struct lane_batch *b, unsigned max)
{
	uint64_t h = atomic_load_explicit(&l->head, memory_order_acquire);
	struct lane_slot *slot;
	struct lane_seg *s;
	unsigned n;

	/* No look at tail (the producers' line): a slot at or past tail is
	 * NULL (segments start zeroed, evictors mark only below tail), and
	 * the segment holding head exists once any index of it was reserved. */
	if (!(s = lane_find_head_seg(l, h)))
		return 0;
	if (max > s->base + LANE_SEG - h)
		max = (unsigned)(s->base + LANE_SEG - h);
	b->head = h;
	b->seg = s;
	b->slot = slot = &s->slot[h - s->base];
	/* pairs with the release CAS in lane_push(); NULL: reserved, not yet
	 * written, and the later ones wait for it */
	for (n = 0; n < max; n++, slot++)
		if (!atomic_load_explicit(&slot->msg, memory_order_acquire))
			break;
	return n;
}

/*
 * Consumer, inside rcu_read_lock: take the first n entries b read with
 * one CAS (read slots are final, and head never moves back, so a CAS
 * from the head they were read at makes them the caller's); the caller
 * gets the lane's reference on each message.  False when an evictor took
 * the head meanwhile: read again.  Once it has released the room they
 * held, the caller calls lane_batch_done(): retiring a segment may wake
 * liburcu's call_rcu thread, which must not happen while a full
 * drop-oldest publisher waits for that room.
 */
bool lane_take_batch(struct lane *l, const struct lane_batch *b, unsigned n)
{
	uint64_t h = b->head;

	return atomic_compare_exchange_strong_explicit(&l->head, &h, h + n,
						       memory_order_acq_rel,
						       memory_order_relaxed);
}

/* Consumer, after lane_take_batch(l, b, n): retire the segment if that
 * took its last slot (lane_claim() does this for an evictor's take). */
void lane_batch_done(struct lane *l, const struct lane_batch *b, unsigned n)
{
	if (b->head + n == b->seg->base + LANE_SEG)
		lane_retire(l, b->seg);
}

/*
 * Consumer: whether an entry is reserved at head (maybe still being
 * written).  It reads the producers' tail only when what it saw last
 * time is used up, as an SPSC ring's consumer caches the producer index:
 * a consumer that is behind then never pulls the producers' cache line.
 */
bool lane_ready(struct lane *l)
{
	uint64_t h = atomic_load_explicit(&l->head, memory_order_relaxed);

	if (h < l->tail_seen)
		return true;
	l->tail_seen = atomic_load_explicit(&l->tail, memory_order_relaxed);
	return h < l->tail_seen;
}

/* Any thread: entries reserved and not taken (may include one in flight). */
uint64_t lane_depth(const struct lane *l)
{
	uint64_t h = atomic_load_explicit(&l->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&l->tail, memory_order_relaxed);

	return t > h ? t - h : 0;
}

/*
 * Last user, a grace period after any producer or taker could reach the
 * lane, which was emptied with lane_evict() first (sub_release_backlog()):
 * frees the segments left.
 */
void lane_destroy(struct lane *l)
{
	struct lane_seg *s = atomic_load(&l->head_seg);

	while (s) {
		struct lane_seg *n = atomic_load(&s->next);

		free(s);
		s = n;
	}
}
