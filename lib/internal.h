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
 *  - ticker:     the one thread at a time inside fanq_bus_tick(): it walks
 *                the bus's subscriber registry, logs drop summaries,
 *                raises alerts and applies health rules (health.c).  When
 *                it evicts a subscriber it also releases the backlog,
 *                taking from the lanes like an evictor.
 *
 * Memory reclamation: lane segments, channel memberships, a channel's
 * history (its slot arrays and the references it drops), subscribers
 * (after they leave the bus registry), groups, metadata, policies and
 * health rules are freed with call_rcu(); every access to them by a
 * thread that does not own them happens inside rcu_read_lock() (bp
 * flavour, so host threads need no registration).
 *
 * liburcu is used out of line (no _LGPL_SOURCE): fanq's objects contain
 * no inlined LGPL code.
 */
#ifndef FANQ_INTERNAL_H
#define FANQ_INTERNAL_H

#include <pthread.h>
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

/*
 * Every allocation in lib/ goes through these (memory is given back with
 * free()).  In the allocation-failure build (-DFANQ_ALLOC_FAIL, `make
 * check-allocfail`) alloc_injected_failure() in alloc.c can fail any one
 * of them by count; elsewhere it is constant false and each wrapper is
 * the libc call.
 */
#ifdef FANQ_ALLOC_FAIL
bool alloc_injected_failure(void);
#else
static inline bool alloc_injected_failure(void)
{
	return false;
}
#endif

static inline void *fanq_malloc(size_t size)
{
	return alloc_injected_failure() ? NULL : malloc(size);
}

static inline void *fanq_calloc(size_t n, size_t size)
{
	return alloc_injected_failure() ? NULL : calloc(n, size);
}

static inline char *fanq_strdup(const char *s)
{
	return alloc_injected_failure() ? NULL : strdup(s);
}

/* calloc() for structs with cache-line aligned members. */
static inline void *fanq_zalloc_aligned(size_t size)
{
	void *p;

	size = (size + FANQ_CACHELINE - 1) & ~(size_t)(FANQ_CACHELINE - 1);
	if (alloc_injected_failure() || posix_memalign(&p, FANQ_CACHELINE, size))
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
enum op_kind {
	OP_PUBLISH, OP_SUBSCRIBE, OP_UNSUBSCRIBE, OP_RESUME, OP_HISTORY,
	OP_PROMOTE, OP_KICK,
};

struct op {
	struct cds_wfcq_node node;
	enum op_kind kind;
};

/* ------------------------------------------------------------ messages */

struct fanq_msg {
	union {
		struct op op;        /* OP_PUBLISH while queued on its channel */
		struct rcu_head rcu; /* later, if its channel keeps a history
					and has no memory for a batch: the
					history's reference is released
					through it after a grace period */
		uint64_t gap_first;  /* a gap marker: first missing seq */
	};
	atomic_uint refs;
	uint32_t len;
	unsigned prio;
	bool gap_marker;       /* not a message: a resume gap (see below) */
	uint64_t seq;          /* written by the fan-out thread before any
				  subscriber can see the message; a gap
				  marker's: the first seq after the gap */
	struct fanq_channel *ch;
	char data[];
};

fanq_msg *msg_new(struct fanq_channel *ch, const void *data, size_t len,
		  unsigned prio);
void msg_ref_n(fanq_msg *m, unsigned n);
void msg_release_n(fanq_msg *m, unsigned n);

/*
 * A gap marker stands in a lane for the messages a resuming subscriber
 * will never get because the channel's history no longer held them
 * (fanq_subscribe_after()): gap_first .. seq - 1.  It takes no room in
 * the subscriber's limits and counts in no statistic.  Its slot's offer
 * number is advanced by the missing count, so whether the consumer takes
 * it or an evictor drops it, consume.c reports the hole as a GAP entry.
 */
fanq_msg *msg_gap_marker_new(struct fanq_channel *ch);

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
void lane_destroy(struct lane *l);

/* ------------------------------------------------------------ channels */

struct fanq_channel {
	struct cds_lfht_node hnode;
	struct fanq_bus *bus;
	atomic_uint handles;
	/* op queue: wait-free enqueue by any thread, dequeue by fan-out */
	struct __cds_wfcq_head q_head;
	struct cds_wfcq_tail q_tail;
	atomic_int fanning FANQ_ALIGNED; /* 1 while a thread holds fan-out */
	/* publishes queued and not yet applied: publishers add one before
	 * queueing, the fan-out thread subtracts what it applied; refused:
	 * publishes turned away at FANQ_CHANNEL_BACKLOG_MAX */
	atomic_uint backlog;
	_Atomic uint64_t refused;
	_Atomic uint64_t seq;   /* last sequence; written by fan-out only */
	struct cds_list_head members; /* RCU list; written by fan-out only */
	/* NULL: no history.  Written by fan-out only (release); read by any
	 * thread inside rcu_read_lock (acquire).  See history.c. */
	_Atomic(struct history *) hist;
	/* counters (fanq_channel_stats): enqueued and subscribers by this
	 * channel's fan-out; dropped wherever one of its messages is dropped */
	_Atomic uint64_t enqueued FANQ_ALIGNED;
	_Atomic uint64_t subscribers;
	_Atomic uint64_t dropped[FANQ_DROP_REASONS];
	/* the shared log and its cursor members (cursor.c) */
	struct cds_list_head cursors; /* fan-out only, like members */
	unsigned ncursors;            /* fan-out only */
	uint64_t log_cum;             /* fan-out only: bytes appended */
	uint64_t check_msgs, check_bytes; /* fan-out only: next scan */
	atomic_bool rescan;           /* any thread: scan at next publish */
	struct op kick;               /* OP_KICK, one at a time (cursor_kick()) */
	atomic_bool kick_queued;
	unsigned nwaitable;           /* fan-out only: cursor members in a group */
	/* one per group with cursor members here, each the members waiting
	 * for the next append (cursor.c); fan-out adds, freed at bus close */
	struct chwait *waits;
	/* NULL until the first cursor member; written by fan-out (release),
	 * freed with the channel */
	_Atomic(struct chlog *) log;
	/* last seq appended; release after the slot, see cursor.c */
	_Atomic uint64_t log_last FANQ_ALIGNED;
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
 * fanq_subscribe_after(): the membership plus what its fan-out thread
 * needs to replay.  The marker is allocated by the caller so that the
 * fan-out thread never allocates for it; the fan-out thread frees this.
 */
struct resume_op {
	struct op op;          /* OP_RESUME */
	struct member *mb;
	uint64_t after_seq;    /* the subscriber's last seen seq */
	fanq_msg *marker;      /* pushed when the history falls short */
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
	uint64_t start_seq;     /* first seq offered; set by fan-out at the
				   first subscribe */
	/* cursor mode (cursor.c): next seq to take, CURSOR_OFF in lane
	 * mode; set by fan-out, advanced by CAS by the consumer */
	_Atomic uint64_t cur;
	_Atomic uint64_t cur_from;  /* first seq of this cursor run */
	struct member *fan_member;  /* fan-out only: current membership */
	uint64_t prod_ord[FANQ_PRIO_LEVELS] FANQ_ALIGNED;
	/* in prod_ord's line, which it would pad: touched once a switch */
	_Atomic(struct chwait *) wq; /* its group's waiters here (cursor.c);
					set once, by fan-out (release) */
	struct op promote;          /* OP_PROMOTE, one at a time: */
	atomic_bool promote_queued; /* set by the consumer, cleared by fan-out */
	/* c_ord[0] when the consumer last found its lanes empty: written by
	 * the consumer while its request waits, read by the fan-out */
	_Atomic uint64_t promote_ord;
	uint64_t c_ord[FANQ_PRIO_LEVELS] FANQ_ALIGNED;
	uint64_t c_seq[FANQ_PRIO_LEVELS];
};

/*
 * Any thread: queue op on ch and apply the channel's queued operations
 * unless another thread is fanning it out.  own_res is op's result
 * (fanq_publish_result for OP_PUBLISH, fanq_resume_result for OP_RESUME,
 * else NULL), written only when this thread applies op itself.
 */
void channel_queue_op(struct fanq_channel *ch, struct op *op, void *own_res);

/*
 * Any thread: queue op on ch for the thread fanning it out now, or the
 * next one; never apply anything.  For requests that may wait for the
 * channel's next operation (OP_PROMOTE; fanq_sub_close() has one applied
 * on a channel the subscriber left: cursor_close_requests()).
 */
void channel_post_op(struct fanq_channel *ch, struct op *op);

/* --------------------------------------------------------- subscribers */

struct policy {
	struct rcu_head rcu;
	enum fanq_policy_kind kind;
	fanq_policy ops;        /* for FANQ_CUSTOM */
};

struct meta_kv {
	char *key, *value;
};

/* Host metadata: replaced whole by the owner, freed after a grace period. */
struct meta {
	struct rcu_head rcu;
	struct meta_kv kv[]; /* NULL-key terminated */
};

/* A subscriber's eviction rules and the ticker's state for them. */
#define HEALTH_SAMPLES 8

struct health {
	struct rcu_head rcu;
	fanq_health_rules rules;    /* immutable once published */
	/* ticker only */
	bool soft_over;
	uint64_t soft_since_ns;
	unsigned nsamples, first;   /* ring of (time, policy drops) samples */
	struct {
		uint64_t ns, drops;
	} sample[HEALTH_SAMPLES];
};

/* sub->drop_state bits (log.c) */
#define DROP_FULL 1u    /* an offer did not fit since the last tick */
#define DROP_CLAIMED 2u /* a thread is logging the first drop of a burst */
#define DROP_LOGGED 4u  /* ...and has logged it: the ticker owns the record */
/* sub->drop_ch when drops came from more than one channel */
#define DROP_CH_SEVERAL ((struct fanq_channel *)1)

/* sub->watch bits (health.c) */
#define WATCH_FULL 1u      /* full at the last tick, since full_since_ns */
#define WATCH_HIGH 2u      /* over the high alert level */
#define WATCH_REPORTED 4u  /* eviction logged and reported */

/*
 * Three cache lines' worth of regions, each filled to its line, so an idle
 * subscriber stays 448 bytes: new state goes into struct health or
 * another separately allocated struct.
 */
struct fanq_sub {
	/* read-mostly */
	uint64_t id;
	struct fanq_bus *bus;
	/*
	 * An idle subscriber is one allocation plus its membership: lanes
	 * points at the inline lane0 while the policy has one level, else at
	 * lanes_more (FANQ_PRIO_LEVELS lanes, allocated on the first switch
	 * and kept until s is freed, so a registry reader never sees freed
	 * lanes); its first link is the inline link0.  These four are written
	 * by the owner, lanes and levels only before the first subscribe.
	 */
	unsigned levels;
	bool link0_used;
	struct lane *lanes;
	struct lane *lanes_more;
	_Atomic uint64_t max_msgs, max_bytes;
	_Atomic(struct policy *) policy;
	_Atomic(struct meta *) meta;
	/* set by the owner at attach; read by fan-out and the ticker */
	_Atomic(struct fanq_group *) group;
	/* cursor.c: the link in cursor mode, or NULL (fan-out writes);
	 * memberships applied, over all channels (fan-out threads) */
	_Atomic(struct link *) cursor_link;
	atomic_uint memberships;
	atomic_uint fold_seq;   /* odd while a demotion folds enqueued */
	atomic_uint refs;
	atomic_int evicted;     /* enum fanq_evict_reason; set once, by CAS */
	struct cds_lfht_node reg_node;  /* bus->subs, keyed by id */
	struct rcu_head rcu;    /* frees s a grace period after it leaves it */
	_Atomic(struct health *) health; /* owner writes; RCU */

	/* fan-out side */
	_Atomic uint64_t msgs FANQ_ALIGNED; /* reserved capacity */
	_Atomic uint64_t bytes;
	_Atomic uint64_t high_water;
	_Atomic uint64_t enqueued;
	_Atomic uint64_t dropped[FANQ_DROP_REASONS];
	atomic_int ready;       /* 1 while queued on (or owed to) the group */
	struct cds_wfcq_node ready_node;
	/* drop record (log.c): written by the thread counting a policy drop;
	 * the drop_line_ fields by the first-drop logger, then the ticker */
	atomic_uint drop_state;
	_Atomic uint64_t drop_first_seq, drop_last_seq;
	_Atomic(struct fanq_channel *) drop_ch;
	_Atomic uint64_t drop_line_ns, drop_line_total;

	/* consumer side */
	_Atomic uint64_t delivered FANQ_ALIGNED;
	_Atomic uint64_t held;  /* messages taken from lanes, not yet delivered */
	struct link *links;
	unsigned npending;      /* entries taken, not yet handed out: */
	fanq_entry pending[2];  /* a GAP and its message, or a peeked one */
	struct drain *drain;
	atomic_bool closed;     /* written by the owner, read by the ticker */
	/* watched by the ticker (health.c); touch_ns written by the owner */
	atomic_uint watch;
	_Atomic uint64_t touch_ns;
	_Atomic uint64_t progress_ns;   /* last tick that saw it drain */
	_Atomic uint64_t full_since_ns; /* first tick of the current full run */
	uint64_t seen_delivered;        /* ticker only: delivered at last tick */

	/* storage for the common case: see lanes, links */
	struct lane lane0 FANQ_ALIGNED;
	struct link link0 FANQ_ALIGNED;
};

/* sub_offer() result bits */
#define OFFER_ACCEPTED 1
#define OFFER_DROPPED 2

void sub_get(struct fanq_sub *s);
bool sub_tryget(struct fanq_sub *s);
void sub_put(struct fanq_sub *s);
int sub_offer(struct fanq_sub *s, struct link *lk, fanq_msg *m);
void sub_unreserve(struct fanq_sub *s, uint64_t msgs, uint64_t bytes);
void sub_high_water(struct fanq_sub *s, uint64_t depth);
void sub_count_drop(struct fanq_sub *s, const fanq_msg *m,
		    enum fanq_drop_reason why);
void sub_notify_group(struct fanq_sub *s);
struct link *sub_link_find(const struct fanq_sub *s,
			   const struct fanq_channel *ch);
int sub_take(struct fanq_sub *s, fanq_entry *out);
void sub_release_held(struct fanq_sub *s, enum fanq_drop_reason why);
uint64_t sub_release_backlog(struct fanq_sub *s);
int sub_consumer_check(struct fanq_sub *s);
uint64_t sub_policy_drops(const struct fanq_sub *s);
void drain_release(struct fanq_sub *s);
void drain_free(struct fanq_sub *s);

/* ------------------------------------------------------------ policies */

unsigned policy_lane(const struct policy *p, unsigned levels, const fanq_msg *m);
int policy_on_full(const struct policy *p, const struct fanq_sub *s,
		   const fanq_msg *in, unsigned in_lane);
enum fanq_drop_reason policy_evict_reason(const struct policy *p);
enum fanq_drop_reason policy_reject_reason(const struct policy *p);
unsigned policy_levels(const struct policy *p);
const char *policy_name(const struct policy *p);

void sub_offer_gap(struct fanq_sub *s, struct link *lk, fanq_msg *marker);

/* ------------------------------------------------------------- history */

/* fanq_channel_set_history(): new limits, applied by the fan-out thread. */
struct history_op {
	struct op op;              /* OP_HISTORY */
	uint64_t max_msgs;         /* 0: turn the history off */
	uint64_t max_bytes, max_age_ms; /* 0: no such limit */
	struct history *fresh;     /* allocated by the caller when turning on */
};

/* Fan-out thread (each inside rcu_read_lock); see history.c. */
void history_apply_op(struct fanq_channel *ch, struct history_op *hop);
void history_append(struct history *h, fanq_msg *m);
uint64_t history_oldest(struct fanq_channel *ch);
uint64_t history_replay(struct fanq_channel *ch, struct link *lk,
			uint64_t after_seq);
/* fanq_bus_close(), once nothing can reach the channel. */
void history_free(struct history *h);

/* -------------------------------------------------------------- groups */

void group_enqueue(struct fanq_group *g, struct fanq_sub *s);
void group_get(struct fanq_group *g);
void group_put(struct fanq_group *g);
void group_splice(struct fanq_group *g, struct __cds_wfcq_head *head,
		  struct cds_wfcq_tail *tail);
void group_queue_release(struct __cds_wfcq_head *head, struct cds_wfcq_tail *tail);
void group_detach(struct fanq_group *g);

/* ----------------------------------------------------------------- bus */

/* Counters of freed subscribers, so bus totals never decrease. */
struct bus_folded {
	uint64_t enqueued, delivered;
	uint64_t dropped[FANQ_DROP_REASONS];
};

struct fanq_bus {
	struct cds_lfht *channels;
	struct cds_lfht *subs;  /* every subscriber until it is freed, by id */
	atomic_uint live_subs;
	atomic_uint live_groups;
	atomic_uint channel_handles;
	/* settings: written before the bus is shared (fanq_bus_set_*) */
	fanq_clock_fn clock;
	void *clock_arg;
	fanq_log_fn log;
	void *log_arg;
	uint64_t log_interval_ns;
	fanq_event_fn event;
	void *event_arg;
	unsigned alert_high_pct, alert_low_pct;
	/* ticker */
	atomic_int ticking;
	_Atomic uint64_t tick_ns;  /* time of the last tick (0: none yet) */
	_Atomic uint64_t evicted[FANQ_EVICT_REASONS];
	/* subscribers leave `subs` and are folded in under fold_mu (stats.c) */
	pthread_mutex_t fold_mu;
	struct bus_folded folded;
};

/*
 * Walk bus->subs inside rcu_read_lock.  Unlike cds_lfht_for_each_entry(),
 * never computes a subscriber from the NULL that ends the walk (UBSan
 * rejects that offset from NULL).
 */
static inline struct fanq_sub *bus_sub_of(struct cds_lfht_iter *it)
{
	struct cds_lfht_node *n = cds_lfht_iter_get_node(it);
	struct fanq_sub *s;

	if (!n)
		return NULL;
	s = caa_container_of(n, struct fanq_sub, reg_node);
	FANQ_TSAN_ACQUIRE(s); /* pairs with the release in bus_sub_register() */
	return s;
}

#define bus_for_each_sub(bus, it, s)                                  \
	for (cds_lfht_first((bus)->subs, (it)); ((s) = bus_sub_of(it)); \
	     cds_lfht_next((bus)->subs, (it)))

/* The same walk over bus->channels (inside rcu_read_lock). */
static inline struct fanq_channel *bus_channel_of(struct cds_lfht_iter *it)
{
	struct cds_lfht_node *n = cds_lfht_iter_get_node(it);
	struct fanq_channel *ch;

	if (!n)
		return NULL;
	ch = caa_container_of(n, struct fanq_channel, hnode);
	FANQ_TSAN_ACQUIRE(ch); /* pairs with the release in fanq_channel_open() */
	return ch;
}

#define bus_for_each_channel(bus, it, ch)                                  \
	for (cds_lfht_first((bus)->channels, (it)); ((ch) = bus_channel_of(it)); \
	     cds_lfht_next((bus)->channels, (it)))

uint64_t bus_now(const struct fanq_bus *bus);
void bus_sub_register(struct fanq_bus *bus, struct fanq_sub *s);
struct fanq_sub *bus_sub_find(struct fanq_bus *bus, uint64_t id);

/* --------------------------------------------------------------- stats */

/* Bus totals plus a histogram of queue depth over open subscribers. */
#define STATS_DEPTH_BUCKETS 7 /* le 0, 1, 10, ... 100000; then +Inf */

struct stats_walk {
	fanq_bus_stats t;
	uint64_t depth_le[STATS_DEPTH_BUCKETS]; /* cumulative */
	uint64_t depth_count, depth_sum;
};

void stats_fold(struct fanq_sub *s);
void stats_sub_snapshot(const struct fanq_sub *s, fanq_sub_stats *out);
void stats_collect(struct fanq_bus *bus, struct stats_walk *w);
const uint64_t *stats_depth_bounds(void);

/* ----------------------------------------------------------------- log */

void log_drop(struct fanq_sub *s, const fanq_msg *m, enum fanq_drop_reason why);
void log_tick_sub(struct fanq_bus *bus, struct fanq_sub *s, uint64_t now);
void log_sub_line(struct fanq_bus *bus, fanq_log_record *r,
		  const struct fanq_sub *s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* -------------------------------------------------------------- health */

int health_rules_check(const fanq_health_rules *r);
int health_attach(struct fanq_sub *s, const fanq_health_rules *r);
bool sub_evict_claim(struct fanq_sub *s, enum fanq_evict_reason why);



/* ------------------------------------------------------------- cursor.c */

/*
 * The shared log of a channel and the subscribers that read it by
 * position ("cursor mode") while they keep up.  See cursor.c.
 */
#define CURSOR_OFF UINT64_MAX

void cursor_append(struct fanq_channel *ch, fanq_msg *m);
void cursor_demote(struct fanq_channel *ch, struct member *mb);
void cursor_apply_promote(struct fanq_channel *ch, struct link *lk);
void cursor_member_added(struct fanq_sub *s);
void cursor_rescan(struct fanq_sub *s);
void cursor_kick_sub(struct fanq_sub *s);
void cursor_apply_kick(struct fanq_channel *ch);
size_t cursor_take(struct fanq_sub *s, struct link *lk, fanq_entry *out,
		   size_t room, unsigned max_msgs, bool deliver);
bool cursor_ready(const struct link *lk);
void cursor_maybe_promote(struct fanq_sub *s, struct link *lk);
void cursor_close_requests(struct fanq_sub *s);
bool cursor_enroll(struct fanq_sub *s);
void cursor_enroll_cleared(struct fanq_sub *s);
void cursor_waits_free(struct fanq_channel *ch);
uint64_t cursor_release(struct fanq_sub *s);
uint64_t cursor_backlog(const struct fanq_sub *s, uint64_t *bytes);
uint64_t cursor_sub_enqueued(const struct fanq_sub *s);
void chlog_free(struct fanq_channel *ch);
int sub_offer_moved(struct fanq_sub *s, struct link *lk, fanq_msg *m);

#endif /* FANQ_INTERNAL_H */
