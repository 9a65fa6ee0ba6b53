/*
 * Wiring to host sockets: consumer groups (one eventfd for many
 * subscribers) and fanq_sub_drain_iov()/fanq_sub_drain_commit() with
 * partial writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"

static int fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int rc = poll(&p, 1, timeout_ms);

	ck_assert_int_ge(rc, 0);
	return rc == 1 && (p.revents & POLLIN);
}

START_TEST(test_group_fd_readable_after_first_publish)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
	fanq_group *g = NULL;
	fanq_sub *ready = NULL;

	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	ck_assert_int_ge(fanq_group_fd(g), 0);
	ck_assert_int_eq(fanq_group_attach(g, sub), 0);
	ck_assert_int_eq(fanq_subscribe(sub, ch), 0);
	ck_assert_int_eq(fd_readable(fanq_group_fd(g), 0), 0);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), FANQ_EAGAIN);
	for (unsigned i = 0; i < 3; i++)
		tu_publish(ch, "m", 0);
	ck_assert_int_eq(fd_readable(fanq_group_fd(g), 1000), 1);
	/* three messages, one wakeup */
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), 0);
	ck_assert_ptr_eq(ready, sub);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), FANQ_EAGAIN);
	ck_assert_uint_eq(tu_drain(sub), 3);
	/* empty again: the next message brings it back */
	tu_publish(ch, "m", 0);
	ck_assert_int_eq(fd_readable(fanq_group_fd(g), 1000), 1);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), 0);
	ck_assert_ptr_eq(ready, sub);
	ck_assert_int_eq(fanq_group_next_ready(g, &ready), FANQ_EAGAIN);
	ck_assert_uint_eq(tu_drain(sub), 1);
	tu_sub_close(sub);
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

START_TEST(test_group_reports_each_ready_sub_once)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "news");
	fanq_channel *quiet = tu_channel_open(bus, "quiet");
	fanq_sub *subs[3];
	fanq_group *g = NULL;
	fanq_sub *ready = NULL;
	int seen[3] = {0, 0, 0};

	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	for (unsigned i = 0; i < 3; i++) {
		subs[i] = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
		ck_assert_int_eq(fanq_group_attach(g, subs[i]), 0);
		/* the third listens elsewhere and must not be reported */
		ck_assert_int_eq(fanq_subscribe(subs[i], i < 2 ? ch : quiet), 0);
	}
	tu_publish(ch, "a", 0);
	tu_publish(ch, "b", 0);
	ck_assert_int_eq(fd_readable(fanq_group_fd(g), 1000), 1);
	while (fanq_group_next_ready(g, &ready) == 0) {
		unsigned i = 0;

		while (i < 3 && subs[i] != ready)
			i++;
		ck_assert_uint_lt(i, 3);
		seen[i]++;
	}
	ck_assert_int_eq(seen[0], 1);
	ck_assert_int_eq(seen[1], 1);
	ck_assert_int_eq(seen[2], 0);
	for (unsigned i = 0; i < 3; i++) {
		tu_drain(subs[i]);
		tu_sub_close(subs[i]);
	}
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	fanq_channel_release(quiet);
	tu_bus_close(bus);
}
END_TEST

/* Framer: "id: <channel>:<seq>\ndata: " before, "\n\n" after each payload. */
struct sse_framer {
	size_t min_cap;
	unsigned prefix_calls;
};

static size_t sse_prefix(void *arg, const fanq_entry *e, char *buf, size_t cap)
{
	struct sse_framer *f = arg;
	int n;

	if (cap < f->min_cap)
		f->min_cap = cap;
	f->prefix_calls++;
	n = snprintf(buf, cap, "id: %s:%" PRIu64 "\ndata: ",
		     fanq_channel_name(e->ch), e->seq);
	return n < 0 ? 0 : (size_t)n;
}

/* Append the framed form of one message to expect. */
static size_t sse_frame(char *expect, const char *ch, uint64_t seq,
			const char *data, size_t len)
{
	int n = sprintf(expect, "id: %s:%" PRIu64 "\ndata: ", ch, seq);

	memcpy(expect + n, data, len);
	memcpy(expect + n + len, "\n\n", 2);
	return (size_t)n + len + 2;
}

/*
 * Write at most chunk bytes of iov to fd (a short writev, as a full
 * socket gives); returns what was written.
 */
static size_t write_some(int fd, const struct iovec *iov, int iovcnt,
			 size_t chunk)
{
	struct iovec cut[64];
	int n = 0;
	ssize_t w;

	ck_assert_int_le(iovcnt, 64);
	for (int i = 0; i < iovcnt && chunk > 0; i++) {
		cut[n] = iov[i];
		if (cut[n].iov_len > chunk)
			cut[n].iov_len = chunk;
		chunk -= cut[n].iov_len;
		n++;
	}
	if (n == 0)
		return 0;
	w = writev(fd, cut, n);
	ck_assert_msg(w >= 0, "writev: %s", strerror(errno));
	return (size_t)w;
}

/* Drain sub into fd in short writes until drain_iov has nothing left. */
static void drain_in_chunks(fanq_sub *sub, int fd, int iovmax)
{
	struct iovec iov[64];
	static const size_t chunks[] = {1, 7, 0, 13, 2, 64, 5, 3};
	unsigned round = 0;
	int n;

	while ((n = fanq_sub_drain_iov(sub, iov, iovmax, 48)) > 0) {
		size_t w;

		ck_assert_int_le(n, iovmax);
		w = write_some(fd, iov, n, chunks[round++ % 8]);
		ck_assert_int_eq(fanq_sub_drain_commit(sub, w), 0);
	}
	ck_assert_int_eq(n, 0);
}

/* Read exactly len bytes from fd. */
static void read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		ck_assert_msg(r > 0, "read: %zd (%s)", r, strerror(errno));
		got += (size_t)r;
	}
}

/* Drain sub through a socket pair in short writes; expect exactly want. */
static void drain_expect(fanq_sub *sub, int iovmax, const char *want, size_t len)
{
	char got[8192];
	int sv[2];

	ck_assert_uint_le(len, sizeof(got));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	drain_in_chunks(sub, sv[0], iovmax);
	read_exact(sv[1], got, len);
	ck_assert_mem_eq(got, want, len);
	close(sv[0]);
	close(sv[1]);
}

START_TEST(test_drain_iov_partial_writes_reassemble)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *news = tu_channel_open(bus, "news");
	fanq_channel *sport = tu_channel_open(bus, "sport");
	fanq_sub *sub = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
	struct sse_framer state = {.min_cap = SIZE_MAX};
	const fanq_framer framer = {
		.prefix = sse_prefix,
		.suffix = "\n\n",
		.suffix_len = 2,
		.arg = &state,
	};
	char expect[8192], payload[200];
	size_t expect_len = 0;
	uint64_t seqs[2] = {0, 0};
	unsigned nmsgs = 24;

	ck_assert_int_eq(fanq_sub_set_framer(sub, &framer), 0);
	ck_assert_int_eq(fanq_subscribe(sub, news), 0);
	ck_assert_int_eq(fanq_subscribe(sub, sport), 0);
	for (unsigned i = 0; i < nmsgs; i++) {
		size_t len = 1 + (i * 37) % 150;
		unsigned c = i % 3 == 0;

		for (size_t j = 0; j < len; j++)
			payload[j] = (char)('a' + (i + j) % 26);
		tu_publish_buf(c ? sport : news, payload, len, 0);
		expect_len += sse_frame(expect + expect_len, c ? "sport" : "news",
					++seqs[c], payload, len);
	}
	drain_expect(sub, 16, expect, expect_len);
	ck_assert_uint_eq(state.prefix_calls, nmsgs);
	ck_assert_uint_ge(state.min_cap, 128);
	fanq_sub_stats st = tu_assert_balanced(sub);
	ck_assert_uint_eq(st.delivered, nmsgs);
	ck_assert_uint_eq(st.queued_msgs, 0);
	tu_sub_close(sub);
	fanq_channel_release(news);
	fanq_channel_release(sport);
	tu_bus_close(bus);
}
END_TEST

/* The same, with room for one framed message per drain_iov() call. */
START_TEST(test_drain_iov_small_iovmax_reassembles)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 100, TU_BIG_BYTES);
	struct sse_framer state = {.min_cap = SIZE_MAX};
	const fanq_framer framer = {
		.prefix = sse_prefix,
		.suffix = "\n\n",
		.suffix_len = 2,
		.arg = &state,
	};
	char expect[4096];
	size_t expect_len = 0;

	ck_assert_int_eq(fanq_sub_set_framer(w.sub, &framer), 0);
	for (uint64_t i = 1; i <= 10; i++) {
		char text[32];
		int n = snprintf(text, sizeof(text), "message number %" PRIu64, i);

		tu_publish_buf(w.ch, text, (size_t)n, 0);
		expect_len += sse_frame(expect + expect_len, "ch", i, text,
					(size_t)n);
	}
	drain_expect(w.sub, 3, expect, expect_len);
	ck_assert_uint_eq(tu_assert_balanced(w.sub).delivered, 10);
	tu_one_close(&w);
}
END_TEST

/* Without a framer payloads go bare, GAP entries produce nothing. */
START_TEST(test_drain_without_framer_is_bare)
{
	struct tu_one w = tu_one_new(FANQ_DROP_OLDEST, 3, TU_BIG_BYTES);
	const char *texts[] = {"aa", "bbb", "c", "dddd", "ee"};

	for (unsigned i = 0; i < 5; i++)
		tu_publish(w.ch, texts[i], 0); /* aa, bbb evicted: a GAP */
	drain_expect(w.sub, 8, "cddddee", 7);
	fanq_sub_stats st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.delivered, 3);
	ck_assert_uint_eq(st.dropped[FANQ_DROP_EVICTED_OLDEST], 2);
	tu_one_close(&w);
}
END_TEST

/* Payloads are not copied; only fully written messages count delivered. */
START_TEST(test_drain_commit_counts_only_fully_written)
{
	struct tu_one w = tu_one_new(FANQ_DROP_NEW, 10, TU_BIG_BYTES);
	struct iovec iov[8];
	fanq_entry head;
	int n;

	tu_publish(w.ch, "first", 0);
	tu_publish(w.ch, "second", 0);
	ck_assert_int_eq(fanq_sub_peek(w.sub, &head), 0);
	n = fanq_sub_drain_iov(w.sub, iov, 8, 1024);
	ck_assert_int_eq(n, 2);
	ck_assert_ptr_eq(iov[0].iov_base, fanq_msg_data(head.msg));
	ck_assert_uint_eq(iov[0].iov_len, 5);
	ck_assert_uint_eq(iov[1].iov_len, 6);
	ck_assert_int_eq(fanq_sub_drain_commit(w.sub, 6), 0);
	ck_assert_uint_eq(tu_stats(w.sub).delivered, 1);
	/* the rest of "second" resumes at byte 1 */
	n = fanq_sub_drain_iov(w.sub, iov, 8, 1024);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(iov[0].iov_len, 5);
	ck_assert_mem_eq(iov[0].iov_base, "econd", 5);
	ck_assert_int_eq(fanq_sub_drain_commit(w.sub, 5), 0);
	ck_assert_int_eq(fanq_sub_drain_iov(w.sub, iov, 8, 1024), 0);
	fanq_sub_stats st = tu_assert_balanced(w.sub);
	ck_assert_uint_eq(st.delivered, 2);
	ck_assert_uint_eq(st.queued_msgs, 0);
	tu_one_close(&w);
}
END_TEST

/* An event loop's turn: poll, next_ready, drain with short writes. */
START_TEST(test_group_loop_drains_to_socket)
{
	fanq_bus *bus = tu_bus_new();
	fanq_channel *ch = tu_channel_open(bus, "c");
	fanq_group *g = NULL;
	fanq_sub *subs[2];
	fanq_sub *ready;
	int sv[2][2];
	char expect[1024], got[1024];
	size_t expect_len = 0;

	ck_assert_int_eq(fanq_group_new(bus, &g), 0);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		subs[i] = tu_sub_new(bus, FANQ_DROP_NEW, 100, TU_BIG_BYTES);
		ck_assert_int_eq(fanq_group_attach(g, subs[i]), 0);
		ck_assert_int_eq(fanq_subscribe(subs[i], ch), 0);
	}
	for (unsigned i = 0; i < 20; i++) {
		char text[16];
		int n = snprintf(text, sizeof(text), "<%u>", i);

		tu_publish_buf(ch, text, (size_t)n, 0);
		memcpy(expect + expect_len, text, (size_t)n);
		expect_len += (size_t)n;
	}
	ck_assert_int_eq(fd_readable(fanq_group_fd(g), 1000), 1);
	while (fanq_group_next_ready(g, &ready) == 0) {
		unsigned i = ready == subs[1];

		ck_assert_ptr_eq(ready, subs[i]);
		drain_in_chunks(ready, sv[i][0], 4);
	}
	for (unsigned i = 0; i < 2; i++) {
		read_exact(sv[i][1], got, expect_len);
		ck_assert_mem_eq(got, expect, expect_len);
		ck_assert_uint_eq(tu_assert_balanced(subs[i]).delivered, 20);
		tu_sub_close(subs[i]);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	ck_assert_int_eq(fanq_group_close(g), 0);
	fanq_channel_release(ch);
	tu_bus_close(bus);
}
END_TEST

Suite *fanq_test_suite(void)
{
	Suite *s = suite_create("group");
	TCase *tc = tu_tcase(s, "group");

	tcase_add_test(tc, test_group_fd_readable_after_first_publish);
	tcase_add_test(tc, test_group_reports_each_ready_sub_once);
	tcase_add_test(tc, test_group_loop_drains_to_socket);
	tc = tu_tcase(s, "drain");
	tcase_add_test(tc, test_drain_iov_partial_writes_reassemble);
	tcase_add_test(tc, test_drain_iov_small_iovmax_reassembles);
	tcase_add_test(tc, test_drain_without_framer_is_bare);
	tcase_add_test(tc, test_drain_commit_counts_only_fully_written);
	return s;
}
