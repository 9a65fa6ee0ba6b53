/*
 * invariant.c - the tests' oracle (see invariant.h).
 *
 * Per (subscriber, channel) a recorder keeps the spans of sequence
 * numbers offered (one per subscription) and, per lane, the last seq
 * delivered.  A message of seq s in lane l is checked against the
 * messages offered in l strictly between the previous delivered one and
 * s: those are exactly what the GAP before it (if any) must count.
 */
#include "invariant.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPAN_OPEN UINT64_MAX

struct inv_channel {
	const fanq_channel *ch;
	bool log_prio;
	inv_prio_fn prio_of; /* set: a seq's priority, known to every thread */
	uint64_t base;   /* last seq given before it was registered */
	uint8_t *prio;   /* prio[seq - base - 1], when log_prio */
	uint64_t logged; /* seqs base + 1 .. base + logged are in prio[] */
	uint64_t cap;
};

struct inv_world {
	unsigned n;
	struct inv_channel chans[INV_CHANNELS_MAX];
};

struct inv_span {
	uint64_t first, last; /* last == SPAN_OPEN while subscribed */
	/* a resume the history fell short of: hole .. first - 1 were never
	 * offered; fanq reports them as missing in the highest lane (0: none) */
	uint64_t hole;
	bool hole_told;       /* a GAP covered the hole */
};

struct inv_link {
	struct inv_span *spans; /* ascending, one per subscription */
	size_t nspans, cap;
	uint64_t last[FANQ_PRIO_LEVELS]; /* last seq delivered per lane, 0: none */
};

struct inv_sub {
	struct inv_world *w;
	char name[32];
	unsigned levels;
	bool inexact;       /* a subscription's first seq was not known */
	bool evicted;       /* no offers since inv_sub_evicted() */
	bool has_gap;
	fanq_entry gap;     /* a GAP waiting for its message */
	uint64_t delivered; /* MSG entries recorded */
	uint64_t gap_msgs;  /* sum of GAP counts */
	uint64_t hole_msgs; /* of which resume holes (not drops) */
	struct inv_link links[INV_CHANNELS_MAX];
	char err[320];
};

struct inv_world *inv_world_new(void)
{
	return calloc(1, sizeof(struct inv_world));
}

void inv_world_free(struct inv_world *w)
{
	if (!w)
		return;
	for (unsigned c = 0; c < w->n; c++)
		free(w->chans[c].prio);
	free(w);
}

static int chan_index(const struct inv_world *w, const fanq_channel *ch)
{
	for (unsigned c = 0; c < w->n; c++)
		if (w->chans[c].ch == ch)
			return (int)c;
	return -1;
}

bool inv_world_channel(struct inv_world *w, const fanq_channel *ch,
		       bool log_prio)
{
	if (!ch || w->n == INV_CHANNELS_MAX || chan_index(w, ch) >= 0)
		return false;
	w->chans[w->n].ch = ch;
	w->chans[w->n].base = fanq_channel_last_seq(ch);
	w->chans[w->n].log_prio = log_prio;
	w->n++;
	return true;
}

bool inv_world_channel_prio(struct inv_world *w, const fanq_channel *ch,
			    inv_prio_fn prio_of)
{
	if (!prio_of || !inv_world_channel(w, ch, false))
		return false;
	w->chans[w->n - 1].prio_of = prio_of;
	return true;
}

/* The priority channel ic gave seq (0 unless it was registered with one). */
static unsigned chan_prio(const struct inv_channel *ic, uint64_t seq)
{
	if (ic->prio_of)
		return ic->prio_of(ic->ch, seq);
	return ic->log_prio ? ic->prio[seq - ic->base - 1] : 0;
}

bool inv_published(struct inv_world *w, const fanq_channel *ch, uint64_t seq,
		   unsigned prio)
{
	int c = chan_index(w, ch);
	struct inv_channel *ic;

	if (c < 0 || prio >= FANQ_PRIO_LEVELS)
		return false;
	ic = &w->chans[c];
	if (ic->prio_of)
		return prio == ic->prio_of(ch, seq);
	if (!ic->log_prio)
		return prio == 0;
	if (seq != ic->base + ic->logged + 1)
		return false;
	if (ic->logged == ic->cap) {
		uint64_t cap = ic->cap ? 2 * ic->cap : 64;
		uint8_t *p = realloc(ic->prio, cap);

		if (!p)
			return false;
		ic->prio = p;
		ic->cap = cap;
	}
	ic->prio[ic->logged++] = (uint8_t)prio;
	return true;
}

struct inv_sub *inv_sub_new(struct inv_world *w, const char *name,
			    unsigned levels)
{
	struct inv_sub *r;

	if (levels == 0 || levels > FANQ_PRIO_LEVELS)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->w = w;
	r->levels = levels;
	snprintf(r->name, sizeof(r->name), "%s", name);
	return r;
}

void inv_sub_free(struct inv_sub *r)
{
	if (!r)
		return;
	for (unsigned c = 0; c < INV_CHANNELS_MAX; c++)
		free(r->links[c].spans);
	free(r);
}

const char *inv_sub_error(const struct inv_sub *r)
{
	return r->err;
}

/* Record the first violation; returns false for the caller to return. */
__attribute__((format(printf, 2, 3)))
static bool violation(struct inv_sub *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->err[0])
		return false;
	n = snprintf(r->err, sizeof(r->err), "%s: ", r->name);
	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof(r->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static unsigned lane_of(const struct inv_sub *r, unsigned prio)
{
	return prio < r->levels ? prio : r->levels - 1;
}

static bool in_spans(const struct inv_link *lk, uint64_t seq)
{
	for (size_t i = 0; i < lk->nspans; i++)
		if (seq >= lk->spans[i].first && seq <= lk->spans[i].last)
			return true;
	return false;
}

/*
 * Messages offered to channel c's lane `lane` with lo < seq < hi (the
 * seqs of a log_prio channel are all logged: callers check); *min gets
 * the smallest such seq (0 when none).  With `holes`, the seqs of resume
 * holes count as offered in the highest lane: fanq reports them there,
 * like drops (GAP counts), though they were never enqueued.
 */
static uint64_t offered_between(const struct inv_sub *r, unsigned c,
				unsigned lane, uint64_t lo, uint64_t hi,
				uint64_t *min, bool holes)
{
	const struct inv_channel *ic = &r->w->chans[c];
	const struct inv_link *lk = &r->links[c];
	uint64_t n = 0;

	*min = 0;
	for (size_t i = 0; i < lk->nspans && hi > 0; i++) {
		uint64_t from = holes && lane == r->levels - 1 && lk->spans[i].hole
				? lk->spans[i].hole : lk->spans[i].first;
		uint64_t a = from > lo + 1 ? from : lo + 1;
		uint64_t b = lk->spans[i].last < hi - 1 ? lk->spans[i].last : hi - 1;

		if (a > b)
			continue;
		if (a < lk->spans[i].first) { /* a hole: all in this lane */
			uint64_t h = lk->spans[i].first - 1 < b
				     ? lk->spans[i].first - 1 : b;

			*min = *min ? *min : a;
			n += h - a + 1;
			a = lk->spans[i].first;
		}
		if (a > b)
			continue;
		if (!ic->log_prio && !ic->prio_of) { /* all priority 0: lane 0 */
			if (lane != 0)
				continue;
			*min = *min ? *min : a;
			n += b - a + 1;
			continue;
		}
		for (uint64_t s = a; s <= b; s++) {
			if (lane_of(r, chan_prio(ic, s)) != lane)
				continue;
			*min = *min ? *min : s;
			n++;
		}
	}
	return n;
}

/* Count the GAP messages from lo < seq < hi in lane: drops and holes. */
static uint64_t told_between(struct inv_sub *r, unsigned c, unsigned lane,
			     uint64_t lo, uint64_t hi, uint64_t *min)
{
	uint64_t all = offered_between(r, c, lane, lo, hi, min, true), m;
	uint64_t holes = all - offered_between(r, c, lane, lo, hi, &m, false);
	struct inv_link *lk = &r->links[c];

	for (size_t i = 0; holes && i < lk->nspans; i++)
		if (lk->spans[i].hole && lk->spans[i].hole > lo &&
		    lk->spans[i].first <= hi)
			lk->spans[i].hole_told = true;
	r->hole_msgs += holes;
	return all;
}

/* The record of ch (NULL after a violation, or if ch is not registered). */
static struct inv_link *link_of(struct inv_sub *r, const fanq_channel *ch)
{
	int c = chan_index(r->w, ch);

	if (r->err[0])
		return NULL;
	if (c < 0) {
		violation(r, "(un)subscribed to an unregistered channel");
		return NULL;
	}
	return &r->links[c];
}

/* A new span from first (hole .. first - 1 lost at a resume; 0: none). */
static bool span_open(struct inv_sub *r, const fanq_channel *ch,
		      uint64_t hole, uint64_t first)
{
	struct inv_link *lk = link_of(r, ch);
	uint64_t start = hole ? hole : first;

	if (!lk)
		return false;
	if (r->evicted)
		return violation(r, "subscribed to %s after the eviction",
				 fanq_channel_name(ch));
	if (lk->nspans && lk->spans[lk->nspans - 1].last == SPAN_OPEN)
		return violation(r, "subscribed twice to %s", fanq_channel_name(ch));
	if (first == 0 && (r->levels != 1 || lk->nspans || hole))
		return violation(r, "unknown first seq needs one lane and one subscription");
	if (hole && hole >= first)
		return violation(r, "resume hole of %s ends before it starts",
				 fanq_channel_name(ch));
	/* a hole needs no priorities: it may reach back before that */
	if (first && first <= r->w->chans[lk - r->links].base)
		return violation(r, "subscription to %s starts at %" PRIu64
				 ", before the checker knew the channel",
				 fanq_channel_name(ch), first);
	if (lk->nspans && start <= lk->spans[lk->nspans - 1].last)
		return violation(r, "subscription to %s starts at %" PRIu64
				 " before the last one ended",
				 fanq_channel_name(ch), start);
	if (lk->nspans == lk->cap) {
		size_t cap = lk->cap ? 2 * lk->cap : 4;
		struct inv_span *s = realloc(lk->spans, cap * sizeof(*s));

		if (!s)
			return violation(r, "out of memory");
		lk->spans = s;
		lk->cap = cap;
	}
	memset(&lk->spans[lk->nspans], 0, sizeof(lk->spans[0]));
	lk->spans[lk->nspans].first = first;
	lk->spans[lk->nspans].last = SPAN_OPEN;
	lk->spans[lk->nspans].hole = hole;
	lk->nspans++;
	r->inexact |= first == 0;
	return true;
}

bool inv_sub_subscribed(struct inv_sub *r, const fanq_channel *ch,
			uint64_t first)
{
	return span_open(r, ch, 0, first);
}

bool inv_sub_resumed(struct inv_sub *r, const fanq_channel *ch,
		     uint64_t after, uint64_t first)
{
	if (first <= after)
		return violation(r, "resume of %s after %" PRIu64 " offers %"
				 PRIu64 " first", fanq_channel_name(ch), after,
				 first);
	return span_open(r, ch, first > after + 1 ? after + 1 : 0, first);
}

bool inv_sub_evicted(struct inv_sub *r)
{
	if (r->err[0])
		return false;
	for (unsigned c = 0; c < r->w->n; c++) {
		struct inv_link *lk = &r->links[c];

		if (lk->nspans && lk->spans[lk->nspans - 1].last == SPAN_OPEN)
			return violation(r, "evicted while subscribed to %s",
					 fanq_channel_name(r->w->chans[c].ch));
	}
	r->evicted = true;
	return true;
}

bool inv_sub_unsubscribed(struct inv_sub *r, const fanq_channel *ch,
			  uint64_t last)
{
	struct inv_link *lk = link_of(r, ch);

	if (!lk)
		return false;
	if (!lk->nspans || lk->spans[lk->nspans - 1].last != SPAN_OPEN)
		return violation(r, "unsubscribed from %s while not subscribed",
				 fanq_channel_name(ch));
	if (last + 1 < lk->spans[lk->nspans - 1].first)
		return violation(r, "subscription to %s ends before it starts",
				 fanq_channel_name(ch));
	lk->spans[lk->nspans - 1].last = last;
	return true;
}

/*
 * A GAP for a resume hole of channel c stands alone (the replay after it
 * may be in another lane): it ends right before the span's first seq and
 * counts what the highest lane misses up to there.  False when e is not
 * one (r->err is set if it broke a promise).
 */
static bool hole_gap(struct inv_sub *r, unsigned c, const fanq_entry *e)
{
	struct inv_link *lk = &r->links[c];
	unsigned lane = r->levels - 1;
	uint64_t prev = lk->last[lane], missing, min;
	size_t i;

	for (i = 0; i < lk->nspans; i++)
		if (lk->spans[i].hole && !lk->spans[i].hole_told &&
		    lk->spans[i].first - 1 == e->gap_last)
			break;
	if (i == lk->nspans)
		return false;
	missing = offered_between(r, c, lane, prev, e->gap_last + 1, &min, true);
	if (e->gap_first <= prev || e->gap_count != missing || min < e->gap_first)
		return violation(r, "%s: resume GAP %" PRIu64 "..%" PRIu64 " count %"
				 PRIu64 " (previous %" PRIu64 "): %" PRIu64
				 " are missing from seq %" PRIu64,
				 fanq_channel_name(e->ch), e->gap_first,
				 e->gap_last, e->gap_count, prev, missing, min);
	r->gap_msgs += told_between(r, c, lane, prev, e->gap_last + 1, &min);
	lk->last[lane] = e->gap_last;
	return true;
}

/* A GAP's own fields, before its message is known. */
static bool gap_entry(struct inv_sub *r, unsigned c, const fanq_entry *e)
{
	if (r->has_gap)
		return violation(r, "two GAP entries in a row");
	if (e->gap_count == 0 || e->gap_first == 0 || e->gap_first > e->gap_last ||
	    e->gap_count > e->gap_last - e->gap_first + 1)
		return violation(r, "GAP %" PRIu64 "..%" PRIu64 " count %" PRIu64
				 " is not a range holding its count",
				 e->gap_first, e->gap_last, e->gap_count);
	if (hole_gap(r, c, e))
		return true;
	if (r->err[0])
		return false;
	r->gap = *e;
	r->has_gap = true;
	return true;
}

/* The message's seq and priority are ones channel c gave. */
static bool msg_published(struct inv_sub *r, unsigned c, uint64_t seq,
			  unsigned prio)
{
	const struct inv_channel *ic = &r->w->chans[c];
	const char *name = fanq_channel_name(ic->ch);

	if (prio >= FANQ_PRIO_LEVELS ||
	    (!ic->log_prio && !ic->prio_of && prio))
		return violation(r, "%s seq %" PRIu64 " has priority %u",
				 name, seq, prio);
	/* a seq is given before the message is offered to anyone */
	if (seq <= ic->base || seq > fanq_channel_last_seq(ic->ch) ||
	    (ic->log_prio && seq > ic->base + ic->logged))
		return violation(r, "%s seq %" PRIu64 " was never published",
				 name, seq);
	if (chan_prio(ic, seq) != prio)
		return violation(r, "%s seq %" PRIu64 " was published with priority"
				 " %u, delivered with %u", name, seq,
				 chan_prio(ic, seq), prio);
	return true;
}

/* A message entry, with the GAP before it if any. */
static bool msg_entry(struct inv_sub *r, unsigned c, uint64_t seq,
		      unsigned prio)
{
	struct inv_link *lk = &r->links[c];
	const char *name = fanq_channel_name(r->w->chans[c].ch);
	const fanq_entry *g = &r->gap;
	uint64_t prev, missing, min;
	unsigned lane;

	if (!msg_published(r, c, seq, prio))
		return false;
	lane = lane_of(r, prio);
	if (!lk->nspans)
		return violation(r, "%s seq %" PRIu64 " but never subscribed",
				 name, seq);
	if (lk->spans[0].first == 0) /* joined at an unknown seq: this one */
		lk->spans[0].first = r->has_gap ? g->gap_first : seq;
	prev = lk->last[lane];
	if (seq <= prev)
		return violation(r, "%s lane %u: seq %" PRIu64 " after %" PRIu64
				 " (duplicate or out of order)",
				 name, lane, seq, prev);
	if (!in_spans(lk, seq))
		return violation(r, "%s seq %" PRIu64 " was not offered (not subscribed)",
				 name, seq);
	missing = offered_between(r, c, lane, prev, seq, &min, true);
	if (!r->has_gap && missing)
		return violation(r, "%s lane %u: %" PRIu64 " messages from seq %"
				 PRIu64 " missing before seq %" PRIu64
				 " without a GAP", name, lane, missing, min, seq);
	if (r->has_gap && (g->gap_last != seq - 1 || g->gap_first <= prev ||
			   g->gap_count != missing || (missing && min < g->gap_first)))
		return violation(r, "%s lane %u: GAP %" PRIu64 "..%" PRIu64
				 " count %" PRIu64 " before seq %" PRIu64
				 " (previous %" PRIu64 "): %" PRIu64
				 " offered messages are missing, from seq %" PRIu64,
				 name, lane, g->gap_first, g->gap_last,
				 g->gap_count, seq, prev, missing, min);
	if (r->has_gap)
		r->gap_msgs += told_between(r, c, lane, prev, seq, &min);
	r->has_gap = false;
	lk->last[lane] = seq;
	r->delivered++;
	return true;
}

bool inv_sub_entry(struct inv_sub *r, const fanq_entry *e, unsigned prio)
{
	int c;

	if (r->err[0])
		return false;
	c = chan_index(r->w, e->ch);
	if (c < 0)
		return violation(r, "entry of an unregistered channel %p",
				 (const void *)e->ch);
	if (e->kind == FANQ_ENTRY_GAP)
		return gap_entry(r, (unsigned)c, e);
	if (e->kind != FANQ_ENTRY_MSG)
		return violation(r, "entry of kind %d", (int)e->kind);
	if (e->msg && (fanq_msg_seq(e->msg) != e->seq ||
		       fanq_msg_channel(e->msg) != e->ch ||
		       fanq_msg_priority(e->msg) != prio))
		return violation(r, "entry seq %" PRIu64 " prio %u disagrees with"
				 " its message (seq %" PRIu64 ", prio %u)",
				 e->seq, prio, fanq_msg_seq(e->msg),
				 fanq_msg_priority(e->msg));
	if (r->has_gap && r->gap.ch != e->ch)
		return violation(r, "GAP of %s followed by a message of %s",
				 fanq_channel_name(r->gap.ch),
				 fanq_channel_name(e->ch));
	return msg_entry(r, (unsigned)c, e->seq, prio);
}

/* Offered in total, and offered but not delivered (after each lane's last). */
static bool offered_totals(struct inv_sub *r, uint64_t *offered,
			   uint64_t *undelivered)
{
	uint64_t min;

	*offered = *undelivered = 0;
	for (unsigned c = 0; c < r->w->n; c++) {
		const struct inv_channel *ic = &r->w->chans[c];
		uint64_t last = fanq_channel_last_seq(ic->ch);

		if (ic->log_prio && ic->base + ic->logged != last)
			return violation(r, "%s gave seqs up to %" PRIu64 ", %" PRIu64
					 " were logged after %" PRIu64,
					 fanq_channel_name(ic->ch), last, ic->logged,
					 ic->base);
		for (unsigned lane = 0; lane < r->levels; lane++) {
			*offered += offered_between(r, c, lane, 0, last + 1,
						    &min, false);
			*undelivered += offered_between(r, c, lane,
							r->links[c].last[lane],
							last + 1, &min, false);
		}
	}
	return true;
}

bool inv_sub_check(struct inv_sub *r, const fanq_sub *sub)
{
	fanq_sub_stats st;
	uint64_t dropped = 0, offered, undelivered;

	if (r->err[0])
		return false;
	if (fanq_sub_stats_get(sub, &st) != 0)
		return violation(r, "fanq_sub_stats_get failed");
	/* evicted: a GAP taken before its message goes with the backlog */
	if (r->evicted && st.queued_msgs)
		return violation(r, "evicted with %" PRIu64 " messages queued",
				 st.queued_msgs);
	if (r->evicted)
		r->has_gap = false;
	/* a GAP's message is taken with it: held (queued) until handed out */
	if (r->has_gap && st.queued_msgs == 0)
		return violation(r, "GAP without the message that follows it");
	for (int i = 0; i < FANQ_DROP_REASONS; i++)
		dropped += st.dropped[i];
	if (st.enqueued != st.delivered + dropped + st.queued_msgs)
		return violation(r, "enqueued %" PRIu64 " != delivered %" PRIu64
				 " + dropped %" PRIu64 " + queued %" PRIu64,
				 st.enqueued, st.delivered, dropped, st.queued_msgs);
	if (st.delivered != r->delivered)
		return violation(r, "stats say %" PRIu64 " delivered, the consumer"
				 " got %" PRIu64, st.delivered, r->delivered);
	/* what the consumer was never offered is no drop (resume holes);
	 * an evicted subscriber's backlog is (FANQ_DROP_UNSUBSCRIBED) */
	if (r->gap_msgs - r->hole_msgs >
	    dropped - st.dropped[FANQ_DROP_UNSUBSCRIBED])
		return violation(r, "GAPs count %" PRIu64 " messages, %" PRIu64
				 " were dropped", r->gap_msgs - r->hole_msgs,
				 dropped - st.dropped[FANQ_DROP_UNSUBSCRIBED]);
	if (!r->evicted)
		dropped -= st.dropped[FANQ_DROP_UNSUBSCRIBED];
	if (r->inexact)
		return true;
	if (!offered_totals(r, &offered, &undelivered))
		return false;
	if (st.enqueued != offered)
		return violation(r, "enqueued %" PRIu64 ", %" PRIu64 " were offered",
				 st.enqueued, offered);
	if (r->gap_msgs - r->hole_msgs + undelivered != dropped + st.queued_msgs)
		return violation(r, "GAPs %" PRIu64 " + not yet delivered %" PRIu64
				 " != dropped %" PRIu64 " + queued %" PRIu64,
				 r->gap_msgs - r->hole_msgs, undelivered, dropped,
				 st.queued_msgs);
	return true;
}

struct inv_stream {
	struct inv_world *w;
	char *buf;
	size_t len, cap; /* bytes written */
	size_t pos;      /* bytes parsed */
};

static size_t framer_prefix(void *arg, const fanq_entry *e, char *buf,
			    size_t cap)
{
	int c = chan_index(arg, e->ch);
	int n;

	if (e->kind == FANQ_ENTRY_GAP)
		n = snprintf(buf, cap, "G %d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			     c, e->gap_first, e->gap_last, e->gap_count);
	else
		n = snprintf(buf, cap, "M %d %" PRIu64 " %u %zu\n", c, e->seq,
			     fanq_msg_priority(e->msg), fanq_msg_len(e->msg));
	return n < 0 ? 0 : (size_t)n;
}

fanq_framer inv_framer(struct inv_world *w)
{
	fanq_framer f = {.prefix = framer_prefix, .suffix = "\n",
			 .suffix_len = 1, .arg = w};

	return f;
}

struct inv_stream *inv_stream_new(struct inv_world *w)
{
	struct inv_stream *s = calloc(1, sizeof(*s));

	if (s)
		s->w = w;
	return s;
}

void inv_stream_free(struct inv_stream *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s);
}

bool inv_stream_write(struct inv_stream *s, const struct iovec *iov, int cnt,
		      size_t n)
{
	if (s->pos > 0) { /* drop what was parsed */
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
		s->len -= s->pos;
		s->pos = 0;
	}
	if (s->len + n > s->cap) {
		size_t cap = 2 * (s->len + n);
		char *b = realloc(s->buf, cap);

		if (!b)
			return false;
		s->buf = b;
		s->cap = cap;
	}
	for (int i = 0; i < cnt && n > 0; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

		memcpy(s->buf + s->len, iov[i].iov_base, k);
		s->len += k;
		n -= k;
	}
	return n == 0;
}

/* One unsigned decimal number then `end`, advancing *p. */
static bool parse_u64(const char **p, const char *lim, char end, uint64_t *out)
{
	uint64_t v = 0;
	const char *q = *p;

	if (q == lim || *q < '0' || *q > '9')
		return false;
	for (; q < lim && *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (uint64_t)(*q - '0');
	if (q == lim || *q != end)
		return false;
	*p = q + 1;
	*out = v;
	return true;
}

int inv_stream_next(struct inv_stream *s, fanq_entry *e, unsigned *prio,
		    const char **payload, size_t *len)
{
	const char *p, *lim, *nl;
	uint64_t c, a, b, n;
	bool gap;

	if (s->pos == s->len) /* nothing (buf may still be NULL) */
		return 0;
	p = s->buf + s->pos;
	lim = s->buf + s->len;
	nl = memchr(p, '\n', (size_t)(lim - p));
	if (!nl)
		return 0;
	if (lim - p < 2 || (p[0] != 'M' && p[0] != 'G') || p[1] != ' ')
		return -1;
	gap = p[0] == 'G';
	p += 2;
	if (!parse_u64(&p, nl + 1, ' ', &c) || c >= s->w->n ||
	    !parse_u64(&p, nl + 1, ' ', &a) || !parse_u64(&p, nl + 1, ' ', &b) ||
	    !parse_u64(&p, nl + 1, '\n', &n) || (!gap && b >= FANQ_PRIO_LEVELS))
		return -1;
	memset(e, 0, sizeof(*e));
	e->ch = s->w->chans[c].ch;
	*prio = 0;
	*payload = NULL;
	*len = 0;
	if (gap) {
		e->kind = FANQ_ENTRY_GAP;
		e->gap_first = a;
		e->gap_last = b;
		e->gap_count = n;
		n = 0;
	} else {
		e->kind = FANQ_ENTRY_MSG;
		e->seq = a;
		*prio = (unsigned)b;
		*payload = p;
		*len = (size_t)n;
	}
	if ((uint64_t)(lim - p) < n + 1)
		return 0; /* payload or suffix not written yet */
	if (p[n] != '\n')
		return -1;
	s->pos = (size_t)(p + n + 1 - s->buf);
	return 1;
}
