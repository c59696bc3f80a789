/* host-xfer.c: file transfers as a UI sees them.  Each change of a
 * transfer is an "xfer" event: what happened ("new", "add", "progress",
 * "cancel_local", "cancel_remote", "destroy"), its type, who, file name,
 * size, bytes sent and status; "progress" only when the bytes or the
 * status changed (libpurple calls update_progress often).
 */
#include "host.h"

typedef struct {
	size_t bytes;
	PurpleXferStatusType status;
} XferSeen;

static GList *xfers; /* PurpleXfer* between new_xfer and destroy */

static const char *
status_name(PurpleXferStatusType status)
{
	switch (status) {
	case PURPLE_XFER_STATUS_NOT_STARTED:
		return "not_started";
	case PURPLE_XFER_STATUS_ACCEPTED:
		return "accepted";
	case PURPLE_XFER_STATUS_STARTED:
		return "started";
	case PURPLE_XFER_STATUS_DONE:
		return "done";
	case PURPLE_XFER_STATUS_CANCEL_LOCAL:
		return "cancel_local";
	case PURPLE_XFER_STATUS_CANCEL_REMOTE:
		return "cancel_remote";
	case PURPLE_XFER_STATUS_UNKNOWN:
	default:
		return "unknown";
	}
}

static void
emit(PurpleXfer *xfer, const char *what)
{
	JsonBuilder *b = host_event_new("xfer");

	host_add_string(b, "what", what);
	host_add_string(b, "type",
	                purple_xfer_get_type(xfer) == PURPLE_XFER_SEND ? "send" : "receive");
	host_add_string(b, "who", purple_xfer_get_remote_user(xfer));
	host_add_string(b, "filename", purple_xfer_get_filename(xfer));
	host_add_int(b, "size", (gint64)purple_xfer_get_size(xfer));
	host_add_int(b, "bytes_sent", (gint64)purple_xfer_get_bytes_sent(xfer));
	host_add_string(b, "status", status_name(purple_xfer_get_status(xfer)));
	host_add_bool(b, "completed", purple_xfer_is_completed(xfer));
	host_event_emit(b);
}

static void
new_xfer(PurpleXfer *xfer)
{
	xfer->ui_data = g_new0(XferSeen, 1);
	xfers = g_list_append(xfers, xfer);
	emit(xfer, "new");
}

static void
destroy(PurpleXfer *xfer)
{
	emit(xfer, "destroy");
	xfers = g_list_remove(xfers, xfer);
	g_free(xfer->ui_data);
	xfer->ui_data = NULL;
}

static void
add_xfer(PurpleXfer *xfer)
{
	emit(xfer, "add");
}

static void
update_progress(PurpleXfer *xfer, double percent)
{
	XferSeen *seen = xfer->ui_data;

	if (seen != NULL && seen->bytes == purple_xfer_get_bytes_sent(xfer) &&
	    seen->status == purple_xfer_get_status(xfer))
		return;
	if (seen != NULL) {
		seen->bytes = purple_xfer_get_bytes_sent(xfer);
		seen->status = purple_xfer_get_status(xfer);
	}
	emit(xfer, "progress");
}

static void
cancel_local(PurpleXfer *xfer)
{
	emit(xfer, "cancel_local");
}

static void
cancel_remote(PurpleXfer *xfer)
{
	emit(xfer, "cancel_remote");
}

static PurpleXferUiOps xfer_ops = {
	.new_xfer = new_xfer,
	.destroy = destroy,
	.add_xfer = add_xfer,
	.update_progress = update_progress,
	.cancel_local = cancel_local,
	.cancel_remote = cancel_remote,
};

guint
host_xfer_cancel_all(void)
{
	guint n = 0;
	GList *copy = g_list_copy(xfers);

	for (GList *l = copy; l != NULL; l = l->next) {
		PurpleXfer *xfer = l->data;

		if (g_list_find(xfers, xfer) == NULL || purple_xfer_is_completed(xfer) ||
		    purple_xfer_is_canceled(xfer))
			continue;
		purple_xfer_cancel_local(xfer);
		n++;
	}
	g_list_free(copy);
	return n;
}

PurpleXferUiOps *
host_xfer_ui_ops(void)
{
	return &xfer_ops;
}
