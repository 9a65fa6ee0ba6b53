/*
 * alloc.c - allocation-failure injection, compiled in only with
 * -DFANQ_ALLOC_FAIL (`make check-allocfail`).  Every fanq_malloc(),
 * fanq_calloc(), fanq_strdup() and fanq_zalloc_aligned() (internal.h)
 * asks alloc_injected_failure() first; a test arms a countdown with
 * fanq__alloc_fail_after() and walks it over every allocation of a
 * workload.  liburcu's own allocations are not counted.
 *
 * Any thread may allocate (fan-out threads grow lanes): the countdown is
 * one atomic, decremented by CAS, so exactly one allocation takes it
 * from 0 to -1 (disarmed) and fails.
 */
#ifdef FANQ_ALLOC_FAIL
#include "alloc_fail.h"
#include "internal.h"

static atomic_long countdown = -1; /* allocations to let through; < 0: off */
static atomic_bool fired;

/* Test thread, while no other thread allocates in fanq. */
void fanq__alloc_fail_after(long n)
{
	atomic_store(&fired, false);
	atomic_store(&countdown, n < 0 ? -1 : n);
}

bool fanq__alloc_fail_fired(void)
{
	return atomic_load(&fired);
}

/* Any thread, before each allocation: true when this one must fail. */
bool alloc_injected_failure(void)
{
	long c = atomic_load_explicit(&countdown, memory_order_relaxed);

	while (c >= 0) {
		if (!atomic_compare_exchange_weak(&countdown, &c, c - 1))
			continue;
		if (c > 0)
			return false;
		atomic_store(&fired, true);
		return true;
	}
	return false;
}
#endif /* FANQ_ALLOC_FAIL */
