/* wabiz-host: libpurple's event loop UI ops on the GLib main loop, the way a
 * GLib-based UI (Pidgin, Finch) provides them. */
#include "host.h"

typedef struct {
	PurpleInputFunction func;
	gpointer data;
	PurpleInputCondition wanted;
} HostInput;

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
	if (cond != 0)
		input->func(input->data, g_io_channel_unix_get_fd(source), cond);
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
	return g_timeout_add(interval, function, data);
}

static guint
host_timeout_add_seconds(guint interval, GSourceFunc function, gpointer data)
{
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

PurpleEventLoopUiOps *
host_eventloop_ui_ops(void)
{
	return &eventloop_ops;
}
