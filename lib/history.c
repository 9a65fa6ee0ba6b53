/*
 * history.c - a channel's optional bounded history: its last messages,
 * limited by count, bytes and age, holding references to the very
 * messages its subscribers got (no copy).
 *
 * One writer: the thread holding the channel's fan-out role (channel.c)
 * appends every message it sequences, evicts, replays for
 * fanq_subscribe_after() and applies fanq_channel_set_history().  So the
 * writer needs no atomic read-modify-write and a replay sees the history
 * exactly as of its place in the channel's order.
 * Readers: any thread in fanq_channel_history_read(), inside
 * rcu_read_lock(), without a lock and without writing shared memory.
 *
 * Layout: the history holds the contiguous run of seqs [first, last]
 * (empty when first == last + 1; last is always the channel's last seq)
 * in a power-of-two array indexed by seq & mask.  When the array is full
 * the writer copies it into one twice as large and publishes that
 * (amortised O(1) per append), up to the power of two at or above max_msgs
 * (16 slots at least); it keeps its size until the history is turned off.
 * A channel without history pays one branch per publish.
 *
 * Memory ordering and reclamation (the writer's stores are releases, the
 * readers' loads acquires):
 *  - append: fill the slot, then store `last`.  A reader loads `last`
 *    before the array pointer, so the array it uses holds every seq up to
 *    that `last` (a grown array is published before anything is appended
 *    to it).
 *  - evict: store `first` past the entry, then release the history's
 *    reference after a grace period that starts later.  A reader loads a
 *    slot, then loads `first` again: if the entry is still at or after
 *    `first`, its eviction came after the reader's critical section
 *    began, so the reference is released only after that section ends
 *    and the reader may take its own.  A slot is reused (for seq + size)
 *    only after its entry was evicted, so the same check rejects a slot
 *    overwritten under the reader.
 *  - evicted references are gathered in batches, one call_rcu() per
 *    HISTORY_BATCH of them (or HISTORY_BATCH_BYTES of payload), so that
 *    an eviction touches neither the message nor liburcu.  The batch
 *    being filled waits for the next evictions: at most that much is held
 *    past the limits.  Without memory for a batch, a message goes alone,
 *    through its own rcu head.
 *  - a replaced array is frozen and freed after a grace period; a history
 *    turned off is unpublished, then freed with its references after one.
 *
 * Age uses history_now_ms(), the one time source here, read only while
 * an age limit is set.  Expired entries are evicted when the writer next
 * runs (a publish, a resume, new limits); readers skip them meanwhile.
 */
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#define HISTORY_FIRST_SLOTS 16u
#define HISTORY_BATCH 64u
#define HISTORY_BATCH_BYTES (64u << 10)

struct hist_slot {
	_Atomic(fanq_msg *) msg;
	_Atomic int64_t t_ms;  /* when appended (while an age limit is set) */
	uint32_t len;          /* writer only: m->len, without touching m */
};

/* Evicted references released together after one grace period. */
struct hist_batch {
	struct rcu_head rcu;
	unsigned n;
	fanq_msg *m[HISTORY_BATCH];
};

struct hist_ring {
	struct rcu_head rcu;
	uint64_t mask;         /* slots - 1 */
	struct hist_slot slot[];
};

struct history {
	/* read by any thread inside rcu_read_lock; written by the writer */
	_Atomic(struct hist_ring *) ring; /* NULL until the first append */
	_Atomic uint64_t first, last;
	_Atomic uint64_t max_age_ms;      /* 0: no age limit */
	/* writer only */
	uint64_t max_msgs, max_bytes;     /* max_bytes 0: no byte limit */
	uint64_t bytes;                   /* payload bytes held */
	struct hist_batch *evicted;       /* being filled, or NULL */
	uint64_t evicted_bytes;
	struct rcu_head rcu;
};

/*
 * Monotonic milliseconds: the history's only time source.  The coarse
 * clock (a few ms resolution) costs a fraction of the precise one, which
 * matters once per publish.
 */
static int64_t history_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool history_expired(uint64_t max_age_ms, int64_t t_ms, int64_t now)
{
	return max_age_ms && now - t_ms > (int64_t)max_age_ms;
}

/* Writer: the time to stamp and judge entries by (0: no age limit). */
static int64_t history_clock(struct history *h)
{
	return atomic_load_explicit(&h->max_age_ms, memory_order_relaxed)
		       ? history_now_ms() : 0;
}

/* Writer: the oldest entry's slot (the history is not empty). */
static struct hist_slot *history_oldest_slot(struct history *h)
{
	struct hist_ring *r = atomic_load_explicit(&h->ring, memory_order_relaxed);
	uint64_t first = atomic_load_explicit(&h->first, memory_order_relaxed);

	return &r->slot[first & r->mask];
}

static void batch_release(struct hist_batch *b)
{
	for (unsigned i = 0; i < b->n; i++)
		fanq_msg_release(b->m[i]);
	free(b);
}

static void batch_release_rcu(struct rcu_head *head)
{
	struct hist_batch *b = caa_container_of(head, struct hist_batch, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(b);
	batch_release(b);
}

static void msg_release_rcu(struct rcu_head *head)
{
	fanq_msg *m = caa_container_of(head, fanq_msg, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(m);
	fanq_msg_release(m);
}

/* Writer: the evicted references gathered start their grace period. */
static void history_flush_evicted(struct history *h)
{
	FANQ_TSAN_RELEASE(h->evicted);
	urcu_bp_call_rcu(&h->evicted->rcu, batch_release_rcu);
	h->evicted = NULL;
	h->evicted_bytes = 0;
}

/*
 * Writer, after `first` moved past m: release the history's reference
 * after a grace period.
 */
static void history_retire(struct history *h, fanq_msg *m, uint32_t len)
{
	struct hist_batch *b = h->evicted ? h->evicted : fanq_malloc(sizeof(*b));

	if (!b) { /* no batch: this one goes alone */
		FANQ_TSAN_RELEASE(m);
		urcu_bp_call_rcu(&m->rcu, msg_release_rcu);
		return;
	}
	if (!h->evicted) {
		b->n = 0;
		h->evicted = b;
	}
	b->m[b->n++] = m;
	h->evicted_bytes += len;
	if (b->n == HISTORY_BATCH || h->evicted_bytes >= HISTORY_BATCH_BYTES)
		history_flush_evicted(h);
}

/* Writer: drop the oldest entry. */
static void history_evict(struct history *h)
{
	uint64_t first = atomic_load_explicit(&h->first, memory_order_relaxed);
	struct hist_slot *slot = history_oldest_slot(h);

	h->bytes -= slot->len;
	/* before the grace period starts: pairs with the readers' re-load */
	atomic_store_explicit(&h->first, first + 1, memory_order_release);
	history_retire(h, atomic_load_explicit(&slot->msg, memory_order_relaxed),
		       slot->len);
}

/*
 * Writer: evict until `more` entries of `more_bytes` in all would fit the
 * count and byte limits and the oldest entry has not expired at `now`.
 */
static void history_trim(struct history *h, int64_t now, uint64_t more,
			 uint64_t more_bytes)
{
	uint64_t max_age = atomic_load_explicit(&h->max_age_ms, memory_order_relaxed);

	for (;;) {
		uint64_t first = atomic_load_explicit(&h->first, memory_order_relaxed);
		uint64_t last = atomic_load_explicit(&h->last, memory_order_relaxed);
		uint64_t held = last + 1 - first;

		if (!held)
			return;
		if (held + more <= h->max_msgs &&
		    (!h->max_bytes || h->bytes + more_bytes <= h->max_bytes) &&
		    !history_expired(max_age, atomic_load_explicit(
				     &history_oldest_slot(h)->t_ms,
				     memory_order_relaxed), now))
			return;
		history_evict(h);
	}
}

static void ring_free_rcu(struct rcu_head *head)
{
	struct hist_ring *r = caa_container_of(head, struct hist_ring, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(r);
	free(r);
}

/*
 * Writer: make room for one more entry, doubling the array when it is
 * full.  If that allocation fails, the oldest entry makes the room.
 * Returns false only when no array can be had at all.
 */
static bool history_make_room(struct history *h)
{
	struct hist_ring *old = atomic_load_explicit(&h->ring, memory_order_relaxed);
	uint64_t first = atomic_load_explicit(&h->first, memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&h->last, memory_order_relaxed);
	uint64_t slots = old ? 2 * (old->mask + 1) : HISTORY_FIRST_SLOTS;
	struct hist_ring *r;

	if (old && last + 1 - first <= old->mask)
		return true;
	r = fanq_malloc(sizeof(*r) + slots * sizeof(r->slot[0]));
	if (!r) {
		if (old)
			history_evict(h);
		return old != NULL;
	}
	r->mask = slots - 1;
	for (uint64_t s = first; s <= last; s++) {
		struct hist_slot *from = &old->slot[s & old->mask];
		struct hist_slot *to = &r->slot[s & r->mask];

		atomic_init(&to->msg, atomic_load_explicit(&from->msg,
							   memory_order_relaxed));
		atomic_init(&to->t_ms, atomic_load_explicit(&from->t_ms,
							    memory_order_relaxed));
		to->len = from->len;
	}
	/* pairs with the readers' acquire load of the array */
	atomic_store_explicit(&h->ring, r, memory_order_release);
	if (old) {
		FANQ_TSAN_RELEASE(old);
		urcu_bp_call_rcu(&old->rcu, ring_free_rcu);
	}
	return true;
}

/*
 * Writer: the history gives up on everything up to m, which it cannot
 * hold (larger than max_bytes, or no memory): it restarts after m, so
 * that what it holds stays contiguous.
 */
static void history_skip(struct history *h, const fanq_msg *m)
{
	while (atomic_load_explicit(&h->first, memory_order_relaxed) <=
	       atomic_load_explicit(&h->last, memory_order_relaxed))
		history_evict(h);
	/* `first` before `last`: a reader that sees the new `last` sees an
	 * empty history, never a slot that was not written */
	atomic_store_explicit(&h->first, m->seq + 1, memory_order_release);
	atomic_store_explicit(&h->last, m->seq, memory_order_release);
}

/*
 * Fan-out thread, inside rcu_read_lock, for every message it sequences
 * (m->seq == last + 1).  The history takes a reference.
 */
void history_append(struct history *h, fanq_msg *m)
{
	int64_t now = history_clock(h);
	struct hist_ring *r;
	struct hist_slot *slot;

	if (h->max_bytes && m->len > h->max_bytes) {
		history_skip(h, m);
		return;
	}
	history_trim(h, now, 1, m->len);
	if (!history_make_room(h)) {
		history_skip(h, m);
		return;
	}
	r = atomic_load_explicit(&h->ring, memory_order_relaxed);
	slot = &r->slot[m->seq & r->mask];
	fanq_msg_ref(m);
	h->bytes += m->len;
	slot->len = m->len;
	atomic_store_explicit(&slot->t_ms, now, memory_order_relaxed);
	/* pairs with the readers' acquire load of the slot */
	atomic_store_explicit(&slot->msg, m, memory_order_release);
	/* pairs with the readers' acquire load of `last` */
	atomic_store_explicit(&h->last, m->seq, memory_order_release);
}

/*
 * Fan-out thread, inside rcu_read_lock: evicts expired entries and
 * returns the oldest seq held, or the channel's last seq + 1 when there
 * is none (no history, or an empty one).
 */
uint64_t history_oldest(struct fanq_channel *ch)
{
	struct history *h = atomic_load_explicit(&ch->hist, memory_order_relaxed);

	if (!h)
		return atomic_load_explicit(&ch->seq, memory_order_relaxed) + 1;
	history_trim(h, history_clock(h), 0, 0);
	return atomic_load_explicit(&h->first, memory_order_relaxed);
}

/*
 * Fan-out thread, inside rcu_read_lock, right after history_oldest():
 * offers lk's subscriber every message held with seq > after_seq, oldest
 * first, through the ordinary offer path (limits, policy, accounting).
 * Returns how many it offered.
 */
uint64_t history_replay(struct fanq_channel *ch, struct link *lk,
			uint64_t after_seq)
{
	struct history *h = atomic_load_explicit(&ch->hist, memory_order_relaxed);
	struct hist_ring *r;
	uint64_t s, last;

	if (!h)
		return 0;
	r = atomic_load_explicit(&h->ring, memory_order_relaxed);
	s = atomic_load_explicit(&h->first, memory_order_relaxed);
	last = atomic_load_explicit(&h->last, memory_order_relaxed);
	if (s <= after_seq)
		s = after_seq + 1;
	for (uint64_t i = s; i <= last; i++) {
		fanq_msg *m = atomic_load_explicit(&r->slot[i & r->mask].msg,
						   memory_order_relaxed);

		fanq_msg_ref(m); /* the lane's, if sub_offer() queues it */
		if (!(sub_offer(lk->sub_owner, lk, m) & OFFER_ACCEPTED))
			fanq_msg_release(m);
	}
	return s <= last ? last + 1 - s : 0;
}

/*
 * Any thread inside rcu_read_lock: up to n references, oldest first, to
 * the contiguous run of unexpired messages held with seq > after_seq.
 */
static size_t history_read(struct history *h, uint64_t after_seq,
			   fanq_msg **out, size_t n)
{
	/* `last` before the array: see the top of the file */
	uint64_t last = atomic_load_explicit(&h->last, memory_order_acquire);
	struct hist_ring *r = atomic_load_explicit(&h->ring, memory_order_acquire);
	/* a reader that sees an age limit sees the stamps made for it */
	uint64_t max_age = atomic_load_explicit(&h->max_age_ms, memory_order_acquire);
	int64_t now = max_age ? history_now_ms() : 0;
	uint64_t s = atomic_load_explicit(&h->first, memory_order_acquire);
	size_t got = 0;

	if (s <= after_seq)
		s = after_seq + 1;
	for (; s <= last && got < n; s++) {
		struct hist_slot *slot = &r->slot[s & r->mask];
		fanq_msg *m = atomic_load_explicit(&slot->msg, memory_order_acquire);
		int64_t t = atomic_load_explicit(&slot->t_ms, memory_order_relaxed);
		uint64_t first = atomic_load_explicit(&h->first, memory_order_acquire);

		if (first > s) { /* evicted under us */
			if (got)
				break; /* keep the run contiguous */
			s = first - 1;
			continue;
		}
		/* stamped in time order: expired entries are a prefix */
		if (history_expired(max_age, t, now))
			continue;
		fanq_msg_ref(m);
		out[got++] = m;
	}
	/* done with r: its free after the grace period comes after this
	 * (TSan cannot see grace periods; pairs with ring_free_rcu()) */
	if (r)
		FANQ_TSAN_RELEASE(r);
	return got;
}

/* Any thread.  See fanq.h. */
int fanq_channel_history_read(const fanq_channel *ch, uint64_t after_seq,
			      fanq_msg **out, size_t n)
{
	struct history *h;
	size_t got = 0;

	if (!ch || !out || n == 0 || n > INT32_MAX)
		return FANQ_EINVAL;
	urcu_bp_read_lock();
	/* pairs with the release store in history_apply_op() */
	h = atomic_load_explicit(&ch->hist, memory_order_acquire);
	if (h) {
		got = history_read(h, after_seq, out, n);
		FANQ_TSAN_RELEASE(h); /* pairs with history_free_rcu() */
	}
	fanq_read_unlock();
	return (int)got;
}

/* Nobody can reach h any more: release what it holds, free it. */
void history_free(struct history *h)
{
	struct hist_ring *r;

	if (!h)
		return;
	r = atomic_load(&h->ring);
	for (uint64_t s = atomic_load(&h->first); s <= atomic_load(&h->last); s++)
		fanq_msg_release(atomic_load(&r->slot[s & r->mask].msg));
	if (h->evicted) /* evicted before h became unreachable */
		batch_release(h->evicted);
	free(r);
	free(h);
}

static void history_free_rcu(struct rcu_head *head)
{
	struct history *h = caa_container_of(head, struct history, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(h);
	history_free(h);
}

/*
 * Writer, turning an age limit on: the entries held were not stamped;
 * their age counts from now.
 */
static void history_stamp(struct history *h, int64_t now)
{
	struct hist_ring *r = atomic_load_explicit(&h->ring, memory_order_relaxed);
	uint64_t s = atomic_load_explicit(&h->first, memory_order_relaxed);

	for (; s <= atomic_load_explicit(&h->last, memory_order_relaxed); s++)
		atomic_store_explicit(&r->slot[s & r->mask].t_ms, now,
				      memory_order_relaxed);
}

/*
 * Fan-out thread, inside rcu_read_lock: apply fanq_channel_set_history()
 * in the channel's order.  A history turned on starts empty, after the
 * channel's last seq.  Frees hop.
 */
void history_apply_op(struct fanq_channel *ch, struct history_op *hop)
{
	struct history *h = atomic_load_explicit(&ch->hist, memory_order_relaxed);

	if (!hop->max_msgs) {
		if (h) {
			atomic_store_explicit(&ch->hist, NULL, memory_order_release);
			FANQ_TSAN_RELEASE(h);
			urcu_bp_call_rcu(&h->rcu, history_free_rcu);
		}
	} else {
		if (!h) {
			uint64_t seq = atomic_load_explicit(&ch->seq, memory_order_relaxed);

			h = hop->fresh;
			hop->fresh = NULL;
			atomic_init(&h->first, seq + 1);
			atomic_init(&h->last, seq);
			FANQ_TSAN_RELEASE(h);
			/* pairs with the acquire load in fanq_channel_history_read() */
			atomic_store_explicit(&ch->hist, h, memory_order_release);
		}
		if (hop->max_age_ms &&
		    !atomic_load_explicit(&h->max_age_ms, memory_order_relaxed))
			history_stamp(h, history_now_ms());
		h->max_msgs = hop->max_msgs;
		h->max_bytes = hop->max_bytes;
		/* after the stamps: pairs with the acquire load in
		 * history_read() */
		atomic_store_explicit(&h->max_age_ms, hop->max_age_ms,
				      memory_order_release);
		history_trim(h, history_clock(h), 0, 0);
	}
	free(hop->fresh);
	free(hop);
}

/* Any thread.  See fanq.h. */
int fanq_channel_set_history(fanq_channel *ch, uint64_t max_msgs,
			     uint64_t max_bytes, uint64_t max_age_ms)
{
	struct history_op *hop;

	if (!ch || max_msgs > FANQ_HISTORY_MSGS_MAX ||
	    max_age_ms > FANQ_HISTORY_AGE_MAX_MS ||
	    (!max_msgs && (max_bytes || max_age_ms)))
		return FANQ_EINVAL;
	hop = fanq_calloc(1, sizeof(*hop));
	if (!hop)
		return FANQ_ENOMEM;
	if (max_msgs) {
		hop->fresh = fanq_calloc(1, sizeof(*hop->fresh));
		if (!hop->fresh) {
			free(hop);
			return FANQ_ENOMEM;
		}
	}
	hop->op.kind = OP_HISTORY;
	hop->max_msgs = max_msgs;
	hop->max_bytes = max_bytes;
	hop->max_age_ms = max_age_ms;
	channel_queue_op(ch, &hop->op, NULL);
	return 0;
}
