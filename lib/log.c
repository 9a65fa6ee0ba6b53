/*
 * log.c - log lines through the host's callback, and drop aggregation.
 *
 * Every line about a subscriber starts "fanq: sub <id>" followed by its
 * host metadata (key=value, values quoted and escaped when they hold
 * anything but [A-Za-z0-9._:[]-]), its policy and what happened.
 *
 * Drops happen on the publishing path, where nothing may block or lock.
 * There each policy drop only updates the subscriber's drop record
 * (relaxed atomics on its fan-out cache line: last and first seq of the
 * current line, the channel) and the first drop of a burst claims
 * DROP_CLAIMED with one atomic or; the claiming thread logs that drop at
 * once, then sets DROP_LOGGED.  From then on the ticker owns the line
 * bookkeeping (drop_line_ns, drop_line_total): at most once per interval
 * it logs a summary of the drops since the previous line, and after a
 * whole interval without drops it clears both bits, so the next drop is
 * logged at once again.  One burst costs two lines, whatever its size.
 * Seq ranges and channels are exact for one channel and one dropping
 * thread; with several they are best effort.  Counts in lines are exact
 * except that a drop racing the re-arm may appear in no line; the
 * counters (stats, metrics) are always exact.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LOG_LINE_MAX 512   /* longer lines are cut */
#define LOG_VALUE_MAX 96   /* longer metadata values are cut */

struct line {
	size_t len;
	char buf[LOG_LINE_MAX];
};

static void line_vprintf(struct line *l, const char *fmt, va_list ap)
{
	int n;

	if (l->len >= sizeof(l->buf) - 1)
		return;
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	if (n > 0)
		l->len += (size_t)n;
	if (l->len > sizeof(l->buf) - 1)
		l->len = sizeof(l->buf) - 1;
}

static void line_printf(struct line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void line_printf(struct line *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line_vprintf(l, fmt, ap);
	va_end(ap);
}

static bool bare_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("._:[]-", c);
}

/* A value as is, or quoted with \", \\ and \xHH escapes: clients choose
 * some of these strings (User-Agent), so none can break the line. */
static void line_value(struct line *l, const char *v)
{
	size_t n = strnlen(v, LOG_VALUE_MAX + 1), i;
	bool bare = n > 0 && n <= LOG_VALUE_MAX;

	for (i = 0; bare && i < n; i++)
		bare = bare_char((unsigned char)v[i]);
	if (bare) {
		line_printf(l, "%.*s", (int)n, v);
		return;
	}
	line_printf(l, "\"");
	for (i = 0; i < n && i < LOG_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\')
			line_printf(l, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			line_printf(l, "\\x%02x", c);
		else
			line_printf(l, "%c", c);
	}
	line_printf(l, n > LOG_VALUE_MAX ? "...\"" : "\"");
}

/* Keys come from the host; still keep them one token. */
static void line_key(struct line *l, const char *k)
{
	for (size_t i = 0; k[i] && i < LOG_VALUE_MAX; i++)
		line_printf(l, "%c", bare_char((unsigned char)k[i]) ? k[i] : '_');
}

/* Inside rcu_read_lock: the metadata is freed after a grace period. */
static void line_meta(struct line *l, const struct fanq_sub *s)
{
	struct meta *m = atomic_load_explicit(&s->meta, memory_order_acquire);

	for (struct meta_kv *kv = m ? m->kv : NULL; kv && kv->key; kv++) {
		line_printf(l, " ");
		line_key(l, kv->key);
		line_printf(l, "=");
		line_value(l, kv->value);
	}
}

/* The default: one write(2) per line, so lines of threads never mix. */
static void log_stderr(void *arg, const fanq_log_record *r)
{
	char buf[LOG_LINE_MAX + 1];
	size_t n = strnlen(r->line, LOG_LINE_MAX);
	ssize_t w;

	(void)arg;
	memcpy(buf, r->line, n);
	buf[n++] = '\n';
	do
		w = write(STDERR_FILENO, buf, n);
	while (w < 0 && errno == EINTR);
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/*
 * Fan-out thread or ticker, inside rcu_read_lock: fill the subscriber
 * fields of r, format "fanq: sub <id> <meta> [channel=] policy=<p> "
 * + fmt + ", queue m/M msgs b/B MiB", and hand it to the bus's logger.
 */
void log_sub_line(struct fanq_bus *bus, fanq_log_record *r,
		  const struct fanq_sub *s, const char *fmt, ...)
{
	struct line l = { .len = 0 };
	va_list ap;

	r->sub_id = s->id;
	r->sub = s;
	r->policy = policy_name(atomic_load_explicit(&s->policy, memory_order_acquire));
	r->queued_msgs = atomic_load(&s->msgs); /* against max_msgs: not held */
	r->max_msgs = atomic_load(&s->max_msgs);
	r->queued_bytes = atomic_load(&s->bytes);
	r->max_bytes = atomic_load(&s->max_bytes);
	line_printf(&l, "fanq: sub %llu", (unsigned long long)s->id);
	line_meta(&l, s);
	if (r->channel) {
		line_printf(&l, " channel=");
		line_value(&l, r->channel);
	} else if (r->event == FANQ_LOG_DROP_FIRST || r->event == FANQ_LOG_DROP_SUMMARY) {
		line_printf(&l, " channels=several");
	}
	line_printf(&l, " policy=");
	line_value(&l, r->policy);
	line_printf(&l, " ");
	va_start(ap, fmt);
	line_vprintf(&l, fmt, ap);
	va_end(ap);
	line_printf(&l, ", queue %llu/%llu msgs %.1f/%.1f MiB",
		    (unsigned long long)r->queued_msgs,
		    (unsigned long long)r->max_msgs, mib(r->queued_bytes),
		    mib(r->max_bytes));
	r->line = l.buf;
	(bus->log ? bus->log : log_stderr)(bus->log_arg, r);
}

/* The thread that claimed the first drop of a burst logs it at once. */
static void log_first_drop(struct fanq_sub *s, const fanq_msg *m,
			   enum fanq_drop_reason why)
{
	fanq_log_record r = {
		.level = FANQ_LOG_WARN, .event = FANQ_LOG_DROP_FIRST,
		.channel = m->ch->name, .reason = why, .count = 1,
		.seq_first = m->seq, .seq_last = m->seq,
	};

	/* the summary counts from here (this drop included in the total) */
	atomic_store_explicit(&s->drop_line_ns, bus_now(s->bus), memory_order_relaxed);
	atomic_store_explicit(&s->drop_line_total, sub_policy_drops(s),
			      memory_order_relaxed);
	atomic_store_explicit(&s->drop_first_seq, 0, memory_order_relaxed);
	atomic_store_explicit(&s->drop_ch, NULL, memory_order_relaxed);
	/* hands the record to the ticker: pairs with its acquire load */
	atomic_fetch_or_explicit(&s->drop_state, DROP_LOGGED, memory_order_release);
	log_sub_line(s->bus, &r, s, "first drop (seq %llu, %s)",
		     (unsigned long long)m->seq, fanq_drop_reason_name(why));
}

/*
 * The thread counting a policy drop of m (a fan-out thread, inside
 * rcu_read_lock): note it in the drop record; log it if it is the first
 * of a burst.  Lock-free, a few relaxed atomics on a line the drop
 * counter already dirtied; the clock is read only for a first drop.
 */
void log_drop(struct fanq_sub *s, const fanq_msg *m, enum fanq_drop_reason why)
{
	struct fanq_channel *ch = atomic_load_explicit(&s->drop_ch, memory_order_relaxed);
	uint64_t none = 0;
	unsigned st;

	atomic_store_explicit(&s->drop_last_seq, m->seq, memory_order_relaxed);
	if (!atomic_load_explicit(&s->drop_first_seq, memory_order_relaxed))
		atomic_compare_exchange_strong_explicit(&s->drop_first_seq, &none,
							m->seq, memory_order_relaxed,
							memory_order_relaxed);
	if (!ch && atomic_compare_exchange_strong_explicit(&s->drop_ch, &ch, m->ch,
							   memory_order_relaxed,
							   memory_order_relaxed))
		ch = m->ch;
	if (ch != m->ch && ch != DROP_CH_SEVERAL)
		atomic_store_explicit(&s->drop_ch, DROP_CH_SEVERAL, memory_order_relaxed);
	st = atomic_load_explicit(&s->drop_state, memory_order_relaxed);
	if (!(st & DROP_FULL))
		atomic_fetch_or_explicit(&s->drop_state, DROP_FULL, memory_order_relaxed);
	if (st & DROP_CLAIMED)
		return;
	/* pairs with the release in log_tick_sub()'s re-arm */
	if (atomic_fetch_or_explicit(&s->drop_state, DROP_CLAIMED,
				     memory_order_acquire) & DROP_CLAIMED)
		return;
	log_first_drop(s, m, why);
}

/*
 * Ticker, inside rcu_read_lock: once an interval has passed since the
 * last line about s's drops, log a summary of the drops since, or re-arm
 * the first-drop line if there were none.
 */
void log_tick_sub(struct fanq_bus *bus, struct fanq_sub *s, uint64_t now)
{
	fanq_log_record r = { .level = FANQ_LOG_WARN, .event = FANQ_LOG_DROP_SUMMARY };
	uint64_t line_ns, line_total, total;
	struct fanq_channel *ch;

	/* pairs with the release in log_first_drop() */
	if (!(atomic_load_explicit(&s->drop_state, memory_order_acquire) & DROP_LOGGED))
		return;
	line_ns = atomic_load_explicit(&s->drop_line_ns, memory_order_relaxed);
	if (now < line_ns || now - line_ns < bus->log_interval_ns)
		return;
	total = sub_policy_drops(s);
	line_total = atomic_load_explicit(&s->drop_line_total, memory_order_relaxed);
	if (total == line_total) {
		atomic_fetch_and_explicit(&s->drop_state, ~(DROP_CLAIMED | DROP_LOGGED),
					  memory_order_release);
		return;
	}
	ch = atomic_exchange_explicit(&s->drop_ch, NULL, memory_order_relaxed);
	r.seq_first = atomic_exchange_explicit(&s->drop_first_seq, 0, memory_order_relaxed);
	r.seq_last = atomic_load_explicit(&s->drop_last_seq, memory_order_relaxed);
	if (ch == DROP_CH_SEVERAL || !r.seq_first || r.seq_last < r.seq_first)
		r.seq_first = r.seq_last = 0;
	r.channel = ch && ch != DROP_CH_SEVERAL ? ch->name : NULL;
	r.count = total - line_total;
	r.span_ns = now - line_ns;
	atomic_store_explicit(&s->drop_line_total, total, memory_order_relaxed);
	atomic_store_explicit(&s->drop_line_ns, now, memory_order_relaxed);
	if (r.seq_first)
		log_sub_line(bus, &r, s, "dropped %llu (seq %llu..%llu) in %.1fs",
			     (unsigned long long)r.count,
			     (unsigned long long)r.seq_first,
			     (unsigned long long)r.seq_last, (double)r.span_ns / 1e9);
	else
		log_sub_line(bus, &r, s, "dropped %llu in %.1fs",
			     (unsigned long long)r.count, (double)r.span_ns / 1e9);
}
