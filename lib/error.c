/* error.c - fanq_strerror(). */
#include "internal.h"

/* Any thread; returns a static string, never NULL. */
const char *fanq_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case FANQ_EINVAL:
		return "invalid argument";
	case FANQ_ENOMEM:
		return "out of memory";
	case FANQ_EMSGSIZE:
		return "message too large";
	case FANQ_ENOENT:
		return "no such channel or subscription";
	case FANQ_EEXIST:
		return "already subscribed";
	case FANQ_EAGAIN:
		return "nothing ready (publish: channel backlog full, try again)";
	case FANQ_ECLOSED:
		return "closed or evicted";
	case FANQ_EBUSY:
		return "still in use";
	case FANQ_ERANGE:
		return "history does not reach back that far";
	case FANQ_ESYS:
		return "system call failed";
	default:
		return "unknown fanq error";
	}
}
