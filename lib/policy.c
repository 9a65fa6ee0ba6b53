/*
 * policy.c - drop policies: which lane a message goes to, and what to do
 * when it does not fit.  Built-in policies use the same two decisions a
 * user's fanq_policy provides.  Called by fan-out threads, concurrently.
 */
#include "internal.h"

unsigned policy_levels(const struct policy *p)
{
	if (p->kind == FANQ_PRIORITY)
		return FANQ_PRIO_LEVELS;
	if (p->kind == FANQ_CUSTOM)
		return p->ops.levels;
	return 1;
}

/* For logs and stats: "drop-new", ..., or the custom policy's name. */
const char *policy_name(const struct policy *p)
{
	switch (p->kind) {
	case FANQ_DROP_NEW:
		return "drop-new";
	case FANQ_DROP_OLDEST:
		return "drop-oldest";
	case FANQ_PRIORITY:
		return "priority";
	case FANQ_CUSTOM:
		break;
	}
	return p->ops.name ? p->ops.name : "custom";
}

unsigned policy_lane(const struct policy *p, unsigned levels, const fanq_msg *m)
{
	unsigned lane = 0;

	if (p->kind == FANQ_PRIORITY)
		lane = m->prio;
	else if (p->kind == FANQ_CUSTOM && p->ops.lane_of)
		lane = p->ops.lane_of(p->ops.arg, m);
	return lane < levels ? lane : levels - 1;
}

static void queue_view(const struct fanq_sub *s, fanq_queue_view *v)
{
	v->levels = s->levels;
	for (unsigned i = 0; i < FANQ_PRIO_LEVELS; i++)
		v->depth[i] = i < s->levels ? lane_depth(&s->lanes[i]) : 0;
	v->msgs = atomic_load(&s->msgs);
	v->bytes = atomic_load(&s->bytes);
	v->max_msgs = atomic_load(&s->max_msgs);
	v->max_bytes = atomic_load(&s->max_bytes);
}

/* Priority: evict the oldest of the lowest non-empty level, unless the
 * incoming message is lower than everything queued. */
static int priority_on_full(const struct fanq_sub *s, unsigned in_lane)
{
	for (unsigned i = 0; i < s->levels; i++) {
		if (lane_depth(&s->lanes[i]) == 0)
			continue;
		return i <= in_lane ? (int)i : -1;
	}
	return -1;
}

/* Returns the lane to evict from, or -1 to reject the incoming message. */
int policy_on_full(const struct policy *p, const struct fanq_sub *s,
		   const fanq_msg *in, unsigned in_lane)
{
	fanq_queue_view v;
	int lane;

	switch (p->kind) {
	case FANQ_DROP_NEW:
		return -1;
	case FANQ_DROP_OLDEST:
		return 0;
	case FANQ_PRIORITY:
		return priority_on_full(s, in_lane);
	case FANQ_CUSTOM:
		queue_view(s, &v);
		lane = p->ops.on_full(p->ops.arg, &v, in);
		return lane >= 0 && (unsigned)lane < s->levels ? lane : -1;
	}
	return -1;
}

/* Why an incoming message is rejected once the policy gives up. */
enum fanq_drop_reason policy_reject_reason(const struct policy *p)
{
	return p->kind == FANQ_PRIORITY || p->kind == FANQ_CUSTOM
		       ? FANQ_DROP_EVICTED_PRIORITY
		       : FANQ_DROP_FULL_NEW;
}

enum fanq_drop_reason policy_evict_reason(const struct policy *p)
{
	return p->kind == FANQ_DROP_OLDEST ? FANQ_DROP_EVICTED_OLDEST
					   : FANQ_DROP_EVICTED_PRIORITY;
}
