/*
 * msg.c - messages: one allocation holding header and payload, shared by
 * every subscriber that queues it, freed by the last reference.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Publisher.  One reference, owned by the caller. */
fanq_msg *msg_new(struct fanq_channel *ch, const void *data, size_t len,
		  unsigned prio)
{
	fanq_msg *m = fanq_malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	m->op.kind = OP_PUBLISH;
	atomic_init(&m->refs, 1);
	m->len = (uint32_t)len;
	m->prio = prio;
	m->gap_marker = false;
	m->seq = 0;
	m->ch = ch;
	if (len)
		memcpy(m->data, data, len);
	return m;
}

/* Owner thread (fanq_subscribe_after()).  One reference, the caller's. */
fanq_msg *msg_gap_marker_new(struct fanq_channel *ch)
{
	fanq_msg *m = msg_new(ch, NULL, 0, 0);

	if (m)
		m->gap_marker = true;
	return m;
}

const void *fanq_msg_data(const fanq_msg *m)
{
	return m ? m->data : NULL;
}

size_t fanq_msg_len(const fanq_msg *m)
{
	return m ? m->len : 0;
}

uint64_t fanq_msg_seq(const fanq_msg *m)
{
	return m ? m->seq : 0;
}

unsigned fanq_msg_priority(const fanq_msg *m)
{
	return m ? m->prio : 0;
}

const fanq_channel *fanq_msg_channel(const fanq_msg *m)
{
	return m ? m->ch : NULL;
}

/* Any thread holding a reference: n more, in one RMW. */
void msg_ref_n(fanq_msg *m, unsigned n)
{
	if (n)
		atomic_fetch_add_explicit(&m->refs, n, memory_order_relaxed);
}

/* Any thread holding n references: drops them in one RMW; the last frees. */
void msg_release_n(fanq_msg *m, unsigned n)
{
	/* acq_rel: every holder's reads of m happen before the free in the
	 * thread that drops the last reference (on the RMW rather than a
	 * separate fence, which ThreadSanitizer does not model) */
	if (n && atomic_fetch_sub_explicit(&m->refs, n, memory_order_acq_rel) == n)
		free(m);
}

/* Any thread holding a reference; lock-free. */
void fanq_msg_ref(fanq_msg *m)
{
	if (m)
		msg_ref_n(m, 1);
}

/* Any thread holding a reference; the last one frees. */
void fanq_msg_release(fanq_msg *m)
{
	if (m)
		msg_release_n(m, 1);
}
