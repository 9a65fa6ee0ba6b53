/*
 * group.c - consumer groups: one eventfd and one ready list for all the
 * subscribers an I/O thread owns.
 *
 * Readiness protocol (no lost wakeup):
 *  1. A fan-out thread pushes a message, then exchanges sub->ready 0->1
 *     (seq_cst).  Only the thread that saw 0 enqueues the subscriber on
 *     the group's wfcqueue, and writes the eventfd if the queue was empty.
 *  2. The owner, in fanq_group_next_ready(), dequeues a subscriber and
 *     clears ready with an exchange (an RMW, not a plain store) before
 *     returning it; the host then drains.  Both sides' RMWs on ready are
 *     totally ordered: an exchange after the clear reads 0 and enqueues
 *     again; one before it wrote the 1 the clear reads (directly or via
 *     later RMWs, a release sequence), so the clear synchronises with it
 *     and the push before it is visible to the drain that follows.
 *  3. When the list looks empty the owner reads the eventfd (resetting it)
 *     and looks again, so a signal consumed by that read always comes with
 *     a subscriber the second look finds.
 * The ready list holds a reference on each subscriber queued on it.
 *
 * Notifiers (fan-out threads, the ticker evicting a subscriber) run inside
 * rcu_read_lock and may still be enqueueing when the owner closes the
 * group, so its memory and eventfd are released a grace period after
 * fanq_group_close(), and the list is emptied again then.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct fanq_group {
	struct __cds_wfcq_head q_head; /* dequeued by the owner only */
	struct cds_wfcq_tail q_tail;
	fanq_bus *bus;
	int efd;
	atomic_uint attached;
	bool has_rules;                /* owner thread only */
	fanq_health_rules rules;
	/* the owner's reference and one per channel waiter queue of its
	 * members (cursor.c): the memory outlives fanq_group_close() while
	 * such a queue may still be spliced into it; closed (set before the
	 * eventfd is closed, a grace period later) makes splices drop */
	atomic_uint refs;
	atomic_bool closed;
	struct rcu_head rcu;
};

/* Any thread.  See fanq.h. */
int fanq_group_new(fanq_bus *bus, fanq_group **out)
{
	struct fanq_group *g;

	if (!bus || !out)
		return FANQ_EINVAL;
	g = fanq_calloc(1, sizeof(*g));
	if (!g)
		return FANQ_ENOMEM;
	g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->efd < 0) {
		free(g);
		return FANQ_ESYS;
	}
	g->bus = bus;
	atomic_init(&g->refs, 1);
	__cds_wfcq_init(&g->q_head, &g->q_tail);
	atomic_fetch_add(&bus->live_groups, 1);
	*out = g;
	return 0;
}

int fanq_group_fd(const fanq_group *g)
{
	return g ? g->efd : FANQ_EINVAL;
}

/* Owner thread.  See fanq.h. */
int fanq_group_set_health(fanq_group *g, const fanq_health_rules *r)
{
	int rc;

	if (!g || !r)
		return FANQ_EINVAL;
	rc = health_rules_check(r);
	if (rc)
		return rc;
	g->rules = *r;
	g->has_rules = true;
	return 0;
}

/* Owner thread, before the subscriber is subscribed anywhere. */
int fanq_group_attach(fanq_group *g, fanq_sub *s)
{
	int rc;

	if (!g || !s || g->bus != s->bus)
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	if (atomic_load(&s->group) || s->links)
		return FANQ_EBUSY;
	if (g->has_rules && !atomic_load(&s->health)) {
		rc = health_attach(s, &g->rules);
		if (rc)
			return rc;
	}
	atomic_store(&s->group, g);
	atomic_fetch_add(&g->attached, 1);
	/* data queued before attaching would never be signalled */
	if (atomic_load(&s->msgs) || s->npending)
		sub_notify_group(s);
	return 0;
}

/* Owner thread, from fanq_sub_close(). */
void group_detach(struct fanq_group *g)
{
	atomic_fetch_sub(&g->attached, 1);
}

/* Notifier inside rcu_read_lock (step 1 above): s is ready; it was not queued. */
void group_enqueue(struct fanq_group *g, struct fanq_sub *s)
{
	static const uint64_t one = 1;

	sub_get(s);
	cds_wfcq_node_init(&s->ready_node);
	if (cds_wfcq_enqueue(&g->q_head, &g->q_tail, &s->ready_node))
		return; /* not empty before: the owner will get to it */
	while (write(g->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static struct fanq_sub *group_dequeue(struct fanq_group *g)
{
	struct cds_wfcq_node *n = __cds_wfcq_dequeue_blocking(&g->q_head, &g->q_tail);

	return n ? caa_container_of(n, struct fanq_sub, ready_node) : NULL;
}

/* Owner thread.  See fanq.h and steps 2-3 above. */
int fanq_group_next_ready(fanq_group *g, fanq_sub **out)
{
	struct fanq_sub *s;
	uint64_t v;

	if (!g || !out)
		return FANQ_EINVAL;
	for (;;) {
		s = group_dequeue(g);
		if (!s) {
			while (read(g->efd, &v, sizeof(v)) < 0 && errno == EINTR)
				;
			s = group_dequeue(g);
		}
		if (!s)
			return FANQ_EAGAIN;
		if (!s->closed && cursor_enroll(s)) {
			/* reading a shared log: queued (with the list's
			 * reference, ready still 1) for the next append's
			 * notification, the way a lane push would send it */
			*out = s;
			return 0;
		}
		atomic_exchange(&s->ready, 0); /* step 2: RMW, see above */
		if (!s->closed) {
			cursor_enroll_cleared(s); /* switched meanwhile? */
			break;
		}
		sub_put(s); /* closed by the owner while queued */
	}
	sub_put(s); /* the host holds its own reference until close */
	*out = s;
	return 0;
}

/*
 * The only dequeuer of head/tail: release every subscriber queued there
 * by its ready_node (a ready list or a channel's waiter queue, each entry
 * holding a reference).
 */
void group_queue_release(struct __cds_wfcq_head *head, struct cds_wfcq_tail *tail)
{
	struct cds_wfcq_node *n;

	while ((n = __cds_wfcq_dequeue_blocking(head, tail)))
		sub_put(caa_container_of(n, struct fanq_sub, ready_node));
}

static void group_empty(struct fanq_group *g)
{
	group_queue_release(&g->q_head, &g->q_tail);
}

void group_get(struct fanq_group *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void group_put(struct fanq_group *g)
{
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	group_empty(g);
	free(g);
}

/*
 * Fan-out thread inside rcu_read_lock: move every subscriber queued on
 * head/tail (each with a reference, ready 1) to g's ready list, as many
 * group_enqueue() would, signalling once.  A closed group gets nothing:
 * its eventfd may be closed a grace period after `closed` was set, and a
 * thread that saw it clear is inside a read-side section that began
 * before that grace period ended.
 */
void group_splice(struct fanq_group *g, struct __cds_wfcq_head *head,
		  struct cds_wfcq_tail *tail)
{
	static const uint64_t one = 1;

	if (atomic_load(&g->closed)) {
		group_queue_release(head, tail);
		return;
	}
	if (__cds_wfcq_splice_blocking(&g->q_head, &g->q_tail, head, tail) !=
	    CDS_WFCQ_RET_DEST_EMPTY)
		return; /* nothing moved, or the owner will get to it */
	while (write(g->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* A grace period after close: no notifier can reach g's eventfd any more. */
static void group_free_rcu(struct rcu_head *head)
{
	struct fanq_group *g = caa_container_of(head, struct fanq_group, rcu);

	FANQ_TSAN_GRACE_OVER();
	FANQ_TSAN_ACQUIRE(g);
	close(g->efd);
	group_put(g);
}

/* Owner thread.  Fails with FANQ_EBUSY while subscribers are attached. */
int fanq_group_close(fanq_group *g)
{
	if (!g)
		return FANQ_EINVAL;
	if (atomic_load(&g->attached))
		return FANQ_EBUSY;
	group_empty(g);
	atomic_store(&g->closed, true); /* before the grace period: see group_splice() */
	atomic_fetch_sub(&g->bus->live_groups, 1);
	FANQ_TSAN_RELEASE(g);
	urcu_bp_call_rcu(&g->rcu, group_free_rcu);
	return 0;
}
