/* wabiz-host: connection UI ops, the reconnect policy and account events.
 *
 * The reconnect policy is Pidgin's (gtkconn.c): a non-fatal disconnect
 * reason schedules a reconnect with a doubling delay, a fatal one disables
 * the account until the user acts.  The "cycle" command (connect, wait for
 * sign-on, disconnect, N times) lives here too, for leak tests. */
#include "host.h"

#define HOST_RECONNECT_MAX_FACTOR 30
/* A reconnect that fires before libpurple finished tearing down the failed
 * connection (it does that from a zero timeout) tries again this soon. */
#define HOST_RECONNECT_RETRY_MS 20

typedef struct {
	HostCmd *cmd;
	int count;
	int done;
	int timeout_ms;
	guint timeout_id;
	guint step_id;
} HostCycle;

static struct {
	guint reconnect_id;
	guint delay_ms; /* last delay used; 0 after a successful sign-on */
	guint attempts;
	HostCycle *cycle;
} conn;

static gboolean
is_our_account(PurpleAccount *account)
{
	return account != NULL && account == host_get()->account;
}

/* --- reconnect policy ------------------------------------------------- */

void
host_conn_cancel_reconnect(void)
{
	if (conn.reconnect_id != 0) {
		g_source_remove(conn.reconnect_id);
		conn.reconnect_id = 0;
	}
}

static gboolean
reconnect_cb(gpointer data)
{
	PurpleAccount *account = host_get()->account;

	conn.reconnect_id = 0;
	if (account == NULL || !purple_account_get_enabled(account, host_ui_id()))
		return G_SOURCE_REMOVE;
	if (!purple_account_is_disconnected(account)) {
		PurpleConnection *gc = purple_account_get_connection(account);

		/* libpurple still has to tear the failed connection down (from
		 * its own zero timeout): look again soon.  Otherwise the user
		 * connected it meanwhile. */
		if (gc != NULL && gc->disconnect_timeout != 0)
			conn.reconnect_id =
			        g_timeout_add(HOST_RECONNECT_RETRY_MS, reconnect_cb, NULL);
		return G_SOURCE_REMOVE;
	}
	if (purple_status_is_online(purple_account_get_active_status(account)))
		purple_account_connect(account);
	return G_SOURCE_REMOVE;
}

static void
schedule_reconnect(void)
{
	guint base = (guint)MAX(host_get()->reconnect_delay_ms, 0);
	guint max = base * HOST_RECONNECT_MAX_FACTOR;
	JsonBuilder *b;

	if (conn.delay_ms == 0)
		conn.delay_ms = base;
	else
		conn.delay_ms = MIN(conn.delay_ms * 2, max);
	conn.attempts++;

	host_conn_cancel_reconnect();
	conn.reconnect_id = g_timeout_add(conn.delay_ms, reconnect_cb, NULL);

	b = host_event_new("reconnect-scheduled");
	host_add_int(b, "delay_ms", conn.delay_ms);
	host_add_int(b, "attempt", conn.attempts);
	host_event_emit(b);
}

static void
reset_reconnect(void)
{
	host_conn_cancel_reconnect();
	conn.delay_ms = 0;
	conn.attempts = 0;
}

/* --- cycle ------------------------------------------------------------ */

static void
cycle_finish(const char *error)
{
	HostCycle *cycle = conn.cycle;

	if (cycle == NULL)
		return;
	conn.cycle = NULL;
	if (cycle->timeout_id != 0)
		g_source_remove(cycle->timeout_id);
	if (cycle->step_id != 0)
		g_source_remove(cycle->step_id);

	if (error != NULL) {
		host_cmd_error(cycle->cmd, "cycle %d of %d: %s", cycle->done + 1, cycle->count,
		               error);
	} else {
		JsonBuilder *b = host_cmd_ok_begin(cycle->cmd);

		host_add_int(b, "count", cycle->done);
		host_event_emit(b);
	}
	host_cmd_free(cycle->cmd);
	g_free(cycle);
}

static gboolean
cycle_timeout_cb(gpointer data)
{
	char *msg;

	if (conn.cycle == NULL)
		return G_SOURCE_REMOVE;
	conn.cycle->timeout_id = 0;
	msg = g_strdup_printf("no signed-on within %d ms", conn.cycle->timeout_ms);
	cycle_finish(msg);
	g_free(msg);
	return G_SOURCE_REMOVE;
}

static void
cycle_connect(void)
{
	HostCycle *cycle = conn.cycle;
	PurpleAccount *account = host_get()->account;

	if (!purple_account_get_enabled(account, host_ui_id())) {
		cycle_finish("the account is not enabled");
		return;
	}
	cycle->timeout_id = g_timeout_add(cycle->timeout_ms, cycle_timeout_cb, NULL);
	purple_account_connect(account);
}

static gboolean
cycle_step_cb(gpointer data)
{
	HostCycle *cycle = conn.cycle;
	JsonBuilder *b;

	if (cycle == NULL)
		return G_SOURCE_REMOVE;
	cycle->step_id = 0;

	/* Signed on: disconnect as the user would, outside libpurple's
	 * signed-on emission. */
	purple_account_disconnect(host_get()->account);
	cycle->done++;
	b = host_event_new("cycle");
	host_add_int(b, "done", cycle->done);
	host_add_int(b, "count", cycle->count);
	host_event_emit(b);

	if (cycle->done >= cycle->count)
		cycle_finish(NULL);
	else
		cycle_connect();
	return G_SOURCE_REMOVE;
}

void
host_conn_start_cycle(HostCmd *cmd, int count, int timeout_ms)
{
	PurpleAccount *account = host_get()->account;
	HostCycle *cycle;

	if (conn.cycle != NULL) {
		host_cmd_error(cmd, "a cycle is already running");
		return;
	}
	if (count < 1 || timeout_ms < 1) {
		host_cmd_error(cmd, "count and timeout_ms must be positive");
		return;
	}
	if (!purple_account_get_enabled(account, host_ui_id())) {
		host_cmd_error(cmd, "the account is not enabled");
		return;
	}

	reset_reconnect();
	if (!purple_account_is_disconnected(account))
		purple_account_disconnect(account);

	cycle = g_new0(HostCycle, 1);
	cycle->cmd = host_cmd_copy(cmd);
	cycle->count = count;
	cycle->timeout_ms = timeout_ms;
	conn.cycle = cycle;
	cycle_connect();
}

/* --- connection UI ops ------------------------------------------------ */

static void
connect_progress(PurpleConnection *gc, const char *text, size_t step, size_t step_count)
{
	JsonBuilder *b = host_event_new("progress");

	host_add_string(b, "text", text);
	host_add_int(b, "step", (gint64)step);
	host_add_int(b, "count", (gint64)step_count);
	host_event_emit(b);
}

static void
notice(PurpleConnection *gc, const char *text)
{
	JsonBuilder *b = host_event_new("connection-notice");

	host_add_string(b, "text", text);
	host_event_emit(b);
}

static void
report_disconnect_reason(PurpleConnection *gc, PurpleConnectionError reason, const char *text)
{
	PurpleAccount *account = purple_connection_get_account(gc);
	gboolean fatal = purple_connection_error_is_fatal(reason);
	JsonBuilder *b = host_event_new("disconnect");

	host_add_int(b, "reason", reason);
	host_add_string(b, "reason_name", host_error_name(reason));
	host_add_bool(b, "fatal", fatal);
	host_add_string(b, "description", text);
	host_add_account(b, account);
	host_event_emit(b);

	if (conn.cycle != NULL) {
		char *msg = g_strdup_printf("disconnected: %s: %s", host_error_name(reason),
		                            text != NULL ? text : "");

		cycle_finish(msg);
		g_free(msg);
	}

	if (!is_our_account(account))
		return;
	if (!fatal) {
		schedule_reconnect();
	} else {
		/* Pidgin disables the account until the user fixes it.  libpurple
		 * set wants_to_die first, so this does not free @gc under us. */
		reset_reconnect();
		purple_account_set_enabled(account, host_ui_id(), FALSE);
	}
}

static void
network_connected(void)
{
	host_event_emit(host_event_new("network-connected"));
}

static void
network_disconnected(void)
{
	host_event_emit(host_event_new("network-disconnected"));
}

static PurpleConnectionUiOps connection_ops = {
	.connect_progress = connect_progress,
	.notice = notice,
	.network_connected = network_connected,
	.network_disconnected = network_disconnected,
	.report_disconnect_reason = report_disconnect_reason,
};

PurpleConnectionUiOps *
host_connection_ui_ops(void)
{
	return &connection_ops;
}

/* --- signals ---------------------------------------------------------- */

static void
signing_on_cb(PurpleConnection *gc, gpointer data)
{
	JsonBuilder *b = host_event_new("connecting");

	host_add_account(b, purple_connection_get_account(gc));
	host_event_emit(b);
}

static void
signed_on_cb(PurpleConnection *gc, gpointer data)
{
	JsonBuilder *b = host_event_new("signed-on");

	host_add_string(b, "display_name", purple_connection_get_display_name(gc));
	host_add_account(b, purple_connection_get_account(gc));
	host_event_emit(b);

	if (is_our_account(purple_connection_get_account(gc)))
		reset_reconnect();
	if (conn.cycle != NULL && conn.cycle->step_id == 0) {
		if (conn.cycle->timeout_id != 0) {
			g_source_remove(conn.cycle->timeout_id);
			conn.cycle->timeout_id = 0;
		}
		conn.cycle->step_id = g_idle_add(cycle_step_cb, NULL);
	}
}

static void
signed_off_cb(PurpleConnection *gc, gpointer data)
{
	JsonBuilder *b = host_event_new("signed-off");

	host_add_account(b, purple_connection_get_account(gc));
	host_event_emit(b);
}

static void
account_enabled_cb(PurpleAccount *account, gpointer data)
{
	host_event_emit(host_event_new("account-enabled"));
}

static void
account_disabled_cb(PurpleAccount *account, gpointer data)
{
	if (is_our_account(account))
		reset_reconnect();
	host_event_emit(host_event_new("account-disabled"));
}

void
host_conn_init(void *handle)
{
	void *conns = purple_connections_get_handle();
	void *accounts = purple_accounts_get_handle();

	purple_signal_connect(conns, "signing-on", handle, PURPLE_CALLBACK(signing_on_cb), NULL);
	purple_signal_connect(conns, "signed-on", handle, PURPLE_CALLBACK(signed_on_cb), NULL);
	purple_signal_connect(conns, "signed-off", handle, PURPLE_CALLBACK(signed_off_cb), NULL);
	purple_signal_connect(accounts, "account-enabled", handle,
	                      PURPLE_CALLBACK(account_enabled_cb), NULL);
	purple_signal_connect(accounts, "account-disabled", handle,
	                      PURPLE_CALLBACK(account_disabled_cb), NULL);
}

void
host_conn_shutdown(void)
{
	cycle_finish("the host is quitting");
	reset_reconnect();
}

/* --- account UI ops --------------------------------------------------- */

static void
account_notify_added(PurpleAccount *account, const char *remote_user, const char *id,
                     const char *alias, const char *message)
{
	JsonBuilder *b = host_event_new("account-notify-added");

	host_add_string(b, "remote_user", remote_user);
	host_add_string(b, "alias", alias);
	host_add_string(b, "message", message);
	host_event_emit(b);
}

static void
account_status_changed(PurpleAccount *account, PurpleStatus *status)
{
	JsonBuilder *b = host_event_new("account-status");

	host_add_string(b, "status_id", purple_status_get_id(status));
	host_add_string(b, "status_name", purple_status_get_name(status));
	host_add_string(b, "message", purple_status_get_attr_string(status, "message"));
	host_event_emit(b);
}

static void
account_request_add(PurpleAccount *account, const char *remote_user, const char *id,
                    const char *alias, const char *message)
{
	JsonBuilder *b = host_event_new("account-request-add");

	host_add_string(b, "remote_user", remote_user);
	host_add_string(b, "alias", alias);
	host_add_string(b, "message", message);
	host_event_emit(b);
}

static PurpleAccountUiOps account_ops = {
	.notify_added = account_notify_added,
	.status_changed = account_status_changed,
	.request_add = account_request_add,
};

PurpleAccountUiOps *
host_account_ui_ops(void)
{
	return &account_ops;
}
