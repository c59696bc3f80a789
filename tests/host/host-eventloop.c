/* wabiz-host: libpurple's event loop UI ops on the GLib main loop, the way a
 * GLib-based UI (Pidgin, Finch) provides them. */
#include "host.h"

#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

typedef struct {
	PurpleInputFunction func;
	gpointer data;
	PurpleInputCondition wanted;
} HostInput;

/* ---- slow dispatches (bench only) ---------------------------------------
 * With WABIZ_HOST_SLOW_MS=N in the environment, every libpurple timeout
 * or input callback (the plugin's timers and sockets all come through
 * these ops) that holds the main loop N ms or more is reported as a
 * "slow-dispatch" event: its kind, its function (module, offset in it for
 * addr2line, the nearest exported symbol) and its wall and CPU time. */

static gint64
slow_ms(void)
{
	static gint64 ms = -1;

	if (ms < 0) {
		const char *env = g_getenv("WABIZ_HOST_SLOW_MS");

		ms = env != NULL ? g_ascii_strtoll(env, NULL, 10) : 0;
		if (ms < 0)
			ms = 0;
	}
	return ms;
}

static gint64
thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void
slow_report(const char *kind, gpointer func, gint64 wall_start, gint64 cpu_start)
{
	gint64 wall = g_get_monotonic_time() - wall_start;
	Dl_info info = { 0 };
	JsonBuilder *b;
	char offset[32];

	if (wall < slow_ms() * 1000)
		return;
	b = host_event_new("slow-dispatch");
	host_add_string(b, "kind", kind);
	if (dladdr(func, &info) != 0 && info.dli_fname != NULL) {
		host_add_string(b, "module", info.dli_fname);
		g_snprintf(offset, sizeof offset, "0x%" G_GINTPTR_MODIFIER "x",
		           (guintptr)func - (guintptr)info.dli_fbase);
		host_add_string(b, "offset", offset);
		host_add_string(b, "nearest_symbol", info.dli_sname);
	}
	host_add_int(b, "start_us", wall_start); /* g_get_monotonic_time(): perf record -k mono */
	host_add_int(b, "wall_us", wall);
	host_add_int(b, "cpu_us", thread_cpu_us() - cpu_start);
	host_event_emit(b);
}

typedef struct {
	GSourceFunc func;
	gpointer data;
} SlowTimeout;

static gboolean
slow_timeout_dispatch(gpointer user_data)
{
	SlowTimeout *t = user_data;
	gint64 wall = g_get_monotonic_time();
	gint64 cpu = thread_cpu_us();
	gboolean again = t->func(t->data);

	slow_report("timeout", (gpointer)t->func, wall, cpu);
	return again;
}

static guint
slow_timeout_add(gboolean seconds, guint interval, GSourceFunc function, gpointer data)
{
	SlowTimeout *t = g_new0(SlowTimeout, 1);

	t->func = function;
	t->data = data;
	if (seconds)
		return g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, interval,
		                                  slow_timeout_dispatch, t, g_free);
	return g_timeout_add_full(G_PRIORITY_DEFAULT, interval, slow_timeout_dispatch, t, g_free);
}

#define HOST_READ_COND (G_IO_IN | G_IO_HUP | G_IO_ERR)
#define HOST_WRITE_COND (G_IO_OUT | G_IO_HUP | G_IO_ERR)

static gboolean
input_dispatch(GIOChannel *source, GIOCondition condition, gpointer user_data)
{
	HostInput *input = user_data;
	PurpleInputCondition cond = 0;

	/* Report only what the caller asked for: a hang-up wakes a reader as a
	 * read and a writer as a write, and each then sees the error. */
	if ((input->wanted & PURPLE_INPUT_READ) && (condition & HOST_READ_COND))
		cond |= PURPLE_INPUT_READ;
	if ((input->wanted & PURPLE_INPUT_WRITE) && (condition & HOST_WRITE_COND))
		cond |= PURPLE_INPUT_WRITE;
	if (cond != 0) {
		gint64 wall = slow_ms() > 0 ? g_get_monotonic_time() : 0;
		gint64 cpu = slow_ms() > 0 ? thread_cpu_us() : 0;

		input->func(input->data, g_io_channel_unix_get_fd(source), cond);
		if (slow_ms() > 0)
			slow_report("input", (gpointer)input->func, wall, cpu);
	}
	return TRUE;
}

static guint
host_input_add(int fd, PurpleInputCondition cond, PurpleInputFunction func, gpointer user_data)
{
	HostInput *input;
	GIOChannel *channel;
	GIOCondition gcond = 0;
	guint id;

	if (cond & PURPLE_INPUT_READ)
		gcond |= HOST_READ_COND;
	if (cond & PURPLE_INPUT_WRITE)
		gcond |= HOST_WRITE_COND;

	input = g_new0(HostInput, 1);
	input->func = func;
	input->data = user_data;
	input->wanted = cond;

	channel = g_io_channel_unix_new(fd);
	id = g_io_add_watch_full(channel, G_PRIORITY_DEFAULT, gcond, input_dispatch, input, g_free);
	g_io_channel_unref(channel);
	return id;
}

static guint
host_timeout_add(guint interval, GSourceFunc function, gpointer data)
{
	if (slow_ms() > 0)
		return slow_timeout_add(FALSE, interval, function, data);
	return g_timeout_add(interval, function, data);
}

static guint
host_timeout_add_seconds(guint interval, GSourceFunc function, gpointer data)
{
	if (slow_ms() > 0)
		return slow_timeout_add(TRUE, interval, function, data);
	return g_timeout_add_seconds(interval, function, data);
}

static gboolean
host_source_remove(guint handle)
{
	return g_source_remove(handle);
}

static PurpleEventLoopUiOps eventloop_ops = {
	.timeout_add = host_timeout_add,
	.timeout_remove = host_source_remove,
	.input_add = host_input_add,
	.input_remove = host_source_remove,
	.input_get_error = NULL,
	.timeout_add_seconds = host_timeout_add_seconds,
};

/* ---- long turns of the loop (bench only) --------------------------------
 * With WABIZ_SLOW_TURNS=<file> in the environment, every turn of the main
 * loop (from poll's return to the next poll: checking and dispatching what
 * was ready) longer than SLOW_TURN_US is appended to <file> as "<wall ms>
 * <CPU ms of the thread>": a long turn with little CPU is the thread waiting
 * for a core, one with as much CPU is work (bench/apply.py). */
#define SLOW_TURN_US 15000

static GPollFunc slow_poll_next;
static const char *slow_path;
static gint64 slow_wall_us; /* when poll returned */
static gint64 slow_cpu_us;

static gint
slow_poll(GPollFD *fds, guint n, gint timeout)
{
	gint64 now = g_get_monotonic_time();
	gint ret;

	if (slow_wall_us > 0 && now - slow_wall_us > SLOW_TURN_US) {
		FILE *f = fopen(slow_path, "a");

		if (f != NULL) {
			fprintf(f, "%.1f %.1f\n", (double)(now - slow_wall_us) / 1000.0,
			        (double)(thread_cpu_us() - slow_cpu_us) / 1000.0);
			fclose(f);
		}
	}
	ret = slow_poll_next(fds, n, timeout);
	slow_wall_us = g_get_monotonic_time();
	slow_cpu_us = thread_cpu_us();
	return ret;
}

PurpleEventLoopUiOps *
host_eventloop_ui_ops(void)
{
	slow_path = g_getenv("WABIZ_SLOW_TURNS");
	if (slow_path != NULL && slow_poll_next == NULL) {
		slow_poll_next = g_main_context_get_poll_func(NULL);
		g_main_context_set_poll_func(NULL, slow_poll);
	}
	return &eventloop_ops;
}
