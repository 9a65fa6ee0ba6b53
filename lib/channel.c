/*
 * channel.c - named channels, their order, and the fan-out.
 *
 * Every change to a channel (publish, subscribe, unsubscribe, resume,
 * history limits) is an operation appended to the channel's wfcqueue: a
 * wait-free enqueue by any thread.  The thread that then wins the
 * channel's `fanning` flag applies queued operations in order until the
 * queue is empty; the others return at once (their operation is applied
 * by that thread, right after the ones ahead of it).  So:
 *  - a channel's sequence numbers are given in one order, and every
 *    subscriber's lane receives a channel's messages in that order;
 *  - the member list and the history have one writer at a time (RCU,
 *    no lock);
 *  - a resume replays the history and joins the member list in one step
 *    of that order, so nothing is missed or repeated across the switch;
 *  - no publisher ever waits for another publisher or a consumer.
 *
 * Handoff without loss: a thread that loses the flag CAS enqueued its
 * operation before trying; the holder re-checks the queue after it
 * clears the flag (both seq_cst), so it either sees that operation or
 * the enqueuer's CAS comes after the clear and wins.
 *
 * Channels live until fanq_bus_close(); handles only count users.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static unsigned long name_hash(const char *name)
{
	unsigned long h = 1469598103934665603ul; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ul;
	return h;
}

static int name_match(struct cds_lfht_node *node, const void *key)
{
	struct fanq_channel *ch = caa_container_of(node, struct fanq_channel, hnode);

	return strcmp(ch->name, key) == 0;
}

static struct fanq_channel *channel_alloc(fanq_bus *bus, const char *name,
					  size_t n)
{
	struct fanq_channel *ch = fanq_zalloc_aligned(sizeof(*ch) + n + 1);

	if (!ch)
		return NULL;
	ch->bus = bus;
	memcpy(ch->name, name, n + 1);
	__cds_wfcq_init(&ch->q_head, &ch->q_tail);
	CDS_INIT_LIST_HEAD(&ch->members);
	CDS_INIT_LIST_HEAD(&ch->cursors);
	ch->check_msgs = ch->check_bytes = UINT64_MAX;
	ch->kick.kind = OP_KICK;
	cds_lfht_node_init(&ch->hnode);
	return ch;
}

/* Any thread.  Lock-free lookup; insert races resolve by add_unique. */
int fanq_channel_open(fanq_bus *bus, const char *name, fanq_channel **out)
{
	struct cds_lfht_node *node;
	struct fanq_channel *ch;
	size_t n;
	unsigned long h;

	if (!bus || !name || !out)
		return FANQ_EINVAL;
	n = strnlen(name, FANQ_CHANNEL_NAME_MAX + 1);
	if (n == 0 || n > FANQ_CHANNEL_NAME_MAX)
		return FANQ_EINVAL;
	ch = channel_alloc(bus, name, n);
	if (!ch)
		return FANQ_ENOMEM;
	h = name_hash(name);
	FANQ_TSAN_RELEASE(ch);
	urcu_bp_read_lock();
	node = cds_lfht_add_unique(bus->channels, h, name_match, name, &ch->hnode);
	if (node != &ch->hnode) {
		free(ch);
		ch = caa_container_of(node, struct fanq_channel, hnode);
		FANQ_TSAN_ACQUIRE(ch);
	}
	atomic_fetch_add(&ch->handles, 1);
	atomic_fetch_add(&bus->channel_handles, 1);
	fanq_read_unlock();
	*out = ch;
	return 0;
}

/* Any thread, once per successful open. */
void fanq_channel_release(fanq_channel *ch)
{
	if (!ch)
		return;
	atomic_fetch_sub(&ch->handles, 1);
	atomic_fetch_sub(&ch->bus->channel_handles, 1);
}

const char *fanq_channel_name(const fanq_channel *ch)
{
	return ch ? ch->name : NULL;
}

uint64_t fanq_channel_last_seq(const fanq_channel *ch)
{
	return ch ? atomic_load_explicit(&ch->seq, memory_order_acquire) : 0;
}

/*
 * Fan-out thread: give m its sequence and offer it to every member.
 * res is the publisher's own result, non-NULL only when the thread that
 * published m is the one applying it (never written from another thread).
 */
static void apply_publish(struct fanq_channel *ch, fanq_msg *m,
			  fanq_publish_result *res)
{
	struct history *h = atomic_load_explicit(&ch->hist, memory_order_relaxed);
	struct member *mb;
	uint32_t accepted = 0, dropped = 0, offered = 0;
	/* fan-out is the only writer of subscribers: its own value */
	unsigned refs = (unsigned)atomic_load_explicit(&ch->subscribers,
						       memory_order_relaxed);

	m->seq = atomic_load_explicit(&ch->seq, memory_order_relaxed) + 1;
	/* readers of fanq_channel_last_seq() see a seq only once given */
	atomic_store_explicit(&ch->seq, m->seq, memory_order_release);
	if (h) /* the only cost of history for a channel without one */
		history_append(h, m);
	/* a reference for every member that may queue m, in one RMW rather
	 * than one per member; the unused ones go back below */
	msg_ref_n(m, refs);
	/* the cursor members take m from the log, O(1) for all (cursor.c);
	 * the ones it demotes first are in members below */
	if (ch->ncursors || ch->waits)
		cursor_append(ch, m);
	accepted = offered = ch->ncursors;
	/* The fan-out thread is the list's only writer (the previous holder
	 * of the role released it with its store to `fanning`), so it reads
	 * the list as is: rcu_dereference would be an out-of-line call per
	 * member here (no _LGPL_SOURCE). */
	cds_list_for_each_entry(mb, &ch->members, node) {
		FANQ_TSAN_ACQUIRE(mb);
		int r = sub_offer(mb->link->sub_owner, mb->link, m);

		offered += r != 0;
		accepted += !!(r & OFFER_ACCEPTED);
		dropped += !!(r & OFFER_DROPPED);
	}
	/* one add per publish; only this fan-out thread writes it */
	atomic_fetch_add_explicit(&ch->enqueued, offered, memory_order_relaxed);
	if (res) {
		res->seq = m->seq;
		res->accepted = accepted;
		res->dropped = dropped;
		res->deferred = 0;
	}
	msg_release_n(m, refs - accepted + 1); /* unused, and the operation's */
}

static void member_free_rcu(struct rcu_head *head)
{
	struct member *mb = caa_container_of(head, struct member, rcu);
	struct fanq_sub *s;

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(mb);
	s = mb->link->sub_owner;
	free(mb);
	sub_put(s); /* the reference the membership held */
}

/* Fan-out thread: mb's subscriber gets every message published from now. */
static void member_add(struct fanq_channel *ch, struct member *mb)
{
	FANQ_TSAN_RELEASE(mb);
	cds_list_add_tail_rcu(&mb->node, &ch->members);
	mb->link->fan_member = mb;
	atomic_fetch_add_explicit(&ch->subscribers, 1, memory_order_relaxed);
	cursor_member_added(mb->link->sub_owner);
}

/*
 * Fan-out thread: apply fanq_subscribe_after().  Nothing else touches the
 * channel meanwhile, so the history's messages after the subscriber's
 * last seen seq (up to the channel's last) and the live ones that follow
 * reach it exactly once and in order.  What the history no longer holds
 * is reported by a gap marker ahead of the replay.  res: as for
 * apply_publish().  Frees ro.
 */
static void apply_resume(struct fanq_channel *ch, struct resume_op *ro,
			 fanq_resume_result *res)
{
	struct link *lk = ro->mb->link;
	uint64_t last = atomic_load_explicit(&ch->seq, memory_order_relaxed);
	/* a position ahead of the channel (say, from before a restart) can
	 * only mean "live": there is nothing after it to replay */
	uint64_t after = ro->after_seq < last ? ro->after_seq : last;
	uint64_t oldest = history_oldest(ch);
	fanq_resume_result r = { .deferred = 0 };

	/* before any push the consumer can see.  Drops of an earlier
	 * subscription that no GAP reported yet start before after + 1:
	 * keep their start, as a plain resubscription does */
	if (!lk->start_seq || lk->start_seq > after + 1)
		lk->start_seq = after + 1;
	if (oldest > after + 1) {
		r.gap_first = after + 1;
		r.gap_last = oldest - 1;
		ro->marker->gap_first = r.gap_first;
		ro->marker->seq = oldest;
		sub_offer_gap(lk->sub_owner, lk, ro->marker);
		ro->marker = NULL;
	}
	r.replayed = history_replay(ch, lk, after);
	member_add(ch, ro->mb);
	if (res)
		*res = r;
	if (ro->marker)
		fanq_msg_release(ro->marker);
	free(ro);
}

/* Fan-out thread: apply one queued operation. */
static void apply_op(struct fanq_channel *ch, struct op *op, struct op *own,
		     void *own_res)
{
	void *res = op == own ? own_res : NULL;
	struct member *mb;

	switch (op->kind) {
	case OP_PUBLISH:
		apply_publish(ch, caa_container_of(op, fanq_msg, op), res);
		break;
	case OP_SUBSCRIBE:
		mb = caa_container_of(op, struct member, add);
		/* a GAP before the first message consumed starts here, even
		 * when the hole is older than a resubscription */
		if (!mb->link->start_seq)
			mb->link->start_seq = atomic_load(&ch->seq) + 1;
		member_add(ch, mb);
		break;
	case OP_RESUME:
		apply_resume(ch, caa_container_of(op, struct resume_op, op), res);
		break;
	case OP_UNSUBSCRIBE:
		mb = caa_container_of(op, struct member, del);
		if (atomic_load_explicit(&mb->link->cur, memory_order_relaxed) !=
		    CURSOR_OFF) /* its backlog stays deliverable, in its lane */
			cursor_demote(ch, mb);
		mb->link->fan_member = NULL;
		atomic_fetch_sub(&mb->link->sub_owner->memberships, 1);
		cds_list_del_rcu(&mb->node);
		atomic_fetch_sub_explicit(&ch->subscribers, 1, memory_order_relaxed);
		FANQ_TSAN_RELEASE(mb);
		urcu_bp_call_rcu(&mb->rcu, member_free_rcu);
		break;
	case OP_HISTORY:
		history_apply_op(ch, caa_container_of(op, struct history_op, op));
		break;
	case OP_PROMOTE:
		cursor_apply_promote(ch, caa_container_of(op, struct link, promote));
		break;
	case OP_KICK:
		cursor_apply_kick(ch);
		break;
	}
}

/* Publishes a fan-out thread applies before it reports them to backlog. */
#define BACKLOG_BATCH 64

/*
 * Fan-out thread: apply operations until the queue is empty, giving back
 * the backlog of the publishes applied (one RMW per BACKLOG_BATCH).
 */
static void drain_ops(struct fanq_channel *ch, struct op *own, void *own_res)
{
	struct cds_wfcq_node *node;
	unsigned applied = 0;

	urcu_bp_read_lock();
	while ((node = __cds_wfcq_dequeue_blocking(&ch->q_head, &ch->q_tail))) {
		struct op *op = caa_container_of(node, struct op, node);

		FANQ_TSAN_ACQUIRE(op);
		applied += op->kind == OP_PUBLISH; /* op is freed by apply_op */
		apply_op(ch, op, own, own_res);
		if (applied == BACKLOG_BATCH) {
			atomic_fetch_sub_explicit(&ch->backlog, applied,
						  memory_order_relaxed);
			applied = 0;
		}
	}
	fanq_read_unlock();
	if (applied)
		atomic_fetch_sub_explicit(&ch->backlog, applied, memory_order_relaxed);
}

/*
 * Any thread.  Appends op and, unless another thread is fanning out this
 * channel, applies every queued operation.  The only wait is inside the
 * blocking dequeue, for an enqueuer between its two stores (see
 * wfcqueue.h).
 */
void channel_queue_op(struct fanq_channel *ch, struct op *op, void *own_res)
{
	channel_post_op(ch, op);
	while (!cds_wfcq_empty(&ch->q_head, &ch->q_tail)) {
		int idle = 0;

		if (!atomic_compare_exchange_strong(&ch->fanning, &idle, 1))
			return; /* the holder re-checks after clearing */
		drain_ops(ch, op, own_res);
		atomic_store(&ch->fanning, 0);
		/* orders the clear before the emptiness re-check (which issues
		 * no barrier); pairs with the enqueuer's xchg + CAS */
		atomic_thread_fence(memory_order_seq_cst);
	}
}

/*
 * Any thread.  A holder that is draining applies op; one that is clearing
 * the flag sees it in its re-check; otherwise the next channel_queue_op()
 * does.  So the caller never fans out: a consumer that asks to switch
 * while publishes keep coming would otherwise apply them until they stop,
 * and deliver nothing meanwhile.
 */
void channel_post_op(struct fanq_channel *ch, struct op *op)
{
	cds_wfcq_node_init(&op->node);
	FANQ_TSAN_RELEASE(op); /* liburcu's asm atomics are invisible to TSan */
	cds_wfcq_enqueue(&ch->q_head, &ch->q_tail, &op->node); /* full barrier */
}

/* Any thread; see fanq.h. */
int fanq_publish(fanq_channel *ch, const void *data, size_t len,
		 unsigned priority, fanq_publish_result *res)
{
	fanq_publish_result local;
	fanq_msg *m;

	if (!ch || (!data && len) || priority >= FANQ_PRIO_LEVELS)
		return FANQ_EINVAL;
	if (len > FANQ_MSG_MAX)
		return FANQ_EMSGSIZE;
	/* A bound, not an exact one: threads that pass this check together
	 * each add one (relaxed: only a count, nothing is published by it). */
	if (atomic_load_explicit(&ch->backlog, memory_order_relaxed) >=
	    FANQ_CHANNEL_BACKLOG_MAX) {
		atomic_fetch_add_explicit(&ch->refused, 1, memory_order_relaxed);
		return FANQ_EAGAIN;
	}
	m = msg_new(ch, data, len, priority);
	if (!m)
		return FANQ_ENOMEM;
	atomic_fetch_add_explicit(&ch->backlog, 1, memory_order_relaxed);
	memset(&local, 0, sizeof(local));
	local.deferred = 1; /* until this thread applies m itself */
	channel_queue_op(ch, &m->op, &local);
	if (res)
		*res = local;
	return 0;
}
