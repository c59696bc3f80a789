/* wabiz-host: command line, libpurple boot and clean shutdown of the
 * headless test host.  Boots the core as Pidgin does (UI ops, buddy list,
 * prefs, saved status), creates one account and then serves commands until
 * "quit", EOF on stdin, SIGINT or SIGTERM. */
#include "host.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static Host the_host = {
	.reconnect_delay_ms = 1000,
};

/* The handle our signal connections hang on. */
static int signal_handle;

static GHashTable *ui_info;

Host *
host_get(void)
{
	return &the_host;
}

const char *
host_ui_id(void)
{
	return the_host.bitlbee ? HOST_BITLBEE_UI_ID : HOST_UI_ID;
}

void
host_request_quit(int exit_code)
{
	if (the_host.quitting)
		return;
	the_host.quitting = TRUE;
	the_host.exit_code = exit_code;
	if (the_host.loop != NULL)
		g_main_loop_quit(the_host.loop);
}

/* --- debug output: stderr only, stdout carries the events -------------- */

static void
debug_print(PurpleDebugLevel level, const char *category, const char *arg_s)
{
	static const char *const names[] = { "all", "misc", "info", "warning", "error", "fatal" };
	const char *name = (unsigned)level < G_N_ELEMENTS(names) ? names[level] : "?";
	gsize len = arg_s != NULL ? strlen(arg_s) : 0;

	fprintf(stderr, "purple %s %s: %s%s", name, category != NULL ? category : "-",
	        arg_s != NULL ? arg_s : "", len > 0 && arg_s[len - 1] == '\n' ? "" : "\n");
}

static gboolean
debug_is_enabled(PurpleDebugLevel level, const char *category)
{
	return the_host.debug;
}

static PurpleDebugUiOps debug_ops = {
	.print = debug_print,
	.is_enabled = debug_is_enabled,
};

static void
print_to_stderr(const gchar *text)
{
	fputs(text, stderr);
}

/* --- idle: the user is always at the keyboard ----------------------------- */

static time_t
get_time_idle(void)
{
	/* Without idle UI ops libpurple counts idle time from the epoch and
	 * sets the idle-away status at the first sign-on; Pidgin and Finch
	 * report real keyboard idle time.  A test host is never idle. */
	return 0;
}

static PurpleIdleUiOps idle_ops = {
	.get_time_idle = get_time_idle,
};

/* --- core UI ops ---------------------------------------------------------- */

static void
set_network_prefs(void)
{
	/* No traffic beyond loopback: automatic IP discovery would send UPnP
	 * multicast, port mapping would talk to the router. */
	purple_prefs_set_bool("/purple/network/auto_ip", FALSE);
	purple_prefs_set_bool("/purple/network/map_ports", FALSE);
}

static void
ui_prefs_init(void)
{
	/* Runs before the network subsystem adds these with its defaults (and
	 * looks up the public IP during core init). */
	purple_prefs_add_none("/purple");
	purple_prefs_add_none("/purple/network");
	purple_prefs_add_bool("/purple/network/auto_ip", FALSE);
	purple_prefs_add_bool("/purple/network/map_ports", FALSE);
	set_network_prefs();
}

static void
ui_init(void)
{
	purple_conversations_set_ui_ops(host_conversation_ui_ops());
	purple_blist_set_ui_ops(host_blist_ui_ops());
	purple_connections_set_ui_ops(host_connection_ui_ops());
	purple_accounts_set_ui_ops(host_account_ui_ops());
	purple_notify_set_ui_ops(host_notify_ui_ops());
	purple_request_set_ui_ops(host_request_ui_ops());
	purple_xfers_set_ui_ops(host_xfer_ui_ops());
	purple_idle_set_ui_ops(&idle_ops);

	host_conn_init(&signal_handle);
	host_conv_init(&signal_handle);
	host_blist_init(&signal_handle);
}

static void
ui_quit(void)
{
	/* Plugins are unloaded by now: close what is left without calling
	 * back into them. */
	host_request_close_all();
	host_notify_shutdown();
}

static GHashTable *
get_ui_info(void)
{
	if (ui_info == NULL) {
		ui_info = g_hash_table_new(g_str_hash, g_str_equal);
		g_hash_table_insert(ui_info, "name", (gpointer)host_ui_id());
		g_hash_table_insert(ui_info, "version", "1");
		g_hash_table_insert(ui_info, "client_type", "bot");
	}
	return ui_info;
}

static PurpleCoreUiOps core_ops = {
	.ui_prefs_init = ui_prefs_init,
	.ui_init = ui_init,
	.quit = ui_quit,
	.get_ui_info = get_ui_info,
};

/* --- account --------------------------------------------------------------- */

static gboolean
apply_options(PurpleAccount *account, char **options, GError **error)
{
	for (char **opt = options; opt != NULL && *opt != NULL; opt++) {
		char *eq = strchr(*opt, '=');
		char *key;
		gboolean ok;

		if (eq == NULL || eq == *opt) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "--option needs KEY=VALUE, not '%s'", *opt);
			return FALSE;
		}
		key = g_strndup(*opt, (gsize)(eq - *opt));
		ok = host_account_set_option(account, key, eq + 1, error);
		g_free(key);
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

static char *
protocol_list(void)
{
	GString *list = g_string_new(NULL);

	for (GList *l = purple_plugins_get_protocols(); l != NULL; l = l->next) {
		if (list->len > 0)
			g_string_append(list, ", ");
		g_string_append(list, ((PurplePlugin *)l->data)->info->id);
	}
	return g_string_free(list, FALSE);
}

static gboolean
setup_account(GError **error)
{
	PurpleAccount *account;
	PurpleSavedStatus *saved;
	gboolean existing;

	if (purple_find_prpl(the_host.protocol) == NULL) {
		char *list = protocol_list();

		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND,
		            "protocol plugin '%s' not found (loaded: %s)", the_host.protocol, list);
		g_free(list);
		return FALSE;
	}

	/* A user dir from an earlier run may hold the account already. */
	account = purple_accounts_find(the_host.username, the_host.protocol);
	existing = account != NULL;
	if (!existing)
		account = purple_account_new(the_host.username, the_host.protocol);
	if (the_host.password != NULL) {
		purple_account_set_password(account, the_host.password);
		purple_account_set_remember_password(account, TRUE);
	}
	if (!apply_options(account, the_host.options, error)) {
		if (!existing)
			purple_account_destroy(account);
		return FALSE;
	}
	if (!existing)
		purple_accounts_add(account);
	the_host.account = account;

	host_account_added(account, existing);

	/* Enabled accounts connect when an online saved status is activated. */
	if (!the_host.no_enable)
		purple_account_set_enabled(account, host_ui_id(), TRUE);
	saved = purple_savedstatus_find_transient_by_type_and_message(PURPLE_STATUS_AVAILABLE,
	                                                              NULL);
	if (saved == NULL)
		saved = purple_savedstatus_new(NULL, PURPLE_STATUS_AVAILABLE);
	purple_savedstatus_activate(saved);
	return TRUE;
}

/* --- main ------------------------------------------------------------------ */

static gboolean
quit_signal_cb(gpointer data)
{
	host_request_quit(0);
	return G_SOURCE_CONTINUE;
}

static gboolean
parse_args(int *argc, char ***argv)
{
	GOptionEntry entries[] = {
		{ "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &the_host.plugin_dir,
		  "Also load plugins from DIR", "DIR" },
		{ "user-dir", 0, 0, G_OPTION_ARG_FILENAME, &the_host.user_dir,
		  "libpurple's user dir (accounts, prefs, logs)", "DIR" },
		{ "protocol", 0, 0, G_OPTION_ARG_STRING, &the_host.protocol,
		  "Protocol plugin id (default prpl-wabiz)", "ID" },
		{ "account", 0, 0, G_OPTION_ARG_STRING, &the_host.username, "Account user name",
		  "USERNAME" },
		{ "password", 0, 0, G_OPTION_ARG_STRING, &the_host.password,
		  "Account password (remembered)", "PW" },
		{ "option", 0, 0, G_OPTION_ARG_STRING_ARRAY, &the_host.options,
		  "Protocol option, typed by the plugin's option list (repeatable)", "KEY=VALUE" },
		{ "reconnect-delay-ms", 0, 0, G_OPTION_ARG_INT, &the_host.reconnect_delay_ms,
		  "First automatic reconnect delay (default 1000)", "N" },
		{ "no-enable", 0, 0, G_OPTION_ARG_NONE, &the_host.no_enable,
		  "Create the account but do not enable it", NULL },
		{ "bitlbee", 0, 0, G_OPTION_ARG_NONE, &the_host.bitlbee,
		  "Act as bitlbee-libpurple: its UI id and only the UI ops it has", NULL },
		{ "debug", 0, 0, G_OPTION_ARG_NONE, &the_host.debug,
		  "libpurple debug output on stderr", NULL },
		{ NULL },
	};
	GOptionContext *context = g_option_context_new("- headless libpurple host for tests");
	GError *error = NULL;
	gboolean ok;

	g_option_context_add_main_entries(context, entries, NULL);
	ok = g_option_context_parse(context, argc, argv, &error);
	g_option_context_free(context);
	if (!ok) {
		fprintf(stderr, "wabiz-host: %s\n", error->message);
		g_error_free(error);
		return FALSE;
	}
	if (the_host.username == NULL || *the_host.username == '\0') {
		fprintf(stderr, "wabiz-host: --account is required\n");
		return FALSE;
	}
	if (the_host.reconnect_delay_ms < 0) {
		fprintf(stderr, "wabiz-host: --reconnect-delay-ms must not be negative\n");
		return FALSE;
	}
	if (the_host.protocol == NULL)
		the_host.protocol = g_strdup("prpl-wabiz");
	return TRUE;
}

static void
free_args(void)
{
	g_clear_pointer(&the_host.plugin_dir, g_free);
	g_clear_pointer(&the_host.user_dir, g_free);
	g_clear_pointer(&the_host.protocol, g_free);
	g_clear_pointer(&the_host.username, g_free);
	g_clear_pointer(&the_host.password, g_free);
	g_clear_pointer(&the_host.options, g_strfreev);
}

static void
emit_fatal(const char *message)
{
	JsonBuilder *b = host_event_new("fatal");

	host_add_string(b, "message", message);
	host_event_emit(b);
	fprintf(stderr, "wabiz-host: %s\n", message);
}

int
main(int argc, char **argv)
{
	GError *error = NULL;
	guint sigterm_id, sigint_id;
	JsonBuilder *b;

	if (!parse_args(&argc, &argv)) {
		free_args();
		return 2;
	}

	/* Like Pidgin: a peer closing a socket must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	/* Anything printed with g_print must not corrupt the event stream. */
	g_set_print_handler(print_to_stderr);
	/* Never register on (or autolaunch) the desktop's session bus: this is
	 * a test process, and libpurple is built with D-Bus support. */
	g_setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/wabiz-host-no-dbus", TRUE);
	g_unsetenv("DBUS_STARTER_ADDRESS");
	g_unsetenv("DBUS_STARTER_BUS_TYPE");

	the_host.loop = g_main_loop_new(NULL, FALSE);
	sigterm_id = g_unix_signal_add(SIGTERM, quit_signal_cb, NULL);
	sigint_id = g_unix_signal_add(SIGINT, quit_signal_cb, NULL);

	if (the_host.user_dir != NULL)
		purple_util_set_user_dir(the_host.user_dir);
	/* Output goes through debug_ops only: purple_debug_set_enabled(TRUE)
	 * would print every line a second time with g_print. */
	purple_debug_set_ui_ops(&debug_ops);
	purple_core_set_ui_ops(&core_ops);
	purple_eventloop_set_ui_ops(host_eventloop_ui_ops());
	if (the_host.plugin_dir != NULL)
		purple_plugins_add_search_path(the_host.plugin_dir);

	if (!purple_core_init(host_ui_id())) {
		emit_fatal("libpurple failed to initialise");
		g_source_remove(sigterm_id);
		g_source_remove(sigint_id);
		g_main_loop_unref(the_host.loop);
		free_args();
		return 1;
	}
	purple_set_blist(purple_blist_new());
	purple_blist_load();
	purple_prefs_load();
	set_network_prefs();

	if (!setup_account(&error)) {
		emit_fatal(error->message);
		g_error_free(error);
		the_host.exit_code = 2;
	} else {
		host_commands_start();
		b = host_event_new("ready");
		host_add_string(b, "ui", host_ui_id());
		host_add_string(b, "libpurple", purple_core_get_version());
		host_add_string(b, "protocol", the_host.protocol);
		host_add_string(b, "user_dir", purple_user_dir());
		host_event_emit(b);
		if (!the_host.quitting)
			g_main_loop_run(the_host.loop);
	}

	host_commands_stop();
	host_conn_shutdown();
	/* As if the user closed each dialog before quitting. */
	host_notify_close_all();
	purple_core_quit();
	host_blist_shutdown();
	host_conv_shutdown();
	g_clear_pointer(&ui_info, g_hash_table_destroy);

	g_source_remove(sigterm_id);
	g_source_remove(sigint_id);
	g_main_loop_unref(the_host.loop);
	the_host.loop = NULL;
	free_args();
	return the_host.exit_code;
}
