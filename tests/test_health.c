/*
 * Health: every eviction rule at its thresholds on a fake clock, what an
 * eviction does (nothing more offered, backlog released and counted, the
 * group told, pop/drain closed, logged once, reported once), group rules,
 * and heartbeats.  Ticks are placed on the threshold and one step before.
 */
#include "test_util.h"

/* A subscriber of one channel on a watched bus, with rules r. */
struct hw {
	struct tu_watch w;
	fanq_channel *ch;
	fanq_sub *sub;
};

static void hw_init(struct hw *h, enum fanq_policy_kind kind, uint64_t max_msgs,
		    uint64_t max_bytes, const fanq_health_rules *r)
{
	tu_watch_init(&h->w);
	h->ch = tu_channel_open(h->w.bus, "c");
	h->sub = tu_sub_new(h->w.bus, kind, max_msgs, max_bytes);
	ck_assert_int_eq(fanq_sub_set_meta(h->sub, "peer", "10.0.0.9:4000"), 0);
	if (r)
		ck_assert_int_eq(fanq_sub_set_health(h->sub, r), 0);
	ck_assert_int_eq(fanq_subscribe(h->sub, h->ch), 0);
}

static void hw_close(struct hw *h)
{
	tu_sub_close(h->sub);
	fanq_channel_release(h->ch);
	tu_bus_close(h->w.bus);
}

static enum fanq_evict_reason evicted(const fanq_sub *sub)
{
	enum fanq_evict_reason why = FANQ_EVICT_NONE;
	int rc = fanq_sub_evicted(sub, &why);

	ck_assert_int_ge(rc, 0);
	ck_assert_int_eq(rc, why != FANQ_EVICT_NONE);
	return why;
}

/* The eviction was logged and reported once, for this rule. */
static void expect_evicted(struct hw *h, enum fanq_evict_reason why,
			   const char *detail)
{
	fanq_bus_stats bs;
	char want[128];

	ck_assert_int_eq(evicted(h->sub), why);
	ck_assert_int_eq(tu_stats(h->sub).evicted, why);
	ck_assert_int_eq(h->w.events.by_kind[FANQ_EVENT_EVICTED], 1);
	ck_assert_int_eq(h->w.events.last.evicted, why);
	ck_assert_int_eq(h->w.log.by_event[FANQ_LOG_EVICTED], 1);
	snprintf(want, sizeof(want), "peer=10.0.0.9:4000 policy=%s evicted (%s): %s",
		 tu_stats(h->sub).policy == FANQ_DROP_OLDEST ? "drop-oldest" : "drop-new",
		 fanq_evict_reason_name(why), detail);
	ck_assert_msg(strstr(tu_log_last(&h->w.log), want), "want \"%s\" in: %s",
		      want, tu_log_last(&h->w.log));
	ck_assert_int_eq(fanq_bus_stats_get(h->w.bus, &bs), 0);
	ck_assert_uint_eq(bs.evicted[why], 1);
}

START_TEST(test_no_rules_never_evict)
{
	struct hw h;

	hw_init(&h, FANQ_DROP_NEW, 2, TU_BIG_BYTES, NULL);
	tu_publish_n(h.ch, 100, 8);
	for (uint64_t t = 1000; t < 3600 * 1000; t += 60 * 1000)
		ck_assert_int_eq(tu_tick_at(&h.w, t), 0);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_NONE);
	ck_assert_uint_eq(tu_drain(h.sub), 2);
	hw_close(&h);
}
END_TEST

START_TEST(test_full_rule_at_threshold)
{
	fanq_health_rules r = { .full_ns = 1000 * TU_MS };
	struct hw h;

	hw_init(&h, FANQ_DROP_NEW, 4, TU_BIG_BYTES, &r);
	tu_tick_at(&h.w, 1000);
	tu_publish_n(h.ch, 6, 8);
	ck_assert_int_eq(tu_tick_at(&h.w, 2000), 0); /* full run starts */
	/* a delivery breaks the run; refilling starts a new one */
	ck_assert_int_eq(tu_tick_at(&h.w, 2500), 0);
	tu_expect_msg(h.sub, "pppppppp");
	ck_assert_int_eq(tu_tick_at(&h.w, 2600), 0);
	tu_publish_n(h.ch, 2, 8);
	ck_assert_int_eq(tu_tick_at(&h.w, 2700), 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 3699), 0);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_NONE);
	ck_assert_int_eq(h.w.events.by_kind[FANQ_EVENT_EVICTED], 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 3700), 1);
	expect_evicted(&h, FANQ_EVICT_FULL, "queue full for 1.0s, queue 4/4 msgs");
	ck_assert_int_eq(tu_tick_at(&h.w, 3800), 0); /* reported once */
	ck_assert_int_eq(h.w.events.by_kind[FANQ_EVENT_EVICTED], 1);
	hw_close(&h);
}
END_TEST

START_TEST(test_drops_rule_more_than_d_within_w)
{
	fanq_health_rules r = { .drops = 10, .drops_window_ns = 1000 * TU_MS };
	struct hw h;

	hw_init(&h, FANQ_DROP_NEW, 2, TU_BIG_BYTES, &r);
	tu_publish_n(h.ch, 12, 8); /* 10 drops: not more than 10 */
	ck_assert_int_eq(tu_tick_at(&h.w, 1100), 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 1200), 0);
	tu_publish_n(h.ch, 1, 8); /* the 11th within the window */
	ck_assert_int_eq(tu_tick_at(&h.w, 1300), 1);
	expect_evicted(&h, FANQ_EVICT_DROPS, "11 drops within 1.0s, queue 2/2 msgs");
	hw_close(&h);
}
END_TEST

/* The same 11 drops spread over more than the window: no eviction. */
START_TEST(test_drops_rule_window_slides)
{
	fanq_health_rules r = { .drops = 10, .drops_window_ns = 1000 * TU_MS };
	struct hw h;
	uint64_t t;

	hw_init(&h, FANQ_DROP_NEW, 2, TU_BIG_BYTES, &r);
	tu_publish_n(h.ch, 8, 8); /* 6 drops at 1.0 s */
	for (t = 1100; t <= 2200; t += 100)
		ck_assert_int_eq(tu_tick_at(&h.w, t), 0);
	tu_publish_n(h.ch, 5, 8); /* 5 more at 2.2 s */
	for (t = 2300; t <= 3000; t += 100)
		ck_assert_int_eq(tu_tick_at(&h.w, t), 0);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_NONE);
	tu_publish_n(h.ch, 6, 8); /* 11 within the last second */
	ck_assert_int_eq(tu_tick_at(&h.w, 3100), 1);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_DROPS);
	hw_close(&h);
}
END_TEST

START_TEST(test_idle_rule_counts_from_last_drain)
{
	fanq_health_rules r = { .idle_ns = 1000 * TU_MS };
	struct hw h;

	hw_init(&h, FANQ_DROP_NEW, 10, TU_BIG_BYTES, &r);
	/* nothing queued: idle forever is fine */
	ck_assert_int_eq(tu_tick_at(&h.w, 1000), 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 60000), 0);
	tu_publish_n(h.ch, 1, 8);
	ck_assert_int_eq(tu_tick_at(&h.w, 60500), 0);
	/* the host wrote part of it: that is draining */
	h.w.clock.ns = 60700 * TU_MS;
	ck_assert_int_eq(fanq_sub_touch(h.sub), 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 61000), 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 61999), 0);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_NONE);
	ck_assert_int_eq(tu_tick_at(&h.w, 62000), 1);
	expect_evicted(&h, FANQ_EVICT_IDLE, "nothing drained for 1.0s, queue 1/10 msgs");
	hw_close(&h);
}
END_TEST

START_TEST(test_hard_limit_evicts_at_publish)
{
	fanq_health_rules r = { .hard_bytes = 100 };
	struct hw h;
	fanq_entry e;
	fanq_sub_stats st;
	fanq_channel_stats cs;

	hw_init(&h, FANQ_DROP_NEW, 100, 1000, &r);
	tu_publish_n(h.ch, 2, 50); /* 100 bytes: not over */
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_NONE);
	tu_publish_n(h.ch, 1, 50);
	/* at once, before any tick */
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_HARD_BYTES);
	ck_assert_int_eq(fanq_sub_pop(h.sub, &e), FANQ_ECLOSED);
	st = tu_assert_balanced(h.sub);
	ck_assert_uint_eq(st.queued_msgs, 0);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_UNSUBSCRIBED], 3);
	/* nothing more is offered, or counted */
	ck_assert_uint_eq(tu_publish(h.ch, "x", 0).accepted, 0);
	ck_assert_uint_eq(tu_stats(h.sub).enqueued, 3);
	fanq_channel_stats_get(h.ch, &cs);
	ck_assert_uint_eq(cs.enqueued, 3);
	ck_assert_uint_eq(cs.dropped[FANQ_DROP_UNSUBSCRIBED], 3);
	/* it cannot join anything again (it would get nothing) */
	ck_assert_int_eq(fanq_unsubscribe(h.sub, h.ch), 0);
	ck_assert_int_eq(fanq_subscribe(h.sub, h.ch), FANQ_ECLOSED);
	ck_assert_int_eq(fanq_subscribe_after(h.sub, h.ch, 0, NULL), FANQ_ECLOSED);
	/* the tick logs and reports it, once */
	ck_assert_int_eq(h.w.log.by_event[FANQ_LOG_EVICTED], 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 1000), 1);
	expect_evicted(&h, FANQ_EVICT_HARD_BYTES,
		       "queued bytes passed the hard limit 100, queue 0/100 msgs");
	ck_assert_int_eq(tu_tick_at(&h.w, 2000), 0);
	hw_close(&h);
}
END_TEST

START_TEST(test_soft_limit_for_a_duration)
{
	fanq_health_rules r = { .soft_bytes = 100, .soft_ns = 1000 * TU_MS,
				.hard_bytes = 1000 };
	struct hw h;

	hw_init(&h, FANQ_DROP_NEW, 100, 10000, &r);
	tu_publish_n(h.ch, 3, 50); /* 150 > 100 */
	ck_assert_int_eq(tu_tick_at(&h.w, 1000), 0);
	tu_expect_msg(h.sub, "pppppppppppppppppppppppppppppppppppppppppppppppppp");
	ck_assert_int_eq(tu_tick_at(&h.w, 1500), 0); /* 100: not over, reset */
	tu_publish_n(h.ch, 1, 50);
	ck_assert_int_eq(tu_tick_at(&h.w, 1600), 0);
	ck_assert_int_eq(tu_tick_at(&h.w, 2599), 0);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_NONE);
	ck_assert_int_eq(tu_tick_at(&h.w, 2600), 1);
	expect_evicted(&h, FANQ_EVICT_SOFT_BYTES,
		       "queued bytes over the soft limit 100 for 1.0s, queue 3/100 msgs");
	hw_close(&h);
}
END_TEST

/* soft_ns 0: the first tick over the soft limit evicts. */
START_TEST(test_soft_limit_without_duration)
{
	fanq_health_rules r = { .soft_bytes = 100 };
	struct hw h;

	hw_init(&h, FANQ_DROP_NEW, 100, 10000, &r);
	tu_publish_n(h.ch, 2, 50);
	ck_assert_int_eq(tu_tick_at(&h.w, 1000), 0);
	tu_publish_n(h.ch, 1, 50);
	ck_assert_int_eq(tu_tick_at(&h.w, 1001), 1);
	ck_assert_int_eq(evicted(h.sub), FANQ_EVICT_SOFT_BYTES);
	hw_close(&h);
}
END_TEST

/* The host hears of it through its group, and the drain path closes. */
START_TEST(test_eviction_wakes_group_and_closes_drain)
{
	fanq_health_rules r = { .full_ns = 500 * TU_MS };
	struct tu_watch w;
	fanq_channel *ch;
	fanq_group *g;
	fanq_sub *sub, *ready;
	struct iovec iov[8];
	fanq_sub_stats st;

	tu_watch_init(&w);
	ch = tu_channel_open(w.bus, "c");
	ck_assert_int_eq(fanq_group_new(w.bus, &g), 0);
	ck_assert_int_eq(fanq_group_set_health(g, &r), 0);
	sub = tu_sub_new(w.bus, FANQ_DROP_OLDEST, 4, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_group_attach(g, sub), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish_n(ch, 2, 8);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), 0);
	/* two entries taken for a write that never completes */
	ck_assert_int_eq(fanq_sub_drain_iov(sub, iov, 8, 1024), 2);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), FANQ_EAGAIN);
	tu_publish_n(ch, 10, 8);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), 0);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), FANQ_EAGAIN);
	ck_assert_int_eq(tu_tick_at(&w, 1000), 0); /* a first tick sees progress */
	ck_assert_int_eq(tu_tick_at(&w, 1500), 0); /* full from here */
	ck_assert_int_eq(tu_tick_at(&w, 1999), 0);
	ck_assert_int_eq(tu_tick_at(&w, 2000), 1); /* group rules apply */
	ck_assert_int_eq(fanq_sub_evicted(sub, NULL), 1);
	st = tu_stats(sub);
	ck_assert_uint_eq(st.queued_msgs, 2);  /* the lanes are released... */
	ck_assert_uint_eq(st.dropped[FANQ_DROP_UNSUBSCRIBED], 4);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), 0); /* ...the group told */
	ck_assert_ptr_eq(ready, sub);
	ck_assert_int_eq(fanq_sub_drain_iov(sub, iov, 8, 1024), FANQ_ECLOSED);
	ck_assert_int_eq(fanq_sub_drain_commit(sub, 0), FANQ_ECLOSED);
	st = tu_assert_balanced(sub); /* ...and what the drain held */
	ck_assert_uint_eq(st.queued_msgs, 0);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_UNSUBSCRIBED], 6);
	ck_assert_int_eq(fanq_sub_heartbeat_due(sub, 1), FANQ_ECLOSED);
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	tu_bus_close(w.bus);
}
END_TEST

/* A subscriber's own rules win over the group's, and can be changed. */
START_TEST(test_own_rules_over_group_rules)
{
	fanq_health_rules group_rules = { .full_ns = 100 * TU_MS };
	fanq_health_rules own = { .full_ns = 1000 * TU_MS };
	fanq_health_rules off = { 0 };
	struct tu_watch w;
	fanq_channel *ch;
	fanq_group *g;
	fanq_sub *sub;

	tu_watch_init(&w);
	ch = tu_channel_open(w.bus, "c");
	ck_assert_int_eq(fanq_group_new(w.bus, &g), 0);
	ck_assert_int_eq(fanq_group_set_health(g, &group_rules), 0);
	sub = tu_sub_new(w.bus, FANQ_DROP_NEW, 1, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_sub_set_health(sub, &own), 0);
	ck_assert_int_eq(fanq_group_attach(g, sub), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_publish_n(ch, 2, 8);
	ck_assert_int_eq(tu_tick_at(&w, 1000), 0);
	ck_assert_int_eq(tu_tick_at(&w, 1500), 0); /* full from here */
	ck_assert_int_eq(tu_tick_at(&w, 1600), 0); /* not the group's 100 ms */
	ck_assert_int_eq(tu_tick_at(&w, 2499), 0);
	ck_assert_int_eq(fanq_sub_set_health(sub, &off), 0);
	ck_assert_int_eq(tu_tick_at(&w, 5000), 0);
	ck_assert_int_eq(fanq_sub_evicted(sub, NULL), 0);
	/* rules back on: the full run (since 1.5 s) is the subscriber's own */
	ck_assert_int_eq(fanq_sub_set_health(sub, &own), 0);
	ck_assert_int_eq(tu_tick_at(&w, 5001), 1);
	ck_assert_ptr_nonnull(strstr(tu_log_last(&w.log), "queue full for 3.5s"));
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	tu_bus_close(w.bus);
}
END_TEST

START_TEST(test_heartbeat_when_idle_paused_when_backlogged)
{
	struct hw h;
	const uint64_t second = TU_SEC;

	hw_init(&h, FANQ_DROP_NEW, 10, TU_BIG_BYTES, NULL); /* created at 1 s */
	h.w.clock.ns = 1999 * TU_MS;
	ck_assert_int_eq(fanq_sub_heartbeat_due(h.sub, second), 0);
	h.w.clock.ns = 2000 * TU_MS;
	ck_assert_int_eq(fanq_sub_heartbeat_due(h.sub, second), 1);
	ck_assert_int_eq(fanq_sub_heartbeat_due(h.sub, second), 0); /* restarted */
	tu_publish_n(h.ch, 1, 8);
	h.w.clock.ns = 9000 * TU_MS;
	ck_assert_int_eq(fanq_sub_heartbeat_due(h.sub, second), 0); /* backlogged */
	tu_expect_msg(h.sub, "pppppppp");
	ck_assert_int_eq(fanq_sub_touch(h.sub), 0); /* written at 9 s */
	h.w.clock.ns = 9999 * TU_MS;
	ck_assert_int_eq(fanq_sub_heartbeat_due(h.sub, second), 0);
	h.w.clock.ns = 10000 * TU_MS;
	ck_assert_int_eq(fanq_sub_heartbeat_due(h.sub, second), 1);
	hw_close(&h);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tu_tcase(s, "rules");

	tcase_add_test(tc, test_no_rules_never_evict);
	tcase_add_test(tc, test_full_rule_at_threshold);
	tcase_add_test(tc, test_drops_rule_more_than_d_within_w);
	tcase_add_test(tc, test_drops_rule_window_slides);
	tcase_add_test(tc, test_idle_rule_counts_from_last_drain);
	tcase_add_test(tc, test_hard_limit_evicts_at_publish);
	tcase_add_test(tc, test_soft_limit_for_a_duration);
	tcase_add_test(tc, test_soft_limit_without_duration);
	tc = tu_tcase(s, "eviction");
	tcase_add_test(tc, test_eviction_wakes_group_and_closes_drain);
	tcase_add_test(tc, test_own_rules_over_group_rules);
	tc = tu_tcase(s, "heartbeat");
	tcase_add_test(tc, test_heartbeat_when_idle_paused_when_backlogged);
	return s;
}
