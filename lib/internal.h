/*
 * internal.h - fanq's private structures.  Never installed.
 *
 * Threads and roles (every comment below names one):
 *  - publisher:  any host thread inside fanq_publish().
 *  - fan-out:    the one publisher at a time that holds a channel's
 *                `fanning` role and applies that channel's queued
 *                operations (publish, subscribe, unsubscribe) in order.
 *                Several channels fan out at once, so a subscriber's
 *                lanes have several producers (MPSC).
 *  - consumer:   the one thread at a time that pops a subscriber (its
 *                owner; with groups, the group's I/O thread).
 *  - evictor:    a fan-out thread taking the oldest entry of a lane
 *                because the subscriber is full (drop-oldest, priority).
 *                Evictors and the consumer both take from the lane head.
 *
 * Memory reclamation: lane segments and channel memberships are freed
 * with call_rcu(); every access to them happens inside rcu_read_lock()
 * (bp flavour, so host threads need no registration).
 *
 * liburcu is used out of line (no _LGPL_SOURCE): fanq's objects contain
 * no inlined LGPL code.
 */
#ifndef FANQ_INTERNAL_H
#define FANQ_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-bp.h>
#include <urcu/list.h>
#include <urcu/rculist.h>
#include <urcu/rculfhash.h>
#include <urcu/wfcqueue.h>

#include "fanq.h"

#define FANQ_CACHELINE 64
#define FANQ_ALIGNED __attribute__((aligned(FANQ_CACHELINE)))

/* calloc() for structs with cache-line aligned members. */
static inline void *fanq_zalloc_aligned(size_t size)
{
	void *p;

	size = (size + FANQ_CACHELINE - 1) & ~(size_t)(FANQ_CACHELINE - 1);
	if (posix_memalign(&p, FANQ_CACHELINE, size))
		return NULL;
	return memset(p, 0, size);
}

/*
 * ThreadSanitizer does not see liburcu's grace periods (its atomics are
 * inline asm in an uninstrumented library).  Two annotations model them:
 *  - per object: the thread that retires an object releases it, and the
 *    call_rcu callback acquires it before freeing (the retirer's writes
 *    happen before the free);
 *  - per grace period: every reader releases fanq_tsan_grace when it
 *    leaves its read-side section (fanq_read_unlock), and every call_rcu
 *    callback acquires it first (FANQ_TSAN_GRACE_OVER).  A callback runs
 *    only after every reader that could see the object has left, so each
 *    such reader's accesses happen before the free.  The edge is coarser
 *    than the truth (it also orders readers that started later), which
 *    can only hide races on memory freed by call_rcu, never report false
 *    ones.
 */
#ifdef FANQ_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char fanq_tsan_grace __attribute__((visibility("hidden")));
#define FANQ_TSAN_ACQUIRE(p) __tsan_acquire(p)
#define FANQ_TSAN_RELEASE(p) __tsan_release(p)
#define FANQ_TSAN_GRACE_OVER() __tsan_acquire(&fanq_tsan_grace)
#else
#define FANQ_TSAN_ACQUIRE(p) ((void)(p))
#define FANQ_TSAN_RELEASE(p) ((void)(p))
#define FANQ_TSAN_GRACE_OVER() ((void)0)
#endif

/* Leave an RCU read-side section (use instead of urcu_bp_read_unlock). */
static inline void fanq_read_unlock(void)
{
#ifdef FANQ_TSAN
	__tsan_release(&fanq_tsan_grace);
#endif
	urcu_bp_read_unlock();
}

/* Operations queued on a channel, applied by its fan-out thread. */
enum op_kind { OP_PUBLISH, OP_SUBSCRIBE, OP_UNSUBSCRIBE };

struct op {
	struct cds_wfcq_node node;
	enum op_kind kind;
};

/* ------------------------------------------------------------ messages */

struct fanq_msg {
	struct op op;          /* OP_PUBLISH while queued on its channel */
	atomic_uint refs;
	uint32_t len;
	unsigned prio;
	uint64_t seq;          /* written by the fan-out thread before any
				  subscriber can see the message */
	struct fanq_channel *ch;
	char data[];
};

fanq_msg *msg_new(struct fanq_channel *ch, const void *data, size_t len,
		  unsigned prio);
void msg_ref_n(fanq_msg *m, unsigned n);
void msg_release_n(fanq_msg *m, unsigned n);

/* ---------------------------------------------------------------- lane */

/*
 * A lane is an unbounded MPSC FIFO made of small segments; the bound is
 * the subscriber's limits, enforced before a push.  Indices are free-
 * running 64-bit counters; segment i holds [base, base + LANE_SEG).
 * See ring.c for the protocol.
 */
#define LANE_SEG 16

struct lane_slot {
	_Atomic(fanq_msg *) msg; /* NULL until the producer publishes it */
	uint64_t ord;            /* per (subscriber, channel, lane) offer number */
};

struct lane_seg {
	_Atomic(struct lane_seg *) next;
	uint64_t base;
	struct rcu_head rcu;
	struct lane_slot slot[LANE_SEG];
};

struct lane {
	/* producer side: written by fan-out threads */
	_Atomic uint64_t tail FANQ_ALIGNED;
	_Atomic(struct lane_seg *) tail_seg;
	/* taker side: the consumer and evictors */
	_Atomic uint64_t head FANQ_ALIGNED;
	_Atomic(struct lane_seg *) head_seg;
	uint64_t tail_seen;     /* consumer only: tail when it last looked */
};

int lane_push(struct lane *l, fanq_msg *m, uint64_t ord);
/* A slot an evictor claimed before its producer wrote it. */
#define LANE_EVICTED ((fanq_msg *)1)

fanq_msg *lane_evict(struct lane *l);

/* What the consumer read from a lane's head, before taking it. */
struct lane_batch {
	uint64_t head;          /* index of slot[0] */
	struct lane_seg *seg;   /* the segment holding them all */
	struct lane_slot *slot; /* the slots read, in place */
};

unsigned lane_read_batch(struct lane *l, struct lane_batch *b, unsigned max);
bool lane_take_batch(struct lane *l, const struct lane_batch *b, unsigned n);
void lane_batch_done(struct lane *l, const struct lane_batch *b, unsigned n);

/* Consumer, inside rcu_read_lock: entry j of those read (final once read:
 * a slot only changes from NULL), and its ord (not for LANE_EVICTED). */
static inline fanq_msg *lane_batch_msg(const struct lane_batch *b, unsigned j)
{
	return atomic_load_explicit(&b->slot[j].msg, memory_order_relaxed);
}

static inline uint64_t lane_batch_ord(const struct lane_batch *b, unsigned j)
{
	return b->slot[j].ord; /* written before the slot's release CAS */
}
uint64_t lane_depth(const struct lane *l);
bool lane_ready(struct lane *l);
uint64_t lane_destroy(struct lane *l);

/* ------------------------------------------------------------ channels */

struct fanq_channel {
	struct cds_lfht_node hnode;
	struct fanq_bus *bus;
	atomic_uint handles;
	/* op queue: wait-free enqueue by any thread, dequeue by fan-out */
	struct __cds_wfcq_head q_head;
	struct cds_wfcq_tail q_tail;
	atomic_int fanning FANQ_ALIGNED; /* 1 while a thread holds fan-out */
	_Atomic uint64_t seq;   /* last sequence; written by fan-out only */
	struct cds_list_head members; /* RCU list; written by fan-out only */
	unsigned nmembers;      /* its length; fan-out only */
	char name[];
};

/* A subscriber's presence in a channel's member list. */
struct member {
	struct op add, del;
	struct cds_list_head node;
	struct link *link;
	struct rcu_head rcu;
};

/*
 * One per (subscriber, channel), for the subscriber's whole life.
 * prod_ord is written by the channel's fan-out thread only; the c_ fields
 * by the subscriber's consumer only.
 */
struct link {
	struct link *next;      /* sub->links, owner thread only */
	struct fanq_sub *sub_owner;
	struct fanq_channel *ch;
	struct member *member;  /* current membership, owner thread only */
	uint64_t start_seq;     /* first seq offered; set by fan-out at subscribe */
	uint64_t prod_ord[FANQ_PRIO_LEVELS] FANQ_ALIGNED;
	uint64_t c_ord[FANQ_PRIO_LEVELS] FANQ_ALIGNED;
	uint64_t c_seq[FANQ_PRIO_LEVELS];
};

void channel_queue_op(struct fanq_channel *ch, struct op *op);

/* --------------------------------------------------------- subscribers */

struct policy {
	struct rcu_head rcu;
	enum fanq_policy_kind kind;
	fanq_policy ops;        /* for FANQ_CUSTOM */
};

struct meta_kv {
	char *key, *value;
};

struct fanq_sub {
	/* read-mostly */
	uint64_t id;
	struct fanq_bus *bus;
	unsigned levels;
	struct lane *lanes;
	_Atomic uint64_t max_msgs, max_bytes;
	_Atomic(struct policy *) policy;
	_Atomic(struct meta_kv *) meta; /* NULL-key terminated array */
	struct fanq_group *group;
	atomic_uint refs;

	/* fan-out side */
	_Atomic uint64_t msgs FANQ_ALIGNED; /* reserved capacity */
	_Atomic uint64_t bytes;
	_Atomic uint64_t high_water;
	_Atomic uint64_t enqueued;
	_Atomic uint64_t dropped[FANQ_DROP_REASONS];
	atomic_int ready;       /* 1 while queued on (or owed to) the group */
	struct cds_wfcq_node ready_node;

	/* consumer side */
	_Atomic uint64_t delivered FANQ_ALIGNED;
	_Atomic uint64_t held;  /* messages taken from lanes, not yet delivered */
	struct link *links;
	unsigned npending;      /* entries taken, not yet handed out: */
	fanq_entry pending[2];  /* a GAP and its message, or a peeked one */
	struct drain *drain;
	bool closed;
};

/* sub_offer() result bits */
#define OFFER_ACCEPTED 1
#define OFFER_DROPPED 2

void sub_get(struct fanq_sub *s);
void sub_put(struct fanq_sub *s);
int sub_offer(struct fanq_sub *s, struct link *lk, fanq_msg *m);
void sub_unreserve(struct fanq_sub *s, uint64_t msgs, uint64_t bytes);
void sub_count_drop(struct fanq_sub *s, enum fanq_drop_reason why);
void sub_notify_group(struct fanq_sub *s);
struct link *sub_link_find(struct fanq_sub *s, const struct fanq_channel *ch);
int sub_take(struct fanq_sub *s, fanq_entry *out);
void sub_release_held(struct fanq_sub *s, enum fanq_drop_reason why);
void drain_free(struct fanq_sub *s);

/* ------------------------------------------------------------ policies */

unsigned policy_lane(const struct policy *p, unsigned levels, const fanq_msg *m);
int policy_on_full(const struct policy *p, const struct fanq_sub *s,
		   const fanq_msg *in, unsigned in_lane);
enum fanq_drop_reason policy_evict_reason(const struct policy *p);
enum fanq_drop_reason policy_reject_reason(const struct policy *p);
unsigned policy_levels(const struct policy *p);

/* -------------------------------------------------------------- groups */

void group_enqueue(struct fanq_group *g, struct fanq_sub *s);
void group_detach(struct fanq_group *g);

/* ----------------------------------------------------------------- bus */

struct fanq_bus {
	struct cds_lfht *channels;
	atomic_uint live_subs;
	atomic_uint live_groups;
	atomic_uint channel_handles;
};


#endif /* FANQ_INTERNAL_H */
