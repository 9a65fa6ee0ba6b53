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
 */
#include <string.h>

#include "internal.h"

/*
 * Consumer: queue the entries for a taken message (a GAP first if
 * needed), or the GAP a gap marker stands for.
 */
static void take_entries(struct fanq_sub *s, unsigned lane, fanq_msg *m,
			 uint64_t ord)
{
	struct link *lk = sub_link_find(s, m->ch);
	fanq_entry e = { .kind = FANQ_ENTRY_MSG, .msg = m, .ch = m->ch, .seq = m->seq };
	uint64_t missing, first;

	/* lk exists: links live as long as the subscriber */
	missing = ord - lk->c_ord[lane] - !m->gap_marker;
	first = lk->c_ord[lane] ? lk->c_seq[lane] + 1 : lk->start_seq;
	if (m->gap_marker && missing == m->seq - m->gap_first)
		first = m->gap_first; /* nothing dropped before it */
	lk->c_ord[lane] = ord;
	lk->c_seq[lane] = m->seq - m->gap_marker;
	if (missing) {
		fanq_entry *g = &s->pending[s->npending++];

		memset(g, 0, sizeof(*g));
		g->kind = FANQ_ENTRY_GAP;
		g->ch = m->ch;
		g->gap_first = first;
		g->gap_last = m->seq - 1;
		g->gap_count = missing;
	}
	if (m->gap_marker)
		fanq_msg_release(m);
	else
		s->pending[s->npending++] = e;
}

/* Consumer: make sure pending holds the next entry.  0 or FANQ_EAGAIN. */
static int sub_fill(struct fanq_sub *s)
{
	fanq_msg *m = NULL;
	uint64_t ord = 0;
	unsigned lane = s->levels;

	if (s->npending)
		return 0;
	urcu_bp_read_lock();
	while (lane-- > 0 && !(m = lane_take(&s->lanes[lane], &ord, false)))
		;
	/* release the room at once (a full drop-oldest publisher may be
	 * waiting to evict); a gap marker took none */
	if (m && !m->gap_marker) {
		atomic_fetch_add_explicit(&s->held, 1, memory_order_relaxed);
		sub_unreserve(s, m->len);
	}
	fanq_read_unlock();
	if (!m)
		return FANQ_EAGAIN;
	take_entries(s, lane, m, ord);
	return 0;
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

int fanq_sub_pop_batch(fanq_sub *s, fanq_entry *out, size_t n)
{
	size_t i;
	int rc;

	if (!s || !out || n == 0 || n > INT32_MAX)
		return FANQ_EINVAL;
	rc = sub_consumer_check(s);
	if (rc)
		return rc;
	for (i = 0; i < n; i++)
		if (fanq_sub_pop(s, &out[i]) != 0)
			break;
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
