/*
 * Wakeup stress for the consumer-group protocol (lib/group.c): an owner
 * thread that sleeps in poll() on the group's eventfd and does nothing
 * else must drain every message, however the publishers' pushes
 * interleave with its own dequeue / clear-ready / drain steps.
 *
 * Publishers publish to pseudo-random channels in short bursts separated
 * by yields, so each subscriber's last message comes at an irregular
 * time and the ready list keeps going empty and non-empty; the owner
 * drains each ready
 * subscriber fully, then goes back to poll().  There is no timer in the
 * owner: if a wakeup were lost, poll() would time out (WAIT_MS) with
 * messages still queued, and the test fails saying how many.
 *
 * Worker threads record the first failure; the test thread asserts.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "test_util.h"

#define NPUB 2
#define NSUBS 16
#define NCH NSUBS          /* sub i listens to channels i and i + 1 */
#define MSGS_PER_PUB 20000
#define BURST 7
#define WAIT_MS 5000 /* far longer than any drain; only a lost wakeup hits it */

struct wake {
	fanq_channel *ch[NCH];
	atomic_uint_fast64_t sent[NCH]; /* messages published per channel */
	fanq_group *group;
	fanq_sub *subs[NSUBS];
	uint64_t got[NSUBS];   /* owner thread only */
	char failure[256];
	atomic_int failed;
};

static void wake_fail(struct wake *w, const char *msg, uint64_t v)
{
	if (atomic_exchange(&w->failed, 1) == 0)
		snprintf(w->failure, sizeof(w->failure), "%s (%llu)", msg,
			 (unsigned long long)v);
}

struct pub_arg {
	struct wake *w;
	unsigned id;
};

static void *publisher(void *p)
{
	struct pub_arg *a = p;
	uint32_t x = 2463534242u + a->id; /* xorshift32 */

	for (unsigned i = 0; i < MSGS_PER_PUB; i++) {
		unsigned c;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		c = x % NCH;
		if (tu_publish_retry(a->w->ch[c], &i, sizeof(i), 0)) {
			wake_fail(a->w, "publish failed at", i);
			break;
		}
		atomic_fetch_add(&a->w->sent[c], 1);
		if (i % BURST == 0)
			sched_yield();
	}
	return NULL;
}

static int sub_index(struct wake *w, const fanq_sub *s)
{
	for (int i = 0; i < NSUBS; i++)
		if (w->subs[i] == s)
			return i;
	return -1;
}

/* Owner: poll, take every ready subscriber, pop it empty; nothing else. */
static void *owner(void *p)
{
	struct wake *w = p;
	const uint64_t want = (uint64_t)NPUB * MSGS_PER_PUB * 2;
	struct pollfd pfd = {.fd = fanq_group_fd(w->group), .events = POLLIN};
	uint64_t total = 0;
	fanq_sub *s;
	fanq_entry e;

	while (total < want && !atomic_load(&w->failed)) {
		int r = poll(&pfd, 1, WAIT_MS);

		if (r == 0) {
			wake_fail(w, "lost wakeup: poll timed out, messages left",
				  want - total);
			break;
		}
		while (fanq_group_next_ready(w->group, &s) == 0) {
			int i = sub_index(w, s);

			if (i < 0) {
				wake_fail(w, "unknown subscriber from next_ready", 0);
				return NULL;
			}
			while (fanq_sub_pop(s, &e) == 0) {
				if (e.kind != FANQ_ENTRY_MSG) {
					wake_fail(w, "unexpected gap, sub", (uint64_t)i);
					return NULL;
				}
				fanq_msg_release(e.msg);
				w->got[i]++;
				total++;
			}
		}
	}
	return NULL;
}

START_TEST(test_group_no_lost_wakeup_under_publishers)
{
	static struct wake w;
	struct pub_arg args[NPUB];
	pthread_t pubs[NPUB], own;
	fanq_bus *bus = tu_bus_new();

	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(fanq_group_new(bus, &w.group), 0);
	for (unsigned c = 0; c < NCH; c++) {
		char name[8];

		snprintf(name, sizeof(name), "c%u", c);
		w.ch[c] = tu_channel_open(bus, name);
	}
	for (unsigned i = 0; i < NSUBS; i++) {
		/* limits far above the total: every message must arrive */
		w.subs[i] = tu_sub_new(bus, FANQ_DROP_NEW, 1u << 20, 1u << 30);
		ck_assert_int_eq(fanq_group_attach(w.group, w.subs[i]), 0);
		ck_assert_int_eq(fanq_subscribe(w.subs[i], w.ch[i]), 0);
		ck_assert_int_eq(fanq_subscribe(w.subs[i], w.ch[(i + 1) % NCH]), 0);
	}
	ck_assert_int_eq(pthread_create(&own, NULL, owner, &w), 0);
	for (unsigned p = 0; p < NPUB; p++) {
		args[p] = (struct pub_arg){&w, p};
		ck_assert_int_eq(pthread_create(&pubs[p], NULL, publisher, &args[p]), 0);
	}
	for (unsigned p = 0; p < NPUB; p++)
		pthread_join(pubs[p], NULL);
	pthread_join(own, NULL);
	ck_assert_msg(!atomic_load(&w.failed), "%s", w.failure);
	for (unsigned i = 0; i < NSUBS; i++) {
		fanq_sub_stats st = tu_assert_balanced(w.subs[i]);

		ck_assert_uint_eq(w.got[i], atomic_load(&w.sent[i]) +
				  atomic_load(&w.sent[(i + 1) % NCH]));
		ck_assert_uint_eq(st.delivered, w.got[i]);
		tu_sub_close(w.subs[i]);
	}
	ck_assert_int_eq(fanq_group_close(w.group), 0);
	for (unsigned c = 0; c < NCH; c++)
		fanq_channel_release(w.ch[c]);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("wakeup");
	TCase *tc = tu_tcase(s, "wakeup");

	tcase_add_test(tc, test_group_no_lost_wakeup_under_publishers);
	return s;
}
