/*
 * fanq-uv.c - fanq inside a libuv loop.
 *
 * The loop watches the group's eventfd with uv_poll; a uv_timer publishes
 * one message per tick.  When the eventfd fires, the poll callback takes
 * every ready subscriber from the group and pops it empty.  Everything
 * runs in the loop's thread: fanq adds no thread of its own.
 */
#include <fanq.h>
#include <uv.h>

#include <stdio.h>

#define MESSAGES 10
#define TICK_MS 10

struct app {
	fanq_channel *ch;
	fanq_group *group;
	uv_poll_t poll;
	uv_timer_t timer;
	int published, received;
};

/* Loop thread: pop one ready subscriber until it is empty. */
static void _drain_sub(struct app *app, fanq_sub *sub)
{
	fanq_entry e;

	while (fanq_sub_pop(sub, &e) == 0) {
		if (e.kind == FANQ_ENTRY_MSG) {
			printf("received %s #%llu: %.*s\n", fanq_channel_name(e.ch),
			       (unsigned long long)e.seq, (int)fanq_msg_len(e.msg),
			       (const char *)fanq_msg_data(e.msg));
			fanq_msg_release(e.msg);
			app->received++;
		}
	}
}

/*
 * Loop thread: the group's eventfd is readable.  fanq_group_next_ready()
 * resets it once the ready list is empty, so there is nothing to read here.
 */
static void _on_ready(uv_poll_t *h, int status, int events)
{
	struct app *app = h->data;
	fanq_sub *sub;

	(void)events;
	if (status < 0)
		return;
	while (fanq_group_next_ready(app->group, &sub) == 0)
		_drain_sub(app, sub);
	if (app->received == MESSAGES)
		uv_poll_stop(h);
}

/* Loop thread: publish the next message, stop after MESSAGES. */
static void _on_tick(uv_timer_t *t)
{
	struct app *app = t->data;
	char text[32];
	int len = snprintf(text, sizeof(text), "tick %d", ++app->published);

	if (fanq_publish(app->ch, text, (size_t)len, 0, NULL) < 0 ||
	    app->published == MESSAGES)
		uv_timer_stop(t);
}

static int _run(struct app *app, uv_loop_t *loop)
{
	app->poll.data = app->timer.data = app;
	if (uv_poll_init(loop, &app->poll, fanq_group_fd(app->group)) ||
	    uv_poll_start(&app->poll, UV_READABLE, _on_ready) ||
	    uv_timer_init(loop, &app->timer) ||
	    uv_timer_start(&app->timer, _on_tick, TICK_MS, TICK_MS))
		return -1;
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&app->poll, NULL);
	uv_close((uv_handle_t *)&app->timer, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	return app->received == MESSAGES ? 0 : -1;
}

int main(void)
{
	struct app app = { 0 };
	fanq_bus *bus;
	fanq_sub *sub;
	int rc = 1;

	if (fanq_bus_new(&bus))
		return 1;
	if (fanq_channel_open(bus, "ticks", &app.ch))
		goto out_bus;
	if (fanq_group_new(bus, &app.group))
		goto out_channel;
	if (fanq_sub_new(bus, &sub))
		goto out_group;
	if (fanq_group_attach(app.group, sub) == 0 &&
	    fanq_subscribe(sub, app.ch) == 0 &&
	    _run(&app, uv_default_loop()) == 0)
		rc = 0;
	printf("published %d, received %d\n", app.published, app.received);
	fanq_sub_close(sub);
out_group:
	fanq_group_close(app.group);
out_channel:
	fanq_channel_release(app.ch);
out_bus:
	fanq_bus_close(bus);
	uv_loop_close(uv_default_loop());
	return rc;
}
