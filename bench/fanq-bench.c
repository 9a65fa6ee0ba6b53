/*
 * fanq-bench - fan-out throughput, publish latency, drops and memory of
 * fanq against the queues servers use today, measured in one run.
 *
 * Each (scenario, system, run) runs in a forked child so that RSS, heap
 * and library threads of one system never leak into the next.  Runs are
 * interleaved (run 1 of every system, then run 2, ...) and the fanq/peer
 * ratio is taken run by run, so drift of the machine hits both sides.
 * Only loopback and inproc transports are used.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 16
#define MAX_SYS 8
#define MAX_SCEN 64
#define MAX_RUNS 32
#define SAMPLE_EVERY 16
#define SAMPLE_CAP (1u << 18)
#define MEM_MSGS 10 /* messages queued per subscriber in the memory scenario */
/* Pacing stops waiting after this long without progress: short where a
 * peer can lose messages unseen (zmq, nng), long (a guard only) where the
 * harness sees every queue (fanq, mutex, spsc). */
#define FLOW_GIVE_UP_LOSSY_NS (2 * 1000 * 1000ull)
#define FLOW_GIVE_UP_EXACT_NS (50 * 1000 * 1000ull)

static const struct bench_sys *const all_systems[] = {
	&bench_sys_fanq, &bench_sys_fanq_group, &bench_sys_mutex,
	&bench_sys_spsc, &bench_sys_zmq, &bench_sys_nng,
};
#define N_ALL_SYS (sizeof(all_systems) / sizeof(all_systems[0]))

struct list {
	unsigned n;
	double v[MAX_LIST];
};

struct options {
	int quick;
	unsigned runs;
	double duration, warmup; /* seconds per pass, when messages == 0 */
	uint64_t messages;       /* total per measured pass, split over pubs */
	struct list subs, pubs, msg_bytes, slow_frac;
	int custom; /* a list was given: run their cross product only */
	unsigned consumers, queue_max, mem_subs;
	int drop_oldest, memory, overload, cost;
	const struct bench_sys *sys[MAX_SYS];
	unsigned nsys;
	const char *json, *plot_data, *sse_results;
};

struct bench_result {
	int ok;
	double deliveries_per_s, wall_s;
	uint64_t published, received, dropped;
	uint64_t give_ups; /* times pacing stopped waiting for progress */
	double p50_ns, p99_ns;
	int64_t rss_bytes;
	double bytes_per_sub, bytes_per_queued; /* memory scenario */
	double churn_per_s; /* churn scenario: join/leave cycles per second */
};

struct scenario {
	const char *family;
	struct bench_params p;
	int memory;
	struct bench_result res[MAX_SYS][MAX_RUNS];
};

/* ------------------------------------------------------------ helpers */

static int64_t rss_bytes(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : (int64_t)kb * 1024;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void cpu_model(char *buf, size_t cap)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, cap, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		snprintf(buf, cap, "%s", colon + 2);
		buf[strcspn(buf, "\n")] = 0;
		break;
	}
	fclose(f);
}

/* Other work on the machine skews every number: say how busy it was. */
static const char *load_average(char *buf, size_t cap)
{
	FILE *f = fopen("/proc/loadavg", "r");

	snprintf(buf, cap, "unknown");
	if (f) {
		if (fgets(buf, (int)cap, f))
			buf[strcspn(buf, " ")] = 0; /* the 1-minute figure */
		fclose(f);
	}
	return buf;
}

/* ---------------------------------------------------------- one pass */

static int pin_threads = 1; /* --no-pin clears it */

/*
 * The slot-th allowed CPU, or -1 when threads should float: only when
 * every publisher and consumer gets a CPU of its own, so that the
 * scheduler's placement does not decide the result.
 */
static int cpu_for(unsigned slot, unsigned threads)
{
	cpu_set_t set;
	unsigned seen = 0;
	int cpu;

	if (!pin_threads || sched_getaffinity(0, sizeof(set), &set) ||
	    (unsigned)CPU_COUNT(&set) < threads)
		return -1;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && seen++ == slot)
			return cpu;
	return -1;
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

struct pub_arg {
	struct bench_pass *pass;
	const struct bench_sys *sys;
	void *ctx;
	pthread_barrier_t *start;
	unsigned idx;
	int cpu;
	int spin_yield; /* more threads than CPUs: yield while waiting */
	uint64_t slack; /* messages per subscriber taken as lost by pacing */
	uint64_t give_up_ns, give_ups;
	uint64_t quota, deadline_ns; /* quota 0: publish until the deadline */
	uint64_t published;
	uint64_t *samples;
	size_t nsamples;
};

struct con_arg {
	const struct bench_sys *sys;
	void *ctx;
	pthread_barrier_t *start;
	int cpu;
	struct bench_consumer *c;
};

bool bench_consumer_sweep(struct bench_consumer *c, uint64_t n,
			  int done_before, int exact_drain)
{
	uint64_t now;

	if (n) {
		c->last_recv_ns = bench_now_ns();
		c->idle_since_ns = 0;
		return false;
	}
	if (!done_before)
		return false;
	if (exact_drain)
		return true;
	now = bench_now_ns();
	if (!c->idle_since_ns)
		c->idle_since_ns = now;
	return now - c->idle_since_ns >= BENCH_IDLE_NS;
}

/*
 * Messages taken per drained subscriber, on average, by the consumer that
 * is furthest behind.  Consumers report after each subscriber, so within
 * a sweep the most-behind subscriber lags this by about one window at
 * most: with the window at queue-max/4 no queue overflows.
 */
static uint64_t slowest_progress(const struct bench_pass *pass, uint64_t *total)
{
	uint64_t min = UINT64_MAX, v;
	unsigned i;

	for (*total = 0, i = 0; i < pass->p->consumers; i++) {
		const struct bench_consumer *c = &pass->cons[i];

		if (!c->nsubs)
			continue;
		v = atomic_load_explicit(&c->received, memory_order_relaxed);
		*total += v;
		min = v / c->nsubs < min ? v / c->nsubs : min;
	}
	return min;
}

/*
 * Wait while the window is full: what every publisher counted, less the
 * batch this one counted just before calling, is more than the window
 * ahead of the slowest consumer.  After give_up_ns without progress
 * the messages still missing are taken as lost (a peer dropped them and
 * its count can never catch up): they widen a->slack and publishing goes
 * on.  Returns 1 when the deadline passed.
 */
static int flow_wait(struct pub_arg *a)
{
	struct bench_pass *pass = a->pass;
	uint64_t pub = atomic_load_explicit(&pass->published, memory_order_relaxed) -
		       BENCH_BATCH;
	uint64_t total, seen = slowest_progress(pass, &total), since = 0, now, last = total;

	while (pub > seen + pass->window + a->slack) {
		if (a->spin_yield)
			sched_yield();
		now = bench_now_ns();
		if (!a->quota && now >= a->deadline_ns)
			return 1;
		seen = slowest_progress(pass, &total);
		/* progress is any message taken: a slow peer at high fan-out
		 * moves the per-subscriber figure only every few ms */
		if (total != last)
			since = 0;
		else if (!since)
			since = now;
		else if (now - since > a->give_up_ns) {
			a->slack = pub - seen - pass->window;
			a->give_ups++;
		}
		last = total;
	}
	return 0;
}

void bench_consumer_took(struct bench_consumer *c, uint64_t n)
{
	/* single writer; relaxed: publishers only pace on it */
	atomic_store_explicit(&c->received,
			      atomic_load_explicit(&c->received, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

uint64_t bench_sweep(struct bench_consumer *c, void *ctx, bench_drain_fn drain,
		     int may_wait)
{
	unsigned i, step = c->pass->p->consumers;
	uint64_t got = 0, n;

	for (i = c->idx; i < c->pass->p->subs; i += step) {
		if (c->pass->stalled[i] || !(n = drain(ctx, i, may_wait)))
			continue;
		got += n;
		bench_consumer_took(c, n);
	}
	return got;
}

void bench_consume_loop(struct bench_consumer *c, void *ctx, bench_drain_fn drain,
			int exact_drain)
{
	int done;

	do
		done = atomic_load_explicit(&c->pass->pubs_done, memory_order_acquire);
	while (!bench_consumer_sweep(c, bench_sweep(c, ctx, drain, c->nsubs == 1 && !done),
				     done, exact_drain));
}

static void *publisher_main(void *arg)
{
	struct pub_arg *a = arg;
	unsigned char *buf = calloc(1, a->pass->p->msg_bytes);
	uint64_t i;

	if (!buf)
		abort();
	buf[0] = BENCH_DATA;
	pin_self(a->cpu);
	pthread_barrier_wait(a->start);
	if (!a->quota)
		a->deadline_ns += bench_now_ns();
	for (i = 0;; i++) {
		/* count a batch before publishing it: with several publishers
		 * each then waits for the others' batches too, and the window
		 * bounds what is in flight to about one batch over (counted
		 * after, each publisher's unreported batch came on top: 4 x
		 * 127 past a window of 256 overflowed queues of 1024 with
		 * four publishers on 16 cores) */
		if (i % BENCH_BATCH == 0) {
			atomic_fetch_add_explicit(&a->pass->published, BENCH_BATCH,
						  memory_order_relaxed);
			if (a->pass->window && flow_wait(a))
				break;
		}
		if (a->quota ? i >= a->quota
			     : (i % 64 == 0 && bench_now_ns() >= a->deadline_ns))
			break;
		if (i % SAMPLE_EVERY == 0 && a->nsamples < SAMPLE_CAP) {
			uint64_t t0 = bench_now_ns();

			a->sys->publish(a->ctx, a->idx, buf, a->pass->p->msg_bytes);
			a->samples[a->nsamples++] = bench_now_ns() - t0;
		} else {
			a->sys->publish(a->ctx, a->idx, buf, a->pass->p->msg_bytes);
		}
	}
	a->published = i;
	free(buf);
	return NULL;
}

struct churn_arg {
	const struct bench_sys *sys;
	void *ctx;
	struct bench_pass *pass;
	uint64_t cycles;
};

/* Subscribers join and leave until the publishers are done. */
static void *churn_main(void *arg)
{
	struct churn_arg *a = arg;

	while (!atomic_load_explicit(&a->pass->pubs_done, memory_order_acquire))
		if (a->sys->churn(a->ctx) == 0)
			a->cycles++;
		else
			sched_yield();
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct con_arg *a = arg;

	pin_self(a->cpu);
	pthread_barrier_wait(a->start);
	a->sys->consume(a->ctx, a->c);
	return NULL;
}

/* Runs one pass; fills res (except memory fields) when res is not NULL. */
static void run_pass(const struct bench_sys *sys, void *ctx,
		     const struct bench_params *p, const bool *stalled, int overload,
		     double seconds, uint64_t messages, struct bench_result *res)
{
	struct bench_pass pass = { .p = p, .stalled = stalled };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t pt[p->pubs], ct[p->consumers];
	struct pub_arg pa[p->pubs];
	struct con_arg *ca = aligned_alloc(BENCH_CACHE_LINE, sizeof(*ca) * p->consumers);
	struct bench_consumer *cons = aligned_alloc(BENCH_CACHE_LINE,
						    sizeof(*cons) * p->consumers);
	pthread_barrier_t start;
	uint64_t t0, t_end, t_pub, published = 0, received = 0, nsamp = 0, give_ups = 0, *all;
	unsigned active = 0, i;
	int64_t rss;
	struct churn_arg churn = { .sys = sys, .ctx = ctx, .pass = &pass };
	pthread_t churn_thread;
	int churning = p->churn && sys->churn;

	if (!ca || !cons)
		abort();
	pass.cons = cons;
	pass.window = overload ? 0 : (p->queue_max / 4 ? p->queue_max / 4 : 1);
	for (i = 0; i < p->consumers; i++)
		cons[i] = (struct bench_consumer){ .pass = &pass, .idx = i };
	for (i = 0; i < p->subs; i++) {
		active += !stalled[i];
		cons[i % p->consumers].nsubs += !stalled[i];
	}
	pthread_barrier_init(&start, NULL, p->pubs + p->consumers + 1);
	for (i = 0; i < p->consumers; i++) {
		ca[i] = (struct con_arg){ .sys = sys, .ctx = ctx, .start = &start,
					  .cpu = cpu_for(p->pubs + i, p->pubs + p->consumers),
					  .c = &cons[i] };
		pthread_create(&ct[i], NULL, consumer_main, &ca[i]);
	}
	for (i = 0; i < p->pubs; i++) {
		pa[i] = (struct pub_arg){
			.pass = &pass, .sys = sys, .ctx = ctx, .start = &start,
			.idx = i, .cpu = cpu_for(i, p->pubs + p->consumers),
			.spin_yield = ncpu < (long)(p->pubs + p->consumers),
			.give_up_ns = sys->exact_drain ? FLOW_GIVE_UP_EXACT_NS
						       : FLOW_GIVE_UP_LOSSY_NS,
			.quota = messages ? (messages + p->pubs - 1) / p->pubs : 0,
			.deadline_ns = (uint64_t)(seconds * 1e9),
			.samples = malloc(SAMPLE_CAP * sizeof(uint64_t)),
		};
		if (!pa[i].samples)
			abort();
		pthread_create(&pt[i], NULL, publisher_main, &pa[i]);
	}
	pthread_barrier_wait(&start);
	t0 = bench_now_ns();
	if (churning)
		pthread_create(&churn_thread, NULL, churn_main, &churn);
	for (i = 0; i < p->pubs; i++)
		pthread_join(pt[i], NULL);
	t_end = t_pub = bench_now_ns();
	rss = rss_bytes(); /* backlog is at its largest now */
	atomic_store_explicit(&pass.pubs_done, 1, memory_order_release);
	if (churning)
		pthread_join(churn_thread, NULL);
	for (i = 0; i < p->consumers; i++) {
		pthread_join(ct[i], NULL);
		received += atomic_load(&cons[i].received);
		if (cons[i].last_recv_ns > t_end)
			t_end = cons[i].last_recv_ns;
	}
	pthread_barrier_destroy(&start);
	for (i = 0; i < p->pubs; i++) {
		published += pa[i].published;
		nsamp += pa[i].nsamples;
		give_ups += pa[i].give_ups;
	}
	all = malloc((nsamp + 1) * sizeof(*all));
	if (!all)
		abort();
	nsamp = 0;
	for (i = 0; i < p->pubs; i++) {
		memcpy(all + nsamp, pa[i].samples, pa[i].nsamples * sizeof(*all));
		nsamp += pa[i].nsamples;
		free(pa[i].samples);
	}
	if (res) {
		qsort(all, nsamp, sizeof(*all), cmp_u64);
		res->ok = 1;
		res->wall_s = (double)(t_end - t0) / 1e9;
		res->published = published;
		res->received = received;
		res->dropped = published * active > received
				       ? published * active - received : 0;
		res->deliveries_per_s = received / res->wall_s;
		res->p50_ns = nsamp ? (double)all[nsamp / 2] : 0;
		res->p99_ns = nsamp ? (double)all[nsamp * 99 / 100] : 0;
		res->rss_bytes = rss;
		res->give_ups = give_ups;
		res->churn_per_s = churn.cycles / ((double)(t_pub - t0) / 1e9);
	}
	free(all);
	free(ca);
	free(cons);
}

/* ------------------------------------------------------- child process */

static bool *stalled_map(const struct bench_params *p)
{
	bool *s = calloc(p->subs + 1, sizeof(*s));
	unsigned i;

	if (!s)
		abort();
	/* Spread the stalled ones evenly over subscribers and consumers. */
	for (i = 0; i < p->subs; i++)
		s[i] = (unsigned)((i + 1) * p->slow_frac) > (unsigned)(i * p->slow_frac);
	return s;
}

static void child_throughput(const struct options *o, const struct bench_sys *sys,
			     const struct bench_params *p, struct bench_result *res)
{
	bool *stalled = stalled_map(p);
	int64_t rss0 = rss_bytes();
	void *ctx = sys->setup(p, stalled);

	if (!ctx)
		return;
	run_pass(sys, ctx, p, stalled, o->overload, o->warmup, o->messages / 4, NULL);
	run_pass(sys, ctx, p, stalled, o->overload, o->duration, o->messages, res);
	res->rss_bytes -= rss0;
	sys->teardown(ctx);
	free(stalled);
}

/* RSS per idle subscriber, then per queued delivery, with no consumer. */
static void child_memory(const struct bench_sys *sys, const struct bench_params *p,
			 struct bench_result *res)
{
	bool *stalled = calloc(p->subs, sizeof(*stalled));
	unsigned char msg[16] = { BENCH_DATA };
	int64_t rss0 = rss_bytes(), rss1, rss2;
	void *ctx;
	unsigned i;

	if (!stalled)
		abort();
	ctx = sys->setup(p, stalled);
	if (!ctx)
		return;
	rss1 = rss_bytes();
	for (i = 0; i < MEM_MSGS; i++)
		sys->publish(ctx, 0, msg, sizeof(msg));
	rss2 = rss_bytes();
	res->ok = 1;
	res->rss_bytes = rss2 - rss0;
	res->bytes_per_sub = (double)(rss1 - rss0) / p->subs;
	res->bytes_per_queued = (double)(rss2 - rss1) / ((double)p->subs * MEM_MSGS);
	sys->teardown(ctx);
	free(stalled);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct bench_result run_child(const struct options *o,
				     const struct bench_sys *sys,
				     const struct scenario *s)
{
	struct bench_result res = { 0 };
	int fd[2], status;
	pid_t pid;

	fflush(NULL);
	if (pipe(fd) < 0 || (pid = fork()) < 0) {
		perror("fanq-bench: fork");
		return res;
	}
	if (pid == 0) {
		close(fd[0]);
		raise_fd_limit();
		alarm(120); /* a wedged system is reported, not waited for */
		if (s->memory)
			child_memory(sys, &s->p, &res);
		else
			child_throughput(o, sys, &s->p, &res);
		if (write(fd[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], &res, sizeof(res)) != (ssize_t)sizeof(res))
		memset(&res, 0, sizeof(res));
	close(fd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		fprintf(stderr, "\nfanq-bench: %s in %s subs=%u died of signal %d\n",
			sys->name, s->family, s->p.subs, WTERMSIG(status));
	return res;
}

/* ------------------------------------------------------------- options */

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
"usage: fanq-bench [options]\n"
"\n"
"P publisher threads publish messages of S bytes to N subscribers of one\n"
"channel; C consumer threads drain them, each serving N/C subscribers like\n"
"I/O threads.  Every queue drops when full (no backpressure).  Publishers\n"
"are paced the same way for every system: each counts a batch of 64 before\n"
"publishing it and waits while all publishers together (less that batch)\n"
"are more than queue-max/4 messages ahead of the slowest consumer (per\n"
"subscriber); after 2 ms without progress (zmq, nng: they may have lost\n"
"messages) or 50 ms (the others) it counts the gap as lost and goes on:\n"
"column 'gu' counts these give-ups over all runs.  --overload turns\n"
"pacing off.\n"
"Reported per (scenario, system): deliveries/s (messages received by\n"
"consumers / wall time, median of runs and min..max), the fanq/peer ratio\n"
"taken run by run, publish latency p50/p99 (ns per publish call, every\n"
"%dth call timed), p50/sub: the publish cost per delivery (p50 / N),\n"
"dropped deliveries (published x drained subs - received) and the VmRSS\n"
"delta at the end of publishing.  The end: the targets of issue 6, each\n"
"with its measured ratio and met or MISSED, and the machine.\n"
"\n"
"Default scenarios (without --subs/--pubs/--msg-bytes/--slow-frac):\n"
"  fanout   N = 1,64,1000,10000 (--quick: 1,64,1000), S = 256\n"
"  msgsize  N = 64, S = 16 and 4096 (--quick: 4096)\n"
"  pubs     N = 64,1000 (--quick: 64), twice the publishers (at least 2)\n"
"           on the one channel\n"
"  slow     N = 1000 (--quick: 64), S = 256, 10%% of subscribers stalled\n"
"           (never drained): the others' deliveries and drops should not change\n"
"  churn    N = 1000 (--quick: 64), S = 256, while another thread has subscribers join,\n"
"           drain and leave, over and over (join+leave/s reported); systems\n"
"           with a fixed subscriber set (spsc) are not run\n"
"  memory   RSS per idle subscriber (N = --mem-subs subscribed to one\n"
"           channel) and per queued delivery (%d x 16-byte messages each);\n"
"           fanq, mutex and spsc only (fanq-group has fanq's queues; zmq\n"
"           and nng need a socket, zmq an fd, per subscriber)\n"
"With any list option the cross product of the lists is run instead.\n"
"\n"
"Options:\n"
"  --subs LIST        subscriber counts, e.g. 1,64,1000,10000\n"
"  --pubs LIST        publisher threads (default 1 on <= 4 cores, else 2)\n"
"  --msg-bytes LIST   payload sizes (default 256; msgsize: 16,4096)\n"
"  --slow-frac LIST   fractions of stalled subscribers (default 0)\n"
"  --consumers C      consumer threads (default 1 on 2 cores, else\n"
"                     min(nproc - pubs, 8))\n"
"  --queue-max Q      messages per subscriber queue (default 1024, --quick\n"
"                     256); zmq and\n"
"                     nng get SNDHWM/RCVHWM (sendbuf/recvbuf) of Q/2 each,\n"
"                     since their inproc pipe holds both\n"
"  --policy P         drop-new (default) or drop-oldest; applies to fanq\n"
"                     and mutex, the others always drop new\n"
"  --duration SEC     measured pass length (default 0.25, --quick 0.08)\n"
"  --messages M       publish M messages per measured pass instead\n"
"  --runs R           measured runs per system (default 3)\n"
"  --overload         publishers run free (no pacing): queues fill and drop,\n"
"                     deliveries/s is what consumers manage under overload\n"
"  --cost             instead of the scenarios: per-delivery cost of fanq,\n"
"                     mutex and spsc on one thread (publish a batch, drain\n"
"                     it, repeat; --subs, --msg-bytes apply); see bench/cost.sh\n"
"                     for instruction counts under callgrind\n"
"  --no-pin           let threads float (default: each publisher and\n"
"                     consumer pinned to its own CPU when there are enough)\n"
"  --systems LIST     any of:",
		SAMPLE_EVERY, MEM_MSGS);
	for (i = 0; i < N_ALL_SYS; i++)
		fprintf(f, " %s", all_systems[i]->name);
	fprintf(f,
"\n"
"  --mem-subs N       subscribers in the memory scenario (default 100000,\n"
"                     --quick 20000); --no-memory skips it\n"
"  --quick            small scenarios, under 30 s on 2 cores\n"
"  --json FILE        write results as a JSON array\n"
"  --sse-results FILE merge the end-to-end rows bench/sse-vs-pushpin.sh --out\n"
"                     wrote (fanq-sse vs Pushpin) into the table, JSON, targets\n"
"  --plot-data FILE   write fanout deliveries/s per system for bench/plot.gp\n"
"  --help\n"
"\nSystems:\n");
	for (i = 0; i < N_ALL_SYS; i++)
		fprintf(f, "  %-11s %s\n", all_systems[i]->name, all_systems[i]->about);
}

static void parse_list(const char *arg, struct list *l, const char *what)
{
	char *copy = strdup(arg), *save = NULL, *tok;

	l->n = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		double v = strtod(tok, &end);

		if (*end || v < 0 || l->n == MAX_LIST) {
			fprintf(stderr, "fanq-bench: bad %s list '%s'\n", what, arg);
			exit(2);
		}
		l->v[l->n++] = v;
	}
	free(copy);
	if (!l->n) {
		fprintf(stderr, "fanq-bench: empty %s list\n", what);
		exit(2);
	}
}

static void parse_systems(const char *arg, struct options *o)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	size_t i;

	o->nsys = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < N_ALL_SYS && strcmp(tok, all_systems[i]->name); i++)
			;
		if (i == N_ALL_SYS || o->nsys == MAX_SYS) {
			fprintf(stderr, "fanq-bench: unknown system '%s' (see --help)\n", tok);
			exit(2);
		}
		o->sys[o->nsys++] = all_systems[i];
	}
	free(copy);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int i;

	*o = (struct options){ .runs = 3, .memory = 1 };
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--quick")) {
			o->quick = 1;
		} else if (!strcmp(a, "--no-memory")) {
			o->memory = 0;
		} else if (!strcmp(a, "--overload")) {
			o->overload = 1;
		} else if (!strcmp(a, "--cost")) {
			o->cost = 1;
		} else if (!strcmp(a, "--no-pin")) {
			pin_threads = 0;
		} else if (!v) {
			fprintf(stderr, "fanq-bench: unknown option or missing value: %s\n", a);
			usage(stderr);
			exit(2);
		} else {
			i++;
			if (!strcmp(a, "--subs"))
				parse_list(v, &o->subs, a), o->custom = 1;
			else if (!strcmp(a, "--pubs"))
				parse_list(v, &o->pubs, a), o->custom = 1;
			else if (!strcmp(a, "--msg-bytes"))
				parse_list(v, &o->msg_bytes, a), o->custom = 1;
			else if (!strcmp(a, "--slow-frac"))
				parse_list(v, &o->slow_frac, a), o->custom = 1;
			else if (!strcmp(a, "--consumers"))
				o->consumers = (unsigned)atoi(v);
			else if (!strcmp(a, "--queue-max"))
				o->queue_max = (unsigned)atoi(v);
			else if (!strcmp(a, "--mem-subs"))
				o->mem_subs = (unsigned)atoi(v);
			else if (!strcmp(a, "--duration"))
				o->duration = atof(v);
			else if (!strcmp(a, "--messages"))
				o->messages = strtoull(v, NULL, 10);
			else if (!strcmp(a, "--runs"))
				o->runs = (unsigned)atoi(v);
			else if (!strcmp(a, "--systems"))
				parse_systems(v, o);
			else if (!strcmp(a, "--json"))
				o->json = v;
			else if (!strcmp(a, "--plot-data"))
				o->plot_data = v;
			else if (!strcmp(a, "--sse-results"))
				o->sse_results = v;
			else if (!strcmp(a, "--policy") && !strcmp(v, "drop-new"))
				o->drop_oldest = 0;
			else if (!strcmp(a, "--policy") && !strcmp(v, "drop-oldest"))
				o->drop_oldest = 1;
			else {
				fprintf(stderr, "fanq-bench: bad option %s %s\n", a, v);
				usage(stderr);
				exit(2);
			}
		}
	}
	if (!o->nsys)
		for (o->nsys = 0; o->nsys < N_ALL_SYS; o->nsys++)
			o->sys[o->nsys] = all_systems[o->nsys];
	if (!o->pubs.n)
		o->pubs = (struct list){ 1, { ncpu <= 4 ? 1 : 2 } };
	if (!o->consumers) {
		long left = ncpu - (long)o->pubs.v[0];

		o->consumers = ncpu <= 2 || left < 1 ? 1 : (unsigned)(left < 8 ? left : 8);
	}
	if (!o->duration)
		o->duration = o->quick ? 0.08 : 0.25;
	/* --quick: a smaller window too, so that the slow peers (nng at 1000
	 * subscribers: ~0.4M deliveries/s) drain it in well under a second */
	if (!o->queue_max)
		o->queue_max = o->quick ? 256 : 1024;
	o->warmup = o->duration / 3;
	if (!o->mem_subs)
		o->mem_subs = o->quick ? 20000 : 100000;
	if (o->runs < 1 || o->runs > MAX_RUNS || !o->consumers) {
		fprintf(stderr, "fanq-bench: --runs 1..%d, --queue-max and --consumers >= 1\n",
			MAX_RUNS);
		exit(2);
	}
}

/* ----------------------------------------------------------- scenarios */

static unsigned add_scenario(struct scenario *sc, unsigned n, const struct options *o,
			     const char *family, unsigned subs, unsigned pubs,
			     size_t bytes, double slow)
{
	if (n == MAX_SCEN || !subs || !pubs || !bytes) {
		fprintf(stderr, "fanq-bench: skipping scenario subs=%u pubs=%u bytes=%zu\n",
			subs, pubs, bytes);
		return n;
	}
	sc[n].family = family;
	sc[n].memory = 0;
	sc[n].p = (struct bench_params){
		.subs = subs, .pubs = pubs,
		.consumers = o->consumers < subs ? o->consumers : subs,
		.msg_bytes = bytes < 1 ? 1 : bytes, .queue_max = o->queue_max,
		.drop_oldest = o->drop_oldest, .slow_frac = slow,
	};
	return n + 1;
}

static unsigned build_scenarios(const struct options *o, struct scenario *sc)
{
	static const unsigned full_subs[] = { 1, 64, 1000, 10000 };
	unsigned n = 0, pubs = (unsigned)o->pubs.v[0], i, a, b, c;

	if (o->custom) {
		struct list subs = o->subs, bytes = o->msg_bytes, slow = o->slow_frac;

		if (!subs.n)
			subs = (struct list){ 1, { 64 } };
		if (!bytes.n)
			bytes = (struct list){ 1, { 256 } };
		if (!slow.n)
			slow = (struct list){ 1, { 0 } };
		for (a = 0; a < o->pubs.n; a++)
			for (b = 0; b < bytes.n; b++)
				for (c = 0; c < slow.n; c++)
					for (i = 0; i < subs.n; i++)
						n = add_scenario(sc, n, o,
							a || b || c ? "sweep" : "fanout",
							(unsigned)subs.v[i], (unsigned)o->pubs.v[a],
							(size_t)bytes.v[b], slow.v[c]);
	} else {
		for (i = 0; i < (o->quick ? 3u : 4u); i++)
			n = add_scenario(sc, n, o, "fanout", full_subs[i], pubs, 256, 0);
		if (!o->quick)
			n = add_scenario(sc, n, o, "msgsize", 64, pubs, 16, 0);
		n = add_scenario(sc, n, o, "msgsize", 64, pubs, 4096, 0);
		/* several publishers on the one channel */
		n = add_scenario(sc, n, o, "pubs", 64, pubs < 2 ? 2 : pubs * 2, 256, 0);
		if (!o->quick)
			n = add_scenario(sc, n, o, "pubs", 1000, pubs < 2 ? 2 : pubs * 2, 256, 0);
		/* --quick: at 64, where nng and zmq take far less time to set
		 * up, drain and close */
		n = add_scenario(sc, n, o, "slow", o->quick ? 64 : 1000, pubs, 256, 0.1);
		n = add_scenario(sc, n, o, "churn", o->quick ? 64 : 1000, pubs, 256, 0);
		sc[n - 1].p.churn = 1;
	}
	if (o->memory && n < MAX_SCEN) {
		n = add_scenario(sc, n, o, "memory", o->mem_subs, 1, 16, 0);
		sc[n - 1].memory = 1;
	}
	return n;
}

/* Whether sys takes part in scenario s (memory, churn: where it can). */
static int sys_applies(const struct bench_sys *sys, const struct scenario *s)
{
	if (s->memory)
		return sys->memory;
	return !s->p.churn || sys->churn;
}

/* ----------------------------------------------------------- reporting */

struct summary {
	double dps, dps_min, dps_max, ratio, p50, p99, dropped, rss, give_ups;
	double per_sub, per_queued, churn;
	unsigned ok;
};

/* The "fanq" system's column, or -1 when it is not compared. */
static int fanq_index(const struct options *o)
{
	unsigned k;

	for (k = 0; k < o->nsys; k++)
		if (o->sys[k] == &bench_sys_fanq)
			return (int)k;
	return -1;
}

static struct summary summarize(const struct options *o, const struct scenario *s,
				unsigned k)
{
	double dps[MAX_RUNS], ratio[MAX_RUNS], p50[MAX_RUNS], p99[MAX_RUNS],
		drop[MAX_RUNS], rss[MAX_RUNS], ps[MAX_RUNS], pq[MAX_RUNS], ch[MAX_RUNS];
	struct summary sm = { .ratio = -1 };
	int f = fanq_index(o);
	unsigned r, nr = 0;

	for (r = 0; r < o->runs; r++) {
		const struct bench_result *x = &s->res[k][r];
		const struct bench_result *y = f < 0 ? x : &s->res[f][r];

		if (!x->ok)
			continue;
		dps[sm.ok] = x->deliveries_per_s;
		p50[sm.ok] = x->p50_ns;
		p99[sm.ok] = x->p99_ns;
		drop[sm.ok] = (double)x->dropped;
		sm.give_ups += (double)x->give_ups;
		rss[sm.ok] = (double)x->rss_bytes;
		ps[sm.ok] = x->bytes_per_sub;
		pq[sm.ok] = x->bytes_per_queued;
		ch[sm.ok] = x->churn_per_s;
		sm.ok++;
		/* fanq/peer from the same run only */
		if (f >= 0 && y->ok && x->deliveries_per_s > 0)
			ratio[nr++] = y->deliveries_per_s / x->deliveries_per_s;
	}
	if (!sm.ok)
		return sm;
	sm.dps_min = sm.dps_max = dps[0];
	for (r = 1; r < sm.ok; r++) {
		sm.dps_min = dps[r] < sm.dps_min ? dps[r] : sm.dps_min;
		sm.dps_max = dps[r] > sm.dps_max ? dps[r] : sm.dps_max;
	}
	sm.dps = median(dps, sm.ok);
	sm.p50 = median(p50, sm.ok);
	sm.p99 = median(p99, sm.ok);
	sm.dropped = median(drop, sm.ok);
	sm.rss = median(rss, sm.ok);
	sm.per_sub = median(ps, sm.ok);
	sm.per_queued = median(pq, sm.ok);
	sm.churn = median(ch, sm.ok);
	if (nr && (int)k != f)
		sm.ratio = median(ratio, nr);
	return sm;
}

static const char *si(double v, char *buf, size_t cap)
{
	if (v >= 1e9)
		snprintf(buf, cap, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, cap, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, cap, "%.1fk", v / 1e3);
	else
		snprintf(buf, cap, "%.0f", v);
	return buf;
}

static void print_table(const struct options *o, struct scenario *sc, unsigned n)
{
	char a[32], b[32], c[32], d[32], rs[32], pd[32];
	unsigned i, k;

	printf("\n%-8s %-10s %6s %4s %5s %5s %9s %19s %9s %8s %8s %8s %9s %4s %8s\n",
	       "scenario", "system", "subs", "pubs", "bytes", "slow", "deliv/s",
	       "min..max", "fanq/peer", "p50 ns", "p99 ns", "p50/sub", "dropped", "gu",
	       "rss MiB");
	for (i = 0; i < n; i++) {
		const struct scenario *s = &sc[i];

		if (s->memory)
			continue;
		for (k = 0; k < o->nsys; k++) {
			struct summary sm;

			if (!sys_applies(o->sys[k], s))
				continue;
			sm = summarize(o, s, k);
			if (!sm.ok) {
				printf("%-8s %-10s %6u %4u %5zu %5.2f  (failed; see stderr)\n",
				       s->family, o->sys[k]->name, s->p.subs, s->p.pubs,
				       s->p.msg_bytes, s->p.slow_frac);
				continue;
			}
			snprintf(b, sizeof(b), "%s..", si(sm.dps_min, a, sizeof(a)));
			strncat(b, si(sm.dps_max, c, sizeof(c)), sizeof(b) - strlen(b) - 1);
			if (sm.ratio < 0)
				snprintf(rs, sizeof(rs), "-");
			else
				snprintf(rs, sizeof(rs), "%.2fx", sm.ratio);
			snprintf(pd, sizeof(pd), "%.1f", sm.p50 / s->p.subs);
			printf("%-8s %-10s %6u %4u %5zu %5.2f %9s %19s %9s %8.0f %8.0f %8s %9s %4.0f %8.1f\n",
			       s->family, o->sys[k]->name, s->p.subs, s->p.pubs,
			       s->p.msg_bytes, s->p.slow_frac, si(sm.dps, d, sizeof(d)), b,
			       rs, sm.p50, sm.p99, pd, si(sm.dropped, c, sizeof(c)),
			       sm.give_ups, sm.rss / 1048576.0);
		}
	}
	for (i = 0; i < n; i++) {
		if (!sc[i].p.churn)
			continue;
		printf("\nchurn: while the above publish to %u subscribers, another thread has one "
		       "more join, drain and leave, over and over\n%-10s %16s\n",
		       sc[i].p.subs, "system", "join+leave / s");
		for (k = 0; k < o->nsys; k++) {
			struct summary sm = summarize(o, &sc[i], k);

			if (!sys_applies(o->sys[k], &sc[i]))
				printf("%-10s %16s\n", o->sys[k]->name, "not run");
			else if (sm.ok)
				printf("%-10s %16s\n", o->sys[k]->name, si(sm.churn, a, sizeof(a)));
		}
	}
	for (i = 0; i < n; i++) {
		if (!sc[i].memory)
			continue;
		printf("\nmemory: %u subscribers on one channel, then %d x 16-byte messages "
		       "queued to each (no consumer)\n%-10s %14s %20s %9s\n",
		       sc[i].p.subs, MEM_MSGS, "system", "bytes/idle sub",
		       "bytes/queued deliv", "rss MiB");
		for (k = 0; k < o->nsys; k++) {
			struct summary sm = summarize(o, &sc[i], k);

			if (sm.ok)
				printf("%-10s %14.0f %20.1f %9.1f\n", o->sys[k]->name,
				       sm.per_sub, sm.per_queued, sm.rss / 1048576.0);
			else if (!o->sys[k]->memory)
				printf("%-10s %14s\n", o->sys[k]->name, "not run");
			else
				printf("%-10s %14s\n", o->sys[k]->name, "failed");
		}
	}
}

/* ------------------------------------------------- end to end (SSE) */

/*
 * One line of bench/sse-vs-pushpin.sh --out: a server (fanq-sse or
 * pushpin) under the same client load.
 */
#define MAX_SSE 16
struct sse_row {
	char system[32];
	unsigned clients, publishers, payload, stalled, st_closed;
	double dps, p50, p99, missing, rss, rss_per_conn;
	double st_published, st_events, st_gaps;
};

static unsigned read_sse(const char *path, struct sse_row *rows)
{
	char line[1024];
	unsigned n = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "fanq-bench: no end-to-end results in %s\n", path);
		return 0;
	}
	while (n < MAX_SSE && fgets(line, sizeof(line), f)) {
		struct sse_row *r = &rows[n];

		if (sscanf(line, "sse\t%31s\t%u\t%u\t%u\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf\t%lf\t%u\t%lf\t%lf\t%u",
			   r->system, &r->clients, &r->publishers, &r->payload, &r->dps,
			   &r->p50, &r->p99, &r->missing, &r->rss, &r->rss_per_conn,
			   &r->st_published, &r->stalled, &r->st_events, &r->st_gaps,
			   &r->st_closed) == 15)
			n++;
	}
	fclose(f);
	return n;
}

/* fanq-sse's row for the same client count as peer's, or NULL. */
static const struct sse_row *sse_fanq_row(const struct sse_row *rows, unsigned n,
					  const struct sse_row *peer)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(rows[i].system, "fanq-sse") && rows[i].clients == peer->clients)
			return &rows[i];
	return NULL;
}

static void print_sse(const struct sse_row *rows, unsigned n)
{
	char a[32], b[32], rs[32];
	unsigned i;

	if (!n)
		return;
	printf("\nend to end over loopback (bench/sse-vs-pushpin.sh): the same client and load "
	       "for both,\n%u publishers back to back, %u-byte messages; latency publish -> "
	       "client under that load\n%-9s %7s %9s %9s %10s %10s %9s %9s  %s\n",
	       rows[0].publishers, rows[0].payload, "system", "clients", "deliv/s",
	       "fanq/peer", "p50 ms", "p99 ms", "missing", "rss/conn", "never-reading client");
	for (i = 0; i < n; i++) {
		const struct sse_row *r = &rows[i], *f = sse_fanq_row(rows, n, r);

		if (f && f != r && r->dps > 0)
			snprintf(rs, sizeof(rs), "%.2fx", f->dps / r->dps);
		else
			snprintf(rs, sizeof(rs), "-");
		printf("%-9s %7u %9s %9s %10.1f %10.1f %9s %9.0f  got %.0f of %.0f, "
		       "%.0f gap notice%s%s\n",
		       r->system, r->clients, si(r->dps, a, sizeof(a)), rs, r->p50 / 1e6,
		       r->p99 / 1e6, si(r->missing, b, sizeof(b)), r->rss_per_conn,
		       r->st_events, r->st_published, r->st_gaps, r->st_gaps == 1 ? "" : "s",
		       r->st_closed ? ", closed by the server" : "");
	}
}

/* -------------------------------------------------------------- targets */

static int sys_index(const struct options *o, const char *name)
{
	for (unsigned k = 0; k < o->nsys; k++)
		if (!strcmp(o->sys[k]->name, name))
			return (int)k;
	return -1;
}

static const struct scenario *find_scenario(const struct scenario *sc, unsigned n,
					    const char *family, unsigned subs)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(sc[i].family, family) && sc[i].p.subs == subs && !sc[i].p.churn)
			return &sc[i];
	return NULL;
}

/* One "at least min x peer" target over the fanout scenario at 64 and 1000. */
static void target_ratio(const struct options *o, const struct scenario *sc, unsigned n,
			 const char *what, const char *peer, double min)
{
	static const unsigned at[] = { 64, 1000 };
	int k = sys_index(o, peer), met = 1, seen = 0;

	printf("  %-34s", what);
	for (unsigned i = 0; i < 2; i++) {
		const struct scenario *s = find_scenario(sc, n, "fanout", at[i]);
		struct summary sm;

		if (!s || k < 0 || fanq_index(o) < 0 || (sm = summarize(o, s, (unsigned)k)).ratio < 0) {
			printf(" %5u: %-8s", at[i], "not run");
			continue;
		}
		printf(" %5u: %6.2fx ", at[i], sm.ratio);
		met &= sm.ratio >= min;
		seen++;
	}
	printf("  %s\n", !seen ? "not run" : met ? "met" : "MISSED");
}

/*
 * Publish cost per delivery (p50 publish / subscribers), 64..10000: the
 * target is that it stays flat (within 2x), i.e. that a publish costs no
 * more than linear in N.  With keeping-up subscribers on the shared log a
 * publish is O(1), so the cost per delivery falls as 1/N: that meets the
 * point of the target (no growth) while failing a literal "within 2x"
 * both ways, so growth is what is checked and the fall is printed.
 */
static void target_flat(const struct options *o, const struct scenario *sc, unsigned n)
{
	static const unsigned at[] = { 64, 1000, 10000 };
	double first = 0, hi = 0, last = 0;
	int f = fanq_index(o), seen = 0;

	printf("  %-34s", "fanq publish ns/delivery <= 2x @64");
	for (unsigned i = 0; i < 3; i++) {
		const struct scenario *s = find_scenario(sc, n, "fanout", at[i]);
		struct summary sm;
		double v;

		if (!s || f < 0 || !(sm = summarize(o, s, (unsigned)f)).ok) {
			printf(" %5u: %-8s", at[i], "not run");
			continue;
		}
		v = sm.p50 / at[i];
		printf(" %5u: %5.1f ns ", at[i], v);
		first = seen ? first : v;
		hi = !seen || v > hi ? v : hi;
		last = v;
		seen++;
	}
	if (seen < 2)
		printf("  not run\n");
	else
		printf(" max %.2fx, last %.2fx of first  %s%s\n", hi / first, last / first,
		       hi <= 2 * first ? "met" : "MISSED",
		       seen < 3 ? " (not every size run)" : "");
}

static void target_sse(const struct sse_row *rows, unsigned n)
{
	int seen = 0, met = 1;

	printf("  %-34s", "fanq-sse >= 5x Pushpin, lower p99");
	for (unsigned i = 0; i < n; i++) {
		const struct sse_row *r = &rows[i], *f = sse_fanq_row(rows, n, r);

		if (strcmp(r->system, "pushpin") || !f || r->dps <= 0)
			continue;
		printf(" %5u: %6.2fx p99 %.0f vs %.0f ms ", r->clients, f->dps / r->dps,
		       f->p99 / 1e6, r->p99 / 1e6);
		met &= f->dps >= 5 * r->dps && f->p99 < r->p99;
		seen++;
	}
	printf("  %s\n", !seen ? "not run" : met ? "met" : "MISSED");
}

static void print_targets(const struct options *o, const struct scenario *sc, unsigned n,
			  const struct sse_row *sse, unsigned nsse)
{
	printf("\ntargets of issue 6 (this run, this machine; fanq/peer: median of the "
	       "run-by-run ratios of deliveries/s in the fanout scenario):\n");
	target_ratio(o, sc, n, "fanq >= 10x ZeroMQ inproc", "zmq", 10);
	target_ratio(o, sc, n, "fanq >= 5x mutex queue", "mutex", 5);
	target_ratio(o, sc, n, "fanq >= 0.5x bare SPSC ring", "spsc", 0.5);
	target_flat(o, sc, n);
	target_sse(sse, nsse);
}

static void json_machine(FILE *f, const char *cpu, long ncpu)
{
	fprintf(f, "\"machine\": {\"nproc\": %ld, \"cpu\": \"%s\"}}", ncpu, cpu);
}

static int write_json(const struct options *o, struct scenario *sc, unsigned n,
		      const struct sse_row *sse, unsigned nsse, const char *cpu, long ncpu)
{
	FILE *f = fopen(o->json, "w");
	const char *sep = "";
	unsigned i, k;

	if (!f) {
		perror(o->json);
		return -1;
	}
	fprintf(f, "[\n");
	for (i = 0; i < n; i++) {
		for (k = 0; k < o->nsys; k++) {
			const struct scenario *s = &sc[i];
			struct summary sm;

			if (!sys_applies(o->sys[k], s))
				continue;
			sm = summarize(o, s, k);
			fprintf(f, "%s  {\"scenario\": \"%s\", \"system\": \"%s\", "
				"\"subscribers\": %u, \"publishers\": %u, \"consumers\": %u, "
				"\"msg_bytes\": %zu, \"queue_max\": %u, \"policy\": \"%s\", "
				"\"slow_frac\": %g, \"paced\": %s, \"runs_ok\": %u, ",
				sep, s->family, o->sys[k]->name, s->p.subs, s->p.pubs,
				s->p.consumers, s->p.msg_bytes, s->p.queue_max,
				s->p.drop_oldest ? "drop-oldest" : "drop-new",
				s->p.slow_frac, o->overload ? "false" : "true", sm.ok);
			if (s->memory)
				fprintf(f, "\"bytes_per_sub\": %.1f, \"bytes_per_queued_msg\": %.2f, ",
					sm.per_sub, sm.per_queued);
			if (s->p.churn)
				fprintf(f, "\"churn_per_s\": %.0f, ", sm.churn);
			if (sm.ratio >= 0)
				fprintf(f, "\"ratio_fanq_over_peer\": %.4f, ", sm.ratio);
			fprintf(f, "\"deliveries_per_s\": %.0f, \"deliveries_per_s_min\": %.0f, "
				"\"deliveries_per_s_max\": %.0f, \"p50_ns\": %.0f, \"p99_ns\": %.0f, "
				"\"publish_ns_per_delivery\": %.2f, "
				"\"dropped\": %.0f, \"pacing_give_ups\": %.0f, \"rss_bytes\": %.0f, ",
				sm.dps, sm.dps_min, sm.dps_max, sm.p50, sm.p99,
				s->memory ? 0 : sm.p50 / s->p.subs, sm.dropped, sm.give_ups, sm.rss);
			json_machine(f, cpu, ncpu);
			sep = ",\n";
		}
	}
	for (i = 0; i < nsse; i++) {
		const struct sse_row *r = &sse[i], *fr = sse_fanq_row(sse, nsse, r);

		fprintf(f, "%s  {\"scenario\": \"sse\", \"system\": \"%s\", \"subscribers\": %u, "
			"\"publishers\": %u, \"msg_bytes\": %u, ", sep, r->system, r->clients,
			r->publishers, r->payload);
		if (fr && fr != r && r->dps > 0)
			fprintf(f, "\"ratio_fanq_over_peer\": %.4f, ", fr->dps / r->dps);
		fprintf(f, "\"deliveries_per_s\": %.0f, \"p50_ns\": %.0f, \"p99_ns\": %.0f, "
			"\"dropped\": %.0f, \"rss_bytes\": %.0f, \"rss_per_connection\": %.0f, "
			"\"never_reading_client\": {\"clients\": %u, \"published\": %.0f, "
			"\"received\": %.0f, \"gap_notices\": %.0f, \"closed_by_server\": %s}, ",
			r->dps, r->p50, r->p99, r->missing, r->rss, r->rss_per_conn, r->stalled,
			r->st_published, r->st_events, r->st_gaps, r->st_closed ? "true" : "false");
		json_machine(f, cpu, ncpu);
		sep = ",\n";
	}
	fprintf(f, "\n]\n");
	return fclose(f);
}

/* One block per system ("name" then "subs deliveries/s"), for plot.gp. */
static int write_plot_data(const struct options *o, struct scenario *sc, unsigned n)
{
	FILE *f = fopen(o->plot_data, "w");
	unsigned i, k;

	if (!f) {
		perror(o->plot_data);
		return -1;
	}
	for (k = 0; k < o->nsys; k++) {
		fprintf(f, "%s\"%s\"\n", k ? "\n\n" : "", o->sys[k]->name);
		for (i = 0; i < n; i++) {
			struct summary sm;

			if (strcmp(sc[i].family, "fanout"))
				continue;
			sm = summarize(o, &sc[i], k);
			if (sm.ok)
				fprintf(f, "%u %.0f %.0f %.0f\n", sc[i].p.subs, sm.dps,
					sm.dps_min, sm.dps_max);
		}
	}
	return fclose(f);
}

/* ---------------------------------------------------------- cost mode */

/*
 * --cost: the work one delivery costs each in-process system with no
 * threads, pacing or scheduler in the way.  One thread publishes a batch
 * of queue-max/4 messages to N subscribers, then drains them with the
 * system's own consumer (the code the throughput scenarios run), and
 * repeats.  Prints ns per delivery on each side.  Under
 * `valgrind --tool=callgrind` (bench/cost.sh) the inclusive instruction
 * counts of cost_publish() and cost_consume() divided by the deliveries
 * give instructions per delivery: a figure a loaded machine cannot skew.
 */
#define COST_DELIVERIES 1000000u
#define COST_WARMUP_ROUNDS 4u

__attribute__((noinline)) static void cost_publish(const struct bench_sys *sys,
						   void *ctx, const unsigned char *buf,
						   size_t len, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		sys->publish(ctx, 0, buf, len);
}

__attribute__((noinline)) static uint64_t cost_consume(const struct bench_sys *sys,
						       void *ctx, struct bench_consumer *c)
{
	uint64_t before = atomic_load(&c->received);

	sys->consume(ctx, c);
	return atomic_load(&c->received) - before;
}

static void cost_one(const struct bench_sys *sys, const struct bench_params *p)
{
	bool *stalled = calloc(p->subs, sizeof(*stalled));
	unsigned char *buf = calloc(1, p->msg_bytes);
	struct bench_pass pass = { .p = p, .pubs_done = 1 };
	struct bench_consumer c = { .pass = &pass, .nsubs = p->subs };
	unsigned batch = p->queue_max / 4 ? p->queue_max / 4 : 1, rounds, r;
	uint64_t want, got = 0, t0, t_pub = 0, t_con = 0;
	void *ctx;

	if (!stalled || !buf)
		abort();
	pass.stalled = stalled;
	pass.cons = &c;
	rounds = COST_DELIVERIES / ((uint64_t)batch * p->subs);
	rounds = rounds ? rounds : 1;
	want = (uint64_t)rounds * batch * p->subs;
	ctx = sys->setup(p, stalled);
	if (!ctx) {
		printf("%-10s %6u %5zu  (setup failed)\n", sys->name, p->subs, p->msg_bytes);
		return;
	}
	/* warm-up: every queue reaches its steady size, and fanq's
	 * subscribers their steady mode (a channel's log grows to fit a
	 * batch in a few rounds, see README "How it works") */
	for (unsigned w = 0; w < COST_WARMUP_ROUNDS; w++) {
		for (r = 0; r < batch; r++)
			sys->publish(ctx, 0, buf, p->msg_bytes);
		sys->consume(ctx, &c);
	}
	for (r = 0; r < rounds; r++) {
		t0 = bench_now_ns();
		cost_publish(sys, ctx, buf, p->msg_bytes, batch);
		t_pub += bench_now_ns() - t0;
		t0 = bench_now_ns();
		got += cost_consume(sys, ctx, &c);
		t_con += bench_now_ns() - t0;
	}
	printf("%-10s %6u %5zu %11llu %9.1f %9.1f %9.1f%s\n", sys->name, p->subs,
	       p->msg_bytes, (unsigned long long)want, (double)t_pub / want,
	       (double)t_con / want, (double)(t_pub + t_con) / want,
	       got == want ? "" : "  (deliveries lost!)");
	sys->teardown(ctx);
	free(stalled);
	free(buf);
}

static void cost_mode(const struct options *o)
{
	struct list subs = o->subs, bytes = o->msg_bytes;
	unsigned i, b, k;

	if (!subs.n)
		subs = (struct list){ 4, { 1, 64, 1000, 10000 } };
	if (!bytes.n)
		bytes = (struct list){ 1, { 256 } };
	printf("cost: one thread publishes queue-max/4 = %u messages, then drains them; "
	       "ns per delivery\n%-10s %6s %5s %11s %9s %9s %9s\n",
	       o->queue_max / 4, "system", "subs", "bytes", "deliveries", "publish",
	       "consume", "total");
	for (b = 0; b < bytes.n; b++)
		for (i = 0; i < subs.n; i++)
			for (k = 0; k < o->nsys; k++) {
				struct bench_params p = {
					.subs = (unsigned)subs.v[i], .pubs = 1, .consumers = 1,
					.msg_bytes = (size_t)bytes.v[b] ? (size_t)bytes.v[b] : 1,
					.queue_max = o->queue_max, .drop_oldest = o->drop_oldest,
				};

				if (!o->sys[k]->memory)
					continue; /* in-process queues only */
				fflush(stdout);
				cost_one(o->sys[k], &p);
			}
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static struct scenario sc[MAX_SCEN];
	struct sse_row sse[MAX_SSE];
	unsigned nsse = 0;
	struct options o;
	char cpu[256], load[64];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n, i, k, r, done = 0, total = 0;
	int tty = isatty(2), rc = 0;
	uint64_t t0 = bench_now_ns();

	parse_options(argc, argv, &o);
	if (o.cost) {
		cost_mode(&o);
		return 0;
	}
	n = build_scenarios(&o, sc);
	cpu_model(cpu, sizeof(cpu));
	printf("fanq-bench: %ld CPUs, %s; load average at start %s\n", ncpu, cpu,
	       load_average(load, sizeof(load)));
	printf("consumers %u, queue-max %u, policy %s, %s, %u runs after a warm-up pass; "
	       "median (min..max)\n", o.consumers, o.queue_max,
	       o.drop_oldest ? "drop-oldest" : "drop-new",
	       o.overload ? "publishers unpaced (--overload)" : "publishers paced",
	       o.runs);
	if (o.messages)
		printf("passes of %llu messages\n", (unsigned long long)o.messages);
	else
		printf("passes of %.2f s (warm-up %.2f s)\n", o.duration, o.warmup);
	for (i = 0; i < n; i++)
		for (k = 0; k < o.nsys; k++)
			total += !sys_applies(o.sys[k], &sc[i]) ? 0 : sc[i].memory ? 1 : o.runs;
	for (i = 0; i < n; i++) {
		unsigned runs = sc[i].memory ? 1 : o.runs;

		for (r = 0; r < runs; r++) {
			for (k = 0; k < o.nsys; k++) {
				if (!sys_applies(o.sys[k], &sc[i]))
					continue;
				fprintf(stderr, "%s[%3u/%u %4.0fs] %-8s subs=%-6u bytes=%-5zu %-10s run %u/%u%s",
					tty ? "\r" : "", ++done, total,
					(double)(bench_now_ns() - t0) / 1e9, sc[i].family,
					sc[i].p.subs, sc[i].p.msg_bytes, o.sys[k]->name,
					r + 1, runs, tty ? "   " : "\n");
				sc[i].res[k][r] = run_child(&o, o.sys[k], &sc[i]);
			}
		}
	}
	if (tty)
		fprintf(stderr, "\r%100s\r", "");
	fprintf(stderr, "fanq-bench: done in %.1f s\n", (double)(bench_now_ns() - t0) / 1e9);
	if (o.sse_results)
		nsse = read_sse(o.sse_results, sse);
	print_table(&o, sc, n);
	print_sse(sse, nsse);
	print_targets(&o, sc, n, sse, nsse);
	printf("\nmachine: %ld CPUs, %s; load average at start %s\n", ncpu, cpu, load);
	if (o.json && write_json(&o, sc, n, sse, nsse, cpu, ncpu))
		rc = 1;
	if (o.plot_data && write_plot_data(&o, sc, n))
		rc = 1;
	return rc;
}
