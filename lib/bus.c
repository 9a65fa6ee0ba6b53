/*
 * bus.c - the bus: the channel map and the subscriber registry (cds_lfht,
 * bp flavour), its settings and clock, and counts of live objects so that
 * closing it while in use fails cleanly.
 *
 * The registry holds every subscriber from fanq_sub_new() until it is
 * freed, keyed by id: the ticker, stats and top-N walk it under
 * rcu_read_lock, safe against subscribers leaving meanwhile (sub.c frees
 * one a grace period after it leaves).
 */
#include <stdlib.h>
#include <time.h>

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
	bus->subs = cds_lfht_new_flavor(1024, 1024, 0,
					CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
					&urcu_bp_flavor, NULL);
	if (!bus->channels || !bus->subs) {
		if (bus->channels)
			cds_lfht_destroy(bus->channels, NULL);
		if (bus->subs)
			cds_lfht_destroy(bus->subs, NULL);
		free(bus);
		return FANQ_ENOMEM;
	}
	bus->log_interval_ns = FANQ_DEFAULT_LOG_INTERVAL_NS;
	bus->alert_high_pct = FANQ_DEFAULT_ALERT_HIGH_PCT;
	bus->alert_low_pct = FANQ_DEFAULT_ALERT_LOW_PCT;
	pthread_mutex_init(&bus->fold_mu, NULL);
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
	/* the subscribers still waiting for an append (cursor.c) */
	urcu_bp_read_lock();
	cds_lfht_first(bus->channels, &it);
	while ((node = cds_lfht_iter_get_node(&it))) {
		cursor_waits_free(caa_container_of(node, struct fanq_channel, hnode));
		cds_lfht_next(bus->channels, &it);
	}
	fanq_read_unlock();
	/* closed subscribers and groups are freed from call_rcu callbacks
	 * (a membership's, then the subscriber's own): wait twice */
	urcu_bp_barrier();
	urcu_bp_barrier();
	FANQ_TSAN_ACQUIRE(bus); /* pairs with the release in stats_fold() */
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
		chlog_free(ch);
		free(ch);
	}
	fanq_read_unlock();
	cds_lfht_destroy(bus->channels, NULL);
	cds_lfht_destroy(bus->subs, NULL); /* empty: every sub was freed */
	pthread_mutex_destroy(&bus->fold_mu);
	free(bus);
	return 0;
}

/* ------------------------------------------------------------ settings */

/* Settings are read without synchronisation: only before sharing. */
static int bus_settable(const struct fanq_bus *bus)
{
	if (!bus)
		return FANQ_EINVAL;
	if (atomic_load(&bus->live_subs) || atomic_load(&bus->channel_handles))
		return FANQ_EBUSY;
	return 0;
}

int fanq_bus_set_clock(fanq_bus *bus, fanq_clock_fn fn, void *arg)
{
	int rc = bus_settable(bus);

	if (rc)
		return rc;
	bus->clock = fn;
	bus->clock_arg = arg;
	return 0;
}

int fanq_bus_set_log(fanq_bus *bus, fanq_log_fn fn, void *arg)
{
	int rc = bus_settable(bus);

	if (rc)
		return rc;
	bus->log = fn;
	bus->log_arg = arg;
	return 0;
}

int fanq_bus_set_log_interval(fanq_bus *bus, uint64_t interval_ns)
{
	int rc = bus_settable(bus);

	if (rc)
		return rc;
	if (interval_ns == 0)
		return FANQ_EINVAL;
	bus->log_interval_ns = interval_ns;
	return 0;
}

int fanq_bus_set_event_cb(fanq_bus *bus, fanq_event_fn fn, void *arg)
{
	int rc = bus_settable(bus);

	if (rc)
		return rc;
	bus->event = fn;
	bus->event_arg = arg;
	return 0;
}

int fanq_bus_set_alert_levels(fanq_bus *bus, unsigned high_pct, unsigned low_pct)
{
	int rc = bus_settable(bus);

	if (rc)
		return rc;
	if (low_pct == 0 || low_pct >= high_pct || high_pct > 100)
		return FANQ_EINVAL;
	bus->alert_high_pct = high_pct;
	bus->alert_low_pct = low_pct;
	return 0;
}

/* Any thread: the bus clock in ns (CLOCK_MONOTONIC unless set). */
uint64_t bus_now(const struct fanq_bus *bus)
{
	struct timespec ts;

	if (bus->clock)
		return bus->clock(bus->clock_arg);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ registry */

static unsigned long id_hash(uint64_t id)
{
	return (unsigned long)(id * 0x9e3779b97f4a7c15ull); /* Fibonacci */
}

static int id_match(struct cds_lfht_node *node, const void *key)
{
	const struct fanq_sub *s = caa_container_of(node, struct fanq_sub, reg_node);

	return s->id == *(const uint64_t *)key;
}

/* Any thread, from fanq_sub_new(): ids are unique, no lookup needed. */
void bus_sub_register(struct fanq_bus *bus, struct fanq_sub *s)
{
	cds_lfht_node_init(&s->reg_node);
	FANQ_TSAN_RELEASE(s);
	urcu_bp_read_lock();
	cds_lfht_add(bus->subs, id_hash(s->id), &s->reg_node);
	fanq_read_unlock();
}

/* Inside rcu_read_lock: subscriber id, or NULL (valid until unlock). */
struct fanq_sub *bus_sub_find(struct fanq_bus *bus, uint64_t id)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(bus->subs, id_hash(id), id_match, &id, &it);
	node = cds_lfht_iter_get_node(&it);
	if (!node)
		return NULL;
	FANQ_TSAN_ACQUIRE(caa_container_of(node, struct fanq_sub, reg_node));
	return caa_container_of(node, struct fanq_sub, reg_node);
}

#ifdef FANQ_TSAN
char fanq_tsan_grace; /* see FANQ_TSAN_GRACE_OVER in internal.h */
#endif
