/*
 * bus.c - the bus: the channel map (cds_lfht, bp flavour) and counts of
 * live objects so that closing it while in use fails cleanly.
 */
#include <stdlib.h>

#include "internal.h"

/* Any thread.  See fanq.h. */
int fanq_bus_new(fanq_bus **out)
{
	struct fanq_bus *bus;

	if (!out)
		return FANQ_EINVAL;
	bus = fanq_calloc(1, sizeof(*bus));
	if (!bus)
		return FANQ_ENOMEM;
	bus->channels = cds_lfht_new_flavor(64, 64, 0,
					    CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
					    &urcu_bp_flavor, NULL);
	if (!bus->channels) {
		free(bus);
		return FANQ_ENOMEM;
	}
	*out = bus;
	return 0;
}

/* Any thread, outside any fanq callback.  See fanq.h. */
int fanq_bus_close(fanq_bus *bus)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	struct fanq_channel *ch;

	if (!bus)
		return FANQ_EINVAL;
	if (atomic_load(&bus->live_subs) || atomic_load(&bus->channel_handles) ||
	    atomic_load(&bus->live_groups))
		return FANQ_EBUSY;
	/* closed subscribers are freed from call_rcu callbacks; those may
	 * queue segment frees of their own: wait twice */
	urcu_bp_barrier();
	urcu_bp_barrier();
	/* not cds_lfht_for_each_entry(): it applies container_of() to the
	 * NULL that ends the walk, undefined behaviour UBSan reports */
	urcu_bp_read_lock();
	cds_lfht_first(bus->channels, &it);
	while ((node = cds_lfht_iter_get_node(&it))) {
		ch = caa_container_of(node, struct fanq_channel, hnode);
		cds_lfht_next(bus->channels, &it);
		cds_lfht_del(bus->channels, &ch->hnode);
		/* no handle, no member: nobody can reach it or its history */
		history_free(atomic_load(&ch->hist));
		free(ch);
	}
	fanq_read_unlock();
	cds_lfht_destroy(bus->channels, NULL);
	free(bus);
	return 0;
}

#ifdef FANQ_TSAN
char fanq_tsan_grace; /* see FANQ_TSAN_GRACE_OVER in internal.h */
#endif
