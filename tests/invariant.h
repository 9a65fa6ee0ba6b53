/*
 * invariant.h - the tests' oracle for what fanq promises a subscriber.
 *
 * A recorder the consumer feeds every entry it takes (pop, pop_batch, or
 * an entry parsed back from drain_iov output once committed), and a final
 * check against fanq_sub_stats_get().  Per subscriber it verifies:
 *  - every message is delivered at most once and, per channel per lane,
 *    in sequence order (FIFO per channel per priority);
 *  - every delivered message was offered: published on a channel while
 *    the subscriber was subscribed to it, in the lane its priority maps to;
 *  - a GAP comes right before a message of its channel, ends just before
 *    it, and counts exactly the messages offered in that lane since the
 *    previous one delivered there; its range holds all of them.  No
 *    offered message goes missing without a GAP;
 *  - a resume (inv_sub_resumed()) is offered the history's messages
 *    after last_seen then live ones, exactly once and in order; what the
 *    history no longer held is one GAP (alone, or merged with the
 *    highest lane's drops before it) that counts in no drop;
 *  - at a quiescent point (inv_sub_check()): enqueued == delivered +
 *    sum(dropped) + queued; delivered == the messages recorded; a GAP
 *    last recorded has its message still queued (held); GAPs
 *    never count more than was dropped; and when every subscription's
 *    first seq was known, enqueued == the messages offered, and the GAP
 *    counts (less resume holes) plus the offered messages not yet
 *    delivered equal the drops plus the queue; an evicted subscriber
 *    (inv_sub_evicted()) holds nothing and its backlog counts as
 *    dropped (FANQ_DROP_UNSUBSCRIBED).
 *
 * What was offered.  The checker knows a channel's messages by their
 * sequence numbers, from the first one given after the channel was
 * registered to fanq_channel_last_seq().  A channel registered with
 * log_prio learns each message's priority from inv_published(), one
 * registered with inv_world_channel_prio() computes it; on any other
 * channel every message has priority 0.  A message's lane is
 * min(priority, levels - 1): what fanq's priority policy does, and what
 * the tests' custom policies do.  The harness says when a subscription
 * starts and ends (inv_sub_subscribed(), inv_sub_unsubscribed()).
 *
 * Threads.  A world is filled (channels registered) before any recorder
 * is made from it; after that only inv_published() changes it, called by
 * the one thread that publishes on that channel.  A recorder is used by
 * one thread at a time, its subscriber's consumer.
 *
 * Nothing here asserts: a violation makes the call return false and
 * inv_sub_error() describes the first one; the caller fails its test or
 * aborts (fuzzer).  Every later call on that recorder returns false.
 */
#ifndef FANQ_TEST_INVARIANT_H
#define FANQ_TEST_INVARIANT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fanq.h"

#define INV_CHANNELS_MAX 16

struct inv_world;
struct inv_sub;

/* NULL when out of memory. */
struct inv_world *inv_world_new(void);
void inv_world_free(struct inv_world *w);
/* Register ch (at most INV_CHANNELS_MAX); false if full or known. */
bool inv_world_channel(struct inv_world *w, const fanq_channel *ch,
		       bool log_prio);
/*
 * Register ch whose message of seq has priority prio_of(ch, seq): a
 * channel's publishers compute it, and no thread logs anything (so any
 * number of threads may publish on it while recorders read).  prio_of
 * must be pure.  inv_published() is then only a check.
 */
typedef unsigned (*inv_prio_fn)(const fanq_channel *ch, uint64_t seq);
bool inv_world_channel_prio(struct inv_world *w, const fanq_channel *ch,
			    inv_prio_fn prio_of);
/*
 * ch gave seq to a message of priority prio.  For log_prio channels,
 * called for every seq given after registering it, in order; false
 * otherwise or out of memory.
 */
bool inv_published(struct inv_world *w, const fanq_channel *ch, uint64_t seq,
		   unsigned prio);

/* A recorder for a subscriber with `levels` lanes; NULL if out of memory. */
struct inv_sub *inv_sub_new(struct inv_world *w, const char *name,
			    unsigned levels);
void inv_sub_free(struct inv_sub *r);

/*
 * The subscriber was subscribed to ch; the first message offered is
 * first (fanq_channel_last_seq() + 1 when nothing else publishes on ch
 * meanwhile).  first == 0: not known (publishers were running), taken
 * from the first entry of ch seen; only for one lane, and it turns off
 * inv_sub_check()'s exact totals.
 */
bool inv_sub_subscribed(struct inv_sub *r, const fanq_channel *ch,
			uint64_t first);
/*
 * The subscriber resumed on ch (fanq_subscribe_after()) after seq
 * `after` (the last_seen it passed, at most the channel's last seq), and
 * the first seq offered is first: the oldest the history held above
 * after, or the channel's next seq.  after + 1 .. first - 1 (if any) are
 * a hole: never offered, reported by a GAP ending at first - 1 in the
 * highest lane (which may come alone, or with that lane's next message
 * when a policy dropped the marker) and counted in no drop.  Then as
 * inv_sub_subscribed() with a known first.
 */
bool inv_sub_resumed(struct inv_sub *r, const fanq_channel *ch,
		     uint64_t after, uint64_t first);
/* Unsubscribed from ch; last is the last seq offered. */
bool inv_sub_unsubscribed(struct inv_sub *r, const fanq_channel *ch,
			  uint64_t last);

/*
 * The subscriber was evicted (fanq_sub_evicted()): call after ending
 * every subscription at the last seq it was offered.  From then on it
 * must hold nothing at inv_sub_check() and its released backlog
 * (FANQ_DROP_UNSUBSCRIBED) counts as dropped; a GAP taken without its
 * message is forgotten.
 */
bool inv_sub_evicted(struct inv_sub *r);

/*
 * The consumer took e.  prio: the message's priority (for a MSG entry
 * whose e->msg is NULL, as parsed from drained bytes); ignored for GAP.
 * When e->msg is set its seq, channel and priority are checked too.
 */
bool inv_sub_entry(struct inv_sub *r, const fanq_entry *e, unsigned prio);

/* The final check, at a quiescent point (see the top of this file). */
bool inv_sub_check(struct inv_sub *r, const fanq_sub *sub);

/* The first violation, "" when none. */
const char *inv_sub_error(const struct inv_sub *r);

/*
 * Bytes written from fanq_sub_drain_iov(), parsed back into entries.
 * inv_framer() gives a framer whose prefix states the entry ("M <channel
 * index> <seq> <priority> <len>" or "G <channel index> <first> <last>
 * <count>", then a newline) and whose suffix is a newline.  Whatever the
 * host "writes" goes to inv_stream_write(); inv_stream_next() returns the
 * entries completed so far, in order.  Same threads as a recorder.
 */
struct inv_stream;

fanq_framer inv_framer(struct inv_world *w);
/* NULL when out of memory. */
struct inv_stream *inv_stream_new(struct inv_world *w);
void inv_stream_free(struct inv_stream *s);
/* Append the first n bytes that iov[0..cnt) describe; false if out of memory. */
bool inv_stream_write(struct inv_stream *s, const struct iovec *iov, int cnt,
		      size_t n);
/*
 * The next complete entry: 1 and *e (e->msg is NULL), *prio, and for a
 * MSG its payload and length (valid until the next inv_stream_write());
 * 0 when the next entry is not complete yet; -1 when the bytes are not
 * what inv_framer() writes.
 */
int inv_stream_next(struct inv_stream *s, fanq_entry *e, unsigned *prio,
		    const char **payload, size_t *len);

#endif /* FANQ_TEST_INVARIANT_H */
