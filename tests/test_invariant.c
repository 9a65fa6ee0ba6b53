/*
 * The invariant checker (tests/invariant.h) itself: it passes what fanq
 * really delivers, and it catches each kind of violation when fed
 * entries that break one promise.
 */
#include <stdlib.h>

#include "invariant.h"
#include "test_util.h"

/* A bus, one channel the checker knows, no subscriber yet. */
struct fixture {
	fanq_bus *bus;
	fanq_channel *ch;
	struct inv_world *w;
	struct inv_sub *r;
};

static struct fixture fx_new(bool log_prio, unsigned levels)
{
	struct fixture f;

	f.bus = tu_bus_new();
	f.ch = tu_channel_open(f.bus, "ch");
	f.w = inv_world_new();
	ck_assert_ptr_nonnull(f.w);
	ck_assert(inv_world_channel(f.w, f.ch, log_prio));
	f.r = inv_sub_new(f.w, "sub", levels);
	ck_assert_ptr_nonnull(f.r);
	return f;
}

static void fx_close(struct fixture *f)
{
	inv_sub_free(f->r);
	inv_world_free(f->w);
	fanq_channel_release(f->ch);
	tu_bus_close(f->bus);
}

/* Publish n messages nobody receives, so that seqs 1..n exist. */
static void publish_unseen(struct fixture *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		tu_publish(f->ch, "x", 0);
}

static fanq_entry msg_at(const struct fixture *f, uint64_t seq)
{
	fanq_entry e = {.kind = FANQ_ENTRY_MSG, .ch = f->ch, .seq = seq};

	return e;
}

static fanq_entry gap_at(const struct fixture *f, uint64_t first,
			 uint64_t last, uint64_t count)
{
	fanq_entry e = {.kind = FANQ_ENTRY_GAP, .ch = f->ch, .gap_first = first,
			.gap_last = last, .gap_count = count};

	return e;
}

/* Feed every entry sub has; false at the first violation. */
static bool feed_all(struct inv_sub *r, fanq_sub *sub)
{
	fanq_entry e;
	bool ok = true;

	while (fanq_sub_pop(sub, &e) == 0) {
		ok = ok && inv_sub_entry(r, &e, e.kind == FANQ_ENTRY_MSG
						      ? fanq_msg_priority(e.msg)
						      : 0);
		if (e.kind == FANQ_ENTRY_MSG)
			fanq_msg_release(e.msg);
	}
	return ok;
}

/* Expect the violation to mention `what`. */
static void expect_violation(const struct inv_sub *r, const char *what)
{
	ck_assert_msg(strstr(inv_sub_error(r), what), "error \"%s\" lacks \"%s\"",
		      inv_sub_error(r), what);
}

START_TEST(test_invariant_passes_drop_new_with_gaps)
{
	struct fixture f = fx_new(false, 1);
	fanq_sub *sub = tu_sub_new(f.bus, FANQ_DROP_NEW, 2, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_subscribe(sub, f.ch), 0);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	for (int i = 0; i < 5; i++)
		tu_publish(f.ch, "m", 0);
	ck_assert(feed_all(f.r, sub)); /* 1 2 */
	tu_publish(f.ch, "m", 0);
	ck_assert_msg(feed_all(f.r, sub), "%s", inv_sub_error(f.r)); /* GAP 3..5, 6 */
	tu_publish(f.ch, "m", 0);
	ck_assert_msg(inv_sub_check(f.r, sub), "%s", inv_sub_error(f.r));
	tu_sub_close(sub);
	fx_close(&f);
}
END_TEST

/* README's example: limit 3, priorities 0 3 0 1 0. */
START_TEST(test_invariant_passes_priority_lanes)
{
	const unsigned prio[] = {0, 3, 0, 1, 0};
	struct fixture f = fx_new(true, FANQ_PRIO_LEVELS);
	fanq_sub *sub = tu_sub_new(f.bus, FANQ_PRIORITY, 3, TU_BIG_BYTES);

	ck_assert_int_eq(fanq_subscribe(sub, f.ch), 0);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	for (unsigned i = 0; i < 5; i++) {
		tu_publish(f.ch, "m", prio[i]);
		ck_assert(inv_published(f.w, f.ch, i + 1, prio[i]));
	}
	ck_assert_msg(feed_all(f.r, sub), "%s", inv_sub_error(f.r));
	ck_assert_msg(inv_sub_check(f.r, sub), "%s", inv_sub_error(f.r));
	tu_sub_close(sub);
	fx_close(&f);
}
END_TEST

START_TEST(test_invariant_catches_duplicate_and_reorder)
{
	struct fixture f = fx_new(false, 1);
	fanq_entry e1 = msg_at(&f, 1), e2 = msg_at(&f, 2);

	publish_unseen(&f, 2);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	ck_assert(inv_sub_entry(f.r, &e1, 0));
	ck_assert(!inv_sub_entry(f.r, &e1, 0));
	expect_violation(f.r, "duplicate or out of order");
	ck_assert(!inv_sub_entry(f.r, &e2, 0)); /* stays failed */
	inv_sub_free(f.r);

	f.r = inv_sub_new(f.w, "sub", 1);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 2));
	ck_assert(inv_sub_entry(f.r, &e2, 0));
	ck_assert(!inv_sub_entry(f.r, &e1, 0));
	expect_violation(f.r, "duplicate or out of order");
	fx_close(&f);
}
END_TEST

START_TEST(test_invariant_catches_loss_without_gap)
{
	struct fixture f = fx_new(false, 1);
	fanq_entry e1 = msg_at(&f, 1), e3 = msg_at(&f, 3);

	publish_unseen(&f, 3);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	ck_assert(inv_sub_entry(f.r, &e1, 0));
	ck_assert(!inv_sub_entry(f.r, &e3, 0));
	expect_violation(f.r, "without a GAP");
	fx_close(&f);
}
END_TEST

START_TEST(test_invariant_catches_wrong_gaps)
{
	struct fixture f = fx_new(false, 1);
	fanq_entry e4 = msg_at(&f, 4);
	fanq_entry short_gap = gap_at(&f, 2, 2, 1);     /* 3 is missing too */
	fanq_entry low_count = gap_at(&f, 2, 3, 1);     /* counts 1 of 2 */
	fanq_entry bad_range = gap_at(&f, 3, 2, 1);     /* first > last */
	fanq_entry good = gap_at(&f, 2, 3, 2);

	publish_unseen(&f, 4);
	for (int i = 0; i < 3; i++) {
		const fanq_entry *bad[] = {&short_gap, &low_count, &bad_range};
		fanq_entry e1 = msg_at(&f, 1);

		ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
		ck_assert(inv_sub_entry(f.r, &e1, 0));
		ck_assert(!inv_sub_entry(f.r, bad[i], 0) || !inv_sub_entry(f.r, &e4, 0));
		ck_assert_str_ne(inv_sub_error(f.r), "");
		inv_sub_free(f.r);
		f.r = inv_sub_new(f.w, "sub", 1);
	}
	ck_assert(inv_sub_subscribed(f.r, f.ch, 2));
	ck_assert(inv_sub_entry(f.r, &good, 0));
	ck_assert(inv_sub_entry(f.r, &e4, 0));
	fx_close(&f);
}
END_TEST

START_TEST(test_invariant_catches_message_not_offered)
{
	struct fixture f = fx_new(false, 1);
	fanq_entry e2 = msg_at(&f, 2), e3 = msg_at(&f, 3), e9 = msg_at(&f, 9);

	publish_unseen(&f, 4);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	ck_assert(inv_sub_unsubscribed(f.r, f.ch, 1));
	ck_assert(inv_sub_subscribed(f.r, f.ch, 3));
	ck_assert(!inv_sub_entry(f.r, &e2, 0));
	expect_violation(f.r, "not offered");
	inv_sub_free(f.r);

	f.r = inv_sub_new(f.w, "sub", 1);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 3));
	ck_assert(inv_sub_entry(f.r, &e3, 0));
	ck_assert(!inv_sub_entry(f.r, &e9, 0));
	expect_violation(f.r, "never published");
	fx_close(&f);
}
END_TEST

START_TEST(test_invariant_catches_accounting_mismatch)
{
	struct fixture f = fx_new(false, 1);
	fanq_sub *sub = tu_sub_new(f.bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_entry e;

	ck_assert_int_eq(fanq_subscribe(sub, f.ch), 0);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	tu_publish(f.ch, "a", 0);
	tu_publish(f.ch, "b", 0);
	e = tu_pop_msg(sub); /* delivered, but the checker never hears of it */
	fanq_msg_release(e.msg);
	ck_assert(!inv_sub_check(f.r, sub));
	expect_violation(f.r, "delivered");
	tu_sub_close(sub);
	fx_close(&f);
}
END_TEST

START_TEST(test_invariant_catches_dangling_gap_and_foreign_channel)
{
	struct fixture f = fx_new(false, 1);
	fanq_channel *other = tu_channel_open(f.bus, "other");
	fanq_sub *sub = tu_sub_new(f.bus, FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	fanq_entry g = gap_at(&f, 1, 1, 1);
	fanq_entry foreign = {.kind = FANQ_ENTRY_MSG, .ch = other, .seq = 1};

	publish_unseen(&f, 1);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	ck_assert(inv_sub_entry(f.r, &g, 0));
	ck_assert(!inv_sub_check(f.r, sub));
	expect_violation(f.r, "GAP without");
	inv_sub_free(f.r);

	f.r = inv_sub_new(f.w, "sub", 1);
	ck_assert(!inv_sub_entry(f.r, &foreign, 0));
	expect_violation(f.r, "unregistered channel");
	tu_sub_close(sub);
	fanq_channel_release(other);
	fx_close(&f);
}
END_TEST

/* Drained bytes written one at a time decode to the entries popped. */
START_TEST(test_invariant_stream_decodes_drained_bytes)
{
	struct fixture f = fx_new(false, 1);
	fanq_sub *sub = tu_sub_new(f.bus, FANQ_DROP_NEW, 3, TU_BIG_BYTES);
	fanq_framer framer = inv_framer(f.w);
	struct inv_stream *st = inv_stream_new(f.w);
	struct iovec iov[8];
	const char *payload;
	size_t len, msgs = 0, gaps = 0;
	unsigned prio;
	fanq_entry e;
	int cnt, rc;

	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(fanq_subscribe(sub, f.ch), 0);
	ck_assert(inv_sub_subscribed(f.r, f.ch, 1));
	ck_assert_int_eq(fanq_sub_set_framer(sub, &framer), 0);
	for (int i = 0; i < 5; i++) /* 4 and 5 rejected */
		tu_publish(f.ch, i % 2 ? "" : "payload", 0);
	ck_assert_int_eq(inv_stream_next(st, &e, &prio, &payload, &len), 0);
	for (int round = 0; round < 2; round++) {
		while ((cnt = fanq_sub_drain_iov(sub, iov, 8, 1 << 16)) > 0) {
			ck_assert(inv_stream_write(st, iov, cnt, 1));
			ck_assert_int_eq(fanq_sub_drain_commit(sub, 1), 0);
			while ((rc = inv_stream_next(st, &e, &prio, &payload, &len)) == 1) {
				ck_assert_msg(inv_sub_entry(f.r, &e, prio), "%s",
					      inv_sub_error(f.r));
				gaps += e.kind == FANQ_ENTRY_GAP;
				msgs += e.kind == FANQ_ENTRY_MSG;
				/* seq 2 is the empty one */
				ck_assert_uint_eq(len, e.kind == FANQ_ENTRY_MSG &&
							       e.seq != 2 ? 7 : 0);
				ck_assert(!len || memcmp(payload, "payload", 7) == 0);
			}
			ck_assert_int_eq(rc, 0);
		}
		tu_publish(f.ch, "payload", 0); /* seq 6, after GAP 4..5 */
	}
	ck_assert_uint_eq(msgs, 4);
	ck_assert_uint_eq(gaps, 1);
	ck_assert_msg(inv_sub_check(f.r, sub), "%s", inv_sub_error(f.r));
	inv_stream_free(st);
	tu_sub_close(sub);
	fx_close(&f);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("invariant");
	TCase *tc = tu_tcase(s, "checker");

	tcase_add_test(tc, test_invariant_passes_drop_new_with_gaps);
	tcase_add_test(tc, test_invariant_passes_priority_lanes);
	tcase_add_test(tc, test_invariant_catches_duplicate_and_reorder);
	tcase_add_test(tc, test_invariant_catches_loss_without_gap);
	tcase_add_test(tc, test_invariant_catches_wrong_gaps);
	tcase_add_test(tc, test_invariant_catches_message_not_offered);
	tcase_add_test(tc, test_invariant_catches_accounting_mismatch);
	tcase_add_test(tc, test_invariant_catches_dangling_gap_and_foreign_channel);
	tcase_add_test(tc, test_invariant_stream_decodes_drained_bytes);
	return s;
}
