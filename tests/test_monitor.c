/*
 * Monitoring: the drop log and its aggregation, time stats on a fake
 * clock, utilisation alerts and their hysteresis, channel and bus totals
 * (also across close), the subscriber walk, top-N, metadata by id, and
 * the Prometheus text.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"

/* A subscriber of one channel on a watched bus. */
struct mon {
	struct tu_watch w;
	fanq_channel *ch;
	fanq_sub *sub;
};

static void mon_init(struct mon *m, const char *channel,
		     enum fanq_policy_kind kind, uint64_t max_msgs,
		     uint64_t max_bytes, uint64_t log_interval_ms)
{
	tu_watch_init(&m->w);
	if (log_interval_ms)
		ck_assert_int_eq(fanq_bus_set_log_interval(m->w.bus,
							   log_interval_ms * TU_MS), 0);
	m->ch = tu_channel_open(m->w.bus, channel);
	m->sub = tu_sub_new(m->w.bus, kind, max_msgs, max_bytes);
	ck_assert_int_eq(fanq_subscribe(m->sub, m->ch), 0);
}

static void mon_close(struct mon *m)
{
	tu_sub_close(m->sub);
	fanq_channel_release(m->ch);
	tu_bus_close(m->w.bus);
}

/* ------------------------------------------------------------ drop log */

START_TEST(test_first_drop_logged_at_once_then_one_summary)
{
	struct tu_watch w;
	fanq_channel *ch;
	fanq_sub *sub;
	char want[128];

	tu_watch_init(&w);
	ck_assert_int_eq(fanq_bus_set_log_interval(w.bus, TU_SEC), 0);
	ch = tu_channel_open(w.bus, "prices");
	sub = tu_sub_new(w.bus, FANQ_DROP_NEW, 2, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_sub_set_meta(sub, "peer", "10.0.0.7:51234"), 0);
	ck_assert_int_eq(fanq_sub_set_meta(sub, "ua", "curl/7.88"), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);

	/* a burst of 1000 drops: one line, at once */
	ck_assert_uint_eq(tu_publish_n(ch, 1002, 8), 1000);
	ck_assert_int_eq(w.log.lines, 1);
	ck_assert_int_eq(w.log.by_event[FANQ_LOG_DROP_FIRST], 1);
	snprintf(want, sizeof(want), "fanq: sub %llu peer=10.0.0.7:51234 ua=\"curl/7.88\" "
		 "channel=prices policy=drop-new first drop (seq 3, full_new), "
		 "queue 2/2 msgs", (unsigned long long)fanq_sub_id(sub));
	ck_assert_msg(strncmp(tu_log_last(&w.log), want, strlen(want)) == 0,
		      "got: %s", tu_log_last(&w.log));
	ck_assert_uint_eq(w.log.rec[0].sub_id, fanq_sub_id(sub));
	ck_assert_int_eq(w.log.rec[0].reason, FANQ_DROP_FULL_NEW);
	ck_assert_uint_eq(w.log.rec[0].seq_first, 3);

	/* no summary before the interval is over (the queue alert: one line) */
	ck_assert_int_eq(tu_tick_at(&w, 1500), 0);
	ck_assert_int_eq(tu_tick_at(&w, 1999), 0);
	ck_assert_int_eq(w.log.by_event[FANQ_LOG_DROP_SUMMARY], 0);
	ck_assert_int_eq(w.log.by_event[FANQ_LOG_QUEUE_HIGH], 1);
	ck_assert_int_eq(w.log.lines, 2);
	/* then one summary of the 999 others */
	tu_tick_at(&w, 2000);
	ck_assert_int_eq(w.log.lines, 3);
	ck_assert_int_eq(w.log.by_event[FANQ_LOG_DROP_SUMMARY], 1);
	ck_assert_msg(strstr(tu_log_last(&w.log),
			     "channel=prices policy=drop-new dropped 999 (seq 4..1002) "
			     "in 1.0s, queue 2/2 msgs 0.0/1.0 MiB"),
		      "got: %s", tu_log_last(&w.log));
	ck_assert_uint_eq(w.log.rec[2].count, 999);
	ck_assert_uint_eq(w.log.rec[2].span_ns, TU_SEC);

	/* a quiet interval: no line, and the next drop is "first" again */
	tu_tick_at(&w, 3000);
	tu_tick_at(&w, 4000);
	ck_assert_int_eq(w.log.lines, 3);
	ck_assert_uint_eq(tu_publish_n(ch, 1, 8), 1);
	ck_assert_int_eq(w.log.lines, 4);
	ck_assert_int_eq(w.log.by_event[FANQ_LOG_DROP_FIRST], 2);
	ck_assert_ptr_nonnull(strstr(tu_log_last(&w.log), "first drop (seq 1003, full_new)"));

	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(w.bus);
}
END_TEST

/* Drops on every tick for 10 intervals: 1 first line + 10 summaries. */
START_TEST(test_drop_lines_at_most_one_per_interval)
{
	struct mon m;
	uint64_t t;

	mon_init(&m, "c", FANQ_DROP_OLDEST, 4, TU_BIG_BYTES, 1000);
	for (t = 1000; t <= 11000; t += 100) {
		tu_publish_n(m.ch, 50, 16);
		tu_tick_at(&m.w, t);
	}
	ck_assert_int_eq(m.w.log.by_event[FANQ_LOG_DROP_FIRST], 1);
	ck_assert_int_eq(m.w.log.by_event[FANQ_LOG_DROP_SUMMARY], 10);
	ck_assert_int_eq(m.w.log.by_event[FANQ_LOG_QUEUE_HIGH], 1);
	ck_assert_int_eq(m.w.log.lines, 12);
	ck_assert_ptr_nonnull(strstr(tu_log_last_of(&m.w.log, FANQ_LOG_DROP_SUMMARY),
				     "policy=drop-oldest dropped"));
	mon_close(&m);
}
END_TEST

START_TEST(test_drop_summary_over_several_channels)
{
	struct mon m;
	fanq_channel *b;

	mon_init(&m, "a", FANQ_DROP_NEW, 1, TU_BIG_BYTES, 0);
	b = tu_channel_open(m.w.bus, "b");
	ck_assert_int_eq(fanq_subscribe(m.sub, b), 0);
	tu_publish_n(m.ch, 3, 8); /* first drop on a, at once */
	tu_publish_n(b, 3, 8);
	tu_publish_n(m.ch, 1, 8);
	ck_assert_int_eq(m.w.log.lines, 1);
	tu_tick_at(&m.w, 12000);
	ck_assert_int_eq(m.w.log.by_event[FANQ_LOG_DROP_SUMMARY], 1);
	ck_assert_msg(strstr(tu_log_last_of(&m.w.log, FANQ_LOG_DROP_SUMMARY),
			     "channels=several policy=drop-new dropped 5 in"),
		      "got: %s", tu_log_last_of(&m.w.log, FANQ_LOG_DROP_SUMMARY));
	ck_assert_ptr_null(m.w.log.rec[1].channel);
	ck_assert_uint_eq(m.w.log.rec[1].seq_first, 0);
	fanq_channel_release(b);
	mon_close(&m);
}
END_TEST

/* Clients choose the User-Agent: it cannot break or forge a line. */
START_TEST(test_log_escapes_client_strings)
{
	struct mon m;
	const char *line;

	mon_init(&m, "c", FANQ_DROP_NEW, 1, TU_BIG_BYTES, 0);
	ck_assert_int_eq(fanq_sub_set_meta(m.sub, "user agent", "evil\n\"fanq: sub 1\"\\"), 0);
	tu_publish_n(m.ch, 2, 8);
	line = tu_log_last(&m.w.log);
	ck_assert_ptr_null(strchr(line, '\n'));
	ck_assert_msg(strstr(line, " user_agent=\"evil\\x0a\\\"fanq: sub 1\\\"\\\\\" "),
		      "got: %s", line);
	mon_close(&m);
}
END_TEST

/* Without a log callback, a line goes to stderr in one write. */
START_TEST(test_default_log_writes_stderr)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "c");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 1, TU_BIG_BYTES);
	int fds[2], saved;
	char buf[1024];
	ssize_t n;

	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	ck_assert_int_eq(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	ck_assert_int_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
	tu_publish_n(ch, 2, 8);
	dup2(saved, STDERR_FILENO);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = 0;
	ck_assert_msg(strncmp(buf, "fanq: sub ", 10) == 0 && buf[n - 1] == '\n' &&
		      strchr(buf, '\n') == buf + n - 1 && strstr(buf, "first drop (seq 2"),
		      "got: %s", buf);
	close(fds[0]);
	close(saved);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

/* -------------------------------------------------------- time stats */

START_TEST(test_since_drain_and_full_for_follow_ticks)
{
	struct mon m;
	fanq_sub_stats st;

	mon_init(&m, "c", FANQ_DROP_NEW, 4, TU_BIG_BYTES, 0);
	st = tu_stats(m.sub);
	ck_assert_uint_eq(st.since_drain_ns, 0); /* no tick yet */
	ck_assert_uint_eq(st.full_for_ns, 0);
	tu_tick_at(&m.w, 1000); /* empty: draining */
	tu_publish_n(m.ch, 6, 8);
	tu_tick_at(&m.w, 1500); /* full since now */
	st = tu_stats(m.sub);
	ck_assert_uint_eq(st.since_drain_ns, 500 * TU_MS);
	ck_assert_uint_eq(st.full_for_ns, 0);
	tu_tick_at(&m.w, 2500);
	st = tu_stats(m.sub);
	ck_assert_uint_eq(st.since_drain_ns, 1500 * TU_MS);
	ck_assert_uint_eq(st.full_for_ns, 1000 * TU_MS);
	/* at a limit, no new offers: still full */
	tu_tick_at(&m.w, 3000);
	ck_assert_uint_eq(tu_stats(m.sub).full_for_ns, 1500 * TU_MS);
	/* one delivery: drained, and not full any more */
	tu_expect_msg(m.sub, "pppppppp");
	tu_tick_at(&m.w, 3200);
	st = tu_stats(m.sub);
	ck_assert_uint_eq(st.since_drain_ns, 0);
	ck_assert_uint_eq(st.full_for_ns, 0);
	/* a touch (a partial write) counts as draining too */
	tu_tick_at(&m.w, 3700);
	ck_assert_uint_eq(tu_stats(m.sub).since_drain_ns, 500 * TU_MS);
	m.w.clock.ns = 3800 * TU_MS;
	ck_assert_int_eq(fanq_sub_touch(m.sub), 0);
	tu_tick_at(&m.w, 4000);
	ck_assert_uint_eq(tu_stats(m.sub).since_drain_ns, 0);
	tu_drain(m.sub);
	mon_close(&m);
}
END_TEST

/* -------------------------------------------------------------- alerts */

START_TEST(test_alert_hysteresis_80_50)
{
	struct mon m;

	mon_init(&m, "c", FANQ_DROP_NEW, 10, TU_BIG_BYTES, 0);
	tu_publish_n(m.ch, 7, 8);
	tu_tick_at(&m.w, 1000);
	ck_assert_int_eq(m.w.events.n, 0); /* 70% */
	tu_publish_n(m.ch, 1, 8);
	tu_tick_at(&m.w, 1100); /* 80%: reached */
	ck_assert_int_eq(m.w.events.by_kind[FANQ_EVENT_QUEUE_HIGH], 1);
	ck_assert_uint_eq(m.w.events.last.fill_pct, 80);
	ck_assert_uint_eq(m.w.events.last.sub_id, fanq_sub_id(m.sub));
	ck_assert_int_eq(tu_stats(m.sub).over_high, 1);
	ck_assert_int_eq(m.w.log.by_event[FANQ_LOG_QUEUE_HIGH], 1);
	ck_assert_ptr_nonnull(strstr(tu_log_last(&m.w.log), "queue at 80%, over the 80% alert level"));
	tu_publish_n(m.ch, 2, 8); /* 100%, then back down to 50%: no event */
	tu_tick_at(&m.w, 1200);
	for (int i = 0; i < 5; i++)
		tu_expect_msg(m.sub, "pppppppp");
	tu_tick_at(&m.w, 1300);
	tu_tick_at(&m.w, 1400);
	ck_assert_int_eq(m.w.events.n, 1);
	tu_expect_msg(m.sub, "pppppppp"); /* 40%: under 50 */
	tu_tick_at(&m.w, 1500);
	ck_assert_int_eq(m.w.events.by_kind[FANQ_EVENT_QUEUE_LOW], 1);
	ck_assert_uint_eq(m.w.events.last.fill_pct, 40);
	ck_assert_int_eq(tu_stats(m.sub).over_high, 0);
	ck_assert_int_eq(m.w.log.by_event[FANQ_LOG_QUEUE_LOW], 1);
	tu_tick_at(&m.w, 1600);
	ck_assert_int_eq(m.w.events.n, 2);
	tu_publish_n(m.ch, 4, 8); /* 80% again */
	tu_tick_at(&m.w, 1700);
	ck_assert_int_eq(m.w.events.by_kind[FANQ_EVENT_QUEUE_HIGH], 2);
	ck_assert_int_eq(m.w.events.n, 3);
	tu_drain(m.sub);
	mon_close(&m);
}
END_TEST

START_TEST(test_alert_on_bytes_with_custom_levels)
{
	struct tu_watch w;
	fanq_channel *ch;
	fanq_sub *sub;

	tu_watch_init(&w);
	ck_assert_int_eq(fanq_bus_set_alert_levels(w.bus, 60, 20), 0);
	ch = tu_channel_open(w.bus, "c");
	sub = tu_sub_new(w.bus, FANQ_DROP_NEW, 1000, 1000);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish_n(ch, 2, 200);
	tu_tick_at(&w, 1000);
	ck_assert_int_eq(w.events.n, 0); /* 40% of the bytes */
	tu_publish_n(ch, 1, 200);
	tu_tick_at(&w, 1100);
	ck_assert_int_eq(w.events.by_kind[FANQ_EVENT_QUEUE_HIGH], 1);
	ck_assert_uint_eq(w.events.last.fill_pct, 60);
	fanq_msg_release(tu_pop_msg(sub).msg);
	tu_tick_at(&w, 1200);
	ck_assert_int_eq(w.events.n, 1); /* 40%: over 20 */
	tu_drain(sub);
	tu_tick_at(&w, 1300);
	ck_assert_int_eq(w.events.by_kind[FANQ_EVENT_QUEUE_LOW], 1);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(w.bus);
}
END_TEST

/* ------------------------------------------------------------- totals */

START_TEST(test_channel_stats_count_its_messages)
{
	struct mon m;
	fanq_sub *two;
	fanq_channel_stats cs;

	mon_init(&m, "c", FANQ_DROP_NEW, 2, TU_BIG_BYTES, 0);
	two = tu_sub_new(m.w.bus, FANQ_DROP_OLDEST, 1, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_subscribe(two, m.ch), 0);
	tu_publish_n(m.ch, 3, 8);
	ck_assert_int_eq(fanq_channel_stats_get(m.ch, &cs), 0);
	ck_assert_uint_eq(cs.published, 3);
	ck_assert_uint_eq(cs.subscribers, 2);
	ck_assert_uint_eq(cs.enqueued, 6);
	ck_assert_uint_eq(cs.dropped[FANQ_DROP_FULL_NEW], 1);
	ck_assert_uint_eq(cs.dropped[FANQ_DROP_EVICTED_OLDEST], 2);
	ck_assert_uint_eq(cs.dropped[FANQ_DROP_UNSUBSCRIBED], 0);
	tu_sub_close(two); /* its backlog (1) is released when it is freed */
	ck_assert_int_eq(fanq_unsubscribe(m.sub, m.ch), 0);
	fanq_channel_stats_get(m.ch, &cs);
	ck_assert_uint_eq(cs.subscribers, 0);
	ck_assert_uint_eq(cs.enqueued, 6);
	ck_assert_uint_eq(tu_drain(m.sub), 2);
	mon_close(&m);
}
END_TEST

static void assert_bus_balanced(const fanq_bus_stats *t)
{
	uint64_t dropped = 0;

	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		dropped += t->dropped[r];
	ck_assert_msg(t->enqueued == t->delivered + dropped + t->queued_msgs,
		      "enqueued %llu != delivered %llu + dropped %llu + queued %llu",
		      (unsigned long long)t->enqueued, (unsigned long long)t->delivered,
		      (unsigned long long)dropped, (unsigned long long)t->queued_msgs);
}

/* Every counter of b is at least a's. */
static void assert_not_backwards(const fanq_bus_stats *a, const fanq_bus_stats *b)
{
	ck_assert_uint_ge(b->enqueued, a->enqueued);
	ck_assert_uint_ge(b->delivered, a->delivered);
	for (int r = 0; r < FANQ_DROP_REASONS; r++)
		ck_assert_uint_ge(b->dropped[r], a->dropped[r]);
}

/* A closed subscriber's counts move into the totals when it is freed
 * (a grace period later): at no point do the totals go backwards. */
START_TEST(test_bus_totals_never_go_backwards_on_close)
{
	struct mon m;
	fanq_sub *two;
	fanq_bus_stats before, now, prev;
	int polls = 0;

	mon_init(&m, "c", FANQ_DROP_NEW, 5, TU_BIG_BYTES, 0);
	two = tu_sub_new(m.w.bus, FANQ_DROP_NEW, 5, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_subscribe(two, m.ch), 0);
	tu_publish_n(m.ch, 8, 8);
	tu_expect_msg(two, "pppppppp");
	ck_assert_int_eq(fanq_bus_stats_get(m.w.bus, &before), 0);
	ck_assert_uint_eq(before.subscribers, 2);
	ck_assert_uint_eq(before.channels, 1);
	ck_assert_uint_eq(before.enqueued, 16);
	ck_assert_uint_eq(before.delivered, 1);
	ck_assert_uint_eq(before.dropped[FANQ_DROP_FULL_NEW], 6);
	ck_assert_uint_eq(before.queued_msgs, 9);
	ck_assert_uint_eq(before.queued_msgs_max, 5);
	assert_bus_balanced(&before);
	tu_sub_close(two);
	prev = before;
	do {
		ck_assert_int_eq(fanq_bus_stats_get(m.w.bus, &now), 0);
		ck_assert_uint_eq(now.subscribers, 1);
		assert_not_backwards(&prev, &now);
		assert_bus_balanced(&now);
		prev = now;
		if (now.dropped[FANQ_DROP_UNSUBSCRIBED] == 4)
			break;
		usleep(1000);
	} while (++polls < 5000);
	ck_assert_uint_eq(now.dropped[FANQ_DROP_UNSUBSCRIBED], 4);
	ck_assert_uint_eq(now.enqueued, 16);
	ck_assert_uint_eq(now.delivered, 1);
	ck_assert_uint_eq(now.queued_msgs, 5);
	ck_assert_uint_eq(tu_drain(m.sub), 5);
	fanq_bus_stats_get(m.w.bus, &now);
	ck_assert_uint_eq(now.delivered, 6);
	assert_bus_balanced(&now);
	mon_close(&m);
}
END_TEST

/* ------------------------------------------------- walk, top-N, meta */

static int count_visit(void *arg, const fanq_sub *sub, const fanq_sub_stats *st)
{
	int *n = arg;

	ck_assert_uint_eq(st->id, fanq_sub_id(sub));
	ck_assert_str_eq(fanq_sub_meta(sub, "k"), "v");
	return ++*n == 100; /* stop at 100 */
}

START_TEST(test_foreach_visits_open_subscribers)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *subs[3];
	int n = 0;

	for (int i = 0; i < 3; i++) {
		subs[i] = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
		ck_assert_int_eq(fanq_sub_set_meta(subs[i], "k", "v"), 0);
	}
	tu_sub_close(subs[1]);
	ck_assert_int_eq(fanq_bus_foreach_sub(bus, count_visit, &n), 2);
	ck_assert_int_eq(n, 2);
	n = 99; /* the callback stops the walk */
	ck_assert_int_eq(fanq_bus_foreach_sub(bus, count_visit, &n), 1);
	tu_sub_close(subs[0]);
	tu_sub_close(subs[2]);
	tu_bus_close(bus);
}
END_TEST

#define TOP_SUBS 20

START_TEST(test_top_by_depth_bytes_and_drops)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch[TOP_SUBS];
	fanq_sub *sub[TOP_SUBS];
	fanq_sub_stats top[TOP_SUBS + 5];
	char name[16];
	int i;

	/* sub i holds i messages; subs 10.. drop (limit 10) i - 10 of them */
	for (i = 0; i < TOP_SUBS; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		ch[i] = tu_channel_open(bus, name);
		sub[i] = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
		ck_assert_int_eq(fanq_subscribe(sub[i], ch[i]), 0);
		tu_publish_n(ch[i], (unsigned)i, 8);
	}
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DEPTH, top, 5), 5);
	/* 10 subs tie at depth 10: the oldest come first */
	for (i = 0; i < 5; i++) {
		ck_assert_uint_eq(top[i].id, fanq_sub_id(sub[10 + i]));
		ck_assert_uint_eq(top[i].queued_msgs, 10);
	}
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_BYTES, top, 12), 12);
	ck_assert_uint_eq(top[10].queued_bytes, 9 * 8);
	ck_assert_uint_eq(top[11].queued_bytes, 8 * 8);
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DROPS, top, 3), 3);
	ck_assert_uint_eq(top[0].id, fanq_sub_id(sub[19]));
	ck_assert_uint_eq(top[0].dropped[FANQ_DROP_FULL_NEW], 9);
	ck_assert_uint_eq(top[1].id, fanq_sub_id(sub[18]));
	ck_assert_uint_eq(top[2].id, fanq_sub_id(sub[17]));
	/* more room than subscribers: all of them, sorted */
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DEPTH, top, TOP_SUBS + 5), TOP_SUBS);
	for (i = 1; i < TOP_SUBS; i++)
		ck_assert_uint_ge(top[i - 1].queued_msgs, top[i].queued_msgs);
	ck_assert_uint_eq(top[TOP_SUBS - 1].id, fanq_sub_id(sub[0]));
	/* a closed one is gone from the ranking */
	tu_sub_close(sub[19]);
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DROPS, top, 1), 1);
	ck_assert_uint_eq(top[0].id, fanq_sub_id(sub[18]));
	for (i = 0; i < TOP_SUBS; i++) {
		if (i != 19)
			tu_sub_close(sub[i]);
		fanq_channel_release(ch[i]);
	}
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_sub_meta_by_id)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	uint64_t id = fanq_sub_id(sub);
	char buf[8];

	ck_assert_int_eq(fanq_sub_set_meta(sub, "peer", "10.0.0.7:51234"), 0);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, id, "peer", buf, sizeof(buf)), 14);
	ck_assert_str_eq(buf, "10.0.0."); /* truncated, terminated */
	ck_assert_int_eq(fanq_sub_set_meta(sub, "peer", "a:1"), 0);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, id, "peer", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "a:1");
	ck_assert_int_eq(fanq_bus_sub_meta(bus, id, "nope", buf, sizeof(buf)), FANQ_ENOENT);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, id + 1000, "peer", buf, sizeof(buf)),
			 FANQ_ENOENT);
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, id, "peer", buf, sizeof(buf)), FANQ_ENOENT);
	tu_bus_close(bus);
}
END_TEST

/* ----------------------------------------------------------- Prometheus */

struct text {
	char *buf;
	size_t len;
	int calls, fail_at;
};

static int text_write(void *arg, const char *data, size_t len)
{
	struct text *t = arg;

	if (++t->calls == t->fail_at)
		return -1;
	t->buf = realloc(t->buf, t->len + len + 1);
	ck_assert_ptr_nonnull(t->buf);
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	t->buf[t->len] = 0;
	return 0;
}

static bool metric_name_ok(const char *p, const char *end)
{
	if (p == end || !(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
		return false;
	for (; p < end; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == ':'))
			return false;
	return true;
}

/* `name{k="v",...} value`: label values with \, " and 
 escapes. */
static bool sample_ok(const char *line)
{
	const char *p = line, *name_end;

	while (*p && *p != '{' && *p != ' ')
		p++;
	name_end = p;
	if (!metric_name_ok(line, name_end))
		return false;
	if (*p == '{') {
		for (p++; *p != '}';) {
			const char *k = p;

			while (*p && *p != '=')
				p++;
			if (!metric_name_ok(k, p) || p[1] != '"')
				return false;
			for (p += 2; *p && *p != '"'; p++)
				if (*p == '\\' && !strchr("\\\"n", *++p))
					return false;
			if (*p != '"')
				return false;
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return false;
		}
		p++;
	}
	if (*p++ != ' ' || !isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	return *p == 0;
}

static bool comment_ok(const char *line)
{
	if (strncmp(line, "# HELP ", 7) == 0)
		return true;
	if (strncmp(line, "# TYPE ", 7) != 0)
		return false;
	line = strchr(line + 7, ' ');
	return line && (!strcmp(line, " counter") || !strcmp(line, " gauge") ||
			!strcmp(line, " histogram"));
}

/* Every line is a comment or a sample; returns the number of samples. */
static int check_exposition(char *text)
{
	int samples = 0;

	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#') {
			ck_assert_msg(comment_ok(line), "bad comment: %s", line);
			continue;
		}
		ck_assert_msg(sample_ok(line), "bad sample: %s", line);
		samples++;
	}
	return samples;
}

static void expect_sample(const char *text, const char *sample)
{
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", sample);
	ck_assert_msg(strstr(text, want), "missing: %s", sample);
}

START_TEST(test_prometheus_text_parses)
{
	struct mon m;
	fanq_channel *odd;
	fanq_sub *deep;
	struct text t = { NULL, 0, 0, 0 };

	mon_init(&m, "c", FANQ_DROP_NEW, 2, TU_BIG_BYTES, 0);
	odd = tu_channel_open(m.w.bus, "we\"ird\\na\nme");
	deep = tu_sub_new(m.w.bus, FANQ_DROP_OLDEST, 200, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_subscribe(deep, odd), 0);
	tu_publish_n(m.ch, 5, 8);
	tu_publish_n(odd, 150, 8);
	ck_assert_int_eq(fanq_bus_prometheus(m.w.bus, text_write, &t), 0);
	ck_assert_ptr_nonnull(t.buf);
	expect_sample(t.buf, "fanq_subscribers 2");
	expect_sample(t.buf, "fanq_channels 2");
	expect_sample(t.buf, "fanq_enqueued_total 155");
	expect_sample(t.buf, "fanq_delivered_total 0");
	expect_sample(t.buf, "fanq_dropped_total{reason=\"full_new\"} 3");
	expect_sample(t.buf, "fanq_evictions_total{rule=\"full\"} 0");
	expect_sample(t.buf, "fanq_queued_messages 152");
	expect_sample(t.buf, "fanq_queued_messages_max 150");
	expect_sample(t.buf, "fanq_subscribers_shared_log 0"); /* none drained */
	expect_sample(t.buf, "fanq_queue_depth_messages_bucket{le=\"1\"} 0");
	expect_sample(t.buf, "fanq_queue_depth_messages_bucket{le=\"10\"} 1");
	expect_sample(t.buf, "fanq_queue_depth_messages_bucket{le=\"1000\"} 2");
	expect_sample(t.buf, "fanq_queue_depth_messages_bucket{le=\"+Inf\"} 2");
	expect_sample(t.buf, "fanq_queue_depth_messages_sum 152");
	expect_sample(t.buf, "fanq_queue_depth_messages_count 2");
	expect_sample(t.buf, "fanq_channel_published_total{channel=\"c\"} 5");
	expect_sample(t.buf, "fanq_channel_published_total{channel=\"we\\\"ird\\\\na\\nme\"} 150");
	expect_sample(t.buf, "fanq_channel_dropped_total{channel=\"c\",reason=\"full_new\"} 3");
	ck_assert_int_ge(check_exposition(t.buf), 40);
	/* a writer that fails stops the exposition */
	free(t.buf);
	t = (struct text){ NULL, 0, 0, 1 };
	ck_assert_int_eq(fanq_bus_prometheus(m.w.bus, text_write, &t), FANQ_ESYS);
	ck_assert_int_eq(t.calls, 1);
	free(t.buf);
	tu_sub_close(deep);
	fanq_channel_release(odd);
	mon_close(&m);
}
END_TEST

/* -------------------------------------------------------------- tick */

static void tick_from_log(void *arg, const fanq_log_record *r)
{
	struct tu_watch *w = arg;

	(void)r;
	ck_assert_int_eq(fanq_bus_tick(w->bus), FANQ_EBUSY);
	w->log.lines++;
}

/* One ticker at a time: a second one (here: from a callback) is refused. */
START_TEST(test_tick_one_thread_at_a_time)
{
	struct tu_watch w;
	fanq_channel *ch;
	fanq_sub *sub;

	memset(&w, 0, sizeof(w));
	w.bus = tu_bus_new();
	ck_assert_int_eq(fanq_bus_set_log(w.bus, tick_from_log, &w), 0);
	ch = tu_channel_open(w.bus, "c");
	sub = tu_sub_new(w.bus, FANQ_DROP_NEW, 1, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish_n(ch, 1, 8); /* 100% full: the tick logs an alert */
	ck_assert_int_eq(fanq_bus_tick(w.bus), 0);
	ck_assert_int_eq(w.log.lines, 1);
	ck_assert_int_eq(fanq_bus_tick(w.bus), 0);
	tu_drain(sub);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(w.bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("monitor");
	TCase *tc = tu_tcase(s, "log");

	tcase_add_test(tc, test_first_drop_logged_at_once_then_one_summary);
	tcase_add_test(tc, test_drop_lines_at_most_one_per_interval);
	tcase_add_test(tc, test_drop_summary_over_several_channels);
	tcase_add_test(tc, test_log_escapes_client_strings);
	tcase_add_test(tc, test_default_log_writes_stderr);
	tc = tu_tcase(s, "time");
	tcase_add_test(tc, test_since_drain_and_full_for_follow_ticks);
	tcase_add_test(tc, test_tick_one_thread_at_a_time);
	tc = tu_tcase(s, "alerts");
	tcase_add_test(tc, test_alert_hysteresis_80_50);
	tcase_add_test(tc, test_alert_on_bytes_with_custom_levels);
	tc = tu_tcase(s, "totals");
	tcase_add_test(tc, test_channel_stats_count_its_messages);
	tcase_add_test(tc, test_bus_totals_never_go_backwards_on_close);
	tcase_add_test(tc, test_foreach_visits_open_subscribers);
	tcase_add_test(tc, test_top_by_depth_bytes_and_drops);
	tcase_add_test(tc, test_sub_meta_by_id);
	tcase_add_test(tc, test_prometheus_text_parses);
	return s;
}
