/*
 * fanq.h - bounded fan-out queues for realtime push servers.
 *
 * One publish reaches every subscriber of a channel.  Each subscriber has
 * its own bounded queue (messages and bytes) with a drop policy, so a slow
 * subscriber never slows a fast one and never grows memory without bound.
 * Every accepted message is either delivered or counted as dropped.
 *
 * Reading order: types, lifecycle, publish, consume, observe, health.
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
	FANQ_EAGAIN = -6,   /* queue empty (or next entry still being written);
			       publish: the channel's backlog is full */
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
/* Publishes a channel holds for its fan-out thread (see fanq_publish()). */
#define FANQ_CHANNEL_BACKLOG_MAX 65536u
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

/* Why a subscriber was evicted (see fanq_health_rules); indexes arrays. */
enum fanq_evict_reason {
	FANQ_EVICT_NONE = 0,       /* not evicted */
	FANQ_EVICT_FULL = 1,       /* queue continuously full for full_ns */
	FANQ_EVICT_DROPS = 2,      /* more than `drops` dropped within drops_window_ns */
	FANQ_EVICT_IDLE = 3,       /* nothing drained for idle_ns while non-empty */
	FANQ_EVICT_HARD_BYTES = 4, /* queued bytes over hard_bytes */
	FANQ_EVICT_SOFT_BYTES = 5, /* queued bytes over soft_bytes for soft_ns */
	FANQ_EVICT_REASONS = 6,
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
 * Both run in the thread fanning out the channel: a publisher's, or that
 * of another call that found the role free (subscribe, unsubscribe,
 * resume, an eviction, a group wake-up), never a pop's or a drain's.  They
 * may run concurrently with each other
 * for the same subscriber and must not block.  They may call
 * fanq_publish() (on the channel being fanned out the message is handed
 * over, res->deferred set, and sequenced after the one being offered)
 * and the read-only accessors (fanq_msg_*, fanq_sub_id); any other fanq
 * call from them is undefined (tests/test_misuse.c).
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
 * Bus settings.  Call them right after fanq_bus_new(), while the bus has
 * no subscriber and no channel handle open (else FANQ_EBUSY and nothing
 * changes): publishing threads read them without synchronisation.
 */

/*
 * The clock every time rule uses: nanoseconds, monotonic, any origin.
 * NULL restores the default (CLOCK_MONOTONIC).  fn runs in any fanq
 * thread, must be thread-safe and must not call fanq.  fanq reads it on
 * state changes and ticks, never once per message (README "Operating").
 */
typedef uint64_t (*fanq_clock_fn)(void *arg);
FANQ_API int fanq_bus_set_clock(fanq_bus *bus, fanq_clock_fn fn, void *arg);

enum fanq_log_level {
	FANQ_LOG_ERROR = 0,
	FANQ_LOG_WARN = 1,
	FANQ_LOG_INFO = 2,
};

enum fanq_log_event {
	FANQ_LOG_DROP_FIRST = 0,   /* a subscriber's first drop (of a burst) */
	FANQ_LOG_DROP_SUMMARY = 1, /* drops since the previous line */
	FANQ_LOG_EVICTED = 2,      /* a health rule evicted the subscriber */
	FANQ_LOG_QUEUE_HIGH = 3,   /* queue went over the high alert level */
	FANQ_LOG_QUEUE_LOW = 4,    /* and back under the low one */
};

/*
 * One log line with its fields.  Strings and sub are valid during the
 * call only; fanq_sub_meta(sub, key) may be called on sub then.
 */
typedef struct fanq_log_record {
	enum fanq_log_level level;
	enum fanq_log_event event;
	const char *line;          /* formatted, no newline (see README) */
	uint64_t sub_id;
	const fanq_sub *sub;
	const char *channel;       /* NULL: several channels, or none */
	const char *policy;        /* "drop-new", "drop-oldest", ... */
	enum fanq_drop_reason reason;    /* DROP_FIRST: why it was dropped */
	enum fanq_evict_reason evicted;  /* EVICTED: which rule */
	uint64_t count;            /* DROP_*: drops */
	uint64_t seq_first, seq_last;    /* DROP_*: sequences dropped (0: unknown) */
	uint64_t span_ns;          /* DROP_SUMMARY: time the line covers */
	/* the queue as its limits see it (entries taken for writing are not
	 * in it); for EVICTED, before its backlog is released */
	uint64_t queued_msgs, max_msgs, queued_bytes, max_bytes;
} fanq_log_record;

/*
 * Where fanq logs.  NULL restores the default: one write(2) of the line
 * to stderr.  fn runs in the publishing thread that made a subscriber's
 * first drop (once per burst), else in the thread calling fanq_bus_tick();
 * possibly in several threads at once.  It must not block for long.  It
 * may call fanq_sub_meta(r->sub), fanq_sub_id() and fanq_publish() (on
 * a channel this thread is fanning out the message is handed over,
 * res->deferred set, and sequenced after the current one); from a tick,
 * fanq_bus_tick() returns FANQ_EBUSY.  Any other fanq call from it
 * (closing a subscriber or the bus, say) is undefined.
 */
typedef void (*fanq_log_fn)(void *arg, const fanq_log_record *r);
FANQ_API int fanq_bus_set_log(fanq_bus *bus, fanq_log_fn fn, void *arg);

/*
 * Drop lines: a subscriber's first drop is logged at once, later drops at
 * most once per interval per subscriber (default
 * FANQ_DEFAULT_LOG_INTERVAL_NS), and a subscriber that dropped nothing for
 * a whole interval starts again with a "first drop" line.
 */
#define FANQ_DEFAULT_LOG_INTERVAL_NS 10000000000ull /* 10 s */
FANQ_API int fanq_bus_set_log_interval(fanq_bus *bus, uint64_t interval_ns);

/* Utilisation alerts and evictions, as the tick sees them. */
enum fanq_event_kind {
	FANQ_EVENT_QUEUE_HIGH = 0, /* fill reached the high level */
	FANQ_EVENT_QUEUE_LOW = 1,  /* fill fell under the low level after a HIGH */
	FANQ_EVENT_EVICTED = 2,    /* a health rule evicted the subscriber */
};

typedef struct fanq_event {
	enum fanq_event_kind kind;
	uint64_t sub_id;
	const fanq_sub *sub;      /* valid during the call; see fanq_log_record */
	unsigned fill_pct;        /* max(msgs, bytes) fill in percent */
	enum fanq_evict_reason evicted;
} fanq_event;

/*
 * Called from fanq_bus_tick() (its thread) once per crossing: HIGH when a
 * subscriber's fill (the larger of msgs/max_msgs and bytes/max_bytes)
 * reaches high_pct, LOW when it then falls under low_pct; and once per
 * eviction.  Same rules as the log callback (fanq_bus_tick() from it:
 * FANQ_EBUSY; fanq_publish() allowed).  NULL: no callback.
 */
typedef void (*fanq_event_fn)(void *arg, const fanq_event *ev);
FANQ_API int fanq_bus_set_event_cb(fanq_bus *bus, fanq_event_fn fn, void *arg);
#define FANQ_DEFAULT_ALERT_HIGH_PCT 80u
#define FANQ_DEFAULT_ALERT_LOW_PCT 50u
/* 1 <= low_pct < high_pct <= 100. */
FANQ_API int fanq_bus_set_alert_levels(fanq_bus *bus, unsigned high_pct,
				       unsigned low_pct);

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
 * key/value pairs, copied; every log line about the subscriber shows them.
 * Setting a key again replaces it.  Owner thread; readers in other
 * threads (logging, stats) are safe: old values are freed after an RCU
 * grace period.  fanq_sub_meta(): the owner thread (valid until the key
 * is set again), or a log, event or fanq_bus_foreach_sub() callback about
 * this subscriber (valid during the call).
 */
FANQ_API int fanq_sub_set_meta(fanq_sub *sub, const char *key,
			       const char *value);
FANQ_API const char *fanq_sub_meta(const fanq_sub *sub, const char *key);

/*
 * Subscribe to a channel, live from the next message published.  Any
 * thread.  The change is applied in the channel's order: a publish made
 * after this call returns (in happens-before order) reaches the sub.
 * FANQ_ECLOSED once the subscriber was evicted (it would get nothing).
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
 * priority 0..FANQ_PRIO_LEVELS-1; len 0 is a message too (data may then
 * be NULL).  Any thread, any number at once.
 * Lock-free: never waits for a consumer and takes no lock.  If another
 * thread is fanning out the same channel, the message is handed to it
 * (wait-free) and res->deferred is set.  res may be NULL.
 * Memory stays bounded when publishers outpace the fan-out thread: with
 * FANQ_CHANNEL_BACKLOG_MAX publishes already handed over and not yet
 * fanned out (give or take one per publishing thread), the publish is
 * refused with FANQ_EAGAIN: nothing was published, nothing is counted
 * except fanq_channel_stats.refused.  Retry later or drop it.
 * The thread that takes the fan-out role applies queued operations until
 * the queue is empty, so while other threads keep publishing faster than
 * it fans out, its own call keeps working for them (README, "How it
 * works").
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
 * Returns 0, FANQ_EAGAIN when nothing is ready, FANQ_ECLOSED if evicted
 * (what was still queued is then released and counted
 * FANQ_DROP_UNSUBSCRIBED; close the subscriber).
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
/*
 * Owner thread only.  Returns 0 and a ready subscriber, or FANQ_EAGAIN.
 * An evicted subscriber comes out here once too: its pop and drain calls
 * then return FANQ_ECLOSED.
 */
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
 * time.  Consumer thread only.  Both return FANQ_ECLOSED once the
 * subscriber is evicted (what was held for writing is then released).
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
	/* As of the last fanq_bus_tick() (0 before the first one): */
	uint64_t since_drain_ns; /* since the consumer last delivered, was
				    touched or had nothing queued */
	uint64_t full_for_ns;    /* continuously full this long (0: not full) */
	int over_high;           /* 1 between a QUEUE_HIGH and its QUEUE_LOW */
	enum fanq_evict_reason evicted;
	int shared_log;          /* 1 while it keeps up and reads its channel's
				    shared log instead of its own queue (see
				    README, "How it works") */
} fanq_sub_stats;

/*
 * Snapshot of one subscriber's counters.  Any thread; lock-free; each
 * counter is exact, the set is not one atomic cut while publishers run.
 * At a quiescent point: enqueued == delivered + sum(dropped) + queued_msgs.
 */
FANQ_API int fanq_sub_stats_get(const fanq_sub *sub, fanq_sub_stats *out);

/* Counters of one channel; they never decrease. */
typedef struct fanq_channel_stats {
	uint64_t published;   /* messages given a sequence */
	uint64_t subscribers; /* current members */
	uint64_t enqueued;    /* offers of its messages to members' queues */
	uint64_t dropped[FANQ_DROP_REASONS]; /* drops of its messages */
	uint64_t refused;     /* publishes refused: backlog full (FANQ_EAGAIN) */
	uint64_t backlog;     /* publishes waiting for the fan-out thread */
} fanq_channel_stats;

/* Any thread holding the handle; lock-free reads. */
FANQ_API int fanq_channel_stats_get(const fanq_channel *ch,
				    fanq_channel_stats *out);

/*
 * Totals of a bus.  The counters (enqueued, delivered, dropped, evicted)
 * cover every subscriber the bus ever had: a closed subscriber's counts
 * are folded in when it is freed, so they never decrease.  Gauges are
 * the subscribers not closed yet.  At a quiescent point:
 * enqueued == delivered + sum(dropped) + queued_msgs.
 */
typedef struct fanq_bus_stats {
	uint64_t subscribers;      /* created and not closed */
	uint64_t channels;
	uint64_t enqueued, delivered;
	uint64_t dropped[FANQ_DROP_REASONS];
	uint64_t evicted[FANQ_EVICT_REASONS]; /* [FANQ_EVICT_NONE] stays 0 */
	uint64_t queued_msgs, queued_bytes;
	uint64_t queued_msgs_max;  /* the deepest subscriber's queued_msgs */
	uint64_t over_high;        /* subscribers over the high alert level */
	uint64_t shared_log;       /* subscribers reading a shared log */
} fanq_bus_stats;

/*
 * Any thread.  Walks every subscriber (O(subscribers)) under an RCU read
 * lock, holding a mutex that only freeing a subscriber also takes.
 */
FANQ_API int fanq_bus_stats_get(fanq_bus *bus, fanq_bus_stats *out);

/*
 * Call fn for every subscriber not closed, with a fresh snapshot; stops
 * when fn returns non-zero.  Any thread; lock-free (RCU read lock) and
 * safe against subscribers closing meanwhile, which may or may not be
 * visited.  fn must not block, close subscribers or call fanq except
 * fanq_sub_meta(sub), fanq_sub_id(sub).  Returns the number visited.
 */
typedef int (*fanq_sub_visit_fn)(void *arg, const fanq_sub *sub,
				 const fanq_sub_stats *st);
FANQ_API int fanq_bus_foreach_sub(fanq_bus *bus, fanq_sub_visit_fn fn,
				  void *arg);

enum fanq_top_by {
	FANQ_TOP_DEPTH = 0, /* queued_msgs */
	FANQ_TOP_BYTES = 1, /* queued_bytes */
	FANQ_TOP_DROPS = 2, /* drops by the queue's policy (not unsubscribed) */
};

/*
 * The n subscribers ranking highest, highest first, into out[0..n).
 * Returns how many were found (<= n).  Any thread, like
 * fanq_bus_foreach_sub(); O(subscribers * log n), no allocation.
 */
FANQ_API int fanq_bus_top(fanq_bus *bus, enum fanq_top_by by,
			  fanq_sub_stats *out, size_t n);

/*
 * Copy the metadata value of key of subscriber id into buf (always
 * NUL-terminated, truncated to cap - 1).  Any thread; lock-free lookup.
 * Returns the value's full length, or FANQ_ENOENT (no such subscriber
 * open, or no such key).
 */
FANQ_API int fanq_bus_sub_meta(fanq_bus *bus, uint64_t id, const char *key,
			       char *buf, size_t cap);

/*
 * Prometheus text exposition (format 0.0.4) of the bus: totals, per
 * channel, drops by reason, evictions by rule and a histogram of queue
 * depth across subscribers; README "Operating fanq" lists every metric.
 * write() gets the text in pieces and returns 0, or non-zero to stop
 * (then FANQ_ESYS is returned); it may run inside an RCU read-side
 * section and must not call fanq.  Any thread; the cost of
 * fanq_bus_stats_get() plus a few lines per channel.
 */
typedef int (*fanq_write_fn)(void *arg, const char *data, size_t len);
FANQ_API int fanq_bus_prometheus(fanq_bus *bus, fanq_write_fn write,
				 void *arg);

FANQ_API const char *fanq_drop_reason_name(enum fanq_drop_reason r);
FANQ_API const char *fanq_evict_reason_name(enum fanq_evict_reason r);

/* -------------------------------------------------------------- health */

/*
 * Slow-consumer eviction rules; each is off when its field is 0 (the
 * default).  Times use the bus clock.  All but hard_bytes are checked by
 * fanq_bus_tick(), so they act within one tick of their threshold.
 *
 *  full_ns:        evict when the queue stays full (an offer did not fit,
 *                  or it is at a limit) with nothing delivered, for full_ns.
 *  drops, drops_window_ns:
 *                  evict when more than `drops` messages were dropped by
 *                  the policy within the last drops_window_ns.  Counted
 *                  from samples taken at ticks at least window/8 apart.
 *  idle_ns:        evict when nothing was drained (delivered, or
 *                  fanq_sub_touch()) for idle_ns while something is queued.
 *  hard_bytes:     evict as soon as queued bytes exceed it (checked by the
 *                  publishing thread after each push).
 *  soft_bytes, soft_ns:
 *                  evict when queued bytes stay above soft_bytes for
 *                  soft_ns (as Redis's client-output-buffer-limit).
 * An evicted subscriber gets nothing more; its backlog is released and
 * counted FANQ_DROP_UNSUBSCRIBED; its group hands it out once more
 * (fanq_group_next_ready) and its pop/drain calls return FANQ_ECLOSED;
 * the eviction is logged and reported as FANQ_EVENT_EVICTED.
 */
typedef struct fanq_health_rules {
	uint64_t full_ns;
	uint64_t drops;
	uint64_t drops_window_ns;
	uint64_t idle_ns;
	uint64_t hard_bytes;
	uint64_t soft_bytes;
	uint64_t soft_ns;
} fanq_health_rules;

/*
 * Rules of one subscriber (copied; all zero turns them off).  Owner
 * thread, any time; a change restarts the drop window and the soft-limit
 * timer (full and idle times belong to the subscriber).  FANQ_EINVAL for
 * drops without a window, soft_ns without soft_bytes, or soft_bytes above
 * hard_bytes.  Allocates about 200 bytes while rules are on.
 */
FANQ_API int fanq_sub_set_health(fanq_sub *sub, const fanq_health_rules *r);

/*
 * Default rules for subscribers attached to the group from now on that
 * have none of their own (copied at attach).  Group owner thread.
 */
FANQ_API int fanq_group_set_health(fanq_group *g, const fanq_health_rules *r);

/*
 * Evaluate time-based state: drop summaries, utilisation alerts, eviction
 * rules, and the since_drain/full_for stats.  The host calls it
 * periodically from one thread (FANQ_EBUSY if another thread is in it),
 * e.g. every 100 ms; log and event callbacks run in that thread.  Walks
 * every subscriber under an RCU read lock, lock-free; reads the clock
 * once.  Returns the number of subscribers it evicted.
 */
FANQ_API int fanq_bus_tick(fanq_bus *bus);

/*
 * Liveness the host feeds: call after a successful write to the
 * subscriber's client.  It counts as draining for the idle rule and
 * restarts the heartbeat interval.  Owner thread; reads the clock.
 */
FANQ_API int fanq_sub_touch(fanq_sub *sub);

/*
 * 1 when the subscriber has had nothing queued or in flight and no touch
 * for interval_ns: send a heartbeat (e.g. an SSE comment) now; the
 * interval restarts.  0 otherwise, in particular while backlogged.
 * Owner thread; reads the clock.  FANQ_ECLOSED once evicted.
 */
FANQ_API int fanq_sub_heartbeat_due(fanq_sub *sub, uint64_t interval_ns);

/*
 * 1 and the rule in *why (may be NULL) if the subscriber was evicted,
 * else 0.  Any thread holding the handle.
 */
FANQ_API int fanq_sub_evicted(const fanq_sub *sub, enum fanq_evict_reason *why);

#ifdef __cplusplus
}
#endif
#endif /* FANQ_H */
