/*
 * alloc_fail.h - the test hook of the allocation-failure build.  Never
 * installed; the functions exist only when lib/ is compiled with
 * -DFANQ_ALLOC_FAIL (`make check-allocfail`, see lib/alloc.c).
 */
#ifndef FANQ_ALLOC_FAIL_H
#define FANQ_ALLOC_FAIL_H

#include <stdbool.h>

#include "fanq.h"

/*
 * Fail the allocation n + 1 from now (n = 0: the next one), once; n < 0
 * disarms.  Counts only fanq's own allocations, in every thread.
 */
FANQ_API void fanq__alloc_fail_after(long n);
/* Whether the armed failure happened since the last fanq__alloc_fail_after(). */
FANQ_API bool fanq__alloc_fail_fired(void);

#endif /* FANQ_ALLOC_FAIL_H */
