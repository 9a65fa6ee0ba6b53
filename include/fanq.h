/*
 * fanq.h - bounded fan-out queues for realtime push servers.
 *
 * One publish reaches every subscriber of a channel.  Each subscriber has
 * its own bounded queue (messages and bytes) with a drop policy, so a slow
 * subscriber never slows a fast one and never grows memory without bound.
 * Every accepted message is either delivered or counted as dropped.
 *
 * Reading order: types, lifecycle, publish, consume, observe.
 *
 * Conventions
 *  - Every function returns 0 (or a count) on success and a negative
 *    FANQ_E* code on failure; fanq_strerror() explains a code.
 *  - "Any thread" means any thread of the host, with no registration:
 *    fanq uses liburcu's bulletproof (bp) flavour internally.
 *  - fanq never starts threads of its own.  liburcu starts one call_rcu
 *    worker per process to reclaim memory after grace periods.
 */
#ifndef FANQ_H
#define FANQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FANQ_API __attribute__((visibility("default")))
#else
#define FANQ_API
#endif

/* ---------------------------------------------------------------- types */

typedef struct fanq_bus fanq_bus;          /* owns channels and subscribers */
typedef struct fanq_channel fanq_channel;  /* a named stream with a sequence */
typedef struct fanq_sub fanq_sub;          /* one bounded queue, one consumer */
typedef struct fanq_msg fanq_msg;          /* immutable, reference-counted */
typedef struct fanq_group fanq_group;      /* subscribers one I/O thread owns */

enum fanq_error {
	FANQ_EINVAL = -1,   /* invalid argument (NULL, zero or absurd value) */
	FANQ_ENOMEM = -2,   /* allocation failed; nothing was changed */
	FANQ_EMSGSIZE = -3, /* message larger than FANQ_MSG_MAX */
	FANQ_ENOENT = -4,   /* unknown channel, or not subscribed to it */
	FANQ_EEXIST = -5,   /* already subscribed to that channel */
	FANQ_EAGAIN = -6,   /* queue empty (or next entry still being written) */
	FANQ_ECLOSED = -7,  /* object closed or subscriber evicted */
	FANQ_EBUSY = -8,    /* bus still has subscribers or channel handles */
	FANQ_ERANGE = -9,   /* history does not reach back to the asked seq */
	FANQ_ESYS = -10,    /* a system call failed; see errno */
};

/* Limits checked on every call. */
#define FANQ_MSG_MAX (64u << 20)          /* largest payload: 64 MiB */
#define FANQ_QUEUE_MSGS_MAX (1u << 28)    /* largest per-subscriber limit */
#define FANQ_CHANNEL_NAME_MAX 255         /* bytes, without the NUL */
#define FANQ_PRIO_LEVELS 4                /* priorities 0 (lowest) .. 3 */
#define FANQ_DEFAULT_QUEUE_MSGS 10000u
#define FANQ_DEFAULT_QUEUE_BYTES (16u << 20)
#define FANQ_HISTORY_MSGS_MAX (1u << 24)  /* largest per-channel history */
#define FANQ_HISTORY_AGE_MAX_MS (30ull * 24 * 3600 * 1000) /* 30 days */

/* Drop policies (see README "Drop policies"). */
enum fanq_policy_kind {
	FANQ_DROP_NEW = 0,    /* a full queue rejects the incoming message */
	FANQ_DROP_OLDEST = 1, /* a full queue evicts its oldest message */
	FANQ_PRIORITY = 2,    /* evict oldest of lowest level; deliver highest first */
	FANQ_CUSTOM = 3,      /* set with fanq_sub_set_custom_policy() */
};

/* Why a message was dropped; indexes fanq_sub_stats.dropped[]. */
enum fanq_drop_reason {
	FANQ_DROP_FULL_NEW = 0,        /* rejected on arrival (drop-new, or too big) */
	FANQ_DROP_EVICTED_OLDEST = 1,  /* evicted by drop-oldest */
	FANQ_DROP_EVICTED_PRIORITY = 2,/* evicted (or rejected) by priority/custom */
	FANQ_DROP_UNSUBSCRIBED = 3,    /* backlog released at close or eviction */
	FANQ_DROP_REASONS = 4,
};

/* Result of one publish. */
typedef struct fanq_publish_result {
	uint64_t seq;      /* channel sequence given to the message (0 if deferred) */
	uint32_t accepted; /* subscribers that queued it */
	uint32_t dropped;  /* subscribers that rejected it or evicted another */
	int deferred;      /* 1: handed to the thread already fanning out this
			      channel; counts then land in the stats only */
} fanq_publish_result;

/* Result of fanq_subscribe_after(). */
typedef struct fanq_resume_result {
	uint64_t replayed;  /* messages of the history offered to the sub */
	uint64_t gap_first; /* messages the history no longer held: first */
	uint64_t gap_last;  /*   .. last (both 0 when nothing was missing) */
	int deferred;       /* 1: handed to the thread already fanning out
			       the channel; the other fields are 0 and the
			       queue shows the outcome (a GAP entry first
			       when the history fell short) */
} fanq_resume_result;

/*
 * A user's own drop policy.  fanq keeps one lane (FIFO) per level; the
 * consumer is served from the highest non-empty lane first.
 *
 * lane_of(): which lane (0 .. levels-1) a message goes to.
 * on_full(): called when an incoming message does not fit.  Return -1 to
 *   reject the incoming message, or a lane index whose oldest message
 *   fanq evicts before trying again.  Returning an empty lane rejects.
 *
 * Both run in a publishing thread, may run concurrently with each other
 * for the same subscriber, must not block and must not call fanq.
 */
typedef struct fanq_queue_view {
	unsigned levels;
	uint64_t depth[FANQ_PRIO_LEVELS]; /* messages queued per lane */
	uint64_t msgs, bytes;             /* totals queued */
	uint64_t max_msgs, max_bytes;     /* the limits */
} fanq_queue_view;

typedef struct fanq_policy {
	const char *name;
	unsigned levels; /* 1 .. FANQ_PRIO_LEVELS */
	unsigned (*lane_of)(void *arg, const fanq_msg *m);
	int (*on_full)(void *arg, const fanq_queue_view *q, const fanq_msg *in);
	void *arg;
} fanq_policy;

/* ------------------------------------------------------------ lifecycle */

FANQ_API const char *fanq_strerror(int err);

/* Create a bus.  Any thread.  Allocates. */
FANQ_API int fanq_bus_new(fanq_bus **out);

/*
 * Destroy a bus.  Any thread, once, after every subscriber was closed and
 * every channel handle released (else FANQ_EBUSY and nothing changes).
 * Waits for an RCU grace period; must not be called from a callback.
 */
FANQ_API int fanq_bus_close(fanq_bus *bus);

/*
 * Get or create a channel by name and take a reference to it.  Any
 * thread, lock-free lookup (cds_lfht); allocates on first use.  Release
 * with fanq_channel_release().  Names are 1..FANQ_CHANNEL_NAME_MAX bytes.
 */
FANQ_API int fanq_channel_open(fanq_bus *bus, const char *name,
			       fanq_channel **out);
FANQ_API void fanq_channel_release(fanq_channel *ch);
FANQ_API const char *fanq_channel_name(const fanq_channel *ch);
/* Last sequence given on the channel (0: none yet).  Any thread. */
FANQ_API uint64_t fanq_channel_last_seq(const fanq_channel *ch);

/*
 * Keep the channel's last messages for fanq_subscribe_after() and
 * fanq_channel_history_read(): at most max_msgs (1..FANQ_HISTORY_MSGS_MAX)
 * and, unless 0, at most max_bytes of payload and none older than
 * max_age_ms (up to FANQ_HISTORY_AGE_MAX_MS).  All three 0 turns the
 * history off and releases it; max_msgs 0 with another limit is
 * FANQ_EINVAL (bytes or age alone would not bound the entry count).
 * The history holds references to the published messages (no copy);
 * a message larger than max_bytes empties it (it restarts after that
 * message, so what it holds is always a contiguous run of seqs).
 *
 * Any thread, any time.  Applied in the channel's order like a publish:
 * a history turned on holds the messages published after this call
 * returns (in happens-before order); new limits evict at once.  Age is
 * judged with a coarse monotonic clock (a few ms); expired messages are
 * released at the channel's next publish, resume or setting, and never
 * returned meanwhile.  Allocates a small struct; the history's slot
 * array (24 bytes a message, a power of two) grows with use.  A channel
 * without history pays one branch per publish.
 */
FANQ_API int fanq_channel_set_history(fanq_channel *ch, uint64_t max_msgs,
				      uint64_t max_bytes, uint64_t max_age_ms);

/*
 * Create a subscriber with default limits (FANQ_DEFAULT_QUEUE_MSGS,
 * FANQ_DEFAULT_QUEUE_BYTES) and FANQ_DROP_NEW.  Any thread.  Allocates
 * about 1 KiB with its first subscription; queue memory grows with the
 * backlog only.
 */
FANQ_API int fanq_sub_new(fanq_bus *bus, fanq_sub **out);

/*
 * Close a subscriber: unsubscribes it from every channel, releases its
 * backlog (counted FANQ_DROP_UNSUBSCRIBED) and frees it after a grace
 * period.  Call from the consumer's thread (no concurrent pop); the
 * handle is invalid afterwards.
 */
FANQ_API int fanq_sub_close(fanq_sub *sub);

/* 64-bit id, unique within the process, never reused.  Any thread. */
FANQ_API uint64_t fanq_sub_id(const fanq_sub *sub);

/*
 * Limits and policy; any thread, at any time (publishers see the new
 * values on their next message; a lowered limit does not evict at once).
 * max_msgs 1..FANQ_QUEUE_MSGS_MAX, max_bytes >= 1.
 * Changing the number of lanes (to or from FANQ_PRIORITY, or a custom
 * policy with another level count) is only allowed before the first
 * fanq_subscribe() (else FANQ_EBUSY): fan-out threads may be pushing
 * into the lanes at any later time.
 */
FANQ_API int fanq_sub_set_limits(fanq_sub *sub, uint64_t max_msgs,
				 uint64_t max_bytes);
FANQ_API int fanq_sub_set_policy(fanq_sub *sub, enum fanq_policy_kind kind);
/* The policy struct is copied; arg must outlive the subscriber. */
FANQ_API int fanq_sub_set_custom_policy(fanq_sub *sub, const fanq_policy *p);

/*
 * Host metadata for diagnosis (peer address, User-Agent, ...): string
 * key/value pairs, copied.  Setting a key again replaces it.  Call before
 * the subscriber is shared with other threads, or from its owner thread
 * only; readers (logging, stats) run in other threads under RCU.
 */
FANQ_API int fanq_sub_set_meta(fanq_sub *sub, const char *key,
			       const char *value);
FANQ_API const char *fanq_sub_meta(const fanq_sub *sub, const char *key);

/*
 * Subscribe to a channel, live from the next message published.  Any
 * thread.  The change is applied in the channel's order: a publish made
 * after this call returns (in happens-before order) reaches the sub.
 */
FANQ_API int fanq_subscribe(fanq_sub *sub, fanq_channel *ch);
FANQ_API int fanq_unsubscribe(fanq_sub *sub, fanq_channel *ch);

/*
 * Resume: subscribe to ch with the messages published after
 * last_seen_seq that the channel's history still holds queued first,
 * then live ones: each message once, in sequence order (per lane), with
 * no gap or duplicate at the switch, however many threads publish
 * meanwhile.  The replay goes through the subscriber's limits and
 * policy like any publish (a small queue may drop part of it, reported
 * by GAP entries as usual).  last_seen_seq 0 asks for everything held;
 * one at or past the channel's last seq subscribes live.
 *
 * When the history no longer reaches back to last_seen_seq + 1 (or the
 * channel keeps none), the subscriber's queue gets one GAP entry for
 * last_seen_seq + 1 .. (oldest held - 1) first, so the host can send a
 * snapshot instead.  It is queued even if no message follows.
 *
 * Returns 0, or FANQ_ERANGE for that shortfall: the subscription is made
 * all the same and res names the range.  Like fanq_publish(), the resume
 * is applied in the channel's order by whichever thread fans the channel
 * out; if another thread does so right now, it is handed over,
 * res->deferred is set, 0 is returned and only the queue tells the
 * shortfall (by that GAP entry).  Other errors (FANQ_EINVAL,
 * FANQ_ECLOSED, FANQ_EEXIST, FANQ_ENOMEM) change nothing.  res may be
 * NULL.
 *
 * The owner thread, like fanq_subscribe().  Allocates two small structs.
 * The thread that applies it offers each replayed message (O(replayed),
 * lock-free); other subscribers are never held back by a replay beyond
 * that: nothing waits for the resuming consumer.
 */
FANQ_API int fanq_subscribe_after(fanq_sub *sub, fanq_channel *ch,
				  uint64_t last_seen_seq,
				  fanq_resume_result *res);

/* ------------------------------------------------------------- publish */

/*
 * Publish len bytes (copied once, shared by every subscriber) with a
 * priority 0..FANQ_PRIO_LEVELS-1.  Any thread, any number at once.
 * Lock-free: never waits for a consumer and takes no lock.  If another
 * thread is fanning out the same channel, the message is handed to it
 * (wait-free) and res->deferred is set.  res may be NULL.
 */
FANQ_API int fanq_publish(fanq_channel *ch, const void *data, size_t len,
			  unsigned priority, fanq_publish_result *res);

/* ------------------------------------------------------------- consume */

/* What a queue entry is. */
enum fanq_entry_kind {
	FANQ_ENTRY_MSG = 0, /* a message */
	FANQ_ENTRY_GAP = 1, /* messages of a channel were dropped here */
};

typedef struct fanq_entry {
	enum fanq_entry_kind kind;
	fanq_msg *msg;          /* MSG: owned by the caller; release it */
	const fanq_channel *ch; /* the channel (valid while the sub lives) */
	uint64_t seq;           /* MSG: its sequence */
	uint64_t gap_first;     /* GAP: first and last missing sequence */
	uint64_t gap_last;
	uint64_t gap_count;     /* GAP: messages missing in that range */
} fanq_entry;

/*
 * Take the next entry: highest lane first, FIFO within a lane; messages of
 * one channel come in sequence order within a lane.  When messages of a
 * channel were dropped, a GAP entry comes first, at the place of the hole.
 * One consumer thread at a time per subscriber.  Lock-free.
 * Returns 0, FANQ_EAGAIN when nothing is ready, FANQ_ECLOSED if evicted.
 */
FANQ_API int fanq_sub_pop(fanq_sub *sub, fanq_entry *out);
/* Up to n entries; returns how many (0 when empty) or a negative code. */
FANQ_API int fanq_sub_pop_batch(fanq_sub *sub, fanq_entry *out, size_t n);
/* Look at the next message without taking it; no reference is given. */
FANQ_API int fanq_sub_peek(fanq_sub *sub, fanq_entry *out);

/*
 * Read a channel's history without subscribing (a snapshot, a polling
 * endpoint): up to n references, oldest first, to the contiguous run of
 * messages it holds with seq > after_seq.  Returns how many (0: none, or
 * no history); the caller releases each.  The first one's seq shows
 * whether the history reached back: it is after_seq + 1 when nothing is
 * missing (compare fanq_channel_last_seq() when none is returned).
 * Any thread, concurrently with publishers and evictions; lock-free,
 * no allocation.  n at most INT32_MAX.
 */
FANQ_API int fanq_channel_history_read(const fanq_channel *ch,
				       uint64_t after_seq, fanq_msg **out,
				       size_t n);

/* Messages: read-only accessors, any thread holding a reference. */
FANQ_API const void *fanq_msg_data(const fanq_msg *m);
FANQ_API size_t fanq_msg_len(const fanq_msg *m);
FANQ_API uint64_t fanq_msg_seq(const fanq_msg *m);
FANQ_API unsigned fanq_msg_priority(const fanq_msg *m);
FANQ_API const fanq_channel *fanq_msg_channel(const fanq_msg *m);
FANQ_API void fanq_msg_ref(fanq_msg *m);
FANQ_API void fanq_msg_release(fanq_msg *m);


/* ------------------------------------------------ wiring to host sockets */

/*
 * A consumer group is what one I/O thread owns: subscribers attached to it
 * report readiness through one fd, however many there are.
 *
 * fanq_group_fd() is an eventfd; it becomes readable when an attached
 * subscriber goes from empty to non-empty.  The loop then calls
 * fanq_group_next_ready() until FANQ_EAGAIN, draining each subscriber it
 * gets.  A subscriber comes back only after new data arrives, so if the
 * host stops draining early (socket full), it must drain again itself when
 * the socket is writable.  No wakeup is lost (protocol in lib/group.c).
 */
FANQ_API int fanq_group_new(fanq_bus *bus, fanq_group **out);
/* The group must have no attached subscribers.  Owner thread. */
FANQ_API int fanq_group_close(fanq_group *g);
FANQ_API int fanq_group_fd(const fanq_group *g);
/* Attach before subscribing (owner thread); a sub is in at most one group. */
FANQ_API int fanq_group_attach(fanq_group *g, fanq_sub *sub);
/* Owner thread only.  Returns 0 and a ready subscriber, or FANQ_EAGAIN. */
FANQ_API int fanq_group_next_ready(fanq_group *g, fanq_sub **out);

/*
 * Framing for fanq_sub_drain_iov(): prefix() writes the bytes that go
 * before an entry's payload (e.g. "id: news:42\ndata: ") into buf (cap is
 * at least 128) and returns their length; suffix follows every payload.
 * Runs in the consumer's thread.  Without a framer, payloads go bare and
 * GAP entries produce nothing.
 */
typedef struct fanq_framer {
	size_t (*prefix)(void *arg, const fanq_entry *e, char *buf, size_t cap);
	const char *suffix;
	size_t suffix_len;
	void *arg;
} fanq_framer;
FANQ_API int fanq_sub_set_framer(fanq_sub *sub, const fanq_framer *f);

/*
 * Fill up to iovmax iovecs (and about max_bytes) for writev(), taking
 * entries from the queue as needed; payloads are not copied.  Returns the
 * iovec count (0: nothing to write).  After writev() wrote n bytes, call
 * fanq_sub_drain_commit(sub, n): fully written messages are released and
 * counted delivered, a partly written one resumes at the right byte next
 * time.  Consumer thread only.
 */
FANQ_API int fanq_sub_drain_iov(fanq_sub *sub, struct iovec *iov, int iovmax,
				size_t max_bytes);
FANQ_API int fanq_sub_drain_commit(fanq_sub *sub, size_t written);

/* ------------------------------------------------------------- observe */

typedef struct fanq_sub_stats {
	uint64_t id;
	uint64_t queued_msgs, queued_bytes;
	uint64_t high_water_msgs;
	uint64_t enqueued;  /* messages offered to this queue */
	uint64_t delivered; /* messages handed to the consumer */
	uint64_t dropped[FANQ_DROP_REASONS];
	uint64_t max_msgs, max_bytes;
	enum fanq_policy_kind policy;
} fanq_sub_stats;

/*
 * Snapshot of one subscriber's counters.  Any thread; lock-free; each
 * counter is exact, the set is not one atomic cut while publishers run.
 * At a quiescent point: enqueued == delivered + sum(dropped) + queued_msgs.
 */
FANQ_API int fanq_sub_stats_get(const fanq_sub *sub, fanq_sub_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* FANQ_H */
