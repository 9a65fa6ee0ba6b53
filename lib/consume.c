/*
 * consume.c - the consumer side of a subscriber: pop, peek, gap entries.
 *
 * One consumer thread at a time per subscriber.  Lanes are served highest
 * first.  Each lane entry carries its offer number (`ord`) within its
 * (channel, lane); the consumer remembers the last one it took, so a jump
 * means the messages in between were dropped (rejected or evicted), and a
 * GAP entry is returned first, at the place of the hole.  No drop, no cost.
 * A gap marker (a resume the history fell short of, see internal.h) is no
 * offer itself: its offer number counts only the messages it stands for,
 * and it becomes a GAP entry alone.
 *
 * The consumer takes a batch at a time: it reads the ready slots of a
 * lane's head segment, takes as many as surely fit the caller's array (a
 * message may need a GAP entry too) with one CAS, and updates
 * the subscriber's counters once per batch, all inside one RCU read-side
 * section per call.  A message a drop-oldest evictor took first is simply
 * read again from the new head.
 */
#include <limits.h>

#include "internal.h"

/* Consumer: the link of s for ch; *last caches the previous answer. */
static struct link *link_of(struct fanq_sub *s, const struct fanq_channel *ch,
			    struct link **last)
{
	/* it exists: links live as long as the subscriber */
	if (!*last || (*last)->ch != ch)
		*last = sub_link_find(s, ch);
	return *last;
}

/*
 * Consumer: the entries for a taken message, a GAP first if messages of
 * its (channel, lane) were dropped before it, written to e; for a gap
 * marker, its GAP alone (the marker is released here).  Returns 1 or 2.
 */
static unsigned msg_entries(struct link *lk, unsigned lane, fanq_msg *m,
			    uint64_t ord, fanq_entry *e)
{
	uint64_t missing = ord - lk->c_ord[lane] - !m->gap_marker;
	uint64_t first = lk->c_ord[lane] ? lk->c_seq[lane] + 1 : lk->start_seq;
	unsigned n = 0;

	if (m->gap_marker && missing == m->seq - m->gap_first)
		first = m->gap_first; /* nothing dropped before it */
	if (missing)
		e[n++] = (fanq_entry){ .kind = FANQ_ENTRY_GAP, .ch = m->ch,
				       .gap_first = first, .gap_last = m->seq - 1,
				       .gap_count = missing };
	lk->c_ord[lane] = ord;
	lk->c_seq[lane] = m->seq - m->gap_marker;
	if (m->gap_marker)
		fanq_msg_release(m);
	else
		e[n++] = (fanq_entry){ .kind = FANQ_ENTRY_MSG, .msg = m, .ch = m->ch,
				       .seq = m->seq };
	return n;
}

/*
 * Consumer, right after taking k entries of b: count their messages as
 * delivered (deliver) or held in pending, then release the room they
 * held, at once: a full drop-oldest publisher may be spinning to evict
 * and finds the lane empty (sub_offer() retries a bounded number of
 * times).  Reads only the slots just read and the messages' marker
 * flags: the window stays a few instructions whatever k.  Returns the
 * messages (k less the entries evicted in flight and the gap markers);
 * their bytes are released by the caller.
 */
static uint64_t release_taken(struct fanq_sub *s, const struct lane_batch *b,
			      unsigned k, bool deliver)
{
	uint64_t msgs = 0;

	for (unsigned j = 0; j < k; j++) {
		const fanq_msg *m = lane_batch_msg(b, j);

		msgs += m != LANE_EVICTED && !m->gap_marker; /* markers hold no room */
	}
	/* counted before the room goes, so a stats reader never sees them
	 * nowhere */
	atomic_fetch_add_explicit(deliver ? &s->delivered : &s->held, msgs,
				  memory_order_relaxed);
	sub_unreserve(s, msgs, 0);
	return msgs;
}

/*
 * Consumer, inside rcu_read_lock: take up to max_msgs messages from the
 * lanes, highest first, writing their entries to out (room >= 2) until
 * room runs out or nothing is ready.  Returns the entries written.
 */
static size_t take_lanes(struct fanq_sub *s, fanq_entry *out, size_t room,
			 unsigned max_msgs, bool deliver, struct link **lastp)
{
	struct link *last = NULL;
	struct lane_batch b;
	unsigned lane = s->levels, taken = 0;
	size_t used = 0;
	/* Under an evicting policy a batch leaves its last entry for the
	 * next claim: taking every entry at once would leave a full
	 * publisher nothing to evict until this thread has released their
	 * room, and a preemption in between would make it give up and
	 * reject (sub_offer() retries a bounded number of times).  Taken
	 * alone, the last entry has the window a single pop always had. */
	bool keep_one = atomic_load_explicit(&s->policy, memory_order_acquire)->kind !=
			FANQ_DROP_NEW;

	while (lane > 0 && room - used >= 2 && taken < max_msgs) {
		struct lane *l = &s->lanes[lane - 1];
		size_t want = room - used < max_msgs - taken ? room - used : max_msgs - taken;
		unsigned n = lane_read_batch(l, &b, want < LANE_SEG ? (unsigned)want : LANE_SEG);
		uint64_t bytes = 0;
		unsigned k, j;

		if (!n) {
			lane--;
			continue;
		}
		/* At most two entries a message (a GAP and it): what fits.
		 * Not counted exactly: until this thread's claim below, a
		 * drop-oldest evictor may take and free any message read
		 * into b, so nothing in them may be read before it. */
		k = n < (room - used) / 2 ? n : (unsigned)((room - used) / 2);
		if (keep_one && k == n && k > 1)
			k--;
		if (!lane_take_batch(l, &b, k))
			continue; /* an evictor took the head meanwhile */
		taken += (unsigned)release_taken(s, &b, k, deliver);
		for (j = 0; j < k; j++) {
			fanq_msg *m = lane_batch_msg(&b, j);

			if (m == LANE_EVICTED)
				continue; /* its producer counted the drop */
			bytes += m->len;
			used += msg_entries(link_of(s, m->ch, &last), lane - 1, m,
					    lane_batch_ord(&b, j), out + used);
		}
		/* later than msgs: with keep_one, the lane still has an entry
		 * to evict meanwhile, or this took a single one */
		sub_unreserve(s, 0, bytes);
		lane_batch_done(l, &b, k);
		lane = s->levels; /* a higher lane may have filled meanwhile */
	}
	*lastp = last;
	return used;
}

/*
 * Consumer, inside rcu_read_lock: take_lanes() after the cursor (whose
 * channel has nothing in the lanes while it is on, see cursor.c).  *lk:
 * the link of the last message taken from the lanes, or NULL.
 */
static size_t take(struct fanq_sub *s, fanq_entry *out, size_t room,
		   unsigned max_msgs, bool deliver, struct link **lk)
{
	struct link *cl = atomic_load_explicit(&s->cursor_link, memory_order_acquire);
	size_t used = cl ? cursor_take(s, cl, out, room, max_msgs, deliver) : 0;

	*lk = NULL;
	if (room - used >= 2 && used < max_msgs)
		used += take_lanes(s, out + used, room - used,
				   max_msgs - (unsigned)used, deliver, lk);
	return used;
}

/*
 * Consumer: whether any lane has an entry (maybe still being written).
 * Indices live in the lane, not in segments: no RCU section needed, so
 * a consumer sweeping idle subscribers does not pay for one.
 */
static bool sub_has_ready(struct fanq_sub *s)
{
	struct link *cl = atomic_load_explicit(&s->cursor_link, memory_order_acquire);

	if (cl && cursor_ready(cl))
		return true;
	for (unsigned i = 0; i < s->levels; i++)
		if (lane_ready(&s->lanes[i]))
			return true;
	return false;
}

/*
 * Consumer, outside rcu_read_lock, after taking from the lanes a message
 * of lk's channel (lk non-NULL): with the lanes now empty, s may read
 * that channel's log instead (cursor.c).
 */
static void promote_if_idle(struct fanq_sub *s, struct link *lk)
{
	if (lk && !sub_has_ready(s))
		cursor_maybe_promote(s, lk);
}

/* Consumer: make sure pending holds the next entry.  0 or FANQ_EAGAIN. */
static int sub_fill(struct fanq_sub *s)
{
	struct link *lk;

	if (s->npending)
		return 0;
	if (!sub_has_ready(s))
		return FANQ_EAGAIN;
	urcu_bp_read_lock();
	/* one message: a GAP and its message fill pending's two entries */
	s->npending = (unsigned)take(s, s->pending, 2, 1, false, &lk);
	fanq_read_unlock();
	promote_if_idle(s, lk);
	return s->npending ? 0 : FANQ_EAGAIN;
}

/*
 * Consumer.  Takes the next entry; its message (if any) stays counted in
 * `held` until the caller delivers it.
 */
int sub_take(struct fanq_sub *s, fanq_entry *out)
{
	int rc = sub_fill(s);

	if (rc)
		return rc;
	*out = s->pending[0];
	s->pending[0] = s->pending[1];
	s->npending--;
	return 0;
}

/* Consumer: one held message handed over. */
static void sub_delivered(struct fanq_sub *s)
{
	atomic_fetch_sub_explicit(&s->held, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->delivered, 1, memory_order_relaxed);
}

/* Consumer (or the last reference): drop the entries taken, not handed out. */
void sub_release_held(struct fanq_sub *s, enum fanq_drop_reason why)
{
	for (unsigned i = 0; i < s->npending; i++) {
		if (s->pending[i].kind != FANQ_ENTRY_MSG)
			continue;
		sub_count_drop(s, s->pending[i].msg, why);
		fanq_msg_release(s->pending[i].msg);
		atomic_fetch_sub(&s->held, 1);
	}
	s->npending = 0;
}

/* Consumer thread.  See fanq.h. */
int fanq_sub_pop(fanq_sub *s, fanq_entry *out)
{
	int rc;

	if (!s || !out)
		return FANQ_EINVAL;
	rc = sub_consumer_check(s);
	if (rc)
		return rc;
	rc = sub_take(s, out);
	if (rc == 0 && out->kind == FANQ_ENTRY_MSG)
		sub_delivered(s);
	return rc;
}

/* Consumer thread.  See fanq.h.  Batches as the top of this file says. */
int fanq_sub_pop_batch(fanq_sub *s, fanq_entry *out, size_t n)
{
	size_t i = 0;
	int rc;

	if (!s || !out || n == 0 || n > INT32_MAX)
		return FANQ_EINVAL;
	rc = sub_consumer_check(s);
	if (rc)
		return rc;
	/* entries taken earlier (a GAP's message, a peeked one) come first */
	while (i < n && s->npending)
		fanq_sub_pop(s, &out[i++]);
	if (n - i >= 2 && sub_has_ready(s)) {
		struct link *lk;

		urcu_bp_read_lock();
		i += take(s, out + i, n - i, UINT_MAX, true, &lk);
		fanq_read_unlock();
		promote_if_idle(s, lk);
	}
	/* one entry left: a message whose GAP takes it stays pending */
	if (i == n - 1 && fanq_sub_pop(s, &out[i]) == 0)
		i++;
	return (int)i;
}

/*
 * Consumer thread.  The next entry without handing it out: the message is
 * moved out of the lanes (so no evictor can free it) and stays valid until
 * this consumer pops it.  No reference is given.
 */
int fanq_sub_peek(fanq_sub *s, fanq_entry *out)
{
	int rc;

	if (!s || !out)
		return FANQ_EINVAL;
	rc = sub_consumer_check(s);
	if (rc)
		return rc;
	rc = sub_fill(s);
	if (rc == 0)
		*out = s->pending[0];
	return rc;
}
