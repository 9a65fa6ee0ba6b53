/*
 * metrics.c - Prometheus text exposition (format 0.0.4) of a bus.
 *
 * One stats walk (stats.c) gives the totals and the depth histogram; then
 * one pass over the channel map per per-channel family, since Prometheus
 * wants the samples of a family together.  Text is gathered in a buffer
 * and handed to the host's writer in pieces.  Channel names may hold any
 * byte: label values escape \, " and newline as the format says.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define PROM_BUF 4096
/* a channel name escaped: at most two bytes per byte */
#define PROM_LABEL_MAX (2 * FANQ_CHANNEL_NAME_MAX + 1)

struct prom {
	fanq_write_fn write;
	void *arg;
	int failed;
	size_t len;
	char buf[PROM_BUF];
};

static void prom_flush(struct prom *p)
{
	if (p->len && !p->failed && p->write(p->arg, p->buf, p->len))
		p->failed = 1;
	p->len = 0;
}

static void prom_printf(struct prom *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Lines are shorter than PROM_BUF / 2 (the longest holds one label). */
static void prom_printf(struct prom *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->len > PROM_BUF / 2)
		prom_flush(p);
	va_start(ap, fmt);
	n = vsnprintf(p->buf + p->len, PROM_BUF - p->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->len += (size_t)n < PROM_BUF - p->len ? (size_t)n : PROM_BUF - p->len - 1;
}

static void prom_family(struct prom *p, const char *name, const char *type,
			const char *help)
{
	prom_printf(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_escape(const char *in, char *out)
{
	for (; *in; in++) {
		if (*in == '\\' || *in == '"')
			*out++ = '\\';
		if (*in == '\n') {
			*out++ = '\\';
			*out++ = 'n';
			continue;
		}
		*out++ = *in;
	}
	*out = 0;
}

/* Bus-wide metrics of one sample each, in exposition order. */
static void prom_scalars(struct prom *p, const fanq_bus_stats *t)
{
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} m[] = {
		{ "fanq_subscribers", "gauge", "Subscribers created and not closed.",
		  t->subscribers },
		{ "fanq_channels", "gauge", "Channels on the bus.", t->channels },
		{ "fanq_enqueued_total", "counter",
		  "Messages offered to subscriber queues.", t->enqueued },
		{ "fanq_delivered_total", "counter",
		  "Messages handed to consumers (popped, or written whole).",
		  t->delivered },
		{ "fanq_queued_messages", "gauge",
		  "Messages queued or held for writing, over all subscribers.",
		  t->queued_msgs },
		{ "fanq_queued_bytes", "gauge", "Bytes queued, over all subscribers.",
		  t->queued_bytes },
		{ "fanq_queued_messages_max", "gauge",
		  "Messages queued on the most backlogged subscriber.",
		  t->queued_msgs_max },
		{ "fanq_subscribers_over_high", "gauge",
		  "Subscribers over the high utilisation alert level.", t->over_high },
		{ "fanq_subscribers_shared_log", "gauge",
		  "Subscribers keeping up, reading their channel's shared log.",
		  t->shared_log },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		prom_family(p, m[i].name, m[i].type, m[i].help);
		prom_printf(p, "%s %llu\n", m[i].name, (unsigned long long)m[i].v);
	}
}

static void prom_totals(struct prom *p, const struct stats_walk *w)
{
	const fanq_bus_stats *t = &w->t;
	const uint64_t *bounds = stats_depth_bounds();
	int r;

	prom_scalars(p, t);
	prom_family(p, "fanq_dropped_total", "counter", "Messages dropped, by reason.");
	for (r = 0; r < FANQ_DROP_REASONS; r++)
		prom_printf(p, "fanq_dropped_total{reason=\"%s\"} %llu\n",
			    fanq_drop_reason_name(r), (unsigned long long)t->dropped[r]);
	prom_family(p, "fanq_evictions_total", "counter",
		    "Subscribers evicted by a health rule, by rule.");
	for (r = FANQ_EVICT_NONE + 1; r < FANQ_EVICT_REASONS; r++)
		prom_printf(p, "fanq_evictions_total{rule=\"%s\"} %llu\n",
			    fanq_evict_reason_name(r), (unsigned long long)t->evicted[r]);
	prom_family(p, "fanq_queue_depth_messages", "histogram",
		    "Queue depth (messages) across open subscribers.");
	for (r = 0; r < STATS_DEPTH_BUCKETS; r++)
		prom_printf(p, "fanq_queue_depth_messages_bucket{le=\"%llu\"} %llu\n",
			    (unsigned long long)bounds[r],
			    (unsigned long long)w->depth_le[r]);
	prom_printf(p, "fanq_queue_depth_messages_bucket{le=\"+Inf\"} %llu\n"
		    "fanq_queue_depth_messages_sum %llu\n"
		    "fanq_queue_depth_messages_count %llu\n",
		    (unsigned long long)w->depth_count, (unsigned long long)w->depth_sum,
		    (unsigned long long)w->depth_count);
}

enum chan_family { CH_PUBLISHED, CH_SUBSCRIBERS, CH_ENQUEUED, CH_DROPPED,
		   CH_REFUSED, CH_BACKLOG };

static const struct {
	const char *name, *type, *help;
} chan_fams[] = {
	[CH_PUBLISHED] = { "fanq_channel_published_total", "counter",
			   "Messages published on the channel." },
	[CH_SUBSCRIBERS] = { "fanq_channel_subscribers", "gauge",
			     "Subscribers of the channel." },
	[CH_ENQUEUED] = { "fanq_channel_enqueued_total", "counter",
			  "Messages of the channel offered to subscriber queues." },
	[CH_DROPPED] = { "fanq_channel_dropped_total", "counter",
			 "Messages of the channel dropped, by reason." },
	[CH_REFUSED] = { "fanq_channel_refused_total", "counter",
			 "Publishes refused: the channel's backlog was full." },
	[CH_BACKLOG] = { "fanq_channel_backlog", "gauge",
			 "Publishes waiting for the channel's fan-out thread." },
};

/* The one value of a family other than CH_DROPPED. */
static uint64_t chan_value(const fanq_channel_stats *st, enum chan_family fam)
{
	switch (fam) {
	case CH_PUBLISHED:
		return st->published;
	case CH_SUBSCRIBERS:
		return st->subscribers;
	case CH_ENQUEUED:
		return st->enqueued;
	case CH_REFUSED:
		return st->refused;
	case CH_BACKLOG:
		return st->backlog;
	case CH_DROPPED:
		break;
	}
	return 0;
}

static void prom_channel(struct prom *p, const struct fanq_channel *ch,
			 enum chan_family fam)
{
	char label[PROM_LABEL_MAX];
	fanq_channel_stats st;

	fanq_channel_stats_get(ch, &st);
	label_escape(ch->name, label);
	if (fam != CH_DROPPED) {
		prom_printf(p, "%s{channel=\"%s\"} %llu\n", chan_fams[fam].name,
			    label, (unsigned long long)chan_value(&st, fam));
		return;
	}
	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		prom_printf(p, "%s{channel=\"%s\",reason=\"%s\"} %llu\n",
			    chan_fams[fam].name, label, fanq_drop_reason_name(r),
			    (unsigned long long)st.dropped[r]);
}

static void prom_channels(struct prom *p, struct fanq_bus *bus)
{
	struct cds_lfht_iter it;
	struct fanq_channel *ch;

	for (unsigned f = CH_PUBLISHED; f <= CH_BACKLOG; f++) {
		prom_family(p, chan_fams[f].name, chan_fams[f].type, chan_fams[f].help);
		urcu_bp_read_lock();
		bus_for_each_channel(bus, &it, ch)
			prom_channel(p, ch, (enum chan_family)f);
		fanq_read_unlock();
	}
}

/* Any thread.  See fanq.h. */
int fanq_bus_prometheus(fanq_bus *bus, fanq_write_fn write, void *arg)
{
	struct stats_walk w;
	struct prom p;

	if (!bus || !write)
		return FANQ_EINVAL;
	p.write = write;
	p.arg = arg;
	p.failed = 0;
	p.len = 0;
	stats_collect(bus, &w);
	prom_totals(&p, &w);
	prom_channels(&p, bus);
	prom_flush(&p);
	return p.failed ? FANQ_ESYS : 0;
}
