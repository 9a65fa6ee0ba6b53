/*
 * cursor.c - a channel's shared log, read by position by the subscribers
 * that keep up ("cursor mode").
 *
 * A subscriber in lane mode gets every message pushed into its own lanes
 * (ring.c), which costs the fan-out thread a few atomic RMWs per
 * subscriber per message.  Most subscribers keep up: while a queue holds
 * fewer messages than its limits, no policy decision is ever made, and
 * the queue is exactly "the channel's messages from position c on".  So a
 * subscriber that
 *  - is on one channel only, with a one-level policy, in no group,
 *  - and whose lanes are empty,
 * may switch to cursor mode: the fan-out thread appends each message once
 * to the channel's log, and the subscriber's consumer takes [cur, last]
 * from it with one CAS on its cursor per batch.  Publishing costs O(1)
 * whatever the number of such subscribers.
 *
 * Switching, always by the channel's fan-out thread, at one point of the
 * channel's order:
 *  - promote (OP_PROMOTE, queued by the consumer when it found its lanes
 *    empty, applied with the channel's next operation: the consumer
 *    never fans out): granted only if nothing was offered to the link
 *    since the consumer last looked (prod_ord == the c_ord it stored on
 *    its latest look), so the lanes hold nothing of this channel: the
 *    cursor starts at the next seq.
 *  - demote: at the latest before a message would take the backlog past
 *    the subscriber's window (its message limit, at most half the log) or
 *    its byte limit, and at any scan once past 7/8 of either; or when it
 *    must leave (evicted, on a second channel, limits lowered,
 *    unsubscribed).  The fan-out thread exchanges
 *    the cursor for CURSOR_OFF (the consumer's next CAS fails), moves
 *    the messages from the old cursor on into the lane, in order (without a
 *    limit check: they were accepted), and the message being published is
 *    then offered as to any member: the policy decides from there.  No
 *    message is ever dropped in cursor mode, so every drop decision stays
 *    in sub_offer().
 * The consumer takes from the cursor before the lanes: while the cursor
 * is on, the lanes hold nothing of its channel, older or newer.
 *
 * Scans.  The fan-out thread does not look at cursor members per
 * message.  Each scan (all cursor members) computes the first seq and
 * byte position at which one of them could pass its window; the next scan
 * runs there, or when an owner asks (ch->rescan).  A scan demotes every
 * member past 7/8 of its window, so the next scan is at least an eighth of
 * a window away: O(members / window) per message.
 *
 * Memory and ordering:
 *  - the log holds no reference: the references the fan-out thread takes
 *    per member (apply_publish()) are the cursor members' own; a slot is
 *    rewritten only once every cursor has passed it (a window is at most
 *    half the log) or its member was demoted.
 *  - append: write the slot (a seqlock for stats readers: seq is set to
 *    CURSOR_OFF first), then store log_last (release).  A consumer loads
 *    log_last (acquire), then the log pointer, then the slots; it reads
 *    nothing through a message before its CAS on the cursor succeeds.
 *  - the log grows (doubling, up to CHLOG_MAX) when a member whose window
 *    the log caps is half a window behind, or had to leave for it; the
 *    old array is frozen and freed after a grace period (readers are
 *    inside rcu_read_lock).
 *  - the subscriber's enqueued count of a cursor run is derived
 *    (log_last + 1 - cur_from) and folded into s->enqueued at demotion.
 */
#include "internal.h"

#define CHLOG_MIN 256u          /* slots of a new log */
#define CHLOG_MAX 4096u         /* slots the log may grow to */
#define CURSOR_MIN_WINDOW 8u    /* smaller limits stay in lane mode */
#define CURSOR_BATCH 64u        /* slots a release claims at once */

struct chlog_slot {
	_Atomic uint64_t seq;   /* CURSOR_OFF while being written */
	_Atomic(fanq_msg *) msg;
	_Atomic uint64_t cum;   /* log_cum before this message */
	_Atomic uint32_t len;
};

struct chlog {
	struct rcu_head rcu;
	uint64_t mask;          /* slots - 1 */
	struct chlog_slot slot[];
};

static struct chlog *chlog_new(uint64_t slots)
{
	struct chlog *lg = fanq_calloc(1, sizeof(*lg) + slots * sizeof(lg->slot[0]));

	if (!lg)
		return NULL;
	lg->mask = slots - 1;
	for (uint64_t i = 0; i < slots; i++)
		atomic_init(&lg->slot[i].seq, CURSOR_OFF);
	return lg;
}

static void chlog_free_rcu(struct rcu_head *head)
{
	FANQ_TSAN_GRACE_OVER();
	free(caa_container_of(head, struct chlog, rcu));
}

/* Channel teardown: nobody can reach the channel any more. */
void chlog_free(struct fanq_channel *ch)
{
	free(atomic_load_explicit(&ch->log, memory_order_relaxed));
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Fan-out: the backlog s may keep in cursor mode on a log of lg's size. */
static uint64_t cursor_window(const struct fanq_sub *s, const struct chlog *lg)
{
	return min64(atomic_load(&s->max_msgs), (lg->mask + 1) / 2);
}

/* Fan-out, inside rcu_read_lock: the bytes s may keep (hard limit too). */
static uint64_t cursor_max_bytes(const struct fanq_sub *s)
{
	uint64_t b = atomic_load(&s->max_bytes);
	struct health *h = atomic_load_explicit(&s->health, memory_order_acquire);

	if (h && h->rules.hard_bytes && h->rules.hard_bytes < b)
		b = h->rules.hard_bytes;
	return b;
}

/* Fan-out: bytes appended before seq c (c at most log_last + 1). */
static uint64_t cum_before(const struct fanq_channel *ch, const struct chlog *lg,
			   uint64_t c)
{
	if (c > atomic_load_explicit(&ch->log_last, memory_order_relaxed))
		return ch->log_cum;
	return atomic_load_explicit(&lg->slot[c & lg->mask].cum, memory_order_relaxed);
}

/* Fan-out: write seq's slot (see the seqlock above). */
static void slot_write(struct chlog_slot *sl, uint64_t seq, fanq_msg *m,
		       uint64_t cum, uint32_t len)
{
	atomic_store_explicit(&sl->seq, CURSOR_OFF, memory_order_relaxed);
	/* releases: a reader that acquires a field also sees OFF or later */
	atomic_store_explicit(&sl->msg, m, memory_order_release);
	atomic_store_explicit(&sl->cum, cum, memory_order_release);
	atomic_store_explicit(&sl->len, len, memory_order_release);
	atomic_store_explicit(&sl->seq, seq, memory_order_release);
}

/*
 * Fan-out: double the log (up to CHLOG_MAX), copying the slots that may
 * still be read.  Without memory the log keeps its size.
 */
static void chlog_grow(struct fanq_channel *ch)
{
	struct chlog *old = atomic_load_explicit(&ch->log, memory_order_relaxed);
	uint64_t n = old->mask + 1, last, q;
	struct chlog *lg;

	if (n >= CHLOG_MAX || !(lg = chlog_new(n * 2)))
		return;
	last = atomic_load_explicit(&ch->log_last, memory_order_relaxed);
	for (q = last >= n ? last - n + 1 : 0; q <= last; q++) {
		struct chlog_slot *from = &old->slot[q & old->mask];

		if (atomic_load_explicit(&from->seq, memory_order_relaxed) != q)
			continue;
		slot_write(&lg->slot[q & lg->mask], q,
			   atomic_load_explicit(&from->msg, memory_order_relaxed),
			   atomic_load_explicit(&from->cum, memory_order_relaxed),
			   atomic_load_explicit(&from->len, memory_order_relaxed));
	}
	/* complete before it is seen: pairs with the consumers' acquire */
	atomic_store_explicit(&ch->log, lg, memory_order_release);
	urcu_bp_call_rcu(&old->rcu, chlog_free_rcu);
}

/*
 * Grouped cursor members.  A lane push notifies the subscriber's group
 * when its ready flag is clear; a log append cannot look at every member.
 * So a member waits for the next append on a queue of its channel, one
 * queue per group (struct chwait): fanq_group_next_ready() puts it there
 * instead of clearing its ready flag, with the reference the ready list
 * held (cursor_enroll()); the promotion does the same for a member whose
 * flag was clear.  Each append splices every non-empty queue into its
 * group's ready list in one step (group_splice()): O(groups) per append,
 * whatever the number of members.  A demotion splices them too, since
 * from then on lane pushes must find the flag clear again.
 *
 * No lost wakeup: the member's enqueue, then its seq_cst increment of nw,
 * then (the host's drain) its seq_cst load of log_last; the append's
 * seq_cst store of log_last, then its seq_cst load of nw: a
 * store-buffering pair, so either the append splices the member or the
 * drain sees the message.  A member queued after its demotion cleared
 * cursor_link (it read the link before) is handled the same way by the
 * demotion's seq_cst store of cursor_link and the member's load of it:
 * it then kicks the channel (cursor_kick()).
 *
 * A waiting member's ready flag is 1, so any other notification (a push
 * from a second channel, an eviction, a resume's gap marker) finds it set
 * and would be lost: sub_notify_group() then kicks the member's cursor
 * channel, whose fan-out thread demotes the member if it must leave and
 * hands every waiter to its group at once, without waiting for an append.
 */
struct chwait {
	struct chwait *next;          /* ch->waits; fan-out writes */
	struct fanq_group *g;         /* a reference */
	struct __cds_wfcq_head head;  /* dequeued (spliced) by fan-out only */
	struct cds_wfcq_tail tail;
	atomic_uint nw;               /* queued since the last splice, about */
};

/*
 * Any thread: have ch's fan-out thread (at once, or after the operations
 * ahead) apply OP_KICK: demote the cursor members that must leave and
 * hand every waiter to its group.  One kick queued at a time.
 */
static void cursor_kick(struct fanq_channel *ch)
{
	if (!atomic_exchange(&ch->kick_queued, true))
		channel_queue_op(ch, &ch->kick, NULL);
}

/*
 * Fan-out, inside rcu_read_lock: splice the waiters into their groups;
 * all: every queue, else those counted since the last splice.
 */
static void cursor_wake(struct fanq_channel *ch, bool all)
{
	for (struct chwait *w = ch->waits; w; w = w->next)
		if (atomic_exchange(&w->nw, 0) || all) /* seq_cst: see above */
			group_splice(w->g, &w->head, &w->tail);
}

/* Fan-out: g's waiter queue on ch, made on first use; NULL: no memory. */
static struct chwait *chwait_of(struct fanq_channel *ch, struct fanq_group *g)
{
	struct chwait *w;

	for (w = ch->waits; w; w = w->next)
		if (w->g == g)
			return w;
	w = fanq_calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	group_get(g);
	w->g = g;
	__cds_wfcq_init(&w->head, &w->tail);
	w->next = ch->waits;
	ch->waits = w;
	return w;
}

/*
 * Consumer or fan-out: queue s (its node free, ready 1, a reference
 * given) on w, lk's group's waiter queue; if s left the log meanwhile,
 * kick lk's channel (see above).
 */
static void chwait_add(struct link *lk, struct chwait *w, struct fanq_sub *s)
{
	cds_wfcq_node_init(&s->ready_node);
	FANQ_TSAN_RELEASE(s); /* liburcu's asm atomics are invisible to TSan */
	cds_wfcq_enqueue(&w->head, &w->tail, &s->ready_node);
	atomic_fetch_add(&w->nw, 1); /* seq_cst: see above */
	if (!atomic_load(&s->cursor_link))
		cursor_kick(lk->ch);
}

/*
 * Group owner, in fanq_group_next_ready(), for s just dequeued (ready 1,
 * holding the list's reference): when s reads a log, queue it for the
 * next append with that reference and return true.
 */
bool cursor_enroll(struct fanq_sub *s)
{
	struct link *lk = atomic_load_explicit(&s->cursor_link, memory_order_acquire);
	struct chwait *w = lk ? atomic_load_explicit(&lk->wq, memory_order_acquire) : NULL;

	if (!w)
		return false;
	/* an RMW that keeps 1: it reads the last notifier's exchange, so the
	 * push before that is visible to the drain that follows (group.c) */
	atomic_exchange(&s->ready, 1);
	chwait_add(lk, w, s);
	return true;
}

/*
 * Group owner, in fanq_group_next_ready(), right after clearing s's ready
 * flag because s read no log: if a promotion switched s in between, it
 * saw the flag still set and left s to this thread.  Both exchange the
 * flag (the promotion after its seq_cst store of cursor_link, this
 * thread before its seq_cst load of it), so exactly one of them queues s.
 */
void cursor_enroll_cleared(struct fanq_sub *s)
{
	struct link *lk = atomic_load(&s->cursor_link);
	struct chwait *w = lk ? atomic_load_explicit(&lk->wq, memory_order_acquire) : NULL;

	if (!w || atomic_exchange(&s->ready, 1))
		return;
	sub_get(s);
	chwait_add(lk, w, s);
}

/* Bus close: release the waiters, the groups and the queues. */
void cursor_waits_free(struct fanq_channel *ch)
{
	struct chwait *w;

	while ((w = ch->waits)) {
		ch->waits = w->next;
		group_queue_release(&w->head, &w->tail);
		group_put(w->g);
		free(w);
	}
}

/* Fan-out: whether s may not (or may no longer) read ch's log. */
static bool cursor_barred(const struct fanq_sub *s)
{
	return atomic_load(&s->evicted) || atomic_load(&s->memberships) != 1 ||
	       s->levels != 1;
}

/*
 * Fan-out, inside rcu_read_lock: take mb's subscriber out of cursor mode
 * at this point of the channel's order.  Its messages not yet claimed
 * move into its lane, kept as a lane keeps what it holds when the limits
 * are lowered; a subscriber evicted meanwhile has them counted dropped.
 */
void cursor_demote(struct fanq_channel *ch, struct member *mb)
{
	struct link *lk = mb->link;
	struct fanq_sub *s = lk->sub_owner;
	struct chlog *lg = atomic_load_explicit(&ch->log, memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&ch->log_last, memory_order_relaxed);
	uint64_t from = atomic_load_explicit(&lk->cur_from, memory_order_relaxed);
	uint64_t end = last + 1 > from ? last + 1 : from; /* first not appended */
	/* the consumer's claims fail from here on: c.. are this thread's */
	uint64_t c = atomic_exchange(&lk->cur, CURSOR_OFF);

	/* odd while the run moves into enqueued: see cursor_sub_enqueued() */
	atomic_fetch_add(&s->fold_seq, 1);
	atomic_store(&s->cursor_link, NULL);
	atomic_fetch_add_explicit(&s->enqueued, end - from, memory_order_relaxed);
	atomic_store_explicit(&lk->cur_from, CURSOR_OFF, memory_order_relaxed);
	atomic_fetch_add(&s->fold_seq, 1);
	for (uint64_t q = c; q < end; q++) {
		fanq_msg *m = atomic_load_explicit(&lg->slot[q & lg->mask].msg,
						   memory_order_relaxed);

		if (!sub_offer_moved(s, lk, m))
			fanq_msg_release(m);
	}
	if (lk->wq) {
		/* its lane pushes notify only with the ready flag clear: the
		 * waiters go to their groups now, and it with them (if it
		 * waits); the moves did not notify, as pushes do */
		cursor_wake(ch, true);
		if (c < end)
			sub_notify_group(s);
		ch->nwaitable--;
	}
	cds_list_del(&mb->node);
	cds_list_add_tail(&mb->node, &ch->members);
	if (--ch->ncursors == 0)
		ch->check_msgs = ch->check_bytes = UINT64_MAX;
}

/*
 * Fan-out, inside rcu_read_lock, before m is appended: demote every cursor
 * member m would take past 7/8 of its window, and set the next scan.
 */
static void cursor_scan(struct fanq_channel *ch, const fanq_msg *m)
{
	struct chlog *lg = atomic_load_explicit(&ch->log, memory_order_relaxed);
	uint64_t check_m = UINT64_MAX, check_b = UINT64_MAX;
	struct member *mb, *tmp;
	bool grow = false;

	atomic_store_explicit(&ch->rescan, false, memory_order_relaxed);
	cds_list_for_each_entry_safe(mb, tmp, &ch->cursors, node) {
		struct fanq_sub *s = mb->link->sub_owner;
		uint64_t c = atomic_load_explicit(&mb->link->cur, memory_order_relaxed);
		uint64_t win = cursor_window(s, lg), max_b = cursor_max_bytes(s);
		uint64_t before = cum_before(ch, lg, c);
		uint64_t msgs = m->seq - c + 1, bytes = ch->log_cum + m->len - before;

		bool capped = win < atomic_load(&s->max_msgs); /* by the log */

		if (cursor_barred(s) || msgs > win - win / 8 || bytes > max_b - max_b / 8) {
			grow |= capped && msgs > win - win / 8;
			cursor_demote(ch, mb);
			continue;
		}
		/* half a window behind on a log that caps it: grow the log
		 * before the member would have to leave */
		grow |= capped && msgs > win / 2;
		/* the first seq, and byte total, that would pass the window
		 * (or half of it, while the log caps it) */
		check_m = min64(check_m, c + (capped && msgs <= win / 2 ? win / 2 : win));
		check_b = min64(check_b, before + max_b);
	}
	ch->check_msgs = check_m;
	ch->check_bytes = check_b;
	if (grow)
		chlog_grow(ch);
	if (ch->waits) /* a member may have queued itself after its demotion */
		cursor_wake(ch, true);
}

/*
 * Fan-out, inside rcu_read_lock, for a channel with cursor members or
 * waiter queues: m has
 * its seq; scan if due, then append m for the members still in cursor mode
 * (apply_publish() counts them as accepted).
 */
void cursor_append(struct fanq_channel *ch, fanq_msg *m)
{
	struct chlog *lg;

	if (m->seq >= ch->check_msgs || ch->log_cum + m->len > ch->check_bytes ||
	    atomic_load_explicit(&ch->rescan, memory_order_relaxed))
		cursor_scan(ch, m);
	if (!ch->ncursors)
		return;
	lg = atomic_load_explicit(&ch->log, memory_order_relaxed);
	slot_write(&lg->slot[m->seq & lg->mask], m->seq, m, ch->log_cum, m->len);
	ch->log_cum += m->len;
	/* the slot before the position: pairs with the consumers' acquire
	 * (seq_cst with group members: see the waiters above) */
	if (ch->nwaitable) {
		atomic_store(&ch->log_last, m->seq);
		cursor_wake(ch, false);
	} else {
		atomic_store_explicit(&ch->log_last, m->seq, memory_order_release);
	}
}

/* Fan-out: whether lk's subscriber may switch to cursor mode now. */
static bool cursor_may_promote(const struct link *lk)
{
	const struct fanq_sub *s = lk->sub_owner;

	return lk->fan_member && !cursor_barred(s) && !atomic_load(&s->closed) &&
	       atomic_load(&lk->cur) == CURSOR_OFF &&
	       /* nothing offered since the consumer found its lanes empty */
	       lk->prod_ord[0] == atomic_load_explicit(&lk->promote_ord,
						       memory_order_acquire) &&
	       atomic_load(&s->msgs) == 0;
}

/* Fan-out, inside rcu_read_lock: apply the consumer's OP_PROMOTE for lk. */
void cursor_apply_promote(struct fanq_channel *ch, struct link *lk)
{
	struct fanq_sub *s = lk->sub_owner;
	struct chlog *lg = atomic_load_explicit(&ch->log, memory_order_relaxed);
	uint64_t next = atomic_load_explicit(&ch->seq, memory_order_relaxed) + 1;

	if (!cursor_may_promote(lk))
		goto out;
	if (!lg) {
		if (!(lg = chlog_new(CHLOG_MIN)))
			goto out;
		atomic_store_explicit(&ch->log, lg, memory_order_release);
	}
	if (cursor_window(s, lg) < CURSOR_MIN_WINDOW)
		goto out;
	if (atomic_load(&s->group) && !lk->wq) {
		struct chwait *w = chwait_of(ch, atomic_load(&s->group));

		if (!w)
			goto out;
		atomic_store_explicit(&lk->wq, w, memory_order_release);
	}
	atomic_store_explicit(&lk->cur_from, next, memory_order_relaxed);
	atomic_store_explicit(&lk->cur, next, memory_order_release);
	/* seq_cst store, then load: pairs with cursor_member_added() */
	atomic_store(&s->cursor_link, lk);
	/* and evicted: sub_evict_claim() kicks only after it sees the link */
	if (cursor_barred(s)) {
		atomic_store(&s->cursor_link, NULL);
		atomic_store(&lk->cur, CURSOR_OFF);
		atomic_store(&lk->cur_from, CURSOR_OFF);
		goto out;
	}
	cds_list_del(&lk->fan_member->node);
	cds_list_add_tail(&lk->fan_member->node, &ch->cursors);
	ch->ncursors++;
	if (lk->wq) {
		ch->nwaitable++;
		/* its ready flag clear: nothing would notify it */
		if (atomic_exchange(&s->ready, 1) == 0) {
			sub_get(s);
			chwait_add(lk, lk->wq, s);
		}
	}
	/* limits read after cursor_link is set: see cursor_rescan() */
	ch->check_msgs = min64(ch->check_msgs, next + cursor_window(s, lg));
	ch->check_bytes = min64(ch->check_bytes, ch->log_cum + cursor_max_bytes(s));
out:
	atomic_store_explicit(&lk->promote_queued, false, memory_order_release);
	sub_put(s); /* taken by cursor_maybe_promote() */
}

/*
 * Fan-out thread of any channel, after s joined it: a subscriber on two
 * channels leaves cursor mode at its cursor channel's next publish.
 */
void cursor_member_added(struct fanq_sub *s)
{
	/* seq_cst RMW, then load: pairs with cursor_apply_promote() */
	atomic_fetch_add(&s->memberships, 1);
	cursor_kick_sub(s);
}

/*
 * Any thread, after changing what cursor_barred() or the windows read
 * (eviction, limits): have s's cursor channel scan at its next publish.
 */
void cursor_rescan(struct fanq_sub *s)
{
	struct link *lk = atomic_load(&s->cursor_link);

	if (lk)
		atomic_store_explicit(&lk->ch->rescan, true, memory_order_relaxed);
}

/*
 * Any thread, after s was evicted, joined a second channel or got a
 * notification its ready flag swallowed: kick s's cursor channel.
 */
void cursor_kick_sub(struct fanq_sub *s)
{
	struct link *lk = atomic_load(&s->cursor_link);

	if (lk && atomic_load_explicit(&lk->wq, memory_order_acquire))
		cursor_kick(lk->ch);
	else if (lk) /* no group to notify: the next publish will do */
		atomic_store_explicit(&lk->ch->rescan, true, memory_order_relaxed);
}

/* Fan-out, inside rcu_read_lock: apply OP_KICK (see cursor_kick()). */
void cursor_apply_kick(struct fanq_channel *ch)
{
	struct member *mb, *tmp;

	/* first: a kick from now on queues the op again */
	atomic_store(&ch->kick_queued, false);
	cds_list_for_each_entry_safe(mb, tmp, &ch->cursors, node)
		if (cursor_barred(mb->link->sub_owner))
			cursor_demote(ch, mb);
	cursor_wake(ch, true);
}

/*
 * Consumer, after it emptied its lanes of lk's messages: ask lk's channel
 * to switch s to cursor mode, unless that cannot be granted.  The request
 * waits for the channel's next operation (channel_post_op()); until then
 * each call updates the position it is checked against, so a request that
 * waited behind a backlog is judged on the consumer's latest look.
 */
void cursor_maybe_promote(struct fanq_sub *s, struct link *lk)
{
	if (s->levels != 1 || atomic_load_explicit(&s->cursor_link, memory_order_relaxed) ||
	    atomic_load_explicit(&s->memberships, memory_order_relaxed) != 1 ||
	    atomic_load_explicit(&s->max_msgs, memory_order_relaxed) < CURSOR_MIN_WINDOW)
		return;
	/* release: a fan-out that reads it sees the takes before it */
	atomic_store_explicit(&lk->promote_ord, lk->c_ord[0], memory_order_release);
	if (atomic_load_explicit(&lk->promote_queued, memory_order_acquire))
		return;
	atomic_store_explicit(&lk->promote_queued, true, memory_order_relaxed);
	sub_get(s); /* the op lives in s */
	channel_post_op(lk->ch, &lk->promote);
}

/*
 * Owner thread, closing s after its unsubscribes: a request the consumer
 * posted on a channel s had just left (a message of it was still in the
 * lanes) waits there for that channel's next operation, holding s.  Have
 * one applied now, so s is freed and its backlog counted without waiting
 * for traffic on a channel it left.  The consumer is done: it may not run
 * concurrently with close.
 */
void cursor_close_requests(struct fanq_sub *s)
{
	for (struct link *lk = s->links; lk; lk = lk->next)
		if (atomic_load_explicit(&lk->promote_queued, memory_order_acquire))
			cursor_kick(lk->ch);
}

/* Consumer: whether lk's cursor has a message to take. */
bool cursor_ready(const struct link *lk)
{
	uint64_t c = atomic_load_explicit(&lk->cur, memory_order_relaxed);

	/* seq_cst (a plain load on x86): see the waiters above */
	return c != CURSOR_OFF && c <= atomic_load(&lk->ch->log_last);
}

/*
 * Any taker, inside rcu_read_lock: claim up to max messages from lk's
 * cursor as entries in e.  Returns how many (0: none, or the cursor was
 * switched off); *depth: the cursor's backlog before the claim.  The
 * slots are read before the CAS and nothing is read through their
 * pointers: a slot is rewritten only after its member's demotion (a
 * window is at most half the log), which makes the CAS fail, and then
 * what was written to e is not the caller's.
 */
static unsigned cursor_claim(struct link *lk, fanq_entry *e, size_t max,
			     uint64_t *depth)
{
	uint64_t c = atomic_load_explicit(&lk->cur, memory_order_acquire);
	struct fanq_channel *ch = lk->ch;
	const struct chlog *lg;
	uint64_t last, k;

	if (c == CURSOR_OFF)
		return 0;
	last = atomic_load(&ch->log_last); /* seq_cst: see the waiters above */
	if (last < c)
		return 0;
	lg = atomic_load_explicit(&ch->log, memory_order_acquire);
	k = min64(last - c + 1, max);
	for (uint64_t j = 0; j < k; j++)
		e[j] = (fanq_entry){
			.kind = FANQ_ENTRY_MSG, .ch = ch, .seq = c + j,
			.msg = atomic_load_explicit(&lg->slot[(c + j) & lg->mask].msg,
						    memory_order_relaxed) };
	if (!k || !atomic_compare_exchange_strong_explicit(&lk->cur, &c, c + k,
							   memory_order_acq_rel,
							   memory_order_relaxed))
		return 0;
	*depth = last - c + 1;
	return (unsigned)k;
}

/*
 * Consumer, inside rcu_read_lock: take up to max_msgs messages (at most
 * room entries) from lk's cursor into out, counted delivered (deliver)
 * or held.  Returns the entries written.
 */
size_t cursor_take(struct fanq_sub *s, struct link *lk, fanq_entry *out,
		   size_t room, unsigned max_msgs, bool deliver)
{
	uint64_t depth;
	unsigned k = cursor_claim(lk, out, min64(room, max_msgs), &depth);

	if (!k)
		return 0;
	lk->c_seq[0] = out[k - 1].seq;
	atomic_fetch_add_explicit(deliver ? &s->delivered : &s->held, k,
				  memory_order_relaxed);
	sub_high_water(s, depth);
	return k;
}

/*
 * Any taker (the consumer of an evicted subscriber, or its last
 * reference): claim and release what s's cursor holds, counted
 * FANQ_DROP_UNSUBSCRIBED.  Returns how many.
 */
uint64_t cursor_release(struct fanq_sub *s)
{
	struct link *lk = atomic_load_explicit(&s->cursor_link, memory_order_acquire);
	fanq_entry got[CURSOR_BATCH];
	uint64_t depth, n = 0;
	unsigned k;

	if (!lk)
		return 0;
	while ((k = cursor_claim(lk, got, CURSOR_BATCH, &depth))) {
		for (unsigned j = 0; j < k; j++) {
			sub_count_drop(s, got[j].msg, FANQ_DROP_UNSUBSCRIBED);
			fanq_msg_release(got[j].msg);
		}
		n += k;
	}
	return n;
}

/*
 * Any thread: the messages (and bytes) s's cursor holds.  A snapshot:
 * the consumer and the fan-out thread move on meanwhile.
 */
uint64_t cursor_backlog(const struct fanq_sub *s, uint64_t *bytes)
{
	struct link *lk = atomic_load_explicit(&s->cursor_link, memory_order_acquire);
	uint64_t c, last, msgs = 0, b = 0;

	if (!lk)
		goto out;
	c = atomic_load_explicit(&lk->cur, memory_order_acquire);
	last = atomic_load_explicit(&lk->ch->log_last, memory_order_acquire);
	if (c == CURSOR_OFF || last < c)
		goto out;
	msgs = last - c + 1;
	if (bytes) {
		urcu_bp_read_lock();
		const struct chlog *lg = atomic_load_explicit(&lk->ch->log,
							      memory_order_acquire);
		const struct chlog_slot *a = &lg->slot[c & lg->mask];
		const struct chlog_slot *z = &lg->slot[last & lg->mask];
		/* acquires: pair with slot_write()'s releases */
		uint64_t ca = atomic_load_explicit(&a->cum, memory_order_acquire);
		uint64_t cz = atomic_load_explicit(&z->cum, memory_order_acquire) +
			      atomic_load_explicit(&z->len, memory_order_acquire);

		/* both slots still those seqs: the sums are theirs */
		if (atomic_load_explicit(&a->seq, memory_order_relaxed) == c &&
		    atomic_load_explicit(&z->seq, memory_order_relaxed) == last)
			b = cz - ca;
		fanq_read_unlock();
	}
out:
	if (bytes)
		*bytes = b;
	return msgs;
}

/* Any thread: the enqueued count of s's current cursor run. */
static uint64_t cursor_run_enqueued(const struct fanq_sub *s)
{
	struct link *lk = atomic_load_explicit(&s->cursor_link, memory_order_acquire);
	uint64_t from, last;

	if (!lk)
		return 0;
	from = atomic_load_explicit(&lk->cur_from, memory_order_relaxed);
	last = atomic_load_explicit(&lk->ch->log_last, memory_order_acquire);
	return from != CURSOR_OFF && last + 1 > from ? last + 1 - from : 0;
}

/*
 * Any thread: s's enqueued count, its cursor run included.  A demotion
 * moves the run into s->enqueued between two increments of fold_seq; a
 * reader that saw one retries (a few times: a demoting thread preempted
 * there costs a stale snapshot, never a wait), so totals do not step
 * back by a run.
 */
uint64_t cursor_sub_enqueued(const struct fanq_sub *s)
{
	uint64_t e = 0;

	for (int tries = 0; tries < 64; tries++) {
		unsigned q = atomic_load(&s->fold_seq);

		e = atomic_load(&s->enqueued) + cursor_run_enqueued(s);
		if (!(q & 1) && q == atomic_load(&s->fold_seq))
			break;
	}
	return e;
}
