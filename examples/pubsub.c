/*
 * pubsub.c - the smallest tour of fanq: one bus, one channel, two
 * subscribers with different drop policies, a burst of publishes larger
 * than their queues, then what each one got and dropped.
 *
 * Single-threaded: every call is made from main(), which fanq allows for
 * all of them (publishers and consumers may also be different threads).
 */
#include <fanq.h>

#include <stdio.h>
#include <string.h>

#define QUEUE_MSGS 3
#define BURST 6

static int _check(int rc, const char *what)
{
	if (rc < 0)
		fprintf(stderr, "pubsub: %s: %s\n", what, fanq_strerror(rc));
	return rc;
}

/* A subscriber of ch that keeps QUEUE_MSGS messages under policy. */
static int _subscriber(fanq_bus *bus, fanq_channel *ch,
		       enum fanq_policy_kind policy, const char *name,
		       fanq_sub **out)
{
	if (_check(fanq_sub_new(bus, out), "fanq_sub_new"))
		return -1;
	if (_check(fanq_sub_set_limits(*out, QUEUE_MSGS, 1 << 20), "set_limits") ||
	    _check(fanq_sub_set_policy(*out, policy), "set_policy") ||
	    _check(fanq_sub_set_meta(*out, "name", name), "set_meta") ||
	    _check(fanq_subscribe(*out, ch), "fanq_subscribe")) {
		fanq_sub_close(*out);
		return -1;
	}
	return 0;
}

static void _publish_burst(fanq_channel *ch)
{
	int i;

	for (i = 1; i <= BURST; i++) {
		char text[32];
		fanq_publish_result r;
		int len = snprintf(text, sizeof(text), "tick %d", i);

		if (_check(fanq_publish(ch, text, (size_t)len, 0, &r), "publish"))
			return;
		printf("published seq %llu: accepted by %u, dropped by %u\n",
		       (unsigned long long)r.seq, r.accepted, r.dropped);
	}
}

/* Pop until empty, printing messages and the gaps between them. */
static void _drain(fanq_sub *sub)
{
	fanq_entry e;

	printf("%s receives:\n", fanq_sub_meta(sub, "name"));
	while (fanq_sub_pop(sub, &e) == 0) {
		if (e.kind == FANQ_ENTRY_GAP) {
			printf("  gap on %s: seq %llu..%llu (%llu lost)\n",
			       fanq_channel_name(e.ch),
			       (unsigned long long)e.gap_first,
			       (unsigned long long)e.gap_last,
			       (unsigned long long)e.gap_count);
			continue;
		}
		printf("  %s #%llu: %.*s\n", fanq_channel_name(e.ch),
		       (unsigned long long)e.seq, (int)fanq_msg_len(e.msg),
		       (const char *)fanq_msg_data(e.msg));
		fanq_msg_release(e.msg);
	}
}

static void _print_stats(fanq_sub *sub)
{
	fanq_sub_stats st;

	if (_check(fanq_sub_stats_get(sub, &st), "stats"))
		return;
	printf("%s: enqueued %llu, delivered %llu, dropped %llu new + "
	       "%llu oldest, queued %llu\n", fanq_sub_meta(sub, "name"),
	       (unsigned long long)st.enqueued, (unsigned long long)st.delivered,
	       (unsigned long long)st.dropped[FANQ_DROP_FULL_NEW],
	       (unsigned long long)st.dropped[FANQ_DROP_EVICTED_OLDEST],
	       (unsigned long long)st.queued_msgs);
}

int main(void)
{
	fanq_bus *bus;
	fanq_channel *ch;
	fanq_sub *keep_first, *keep_last;
	int rc = 1;

	if (_check(fanq_bus_new(&bus), "fanq_bus_new"))
		return 1;
	if (_check(fanq_channel_open(bus, "news", &ch), "channel_open"))
		goto out_bus;
	if (_subscriber(bus, ch, FANQ_DROP_NEW, "keep-first", &keep_first))
		goto out_channel;
	if (_subscriber(bus, ch, FANQ_DROP_OLDEST, "keep-last", &keep_last))
		goto out_first;
	_publish_burst(ch);
	_drain(keep_first);
	_drain(keep_last);
	_print_stats(keep_first);
	_print_stats(keep_last);
	rc = 0;
	fanq_sub_close(keep_last);
out_first:
	fanq_sub_close(keep_first);
out_channel:
	fanq_channel_release(ch);
out_bus:
	if (_check(fanq_bus_close(bus), "fanq_bus_close"))
		rc = 1;
	return rc;
}
