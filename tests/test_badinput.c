/*
 * Bad input: every public function refuses NULL, zero and absurd values
 * with a FANQ_E* code (or a neutral value where it returns no code), and
 * a refused call changes nothing.
 */
#include <stdlib.h>

#include "test_util.h"

START_TEST(test_strerror_distinct_for_every_code)
{
	const int codes[] = {FANQ_EINVAL, FANQ_ENOMEM, FANQ_EMSGSIZE,
			     FANQ_ENOENT, FANQ_EEXIST, FANQ_EAGAIN,
			     FANQ_ECLOSED, FANQ_EBUSY, FANQ_ERANGE,
			     FANQ_ESYS,   -9999};
	const size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		const char *s = fanq_strerror(codes[i]);

		ck_assert_ptr_nonnull(s);
		ck_assert_uint_gt(strlen(s), 0);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(strcmp(s, fanq_strerror(codes[j])) != 0,
				      "codes %d and %d share \"%s\"", codes[i],
				      codes[j], s);
	}
	ck_assert_ptr_nonnull(fanq_strerror(12345));
	ck_assert_ptr_nonnull(fanq_strerror(0));
}
END_TEST

START_TEST(test_bus_and_channel_null)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = NULL;

	ck_assert_int_eq(fanq_bus_new(NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_close(NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_open(NULL, "a", &ch), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_open(bus, NULL, &ch), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_open(bus, "a", NULL), FANQ_EINVAL);
	ck_assert_ptr_null(ch);
	fanq_channel_release(NULL);
	ck_assert_ptr_null(fanq_channel_name(NULL));
	ck_assert_uint_eq(fanq_channel_last_seq(NULL), 0);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_channel_name_length)
{
	fanq_bus *bus = tu_bus_new();
	char name[FANQ_CHANNEL_NAME_MAX + 2];
	fanq_channel *ch = NULL;

	ck_assert_int_eq(fanq_channel_open(bus, "", &ch), FANQ_EINVAL);
	memset(name, 'n', FANQ_CHANNEL_NAME_MAX + 1);
	name[FANQ_CHANNEL_NAME_MAX + 1] = 0;
	ck_assert_int_eq(fanq_channel_open(bus, name, &ch), FANQ_EINVAL);
	ck_assert_ptr_null(ch);
	name[FANQ_CHANNEL_NAME_MAX] = 0;
	ck_assert_int_eq(fanq_channel_open(bus, name, &ch), 0);
	ck_assert_str_eq(fanq_channel_name(ch), name);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_sub_null)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "a");
	fanq_sub *sub = NULL;
	fanq_sub_stats st;
	fanq_entry e;
	const fanq_policy pol = {.levels = 2};

	ck_assert_int_eq(fanq_sub_new(NULL, &sub), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_new(bus, NULL), FANQ_EINVAL);
	ck_assert_ptr_null(sub);
	ck_assert_int_eq(fanq_sub_close(NULL), FANQ_EINVAL);
	ck_assert_uint_eq(fanq_sub_id(NULL), 0);
	ck_assert_int_eq(fanq_sub_set_limits(NULL, 1, 1), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_policy(NULL, FANQ_DROP_NEW), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_custom_policy(NULL, &pol), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_meta(NULL, "k", "v"), FANQ_EINVAL);
	ck_assert_ptr_null(fanq_sub_meta(NULL, "k"));
	ck_assert_int_eq(fanq_subscribe(NULL, ch), FANQ_EINVAL);
	ck_assert_int_eq(fanq_unsubscribe(NULL, ch), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_pop(NULL, &e), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_pop_batch(NULL, &e, 1), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_peek(NULL, &e), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_stats_get(NULL, &st), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_framer(NULL, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_drain_commit(NULL, 0), FANQ_EINVAL);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_sub_null_arguments)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "a");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	struct iovec iov[4];

	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_meta(sub, NULL, "v"), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_meta(sub, "k", NULL), FANQ_EINVAL);
	ck_assert_ptr_null(fanq_sub_meta(sub, NULL));
	ck_assert_int_eq(fanq_subscribe(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_unsubscribe(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_pop(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_pop_batch(sub, NULL, 1), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_peek(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_stats_get(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_drain_iov(NULL, iov, 4, 1024), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_drain_iov(sub, NULL, 4, 1024), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_drain_iov(sub, iov, -1, 1024), FANQ_EINVAL);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_limits_zero_and_absurd)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 7, 700);
	fanq_sub_stats st;

	ck_assert_int_eq(fanq_sub_set_limits(sub, 0, 100), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_limits(sub, 10, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_limits(sub, FANQ_QUEUE_MSGS_MAX + 1ull, 100),
			 FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_limits(sub, UINT64_MAX, 100), FANQ_EINVAL);
	st = tu_stats(sub);
	ck_assert_uint_eq(st.max_msgs, 7);
	ck_assert_uint_eq(st.max_bytes, 700);
	ck_assert_int_eq(fanq_sub_set_limits(sub, FANQ_QUEUE_MSGS_MAX, 1), 0);
	st = tu_stats(sub);
	ck_assert_uint_eq(st.max_msgs, FANQ_QUEUE_MSGS_MAX);
	ck_assert_uint_eq(st.max_bytes, 1);
	tu_sub_close(sub);
	tu_bus_close(bus);
}
END_TEST

static unsigned lane_zero(void *arg, const fanq_msg *m)
{
	(void)arg;
	(void)m;
	return 0;
}

static int reject_all(void *arg, const fanq_queue_view *q, const fanq_msg *in)
{
	(void)arg;
	(void)q;
	(void)in;
	return -1;
}

START_TEST(test_policy_bad_kind_and_levels)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_OLDEST, 10, TU_BIG_BYTES);
	fanq_policy pol = {
		.name = "bad",
		.levels = 0,
		.lane_of = lane_zero,
		.on_full = reject_all,
	};

	ck_assert_int_eq(fanq_sub_set_policy(sub, (enum fanq_policy_kind)4),
			 FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_policy(sub, (enum fanq_policy_kind)-1),
			 FANQ_EINVAL);
	/* FANQ_CUSTOM needs a policy struct */
	ck_assert_int_eq(fanq_sub_set_policy(sub, FANQ_CUSTOM), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, &pol), FANQ_EINVAL);
	pol.levels = FANQ_PRIO_LEVELS + 1;
	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, &pol), FANQ_EINVAL);
	pol.levels = 2;
	pol.on_full = NULL;
	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, &pol), FANQ_EINVAL);
	ck_assert_int_eq(tu_stats(sub).policy, FANQ_DROP_OLDEST);
	pol.on_full = reject_all;
	pol.levels = FANQ_PRIO_LEVELS;
	ck_assert_int_eq(fanq_sub_set_custom_policy(sub, &pol), 0);
	ck_assert_int_eq(tu_stats(sub).policy, FANQ_CUSTOM);
	tu_sub_close(sub);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_subscribe_twice_and_unsubscribe_unknown)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *a = tu_channel_open(bus, "a");
	fanq_channel *b = tu_channel_open(bus, "b");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_unsubscribe(sub, a), FANQ_ENOENT);
	ck_assert_int_eq(fanq_subscribe(sub, a), 0);
	ck_assert_int_eq(fanq_subscribe(sub, a), FANQ_EEXIST);
	ck_assert_int_eq(fanq_unsubscribe(sub, b), FANQ_ENOENT);
	/* still exactly one subscription: one copy per publish */
	ck_assert_uint_eq(tu_publish(a, "x", 0).accepted, 1);
	ck_assert_uint_eq(tu_stats(sub).queued_msgs, 1);
	ck_assert_int_eq(fanq_unsubscribe(sub, a), 0);
	ck_assert_int_eq(fanq_unsubscribe(sub, a), FANQ_ENOENT);
	tu_sub_close(sub);
	fanq_channel_release(a);
	fanq_channel_release(b);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_history_bad_arguments)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_msg *out[2] = {NULL, NULL};

	ck_assert_int_eq(fanq_channel_set_history(NULL, 10, 0, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, FANQ_HISTORY_MSGS_MAX + 1ull,
						  0, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, UINT64_MAX, 0, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 10, 0,
						  FANQ_HISTORY_AGE_MAX_MS + 1),
			 FANQ_EINVAL);
	/* bytes or age without a count would not bound the history */
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 0, 100, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 0, 0, 100), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_history_read(NULL, 0, out, 2), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, NULL, 2), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, out, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, out, (size_t)INT32_MAX + 1),
			 FANQ_EINVAL);
	/* none of that turned a history on */
	tu_publish(w.ch, "x", 0);
	ck_assert_int_eq(fanq_channel_history_read(w.ch, 0, out, 2), 0);
	ck_assert_ptr_null(out[0]);
	/* the largest values are fine, and so is "off" when already off */
	ck_assert_int_eq(fanq_channel_set_history(w.ch, FANQ_HISTORY_MSGS_MAX,
						  UINT64_MAX, FANQ_HISTORY_AGE_MAX_MS), 0);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 0, 0, 0), 0);
	ck_assert_int_eq(fanq_channel_set_history(w.ch, 0, 0, 0), 0);
	ck_assert_uint_eq(tu_drain(w.sub), 1);
	tu_one_close(&w);
}
END_TEST

/* A refused resume changes nothing, res included. */
START_TEST(test_subscribe_after_bad_arguments)
{
	fanq_bus *bus = tu_bus_new();
	fanq_bus *other_bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "a");
	fanq_channel *foreign = tu_channel_open(other_bus, "a");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_resume_result res, untouched;

	memset(&res, 0x5a, sizeof(res));
	untouched = res;
	ck_assert_int_eq(fanq_subscribe_after(NULL, ch, 0, &res), FANQ_EINVAL);
	ck_assert_int_eq(fanq_subscribe_after(sub, NULL, 0, &res), FANQ_EINVAL);
	ck_assert_int_eq(fanq_subscribe_after(sub, foreign, 0, &res), FANQ_EINVAL);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	ck_assert_int_eq(fanq_subscribe_after(sub, ch, 0, &res), FANQ_EEXIST);
	ck_assert_mem_eq(&res, &untouched, sizeof(res));
	/* still one subscription */
	ck_assert_uint_eq(tu_publish(ch, "x", 0).accepted, 1);
	ck_assert_uint_eq(tu_drain(sub), 1);
	/* res may be NULL */
	ck_assert_int_eq(fanq_unsubscribe(sub, ch), 0);
	ck_assert_int_eq(fanq_subscribe_after(sub, ch, 0, NULL), FANQ_ERANGE);
	tu_sub_close(sub);
	fanq_channel_release(ch);
	fanq_channel_release(foreign);
	tu_bus_close(bus);
	tu_bus_close(other_bus);
}
END_TEST

/*
 * A length over FANQ_MSG_MAX is refused before the data is read: the
 * buffer here is 16 bytes (ASan and valgrind catch a read past it).
 */
START_TEST(test_publish_bad_arguments)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	char *small = malloc(16);
	fanq_publish_result res;

	ck_assert_ptr_nonnull(small);
	memset(small, 's', 16);
	ck_assert_int_eq(fanq_publish(NULL, small, 16, 0, &res), FANQ_EINVAL);
	ck_assert_int_eq(fanq_publish(w.ch, NULL, 16, 0, &res), FANQ_EINVAL);
	ck_assert_int_eq(fanq_publish(w.ch, small, (size_t)FANQ_MSG_MAX + 1, 0, &res),
			 FANQ_EMSGSIZE);
	ck_assert_int_eq(fanq_publish(w.ch, small, SIZE_MAX, 0, &res),
			 FANQ_EMSGSIZE);
	ck_assert_int_eq(fanq_publish(w.ch, small, 16, FANQ_PRIO_LEVELS, &res),
			 FANQ_EINVAL);
	ck_assert_int_eq(fanq_publish(w.ch, small, 16, ~0u, &res), FANQ_EINVAL);
	/* nothing consumed a sequence number or reached the queue */
	ck_assert_uint_eq(fanq_channel_last_seq(w.ch), 0);
	fanq_sub_stats st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.enqueued, 0);
	ck_assert_uint_eq(st.queued_msgs, 0);
	/* res may be NULL */
	ck_assert_int_eq(fanq_publish(w.ch, small, 16, FANQ_PRIO_LEVELS - 1, NULL), 0);
	ck_assert_uint_eq(fanq_channel_last_seq(w.ch), 1);
	ck_assert_uint_eq(tu_drain(w.sub), 1);
	free(small);
	tu_one_close(&w);
}
END_TEST

START_TEST(test_msg_accessors_null)
{
	ck_assert_ptr_null(fanq_msg_data(NULL));
	ck_assert_uint_eq(fanq_msg_len(NULL), 0);
	ck_assert_uint_eq(fanq_msg_seq(NULL), 0);
	ck_assert_uint_eq(fanq_msg_priority(NULL), 0);
	ck_assert_ptr_null(fanq_msg_channel(NULL));
	fanq_msg_ref(NULL);
	fanq_msg_release(NULL);
}
END_TEST

START_TEST(test_group_bad_arguments)
{
	fanq_bus *bus = tu_bus_new();
	fanq_group *g = NULL;
	fanq_group *other = NULL;
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_sub *ready = NULL;

	ck_assert_int_eq(fanq_group_new(NULL, &g), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_new(bus, NULL), FANQ_EINVAL);
	ck_assert_ptr_null(g);
	ck_assert_int_eq(fanq_group_close(NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_fd(NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	ck_assert_int_eq(fanq_group_new(bus, &other), 0);
	ck_assert_int_eq(fanq_group_attach(NULL, sub), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_attach(g, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_next_ready(NULL, &ready), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_next_ready(g, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), FANQ_EAGAIN);
	ck_assert_int_eq(fanq_group_attach(g, sub), 0);
	/* a sub is in at most one group */
	ck_assert_int_lt(fanq_group_attach(other, sub), 0);
	/* a group with an attached sub cannot close */
	ck_assert_int_lt(fanq_group_close(g), 0);
	ck_assert_int_eq(fanq_group_close(other), 0);
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	tu_bus_close(bus);
}
END_TEST

/* drain_commit() of more bytes than drain_iov() handed out is absurd. */
START_TEST(test_drain_commit_more_than_handed_out)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	struct iovec iov[4];

	ck_assert_int_eq(fanq_sub_drain_commit(w.sub, 1), FANQ_EINVAL);
	tu_publish(w.ch, "0123456789", 0);
	ck_assert_int_eq(fanq_sub_drain_iov(w.sub, iov, 4, 1024), 1);
	ck_assert_uint_eq(iov[0].iov_len, 10);
	ck_assert_int_eq(fanq_sub_drain_commit(w.sub, 11), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_drain_commit(w.sub, 10), 0);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).delivered, 1);
	tu_one_close(&w);
}
END_TEST

/* "else FANQ_EBUSY and nothing changes": the bus stays usable. */
START_TEST(test_bus_close_busy)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_channel *ch;

	ck_assert_int_eq(fanq_bus_close(bus), FANQ_EBUSY);
	ch = tu_channel_open(bus, "still-open");
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	tu_sub_close(sub);
	/* a channel handle alone keeps it busy too */
	ck_assert_int_eq(fanq_bus_close(bus), FANQ_EBUSY);
	ck_assert_uint_eq(tu_publish(ch, "x", 0).accepted, 0);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

static uint64_t zero_clock(void *arg)
{
	(void)arg;
	return 0;
}

/* Settings: NULL bus, absurd values, and too late (bus shared). */
START_TEST(test_bus_settings_bad_and_late)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub;
	fanq_channel *ch;

	ck_assert_int_eq(fanq_bus_set_clock(NULL, zero_clock, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_log(NULL, NULL, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_log_interval(NULL, 1), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_log_interval(bus, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_event_cb(NULL, NULL, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_alert_levels(NULL, 80, 50), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_alert_levels(bus, 50, 50), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_alert_levels(bus, 50, 60), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_alert_levels(bus, 101, 50), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_alert_levels(bus, 80, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_set_alert_levels(bus, 100, 1), 0);
	/* NULL restores the defaults */
	ck_assert_int_eq(fanq_bus_set_clock(bus, NULL, NULL), 0);
	ck_assert_int_eq(fanq_bus_set_log(bus, NULL, NULL), 0);
	ck_assert_int_eq(fanq_bus_set_event_cb(bus, NULL, NULL), 0);
	sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	ck_assert_int_eq(fanq_bus_set_clock(bus, zero_clock, NULL), FANQ_EBUSY);
	ck_assert_int_eq(fanq_bus_set_log(bus, NULL, NULL), FANQ_EBUSY);
	ck_assert_int_eq(fanq_bus_set_log_interval(bus, 1), FANQ_EBUSY);
	ck_assert_int_eq(fanq_bus_set_event_cb(bus, NULL, NULL), FANQ_EBUSY);
	ck_assert_int_eq(fanq_bus_set_alert_levels(bus, 80, 50), FANQ_EBUSY);
	tu_sub_close(sub);
	ch = tu_channel_open(bus, "c"); /* a channel handle: shared too */
	ck_assert_int_eq(fanq_bus_set_log_interval(bus, 1), FANQ_EBUSY);
	fanq_channel_release(ch);
	ck_assert_int_eq(fanq_bus_set_log_interval(bus, 1), 0);
	tu_bus_close(bus);
}
END_TEST

static int visit_none(void *arg, const fanq_sub *sub, const fanq_sub_stats *st)
{
	(void)arg;
	(void)sub;
	(void)st;
	return 0;
}

static int write_none(void *arg, const char *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len;
	return 0;
}

START_TEST(test_observe_bad_arguments)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "c");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_channel_stats cs;
	fanq_bus_stats bs;
	fanq_sub_stats top[2];
	char buf[8];

	ck_assert_int_eq(fanq_sub_set_meta(sub, "k", "v"), 0);
	ck_assert_int_eq(fanq_channel_stats_get(NULL, &cs), FANQ_EINVAL);
	ck_assert_int_eq(fanq_channel_stats_get(ch, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_stats_get(NULL, &bs), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_stats_get(bus, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_foreach_sub(NULL, visit_none, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_foreach_sub(bus, NULL, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_top(NULL, FANQ_TOP_DEPTH, top, 2), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DEPTH, NULL, 2), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DEPTH, top, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_top(bus, (enum fanq_top_by)3, top, 2), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_top(bus, (enum fanq_top_by)-1, top, 2), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_top(bus, FANQ_TOP_DEPTH, top, (size_t)INT32_MAX + 1),
			 FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_sub_meta(NULL, fanq_sub_id(sub), "k", buf, 8), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, fanq_sub_id(sub), NULL, buf, 8), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, fanq_sub_id(sub), "k", NULL, 8), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, fanq_sub_id(sub), "k", buf, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_sub_meta(bus, 0, "k", buf, 8), FANQ_ENOENT);
	ck_assert_int_eq(fanq_bus_prometheus(NULL, write_none, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_bus_prometheus(bus, NULL, NULL), FANQ_EINVAL);
	ck_assert_str_eq(fanq_drop_reason_name(FANQ_DROP_REASONS), "unknown");
	ck_assert_str_eq(fanq_drop_reason_name((enum fanq_drop_reason)-1), "unknown");
	ck_assert_str_eq(fanq_evict_reason_name(FANQ_EVICT_REASONS), "unknown");
	ck_assert_str_eq(fanq_evict_reason_name((enum fanq_evict_reason)-1), "unknown");
	tu_sub_close(sub);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_health_bad_arguments)
{
	fanq_bus *bus = tu_bus_new();
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_group *g;
	fanq_health_rules ok = { .full_ns = 1 };
	fanq_health_rules bad[] = {
		{ .drops = 5 },                       /* drops without a window */
		{ .soft_ns = 5 },                     /* soft time without bytes */
		{ .soft_bytes = 10, .hard_bytes = 5 },/* soft above hard */
	};
	enum fanq_evict_reason why = FANQ_EVICT_FULL;

	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	ck_assert_int_eq(fanq_sub_set_health(NULL, &ok), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_set_health(sub, NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_set_health(NULL, &ok), FANQ_EINVAL);
	ck_assert_int_eq(fanq_group_set_health(g, NULL), FANQ_EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(fanq_sub_set_health(sub, &bad[i]), FANQ_EINVAL);
		ck_assert_int_eq(fanq_group_set_health(g, &bad[i]), FANQ_EINVAL);
	}
	ck_assert_int_eq(fanq_bus_tick(NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_touch(NULL), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_heartbeat_due(NULL, 1), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_heartbeat_due(sub, 0), FANQ_EINVAL);
	ck_assert_int_eq(fanq_sub_evicted(NULL, &why), FANQ_EINVAL);
	ck_assert_int_eq(why, FANQ_EVICT_FULL); /* untouched */
	ck_assert_int_eq(fanq_sub_evicted(sub, &why), 0);
	ck_assert_int_eq(why, FANQ_EVICT_NONE);
	ck_assert_int_eq(fanq_sub_set_health(sub, &ok), 0);
	ck_assert_int_eq(fanq_group_set_health(g, &ok), 0);
	ck_assert_int_eq(fanq_group_close(g), 0);
	tu_sub_close(sub);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tu_tcase(s, "null");

	tcase_add_test(tc, test_strerror_distinct_for_every_code);
	tcase_add_test(tc, test_bus_and_channel_null);
	tcase_add_test(tc, test_sub_null);
	tcase_add_test(tc, test_sub_null_arguments);
	tcase_add_test(tc, test_msg_accessors_null);
	tcase_add_test(tc, test_group_bad_arguments);
	tcase_add_test(tc, test_observe_bad_arguments);
	tcase_add_test(tc, test_health_bad_arguments);
	tc = tu_tcase(s, "values");
	tcase_add_test(tc, test_channel_name_length);
	tcase_add_test(tc, test_limits_zero_and_absurd);
	tcase_add_test(tc, test_policy_bad_kind_and_levels);
	tcase_add_test(tc, test_subscribe_twice_and_unsubscribe_unknown);
	tcase_add_test(tc, test_publish_bad_arguments);
	tcase_add_test(tc, test_history_bad_arguments);
	tcase_add_test(tc, test_subscribe_after_bad_arguments);
	tcase_add_test(tc, test_drain_commit_more_than_handed_out);
	tcase_add_test(tc, test_bus_close_busy);
	tcase_add_test(tc, test_bus_settings_bad_and_late);
	return s;
}
