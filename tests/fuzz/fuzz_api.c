/*
 * fuzz_api.c - libFuzzer target: random sequences of fanq API calls,
 * with the invariant checker (tests/invariant.h) as the oracle.
 *
 * The input is read as a stream of operations (one byte each, then its
 * arguments; a missing byte reads 0) on three channels, up to four
 * subscriber slots and one consumer group: create and close
 * subscribers, subscribe and unsubscribe, publish with random sizes and
 * priorities, pop, pop_batch, peek, drain_iov with partial commits, set
 * policy (built-in and custom) and limits, set meta, poll the group,
 * invalid arguments, channel history limits (off, messages, bytes),
 * resume with fanq_subscribe_after() from before, inside or past the
 * history, health rules and fanq_bus_tick() on a fake clock the input
 * advances.  A model of each channel's history predicts every resume's
 * result.  Evictions are not predicted, but checked: only by a rule the
 * subscriber has, never with queued bytes over its hard limit, reported
 * by exactly one tick; from then on its consume calls and joins must
 * return FANQ_ECLOSED and the checker counts its backlog as dropped.  Every call's return code is predicted from a model
 * of what the calls before it did; every entry delivered (popped, or
 * parsed back from the drained bytes) goes through the checker and its
 * payload is compared with what was published; subscribers are checked
 * on demand and before closing.  At the end of the input everything is
 * drained, checked and closed.
 *
 * The bus and its channels outlive the inputs: closing a bus waits for
 * liburcu's call_rcu worker, which sleeps 10 ms per batch, and that would
 * cap the target at 50 inputs a second.  Channel sequences therefore
 * continue from input to input (the checker counts from where they
 * were); at exit the bus must close, and LeakSanitizer then finds
 * anything an input leaked.
 *
 * Single-threaded: with nothing else fanning out, every publish and
 * subscription change is applied before its call returns, so the model
 * knows exactly which messages each subscriber was offered.  A violation
 * prints what broke and aborts.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanq.h"
#include "../invariant.h"

#define NCH 3
#define NSUBS 4
#define MAX_OPS 4096
#define MAX_LEN 8192 /* largest payload published */

struct slot {
	fanq_sub *sub;
	struct inv_sub *inv;
	struct inv_stream *stream;
	unsigned levels;
	bool linked;          /* ever subscribed: the lane count is fixed */
	bool subscribed[NCH];
	bool framer;
	bool draining;        /* drain_iov may hold uncommitted entries */
	int custom_mode;      /* how custom_on_full() answers */
	fanq_health_rules rules;
	bool evicted;         /* fanq_sub_evicted() said so */
	bool reported;        /* and a tick counted it */
	uint64_t left_at[NCH];/* last seq offered before an unsubscribe */
};

/* A channel's history as fanq_channel_set_history() documents it (ages
 * are never reached within an input). */
struct hist_model {
	bool on;
	uint64_t max_msgs, max_bytes;
	uint64_t first, last; /* seqs held: first .. last (empty: first > last) */
	uint64_t bytes;
};

static fanq_bus *bus;          /* for the whole run */
static fanq_channel *chans[NCH];

static struct fz {
	const uint8_t *in;
	size_t left;
	size_t op;
	uint64_t base[NCH];    /* each channel's last seq before this input */
	fanq_group *group;
	struct inv_world *w;
	struct slot slots[NSUBS];
	struct hist_model hist[NCH];
} fz;

static _Atomic uint64_t fake_now = 1; /* the bus clock, ns */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn, format(printf, 1, 2)))
static void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_api: operation %zu: ", fz.op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Fail unless rc is the code the model predicts. */
static void expect_rc(int rc, int want, const char *call)
{
	if (rc != want)
		fz_fail("%s returned %d (%s), expected %d (%s)", call, rc,
			fanq_strerror(rc), want, fanq_strerror(want));
}

static void expect_inv(bool ok, const struct slot *s)
{
	if (!ok)
		fz_fail("invariant: %s", inv_sub_error(s->inv));
}

static uint8_t next_byte(void)
{
	if (!fz.left)
		return 0;
	fz.left--;
	return *fz.in++;
}

/* Payload byte i of channel c's message seq: the consumer can check it. */
static uint8_t payload_byte(unsigned c, uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 31 + c * 7 + i);
}

static unsigned channel_index(const fanq_channel *ch)
{
	for (unsigned c = 0; c < NCH; c++)
		if (chans[c] == ch)
			return c;
	fz_fail("entry of an unknown channel");
}

static void check_payload(const fanq_entry *e, const char *data, size_t len,
			  uint64_t want_len)
{
	unsigned c = channel_index(e->ch);

	if (len != want_len)
		fz_fail("seq %" PRIu64 ": %zu bytes, published %" PRIu64, e->seq,
			len, want_len);
	for (size_t i = 0; i < len; i++)
		if ((uint8_t)data[i] != payload_byte(c, e->seq, i))
			fz_fail("seq %" PRIu64 ": payload byte %zu differs", e->seq, i);
}

/* Lengths of the messages published on channel c in this input, by seq. */
static uint64_t *published_len[NCH];
static uint64_t published_n[NCH], published_cap[NCH];

static void remember_len(unsigned c, uint64_t seq, size_t len)
{
	if (seq != fz.base[c] + published_n[c] + 1)
		fz_fail("channel %u gave seq %" PRIu64 " after %" PRIu64, c, seq,
			fz.base[c] + published_n[c]);
	if (published_n[c] == published_cap[c]) {
		published_cap[c] = published_cap[c] ? 2 * published_cap[c] : 64;
		published_len[c] = realloc(published_len[c],
					   published_cap[c] * sizeof(uint64_t));
		if (!published_len[c])
			fz_fail("out of memory");
	}
	published_len[c][published_n[c]++] = len;
}

/* ------------------------------------------------------------- history */

static void hist_trim(struct hist_model *h, unsigned c, uint64_t more,
		      uint64_t more_bytes)
{
	while (h->first <= h->last &&
	       (h->last + 1 - h->first + more > h->max_msgs ||
		(h->max_bytes && h->bytes + more_bytes > h->max_bytes))) {
		h->bytes -= published_len[c][h->first - fz.base[c] - 1];
		h->first++;
	}
}

/* Channel c gave seq to a message of len bytes (after remember_len()). */
static void hist_published(unsigned c, uint64_t seq, size_t len)
{
	struct hist_model *h = &fz.hist[c];

	if (!h->on)
		return;
	if (h->max_bytes && len > h->max_bytes) { /* it restarts after seq */
		h->first = seq + 1;
		h->last = seq;
		h->bytes = 0;
		return;
	}
	hist_trim(h, c, 1, len);
	h->last = seq;
	h->bytes += len;
}

/* The oldest seq a resume on c can replay (the next seq when none). */
static uint64_t hist_oldest(unsigned c)
{
	return fz.hist[c].on ? fz.hist[c].first
			     : fanq_channel_last_seq(chans[c]) + 1;
}

/* fanq_channel_history_read() returns what the model holds. */
static void hist_check(unsigned c)
{
	const struct hist_model *h = &fz.hist[c];
	uint64_t held = h->on ? h->last + 1 - h->first : 0;
	fanq_msg *out[8];
	int n = fanq_channel_history_read(chans[c], 0, out, 8);

	if (n != (int)(held < 8 ? held : 8))
		fz_fail("history of %u: read %d, the model holds %" PRIu64, c, n,
			held);
	for (int i = 0; i < n; i++) {
		if (fanq_msg_seq(out[i]) != h->first + (uint64_t)i)
			fz_fail("history of %u: seq %" PRIu64 " at %d, expected %"
				PRIu64, c, fanq_msg_seq(out[i]), i,
				h->first + (uint64_t)i);
		fanq_msg_release(out[i]);
	}
}

/* ------------------------------------------------------------ eviction */

static bool rule_on(const fanq_health_rules *r, enum fanq_evict_reason why)
{
	switch (why) {
	case FANQ_EVICT_FULL: return r->full_ns;
	case FANQ_EVICT_DROPS: return r->drops_window_ns;
	case FANQ_EVICT_IDLE: return r->idle_ns;
	case FANQ_EVICT_HARD_BYTES: return r->hard_bytes;
	case FANQ_EVICT_SOFT_BYTES: return r->soft_bytes;
	default: return false;
	}
}

/*
 * After a call that may evict (publish, resume, tick): a subscriber newly
 * evicted must have the rule; its subscriptions end at the last seq each
 * channel gave, except channel rc, whose last offered is rc_last (a
 * replay cut short).  rc == NCH: none such.
 */
static void note_evictions(unsigned rc, uint64_t rc_last)
{
	for (int i = 0; i < NSUBS; i++) {
		struct slot *s = &fz.slots[i];
		enum fanq_evict_reason why;
		int e;

		if (!s->sub || s->evicted)
			continue;
		e = fanq_sub_evicted(s->sub, &why);
		if (e == 0)
			continue;
		if (e != 1 || !rule_on(&s->rules, why))
			fz_fail("evicted (%d) by %s, a rule it does not have", e,
				fanq_evict_reason_name(why));
		s->evicted = true;
		for (unsigned c = 0; c < NCH; c++)
			if (s->subscribed[c])
				expect_inv(inv_sub_unsubscribed(
					s->inv, chans[c], c == rc ? rc_last
						: fanq_channel_last_seq(chans[c])), s);
		expect_inv(inv_sub_evicted(s->inv), s);
	}
}

/* A popped entry: checker, payload, release. */
static void consume_entry(struct slot *s, fanq_entry *e)
{
	if (e->kind == FANQ_ENTRY_MSG) {
		unsigned c = channel_index(e->ch);

		if (e->seq <= fz.base[c] || e->seq > fz.base[c] + published_n[c])
			fz_fail("seq %" PRIu64 " never published", e->seq);
		check_payload(e, fanq_msg_data(e->msg), fanq_msg_len(e->msg),
			      published_len[c][e->seq - fz.base[c] - 1]);
	}
	expect_inv(inv_sub_entry(s->inv, e, e->kind == FANQ_ENTRY_MSG
					  ? fanq_msg_priority(e->msg) : 0),
		   s);
	if (e->kind == FANQ_ENTRY_MSG)
		fanq_msg_release(e->msg);
}

/* ------------------------------------------------------------ draining */

/* drain_iov, "write" `part` of what it offers (all if part is 0), commit. */
static size_t drain_step(struct slot *s, int iovmax, size_t max_bytes,
			 size_t part)
{
	struct iovec iov[256];
	const char *payload;
	size_t bytes = 0, len;
	unsigned prio;
	fanq_entry e;
	int cnt, rc;

	cnt = fanq_sub_drain_iov(s->sub, iov, iovmax, max_bytes);
	if (cnt < 0)
		expect_rc(cnt, 0, "fanq_sub_drain_iov");
	for (int i = 0; i < cnt; i++)
		bytes += iov[i].iov_len;
	if (part && part < bytes)
		bytes = part;
	if (!inv_stream_write(s->stream, iov, cnt, bytes))
		fz_fail("out of memory");
	expect_rc(fanq_sub_drain_commit(s->sub, SIZE_MAX), FANQ_EINVAL,
		  "fanq_sub_drain_commit(more than handed out)");
	expect_rc(fanq_sub_drain_commit(s->sub, bytes), 0, "fanq_sub_drain_commit");
	while ((rc = inv_stream_next(s->stream, &e, &prio, &payload, &len)) == 1) {
		if (e.kind == FANQ_ENTRY_MSG) {
			unsigned c = channel_index(e.ch);

			if (e.seq <= fz.base[c] || e.seq > fz.base[c] + published_n[c])
				fz_fail("drained seq %" PRIu64 " never published", e.seq);
			check_payload(&e, payload, len,
				      published_len[c][e.seq - fz.base[c] - 1]);
		}
		expect_inv(inv_sub_entry(s->inv, &e, prio), s);
	}
	if (rc < 0)
		fz_fail("drained bytes are not what the framer wrote");
	s->draining = cnt > 0;
	return bytes;
}

/*
 * Commit everything the drain holds: one drain_iov with room for all its
 * items (64, at most 3 iovecs each), written in full.  Entries taken by
 * drain_iov are delivered only when committed; popping while some are
 * held would hand out later entries first.
 */
static void drain_flush(struct slot *s)
{
	if (s->draining && !s->evicted)
		drain_step(s, 256, SIZE_MAX, 0);
	s->draining = false;
}

static void drain_op(struct slot *s)
{
	int iovmax = 1 + next_byte() % 8;
	size_t max_bytes = 1 + (size_t)next_byte() * 4;
	size_t part = next_byte();

	if (s->evicted) {
		struct iovec iov[1];

		expect_rc(fanq_sub_drain_iov(s->sub, iov, 1, max_bytes),
			  FANQ_ECLOSED, "fanq_sub_drain_iov (evicted)");
		(void)iovmax;
		(void)part;
		return;
	}
	if (!s->framer) {
		fanq_framer f = inv_framer(fz.w);

		expect_rc(fanq_sub_set_framer(s->sub, &f), 0, "fanq_sub_set_framer");
		s->framer = true;
	}
	drain_step(s, iovmax, max_bytes, part);
}

/* --------------------------------------------------------- subscribers */

static unsigned custom_lane(void *arg, const fanq_msg *m)
{
	(void)arg;
	return fanq_msg_priority(m); /* fanq clamps to the last lane */
}

/* Publishing thread (this one).  Mode from the input; some answers are
 * out of range or name an empty lane: fanq must reject then. */
static int custom_on_full(void *arg, const fanq_queue_view *q, const fanq_msg *in)
{
	int mode = *(const int *)arg;

	(void)in;
	switch (mode) {
	case 0:
		return -1;
	case 1: /* the highest non-empty lane */
		for (int l = (int)q->levels - 1; l >= 0; l--)
			if (q->depth[l])
				return l;
		return -1;
	case 2: /* the lowest non-empty lane */
		for (unsigned l = 0; l < q->levels; l++)
			if (q->depth[l])
				return (int)l;
		return -1;
	case 3:
		return (int)q->levels; /* out of range */
	default:
		return 0; /* possibly empty */
	}
}

/* The recorder follows the subscriber's lane count until it subscribes. */
static void slot_recorder(struct slot *s, unsigned levels)
{
	inv_sub_free(s->inv);
	s->inv = inv_sub_new(fz.w, "sub", levels);
	if (!s->inv)
		fz_fail("out of memory");
	s->levels = levels;
}

static void sub_new_op(struct slot *s)
{
	uint8_t b = next_byte();

	expect_rc(fanq_sub_new(bus, &s->sub), 0, "fanq_sub_new");
	s->stream = inv_stream_new(fz.w);
	if (!s->stream)
		fz_fail("out of memory");
	slot_recorder(s, 1);
	if (b & 1)
		expect_rc(fanq_group_attach(fz.group, s->sub), 0, "fanq_group_attach");
}

/*
 * Check the subscriber at a quiescent point; an evicted one's consumer
 * first hears of it (and releases what it held).
 */
static void sub_check(struct slot *s)
{
	fanq_entry e;

	if (s->evicted)
		expect_rc(fanq_sub_pop(s->sub, &e), FANQ_ECLOSED,
			  "fanq_sub_pop (evicted)");
	expect_inv(inv_sub_check(s->inv, s->sub), s);
}

static void sub_close(struct slot *s)
{
	sub_check(s);
	expect_rc(fanq_sub_close(s->sub), 0, "fanq_sub_close");
	inv_sub_free(s->inv);
	inv_stream_free(s->stream);
	memset(s, 0, sizeof(*s));
}

static void subscribe_op(struct slot *s, unsigned c)
{
	uint64_t first = fanq_channel_last_seq(chans[c]) + 1;
	int rc = fanq_subscribe(s->sub, chans[c]);

	expect_rc(rc, s->evicted ? FANQ_ECLOSED
				 : s->subscribed[c] ? FANQ_EEXIST : 0,
		  "fanq_subscribe");
	if (rc)
		return;
	expect_inv(inv_sub_subscribed(s->inv, chans[c], first), s);
	s->subscribed[c] = true;
	s->linked = true;
}

static void unsubscribe_op(struct slot *s, unsigned c)
{
	int rc = fanq_unsubscribe(s->sub, chans[c]);

	expect_rc(rc, s->subscribed[c] ? 0 : FANQ_ENOENT, "fanq_unsubscribe");
	if (rc)
		return;
	s->subscribed[c] = false;
	if (s->evicted) /* its subscriptions ended then */
		return;
	s->left_at[c] = fanq_channel_last_seq(chans[c]);
	expect_inv(inv_sub_unsubscribed(s->inv, chans[c], s->left_at[c]), s);
}

static uint64_t enqueued_of(const fanq_sub *sub)
{
	fanq_sub_stats st;

	expect_rc(fanq_sub_stats_get(sub, &st), 0, "fanq_sub_stats_get");
	return st.enqueued;
}

/*
 * fanq_subscribe_after() from below the history (a hole), inside it, at
 * or past the channel's last seq, or UINT64_MAX; never before what the
 * slot was offered on an earlier subscription (the checker's spans
 * ascend).  The history model predicts the code and the result.
 */
static void resume_op(struct slot *s, unsigned c)
{
	uint8_t mode = next_byte(), b = next_byte();
	uint64_t last = fanq_channel_last_seq(chans[c]);
	uint64_t oldest = hist_oldest(c), seen, after, first, enq;
	fanq_resume_result res;
	int rc, want;

	switch (mode % 4) {
	case 0: seen = oldest - 1 - (b < oldest - 1 ? b : oldest - 1); break;
	case 1: seen = oldest - 1 + b % (last + 2 - oldest); break;
	case 2: seen = last + b % 4; break;
	default: seen = UINT64_MAX; break;
	}
	seen = seen > s->left_at[c] ? seen : s->left_at[c];
	after = seen < last ? seen : last;
	first = oldest > after + 1 ? oldest : after + 1;
	want = s->evicted ? FANQ_ECLOSED : s->subscribed[c] ? FANQ_EEXIST
		: first > after + 1 ? FANQ_ERANGE : 0;
	enq = enqueued_of(s->sub);
	memset(&res, 0xa5, sizeof(res));
	rc = fanq_subscribe_after(s->sub, chans[c], seen, &res);
	expect_rc(rc, want, "fanq_subscribe_after");
	if (rc && rc != FANQ_ERANGE)
		return;
	if (res.deferred || res.gap_first != (rc ? after + 1 : 0) ||
	    res.gap_last != (rc ? first - 1 : 0) ||
	    (!fanq_sub_evicted(s->sub, NULL) && res.replayed != last + 1 - first))
		fz_fail("resume after %" PRIu64 " (last %" PRIu64 ", oldest %" PRIu64
			"): replayed %" PRIu64 " gap %" PRIu64 "..%" PRIu64
			" deferred %d", seen, last, oldest, res.replayed,
			res.gap_first, res.gap_last, res.deferred);
	expect_inv(inv_sub_resumed(s->inv, chans[c], after, first), s);
	s->subscribed[c] = true;
	s->linked = true;
	/* a hard limit may cut the replay short: it offered seqs in order */
	note_evictions(c, first + (enqueued_of(s->sub) - enq) - 1);
}

static void policy_op(struct slot *s)
{
	static const unsigned kind_levels[] = {1, 1, FANQ_PRIO_LEVELS};
	uint8_t b = next_byte();
	unsigned kind = b % 5, levels;
	int rc, want;

	if (kind == 3) { /* custom, 1..4 lanes */
		fanq_policy p = {.name = "fuzz", .levels = 1 + (b >> 3) % 4,
				 .lane_of = custom_lane, .on_full = custom_on_full,
				 .arg = &s->custom_mode};

		levels = p.levels;
		want = levels != s->levels && s->linked ? FANQ_EBUSY : 0;
		s->custom_mode = (b >> 5) % 5; /* any mode suits any policy */
		rc = fanq_sub_set_custom_policy(s->sub, &p);
	} else if (kind == 4) { /* not a policy fanq_sub_set_policy() takes */
		levels = s->levels;
		want = FANQ_EINVAL;
		rc = fanq_sub_set_policy(s->sub, b & 8 ? FANQ_CUSTOM
							: (enum fanq_policy_kind)7);
	} else {
		levels = kind_levels[kind];
		want = levels != s->levels && s->linked ? FANQ_EBUSY : 0;
		rc = fanq_sub_set_policy(s->sub, (enum fanq_policy_kind)kind);
	}
	expect_rc(rc, want, "set policy");
	if (rc == 0 && levels != s->levels)
		slot_recorder(s, levels);
}

static void limits_op(struct slot *s)
{
	static const uint64_t bytes[] = {0, 1, 64, 256, 4096, 1u << 20};
	uint64_t msgs = next_byte() % 12;
	uint64_t b = bytes[next_byte() % 6];

	if (msgs == 11)
		msgs = FANQ_QUEUE_MSGS_MAX + 1;
	expect_rc(fanq_sub_set_limits(s->sub, msgs, b),
		  msgs == 0 || msgs > FANQ_QUEUE_MSGS_MAX || b == 0 ? FANQ_EINVAL : 0,
		  "fanq_sub_set_limits");
}

static void meta_op(struct slot *s)
{
	static const char *const keys[] = {"", "peer", "ua", "k"};
	const char *key = keys[next_byte() % 4];
	char value[16];
	size_t n = next_byte() % sizeof(value);

	for (size_t i = 0; i < n; i++)
		value[i] = (char)('a' + next_byte() % 26);
	value[n] = '\0';
	expect_rc(fanq_sub_set_meta(s->sub, key, value), *key ? 0 : FANQ_EINVAL,
		  "fanq_sub_set_meta");
	if (*key && (!fanq_sub_meta(s->sub, key) ||
		     strcmp(fanq_sub_meta(s->sub, key), value)))
		fz_fail("meta %s is not \"%s\"", key, value);
}

/* Random rules, some invalid; most evict soon on the fuzzer's clock. */
static void health_op(struct slot *s)
{
	static const uint64_t ns[] = {0, 1000000, 100000000, 2000000000};
	static const uint64_t bytes[] = {0, 1, 200, 5000};
	uint8_t a = next_byte(), b = next_byte();
	fanq_health_rules r = {
		.full_ns = ns[a % 4], .idle_ns = ns[(a >> 2) % 4],
		.drops = (a >> 4) % 4, .drops_window_ns = ns[(a >> 6) % 4],
		.hard_bytes = bytes[b % 4], .soft_bytes = bytes[(b >> 2) % 4],
		.soft_ns = ns[(b >> 4) % 4],
	};
	bool bad = (r.drops && !r.drops_window_ns) || (r.soft_ns && !r.soft_bytes) ||
		   (r.hard_bytes && r.soft_bytes > r.hard_bytes);

	expect_rc(fanq_sub_set_health(s->sub, &r), bad ? FANQ_EINVAL : 0,
		  "fanq_sub_set_health");
	if (!bad)
		s->rules = r;
}

/* ------------------------------------------------------------- consume */

static void pop_op(struct slot *s)
{
	fanq_entry e;
	int rc;

	drain_flush(s);
	rc = fanq_sub_pop(s->sub, &e);
	if (rc == FANQ_EAGAIN)
		return;
	expect_rc(rc, s->evicted ? FANQ_ECLOSED : 0, "fanq_sub_pop");
	if (rc == 0)
		consume_entry(s, &e);
}

static void pop_batch_op(struct slot *s)
{
	fanq_entry es[16];
	int n;

	drain_flush(s);
	n = fanq_sub_pop_batch(s->sub, es, 1 + next_byte() % 16);
	if (n < 0 || s->evicted)
		expect_rc(n, s->evicted ? FANQ_ECLOSED : 0, "fanq_sub_pop_batch");
	for (int i = 0; i < n; i++)
		consume_entry(s, &es[i]);
}

static void peek_op(struct slot *s)
{
	fanq_entry peeked, e;
	int rc;

	drain_flush(s);
	rc = fanq_sub_peek(s->sub, &peeked);
	if (rc == FANQ_EAGAIN)
		return;
	expect_rc(rc, s->evicted ? FANQ_ECLOSED : 0, "fanq_sub_peek");
	if (rc)
		return;
	if (!(next_byte() & 1))
		return;
	expect_rc(fanq_sub_pop(s->sub, &e), 0, "fanq_sub_pop after peek");
	if (e.kind != peeked.kind || e.seq != peeked.seq || e.msg != peeked.msg ||
	    e.gap_first != peeked.gap_first || e.gap_count != peeked.gap_count)
		fz_fail("pop did not return the entry peek showed");
	consume_entry(s, &e);
}

/* Everything out, through the drain if it was used. */
static void consume_all(struct slot *s)
{
	fanq_entry e;

	drain_flush(s);
	while (!s->evicted && fanq_sub_pop(s->sub, &e) == 0)
		consume_entry(s, &e);
}

/* ------------------------------------------------------------- publish */

static void publish_op(void)
{
	static char buf[MAX_LEN];
	unsigned c = next_byte() % NCH;
	uint8_t lb = next_byte();
	unsigned prio = next_byte() % (FANQ_PRIO_LEVELS + 1);
	size_t len = lb < 200 ? lb : (size_t)(lb - 199) * (MAX_LEN / 56);
	uint64_t seq = fanq_channel_last_seq(chans[c]) + 1;
	unsigned members = 0;
	fanq_publish_result res;
	int rc;

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)payload_byte(c, seq, i);
	rc = fanq_publish(chans[c], buf, len, prio, &res);
	expect_rc(rc, prio < FANQ_PRIO_LEVELS ? 0 : FANQ_EINVAL, "fanq_publish");
	if (rc)
		return;
	/* an evicted member is offered nothing */
	for (int i = 0; i < NSUBS; i++)
		members += fz.slots[i].sub && fz.slots[i].subscribed[c] &&
			   !fz.slots[i].evicted;
	/* each member queued it, rejected it, or both (it evicted another) */
	if (res.deferred || res.seq != seq || res.accepted > members ||
	    res.dropped > members || res.accepted + res.dropped < members)
		fz_fail("publish result seq %" PRIu64 " accepted %u dropped %u"
			" deferred %d; expected seq %" PRIu64 ", %u members",
			res.seq, res.accepted, res.dropped, res.deferred, seq, members);
	remember_len(c, seq, len);
	hist_published(c, seq, len);
	if (!inv_published(fz.w, chans[c], seq, prio))
		fz_fail("checker: publish log out of order");
	note_evictions(NCH, 0);
}

/* History limits, some invalid (ages are never reached in an input). */
static void history_op(void)
{
	static const uint64_t msgs[] = {0, 1, 2, 5, 64, FANQ_HISTORY_MSGS_MAX,
					FANQ_HISTORY_MSGS_MAX + 1};
	static const uint64_t bytes[] = {0, 1, 100, 4096};
	static const uint64_t ages[] = {0, 3600 * 1000, FANQ_HISTORY_AGE_MAX_MS,
					FANQ_HISTORY_AGE_MAX_MS + 1};
	unsigned c = next_byte() % NCH;
	uint64_t m = msgs[next_byte() % 7], b = bytes[next_byte() % 4];
	uint64_t a = ages[next_byte() % 4];
	bool bad = m > FANQ_HISTORY_MSGS_MAX || a > FANQ_HISTORY_AGE_MAX_MS ||
		   (!m && (b || a));
	struct hist_model *h = &fz.hist[c];

	expect_rc(fanq_channel_set_history(chans[c], m, b, a),
		  bad ? FANQ_EINVAL : 0, "fanq_channel_set_history");
	if (bad)
		return;
	if (!m) {
		memset(h, 0, sizeof(*h));
	} else {
		if (!h->on) { /* it starts empty, after the last seq */
			memset(h, 0, sizeof(*h));
			h->on = true;
			h->first = fanq_channel_last_seq(chans[c]) + 1;
			h->last = h->first - 1;
		}
		h->max_msgs = m;
		h->max_bytes = b;
		hist_trim(h, c, 0, 0);
	}
	hist_check(c);
}

/*
 * Advance the fake clock and tick: the return value is the evictions
 * not reported before (hard limits claimed by a publish, or rules now);
 * no subscriber left with queued bytes over its hard limit.
 */
static void tick_op(void)
{
	uint64_t step = next_byte();
	int rc, want = 0;

	atomic_fetch_add(&fake_now, step * step * 100000); /* up to 6.5 s */
	rc = fanq_bus_tick(bus);
	note_evictions(NCH, 0);
	for (int i = 0; i < NSUBS; i++) {
		struct slot *s = &fz.slots[i];
		fanq_sub_stats st;

		if (!s->sub)
			continue;
		if (s->evicted && !s->reported) {
			s->reported = true;
			want++;
		}
		expect_rc(fanq_sub_stats_get(s->sub, &st), 0, "fanq_sub_stats_get");
		if (!s->evicted && s->rules.hard_bytes &&
		    st.queued_bytes > s->rules.hard_bytes)
			fz_fail("%" PRIu64 " bytes queued over the hard limit %" PRIu64,
				st.queued_bytes, s->rules.hard_bytes);
	}
	expect_rc(rc, want, "fanq_bus_tick");
}

/* Calls with bad arguments: a code, and nothing changes. */
static void bad_input_op(struct slot *s)
{
	fanq_entry e;
	struct iovec iov;

	expect_rc(fanq_publish(chans[0], NULL, 1, 0, NULL), FANQ_EINVAL,
		  "fanq_publish(NULL data)");
	expect_rc(fanq_publish(chans[0], "x", (size_t)FANQ_MSG_MAX + 1, 0, NULL),
		  FANQ_EMSGSIZE, "fanq_publish(too big)");
	if (!s->sub)
		return;
	expect_rc(fanq_sub_pop_batch(s->sub, &e, 0), FANQ_EINVAL,
		  "fanq_sub_pop_batch(0)");
	expect_rc(fanq_sub_drain_iov(s->sub, &iov, 0, 1), FANQ_EINVAL,
		  "fanq_sub_drain_iov(no iovec)");
	expect_rc(fanq_sub_set_limits(s->sub, 1, 0), FANQ_EINVAL,
		  "fanq_sub_set_limits(0 bytes)");
}

static void group_poll_op(void)
{
	fanq_sub *ready;
	int rc, n = 0;

	while ((rc = fanq_group_next_ready(fz.group, &ready)) == 0) {
		bool known = false;

		for (int i = 0; i < NSUBS; i++)
			known |= fz.slots[i].sub == ready;
		if (!known || ++n > NSUBS)
			fz_fail("group returned a subscriber twice or unknown");
	}
	expect_rc(rc, FANQ_EAGAIN, "fanq_group_next_ready");
}

/* ---------------------------------------------------------- the input */

/* At exit: every handle of the run is gone, so the bus closes. */
static void close_bus(void)
{
	for (int c = 0; c < NCH; c++)
		fanq_channel_release(chans[c]);
	expect_rc(fanq_bus_close(bus), 0, "fanq_bus_close at exit");
}

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return atomic_load(&fake_now);
}

/* Log lines are dropped; the callback may read the subscriber's meta. */
static void quiet_log(void *arg, const fanq_log_record *r)
{
	(void)arg;
	if (r->sub && fanq_sub_id(r->sub) != r->sub_id)
		fz_fail("log record of sub %" PRIu64 " names another", r->sub_id);
	if (r->sub)
		(void)fanq_sub_meta(r->sub, "peer");
}

static void open_bus(void)
{
	static const char *const names[NCH] = {"a", "b", "c"};

	expect_rc(fanq_bus_new(&bus), 0, "fanq_bus_new");
	expect_rc(fanq_bus_set_clock(bus, fake_clock, NULL), 0,
		  "fanq_bus_set_clock");
	expect_rc(fanq_bus_set_log(bus, quiet_log, NULL), 0, "fanq_bus_set_log");
	for (int c = 0; c < NCH; c++)
		expect_rc(fanq_channel_open(bus, names[c], &chans[c]), 0,
			  "fanq_channel_open");
	atexit(close_bus);
}

static void setup(void)
{
	if (!bus)
		open_bus();
	expect_rc(fanq_group_new(bus, &fz.group), 0, "fanq_group_new");
	fz.w = inv_world_new();
	if (!fz.w)
		fz_fail("out of memory");
	for (int c = 0; c < NCH; c++) {
		/* the history model starts with none */
		expect_rc(fanq_channel_set_history(chans[c], 0, 0, 0), 0,
			  "fanq_channel_set_history(off)");
		fz.base[c] = fanq_channel_last_seq(chans[c]);
		if (!inv_world_channel(fz.w, chans[c], true))
			fz_fail("checker: channel");
	}
}

static void teardown(void)
{
	for (int i = 0; i < NSUBS; i++) {
		if (!fz.slots[i].sub)
			continue;
		consume_all(&fz.slots[i]);
		sub_close(&fz.slots[i]);
	}
	group_poll_op();
	expect_rc(fanq_group_close(fz.group), 0, "fanq_group_close");
	for (int c = 0; c < NCH; c++) {
		free(published_len[c]);
		published_len[c] = NULL;
		published_n[c] = published_cap[c] = 0;
	}
	inv_world_free(fz.w);
}

/* Ops 0xf4..0xff (the rest keep their op % 16 meaning): history, tick,
 * resume, health rules. */
static void new_op(uint8_t op, struct slot *s)
{
	switch (op % 4) {
	case 0: history_op(); return;
	case 1: tick_op(); return;
	default: break;
	}
	if (!s->sub)
		return;
	if (op % 4 == 2)
		resume_op(s, next_byte() % NCH);
	else
		health_op(s);
}

static void run_op(uint8_t op)
{
	struct slot *s = &fz.slots[next_byte() % NSUBS];

	if (op % 16 == 0) {
		if (s->sub)
			sub_close(s);
		else
			sub_new_op(s);
		return;
	}
	if (op % 16 == 1) {
		publish_op();
		return;
	}
	if (op % 16 == 2) {
		group_poll_op();
		return;
	}
	if (op % 16 == 3) {
		bad_input_op(s);
		return;
	}
	if (op >= 0xf4) {
		new_op(op, s);
		return;
	}
	if (!s->sub)
		return;
	switch (op % 16) {
	case 4: case 5: subscribe_op(s, next_byte() % NCH); break;
	case 6: unsubscribe_op(s, next_byte() % NCH); break;
	case 7: case 8: pop_op(s); break;
	case 9: pop_batch_op(s); break;
	case 10: peek_op(s); break;
	case 11: drain_op(s); break;
	case 12: policy_op(s); break;
	case 13: limits_op(s); break;
	case 14: meta_op(s); break;
	default: sub_check(s); break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&fz, 0, sizeof(fz));
	fz.in = data;
	fz.left = size;
	setup();
	for (fz.op = 0; fz.left && fz.op < MAX_OPS; fz.op++)
		run_op(next_byte());
	teardown();
	return 0;
}
