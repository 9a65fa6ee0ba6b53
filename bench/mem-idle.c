/*
 * mem-idle.c - RSS per idle subscriber (README "Memory").
 *
 *   build/bench/mem-idle [N]     (built by `make`; N defaults to 100000)
 *
 * Subscribes N subscribers to one channel with nothing published and
 * prints the RSS delta per subscriber; then publishes 21 messages, drains
 * every subscriber and prints the delta again (a drained lane keeps its
 * current segment).  Single-threaded: the calling thread applies every
 * subscribe itself.
 */
#include <fanq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	fclose(f);
	return kib;
}

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "mem-idle: %s: %s\n", what, fanq_strerror(rc));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	fanq_sub **subs, *warm;
	fanq_channel *ch;
	fanq_bus *bus;
	long before, idle, drained;

	if (n <= 0 || !(subs = calloc((size_t)n, sizeof(*subs)))) {
		fprintf(stderr, "usage: mem-idle [N > 0]\n");
		return 2;
	}
	check(fanq_bus_new(&bus), "bus");
	check(fanq_channel_open(bus, "c", &ch), "channel");
	/* one first subscriber, so that one-time allocations are not counted */
	check(fanq_sub_new(bus, &warm), "sub");
	check(fanq_subscribe(warm, ch), "subscribe");
	before = rss_kib();
	for (int i = 0; i < n; i++) {
		check(fanq_sub_new(bus, &subs[i]), "sub");
		check(fanq_subscribe(subs[i], ch), "subscribe");
	}
	idle = rss_kib();
	for (int k = 0; k < 21; k++)
		check(fanq_publish(ch, "x", 1, 0, NULL), "publish");
	for (int i = 0; i < n; i++) {
		fanq_entry e;

		while (fanq_sub_pop(subs[i], &e) == 0)
			if (e.kind == FANQ_ENTRY_MSG)
				fanq_msg_release(e.msg);
	}
	drained = rss_kib();
	printf("%d subscribers: idle %.0f B each; after 21 messages drained %.0f B each\n",
	       n, (idle - before) * 1024.0 / n, (drained - before) * 1024.0 / n);
	return 0;
}
