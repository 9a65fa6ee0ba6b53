/*
 * drain.c - from a subscriber's queue straight into struct iovec.
 *
 * Entries taken for writing stay here (counted `held`) until
 * fanq_sub_drain_commit() reports the bytes the socket accepted; only
 * fully written messages count as delivered.  Payloads are never copied:
 * an entry is [prefix from the framer][payload][suffix].
 * Consumer thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DRAIN_ITEMS 64
#define DRAIN_PREFIX 128

struct drain_item {
	fanq_entry e;
	size_t prefix_len;
	char prefix[DRAIN_PREFIX];
};

struct drain {
	fanq_framer framer;
	bool has_framer;
	unsigned n;      /* items held */
	size_t off;      /* bytes of items[0] already written */
	struct drain_item items[DRAIN_ITEMS];
};

static struct drain *drain_get(struct fanq_sub *s)
{
	if (!s->drain)
		s->drain = fanq_calloc(1, sizeof(*s->drain));
	return s->drain;
}

/* Consumer thread.  The framer is copied. */
int fanq_sub_set_framer(fanq_sub *s, const fanq_framer *f)
{
	struct drain *d;

	if (!s || !f || !f->prefix || (f->suffix_len && !f->suffix))
		return FANQ_EINVAL;
	if (s->closed)
		return FANQ_ECLOSED;
	/* an evicted subscriber may still get a framer: it writes nothing */
	d = drain_get(s);
	if (!d)
		return FANQ_ENOMEM;
	d->framer = *f;
	d->has_framer = true;
	return 0;
}

static size_t item_len(const struct drain *d, const struct drain_item *it)
{
	size_t n = it->prefix_len;

	if (it->e.kind == FANQ_ENTRY_MSG)
		n += it->e.msg->len;
	if (d->has_framer)
		n += d->framer.suffix_len;
	return n;
}

/* Take one more entry into the drain; false when the queue is empty. */
static bool drain_take(struct fanq_sub *s, struct drain *d)
{
	struct drain_item *it = &d->items[d->n];

	if (sub_take(s, &it->e) != 0)
		return false;
	it->prefix_len = 0;
	if (d->has_framer) {
		it->prefix_len = d->framer.prefix(d->framer.arg, &it->e,
						  it->prefix, DRAIN_PREFIX);
		if (it->prefix_len > DRAIN_PREFIX)
			it->prefix_len = DRAIN_PREFIX;
	}
	d->n++;
	return true;
}

/* Append the unwritten part [skip..] of buf to iov; returns slots used. */
static int iov_add(struct iovec *iov, int room, const void *buf, size_t len,
		   size_t *skip)
{
	if (*skip >= len) {
		*skip -= len;
		return 0;
	}
	if (room == 0)
		return 0;
	iov->iov_base = (char *)buf + *skip;
	iov->iov_len = len - *skip;
	*skip = 0;
	return 1;
}

static int item_iov(const struct drain *d, const struct drain_item *it,
		    struct iovec *iov, int room, size_t *skip)
{
	int n = 0;

	n += iov_add(iov + n, room - n, it->prefix, it->prefix_len, skip);
	if (it->e.kind == FANQ_ENTRY_MSG)
		n += iov_add(iov + n, room - n, it->e.msg->data, it->e.msg->len, skip);
	if (d->has_framer)
		n += iov_add(iov + n, room - n, d->framer.suffix,
			     d->framer.suffix_len, skip);
	return n;
}

/* Consumer thread.  See fanq.h. */
int fanq_sub_drain_iov(fanq_sub *s, struct iovec *iov, int iovmax, size_t max_bytes)
{
	struct drain *d;
	size_t bytes = 0, skip;
	int cnt = 0, rc;

	if (!s || !iov || iovmax <= 0 || max_bytes == 0)
		return FANQ_EINVAL;
	rc = sub_consumer_check(s);
	if (rc)
		return rc;
	d = drain_get(s);
	if (!d)
		return FANQ_ENOMEM;
	skip = d->off;
	for (unsigned i = 0; cnt < iovmax && bytes < max_bytes; i++) {
		if (i == d->n && (d->n == DRAIN_ITEMS || !drain_take(s, d)))
			break;
		int used = item_iov(d, &d->items[i], iov + cnt, iovmax - cnt, &skip);

		for (int k = cnt; k < cnt + used; k++)
			bytes += iov[k].iov_len;
		cnt += used;
	}
	return cnt;
}

/* Consumer: bytes handed out and not yet committed. */
static size_t drain_pending_bytes(const struct drain *d)
{
	size_t n = 0;

	if (!d)
		return 0;
	for (unsigned i = 0; i < d->n; i++)
		n += item_len(d, &d->items[i]);
	return n - d->off;
}

/* Consumer: the first held item was fully written. */
static void drain_pop(struct fanq_sub *s, struct drain *d)
{
	struct drain_item *it = &d->items[0];

	if (it->e.kind == FANQ_ENTRY_MSG) {
		fanq_msg_release(it->e.msg);
		atomic_fetch_sub_explicit(&s->held, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->delivered, 1, memory_order_relaxed);
	}
	d->n--;
	memmove(&d->items[0], &d->items[1], d->n * sizeof(d->items[0]));
	d->off = 0;
}

/* Consumer thread.  See fanq.h. */
int fanq_sub_drain_commit(fanq_sub *s, size_t written)
{
	struct drain *d;
	int rc;

	if (!s)
		return FANQ_EINVAL;
	rc = sub_consumer_check(s);
	if (rc)
		return rc;
	d = s->drain;
	if (written > drain_pending_bytes(d))
		return FANQ_EINVAL; /* more than was handed out: change nothing */
	while (d && d->n) {
		size_t left = item_len(d, &d->items[0]) - d->off;

		if (written < left) {
			d->off += written;
			return 0;
		}
		written -= left;
		drain_pop(s, d);
	}
	return 0;
}

/*
 * Consumer (or the last reference): the entries held for writing are
 * dropped, counted FANQ_DROP_UNSUBSCRIBED; a partial write is forgotten.
 */
void drain_release(struct fanq_sub *s)
{
	struct drain *d = s->drain;

	if (!d)
		return;
	for (unsigned i = 0; i < d->n; i++) {
		if (d->items[i].e.kind != FANQ_ENTRY_MSG)
			continue;
		sub_count_drop(s, d->items[i].e.msg, FANQ_DROP_UNSUBSCRIBED);
		fanq_msg_release(d->items[i].e.msg);
		atomic_fetch_sub(&s->held, 1);
	}
	d->n = 0;
	d->off = 0;
}

/* Last reference. */
void drain_free(struct fanq_sub *s)
{
	drain_release(s);
	free(s->drain);
	s->drain = NULL;
}
