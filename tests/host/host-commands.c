/* wabiz-host: reads commands (one JSON object per line) from stdin and runs
 * them as a user of Pidgin would act: each command gets exactly one answer,
 * "ok" or "error" ("pong" for ping), carrying the command's "tag" if any. */
#include "host.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Deeper input is refused before json-glib sees it (it recurses). */
#define HOST_MAX_JSON_DEPTH 64

struct _HostCmd {
	char *name;      /* NULL when the line had no usable "cmd" */
	JsonObject *obj; /* the whole command */
	JsonNode *tag;   /* echoed in the answer; may be NULL */
	/* the account named by "account" (a user name), else the host's first */
	PurpleAccount *account;
};

static GIOChannel *in_channel;
static guint in_watch;
static int in_flags = -1; /* fd 0's flags before we made it non-blocking */

/* --- answers --------------------------------------------------------------- */

HostCmd *
host_cmd_copy(const HostCmd *cmd)
{
	HostCmd *copy = g_new0(HostCmd, 1);

	copy->name = g_strdup(cmd->name);
	copy->obj = cmd->obj != NULL ? json_object_ref(cmd->obj) : NULL;
	copy->tag = cmd->tag != NULL ? json_node_copy(cmd->tag) : NULL;
	copy->account = cmd->account;
	return copy;
}

void
host_cmd_free(HostCmd *cmd)
{
	if (cmd == NULL)
		return;
	g_free(cmd->name);
	if (cmd->obj != NULL)
		json_object_unref(cmd->obj);
	if (cmd->tag != NULL)
		json_node_unref(cmd->tag);
	g_free(cmd);
}

const char *
host_cmd_name(const HostCmd *cmd)
{
	return cmd->name;
}

static JsonBuilder *
answer_begin(const char *event, const HostCmd *cmd)
{
	JsonBuilder *b = host_event_new(event);

	host_add_string(b, "cmd", cmd->name);
	if (cmd->tag != NULL) {
		json_builder_set_member_name(b, "tag");
		json_builder_add_value(b, json_node_copy(cmd->tag));
	}
	return b;
}

JsonBuilder *
host_cmd_ok_begin(const HostCmd *cmd)
{
	return answer_begin("ok", cmd);
}

void
host_cmd_ok(const HostCmd *cmd)
{
	host_event_emit(host_cmd_ok_begin(cmd));
}

void
host_cmd_error(const HostCmd *cmd, const char *format, ...)
{
	JsonBuilder *b = answer_begin("error", cmd);
	va_list args;
	char *message;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	host_add_string(b, "message", message);
	host_event_emit(b);
	g_free(message);
}

static void
cmd_gerror(const HostCmd *cmd, GError *error)
{
	host_cmd_error(cmd, "%s", error->message);
	g_error_free(error);
}

/* --- argument helpers ------------------------------------------------------ */

static const char *
arg_string(const HostCmd *cmd, const char *name)
{
	JsonNode *node = json_object_get_member(cmd->obj, name);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

/* A required string argument; answers the error itself when it is missing. */
static const char *
need_string(const HostCmd *cmd, const char *name)
{
	const char *value = arg_string(cmd, name);

	if (value == NULL)
		host_cmd_error(cmd, "\"%s\" (a string) is required", name);
	return value;
}

static gboolean
arg_int(const HostCmd *cmd, const char *name, gint64 fallback, gint64 *out)
{
	JsonNode *node = json_object_get_member(cmd->obj, name);

	if (node == NULL) {
		*out = fallback;
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
		host_cmd_error(cmd, "\"%s\" must be an integer", name);
		return FALSE;
	}
	*out = json_node_get_int(node);
	return TRUE;
}

static PurpleConnection *
need_connection(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;

	if (!purple_account_is_connected(account)) {
		host_cmd_error(cmd, "the account is not connected");
		return NULL;
	}
	return purple_account_get_connection(account);
}

/* --- commands -------------------------------------------------------------- */

static void
cmd_ping(const HostCmd *cmd)
{
	JsonBuilder *b = answer_begin("pong", cmd);
	JsonNode *id = json_object_get_member(cmd->obj, "id");

	json_builder_set_member_name(b, "id");
	json_builder_add_value(b, id != NULL ? json_node_copy(id) : json_node_new(JSON_NODE_NULL));
	host_event_emit(b);
}

static PurpleConversation *
find_or_open_im(PurpleAccount *account, const char *name)
{
	PurpleConversation *conv =
	        purple_find_conversation_with_account(PURPLE_CONV_TYPE_IM, name, account);

	if (conv == NULL)
		conv = purple_conversation_new(PURPLE_CONV_TYPE_IM, account, name);
	return conv;
}

static void
cmd_send(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	const char *to = need_string(cmd, "to");
	const char *text = to != NULL ? need_string(cmd, "text") : NULL;
	PurpleConversation *conv;
	JsonBuilder *b;

	if (text == NULL || need_connection(cmd) == NULL)
		return;
	/* Exactly what typing into a Pidgin IM window does. */
	conv = find_or_open_im(account, to);
	purple_conv_im_send(PURPLE_CONV_IM(conv), text);

	b = host_cmd_ok_begin(cmd);
	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_event_emit(b);
}

/* The agent looks at conversation "conv" (focus), or at none ("conv"
 * missing): what Pidgin and Finch do when a conversation window gains
 * focus, including the UNSEEN update they make then. */
static void
cmd_focus(const HostCmd *cmd)
{
	Host *host = host_get();
	const char *name = arg_string(cmd, "conv");
	PurpleConversation *conv = NULL;

	if (name != NULL && need_connection(cmd) == NULL)
		return;
	g_free(host->focused);
	host->focused = g_strdup(name);
	if (name != NULL) {
		conv = find_or_open_im(host->account, name);
		purple_conversation_update(conv, PURPLE_CONV_UPDATE_UNSEEN);
	}
	host_cmd_ok(cmd);
}

/* The agent types in the IM with "to" ("state": typing, typed or
 * not-typing): Pidgin's serv_send_typing call; answers with the seconds
 * after which Pidgin would call it again ("again"). */
static void
cmd_typing(const HostCmd *cmd)
{
	const char *to = need_string(cmd, "to");
	const char *state_name = arg_string(cmd, "state");
	PurpleTypingState state = PURPLE_TYPING;
	PurpleConnection *gc;
	unsigned int again;
	JsonBuilder *b;

	if (to == NULL || (gc = need_connection(cmd)) == NULL)
		return;
	if (g_strcmp0(state_name, "typed") == 0)
		state = PURPLE_TYPED;
	else if (g_strcmp0(state_name, "not-typing") == 0)
		state = PURPLE_NOT_TYPING;
	else if (state_name != NULL && g_strcmp0(state_name, "typing") != 0) {
		host_cmd_error(cmd, "state must be typing, typed or not-typing");
		return;
	}
	again = serv_send_typing(gc, to, state);
	b = host_cmd_ok_begin(cmd);
	host_add_int(b, "again", again);
	host_event_emit(b);
}

static void
cmd_chat_send(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	const char *name = need_string(cmd, "conv");
	const char *text = name != NULL ? need_string(cmd, "text") : NULL;
	PurpleConversation *conv;

	if (text == NULL || need_connection(cmd) == NULL)
		return;
	conv = purple_find_conversation_with_account(PURPLE_CONV_TYPE_CHAT, name, account);
	if (conv == NULL) {
		host_cmd_error(cmd, "no chat named %s is open", name);
		return;
	}
	/* Exactly what typing into a Pidgin chat window does. */
	purple_conv_chat_send(PURPLE_CONV_CHAT(conv), text);
	host_cmd_ok(cmd);
}

/* What Pidgin's "Send File..." does once a file is picked (and BitlBee
 * after a DCC SEND): the prpl's send_file with the path. */
static void
cmd_send_file(const HostCmd *cmd)
{
	const char *to = need_string(cmd, "to");
	const char *path = to != NULL ? need_string(cmd, "path") : NULL;
	PurpleConnection *gc;

	if (path == NULL || (gc = need_connection(cmd)) == NULL)
		return;
	serv_send_file(gc, to, path);
	host_cmd_ok(cmd);
}

static void
cmd_xfer_cancel(const HostCmd *cmd)
{
	JsonBuilder *b = host_cmd_ok_begin(cmd);

	host_add_int(b, "cancelled", host_xfer_cancel_all());
	host_event_emit(b);
}

/* What pasting an image into Pidgin's message box does: the image goes
 * into the imgstore; the message then carries <img id="N">. ok has "id". */
static void
cmd_imgstore_add(const HostCmd *cmd)
{
	const char *path = need_string(cmd, "path");
	GError *error = NULL;
	char *data = NULL;
	gsize len = 0;
	char *name;
	JsonBuilder *b;
	int id;

	if (path == NULL)
		return;
	if (!g_file_get_contents(path, &data, &len, &error)) {
		cmd_gerror(cmd, error);
		return;
	}
	name = g_path_get_basename(path);
	id = purple_imgstore_add_with_id(data, len, name); /* takes data */
	g_free(name);
	b = host_cmd_ok_begin(cmd);
	host_add_int(b, "id", id);
	host_event_emit(b);
}

static void
cmd_command(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	const char *name = need_string(cmd, "conv");
	const char *text = name != NULL ? need_string(cmd, "text") : NULL;
	PurpleConversation *conv;
	PurpleCmdStatus status;
	char *markup;
	char *error = NULL;
	JsonBuilder *b;

	if (text == NULL)
		return;
	conv = purple_find_conversation_with_account(PURPLE_CONV_TYPE_ANY, name, account);
	if (conv == NULL)
		conv = purple_conversation_new(PURPLE_CONV_TYPE_IM, account, name);

	/* Pidgin hands the text after the '/' as cmdline and markup. */
	if (text[0] == '/')
		text++;
	markup = g_markup_escape_text(text, -1);
	status = purple_cmd_do_command(conv, text, markup, &error);

	b = host_cmd_ok_begin(cmd);
	host_add_string(b, "status", host_cmd_status_name(status));
	host_add_string(b, "error", error);
	host_event_emit(b);
	g_free(markup);
	g_free(error);
}

static void
cmd_answer(const HostCmd *cmd)
{
	GError *error = NULL;
	gint64 id;

	if (json_object_get_member(cmd->obj, "id") == NULL) {
		host_cmd_error(cmd, "\"id\" (the request id) is required");
		return;
	}
	if (!arg_int(cmd, "id", 0, &id))
		return;
	if (id <= 0 || id > G_MAXUINT) {
		host_cmd_error(cmd, "no request %" G_GINT64_FORMAT " is pending", id);
		return;
	}
	if (!host_request_answer((guint)id, cmd->obj, &error)) {
		cmd_gerror(cmd, error);
		return;
	}
	host_cmd_ok(cmd);
}

/* The host reconnects its first account only (Pidgin's policy). */
static void
cancel_reconnect(const HostCmd *cmd)
{
	if (cmd->account == host_get()->account)
		host_conn_cancel_reconnect();
}

static void
activate_current_status(PurpleAccount *account)
{
	/* As Pidgin does when an account is enabled: give it the current
	 * saved status, which connects it if that status is online. */
	purple_savedstatus_activate_for_account(purple_savedstatus_get_current(), account);
}

static void
cmd_enable(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;

	purple_account_set_enabled(account, host_ui_id(), TRUE);
	activate_current_status(account);
	host_cmd_ok(cmd);
}

static void
cmd_disable(const HostCmd *cmd)
{
	cancel_reconnect(cmd);
	purple_account_set_enabled(cmd->account, host_ui_id(), FALSE);
	host_cmd_ok(cmd);
}

static void
cmd_connect(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;

	if (!purple_account_get_enabled(account, host_ui_id())) {
		host_cmd_error(cmd, "the account is not enabled");
		return;
	}
	if (!purple_account_is_disconnected(account)) {
		host_cmd_error(cmd, "the account is already connected or connecting");
		return;
	}
	cancel_reconnect(cmd);
	purple_account_connect(account);
	host_cmd_ok(cmd);
}

static void
cmd_disconnect(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	gboolean was = !purple_account_is_disconnected(account);
	JsonBuilder *b;

	cancel_reconnect(cmd);
	if (was)
		purple_account_disconnect(account);
	b = host_cmd_ok_begin(cmd);
	host_add_bool(b, "was_connected", was);
	host_event_emit(b);
}

static void
cmd_cycle(const HostCmd *cmd)
{
	gint64 count, timeout_ms;

	if (!arg_int(cmd, "count", 1, &count) || !arg_int(cmd, "timeout_ms", 20000, &timeout_ms))
		return;
	if (count > G_MAXINT || timeout_ms > G_MAXINT) {
		host_cmd_error(cmd, "count or timeout_ms is too large");
		return;
	}
	host_conn_start_cycle((HostCmd *)cmd, (int)count, (int)timeout_ms);
}

static void
cmd_status(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	const char *id = need_string(cmd, "id");
	const char *message = arg_string(cmd, "message");
	PurpleStatus *status;

	if (id == NULL)
		return;
	status = purple_account_get_status(account, id);
	if (status == NULL) {
		host_cmd_error(cmd, "%s has no status '%s'",
		               purple_account_get_protocol_id(account), id);
		return;
	}
	if (!purple_status_is_online(status))
		cancel_reconnect(cmd);
	if (message != NULL)
		purple_account_set_status(account, id, TRUE, "message", message, NULL);
	else
		purple_account_set_status(account, id, TRUE, NULL);
	host_cmd_ok(cmd);
}

static void
cmd_blist(const HostCmd *cmd)
{
	guint count = host_blist_dump();
	JsonBuilder *b = host_cmd_ok_begin(cmd);

	host_add_int(b, "count", count);
	host_event_emit(b);
}

static void
cmd_convs(const HostCmd *cmd)
{
	JsonBuilder *b = host_cmd_ok_begin(cmd);

	json_builder_set_member_name(b, "convs");
	json_builder_begin_array(b);
	for (GList *l = purple_get_conversations(); l != NULL; l = l->next) {
		json_builder_begin_object(b);
		host_add_conv_members(b, l->data);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	host_event_emit(b);
}

/* The buddy list's view of a buddy: what the prpl's status_text and
 * tooltip_text give (Pidgin's list line and tooltip). */
static void
cmd_buddy_info(const HostCmd *cmd)
{
	const char *who = need_string(cmd, "who");
	PurpleConnection *gc;
	PurpleBuddy *buddy;
	PurplePluginProtocolInfo *prpl;
	PurpleNotifyUserInfo *info;
	JsonBuilder *b;
	char *text = NULL;

	if (who == NULL || (gc = need_connection(cmd)) == NULL)
		return;
	buddy = purple_find_buddy(purple_connection_get_account(gc), who);
	if (buddy == NULL) {
		host_cmd_error(cmd, "no such buddy");
		return;
	}
	prpl = PURPLE_PLUGIN_PROTOCOL_INFO(purple_connection_get_prpl(gc));
	b = host_cmd_ok_begin(cmd);
	if (prpl->status_text != NULL)
		text = prpl->status_text(buddy);
	host_add_string(b, "status_text", text);
	g_free(text);
	info = purple_notify_user_info_new();
	if (prpl->tooltip_text != NULL)
		prpl->tooltip_text(buddy, info, TRUE);
	json_builder_set_member_name(b, "tooltip");
	json_builder_begin_array(b);
	for (GList *l = purple_notify_user_info_get_entries(info); l != NULL; l = l->next) {
		json_builder_begin_object(b);
		host_add_string(b, "label", purple_notify_user_info_entry_get_label(l->data));
		host_add_string(b, "value", purple_notify_user_info_entry_get_value(l->data));
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	purple_notify_user_info_destroy(info);
	host_event_emit(b);
}

/* Runs the entry @path of @menu ("Sub/Entry" for an entry of a submenu) on
 * @node; frees the menu. TRUE when it ran. */
static gboolean
run_menu(GList *menu, const char *path, PurpleBlistNode *node)
{
	const char *slash = strchr(path, '/');
	gsize len = slash != NULL ? (gsize)(slash - path) : strlen(path);
	gboolean done = FALSE;

	for (GList *l = menu; l != NULL; l = l->next) {
		PurpleMenuAction *action = l->data;
		gboolean match = node != NULL && !done && action->label != NULL &&
		                 strlen(action->label) == len &&
		                 strncmp(action->label, path, len) == 0;

		if (match && slash != NULL) {
			done = run_menu(action->children, slash + 1, node);
			action->children = NULL;
		} else if (match && action->callback != NULL) {
			((void (*)(PurpleBlistNode *, gpointer))action->callback)(node,
			                                                          action->data);
			done = TRUE;
		}
		if (action->children != NULL)
			run_menu(action->children, "", NULL); /* frees them; runs nothing */
		action->children = NULL;
		purple_menu_action_free(action);
	}
	g_list_free(menu);
	return done;
}

/* Runs the entry @label of the prpl's buddy menu for @who (what a person
 * picks from the buddy's context menu in Pidgin or Finch); "Sub/Entry"
 * picks from a submenu. */
static void
cmd_buddy_menu(const HostCmd *cmd)
{
	const char *who = need_string(cmd, "who");
	const char *label = who != NULL ? need_string(cmd, "label") : NULL;
	PurpleConnection *gc;
	PurpleBuddy *buddy;
	PurplePluginProtocolInfo *prpl;
	GList *menu;
	gboolean done = FALSE;

	if (label == NULL || (gc = need_connection(cmd)) == NULL)
		return;
	buddy = purple_find_buddy(purple_connection_get_account(gc), who);
	prpl = PURPLE_PLUGIN_PROTOCOL_INFO(purple_connection_get_prpl(gc));
	if (buddy == NULL || prpl->blist_node_menu == NULL) {
		host_cmd_error(cmd, "no such buddy, or no buddy menu");
		return;
	}
	menu = prpl->blist_node_menu((PurpleBlistNode *)buddy);
	done = run_menu(menu, label, (PurpleBlistNode *)buddy);
	if (done)
		host_cmd_ok(cmd);
	else
		host_cmd_error(cmd, "no menu entry %s", label);
}

/* Runs the account action @name (the prpl's actions for the connection:
 * Pidgin's Accounts > <account> menu, Finch's Actions). */
static void
cmd_account_action(const HostCmd *cmd)
{
	const char *name = need_string(cmd, "name");
	PurpleConnection *gc;
	PurplePlugin *prpl;
	GList *actions;
	gboolean done = FALSE;

	if (name == NULL || (gc = need_connection(cmd)) == NULL)
		return;
	prpl = purple_connection_get_prpl(gc);
	actions = PURPLE_PLUGIN_ACTIONS(prpl, gc);
	for (GList *l = actions; l != NULL; l = l->next) {
		PurplePluginAction *action = l->data;

		if (action == NULL)
			continue; /* a separator */
		if (!done && g_strcmp0(action->label, name) == 0 && action->callback != NULL) {
			action->plugin = prpl;
			action->context = gc;
			action->callback(action);
			done = TRUE;
		}
		purple_plugin_action_free(action);
	}
	g_list_free(actions);
	if (done)
		host_cmd_ok(cmd);
	else
		host_cmd_error(cmd, "no account action %s", name);
}

/* purple_plugin_ipc_call with one string argument (plugins' test hooks). */
static void
cmd_ipc(const HostCmd *cmd)
{
	const char *plugin_id = need_string(cmd, "plugin");
	const char *name = plugin_id != NULL ? need_string(cmd, "name") : NULL;
	const char *arg = arg_string(cmd, "arg");
	PurplePlugin *plugin;
	gboolean ok = FALSE;

	if (name == NULL)
		return;
	plugin = purple_plugins_find_with_id(plugin_id);
	if (plugin == NULL) {
		host_cmd_error(cmd, "no such plugin");
		return;
	}
	purple_plugin_ipc_call(plugin, name, &ok, arg);
	if (!ok) {
		host_cmd_error(cmd, "no such IPC command (is the test hook enabled?)");
		return;
	}
	host_cmd_ok(cmd);
}

static void
cmd_close_conv(const HostCmd *cmd)
{
	const char *name = need_string(cmd, "conv");
	PurpleConversation *conv;

	if (name == NULL)
		return;
	conv = purple_find_conversation_with_account(PURPLE_CONV_TYPE_ANY, name, cmd->account);
	if (conv == NULL) {
		host_cmd_error(cmd, "no conversation '%s'", name);
		return;
	}
	/* Closing the window. */
	purple_conversation_destroy(conv);
	host_cmd_ok(cmd);
}

static void
cmd_get_info(const HostCmd *cmd)
{
	const char *who = need_string(cmd, "who");
	PurpleConnection *gc;

	if (who == NULL || (gc = need_connection(cmd)) == NULL)
		return;
	serv_get_info(gc, who);
	host_cmd_ok(cmd);
}

/* An option's value as the text an account editor takes; NULL: not a
 * string, an integer or a boolean. */
static char *
option_text(JsonNode *node)
{
	GType type;

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
		return NULL;
	type = json_node_get_value_type(node);
	if (type == G_TYPE_STRING)
		return g_strdup(json_node_get_string(node));
	if (type == G_TYPE_INT64)
		return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
	if (type == G_TYPE_BOOLEAN)
		return g_strdup(json_node_get_boolean(node) ? "true" : "false");
	return NULL;
}

static void
cmd_set_option(const HostCmd *cmd)
{
	const char *key = need_string(cmd, "key");
	GError *error = NULL;
	char *text;

	if (key == NULL)
		return;
	text = option_text(json_object_get_member(cmd->obj, "value"));
	if (text == NULL) {
		host_cmd_error(cmd, "\"value\" must be a string, an integer or a boolean");
		return;
	}
	if (!host_account_set_option(cmd->account, key, text, &error))
		cmd_gerror(cmd, error);
	else
		host_cmd_ok(cmd);
	g_free(text);
}

/* Sets the options of @account from the object @options; FALSE (answered):
 * a bad value or an unknown option. */
static gboolean
set_options(const HostCmd *cmd, PurpleAccount *account, JsonObject *options)
{
	JsonObjectIter iter;
	const char *key;
	JsonNode *node;

	json_object_iter_init(&iter, options);
	while (json_object_iter_next(&iter, &key, &node)) {
		char *text = option_text(node);
		GError *error = NULL;
		gboolean ok;

		if (text == NULL) {
			host_cmd_error(cmd, "option %s must be a string, an integer or a boolean",
			               key);
			return FALSE;
		}
		ok = host_account_set_option(account, key, text, &error);
		g_free(text);
		if (!ok) {
			cmd_gerror(cmd, error);
			return FALSE;
		}
	}
	return TRUE;
}

/* Another account of the host's protocol, as a person adds a second one in
 * Pidgin's Accounts window: "username", "password", "options" (an object of
 * protocol options, typed like --option) and "enable" (default true). The
 * one in the user dir already is reused. Commands name it in "account";
 * events about it carry its user name in "account". */
static void
cmd_add_account(const HostCmd *cmd)
{
	const char *username = need_string(cmd, "username");
	const char *password = arg_string(cmd, "password");
	JsonNode *options = json_object_get_member(cmd->obj, "options");
	JsonNode *enable = json_object_get_member(cmd->obj, "enable");
	PurpleAccount *account;
	gboolean existing;

	if (username == NULL)
		return;
	if ((options != NULL && !JSON_NODE_HOLDS_OBJECT(options)) ||
	    (enable != NULL && (!JSON_NODE_HOLDS_VALUE(enable) ||
	                        json_node_get_value_type(enable) != G_TYPE_BOOLEAN))) {
		host_cmd_error(cmd, "\"options\" must be an object and \"enable\" a boolean");
		return;
	}
	account = purple_accounts_find(username, host_get()->protocol);
	existing = account != NULL;
	if (!existing)
		account = purple_account_new(username, host_get()->protocol);
	if (password != NULL) {
		purple_account_set_password(account, password);
		purple_account_set_remember_password(account, TRUE);
	}
	if (options != NULL && !set_options(cmd, account, json_node_get_object(options))) {
		if (!existing)
			purple_account_destroy(account);
		return;
	}
	if (!existing)
		purple_accounts_add(account);
	host_account_added(account, existing);
	if (enable == NULL || json_node_get_boolean(enable)) {
		purple_account_set_enabled(account, host_ui_id(), TRUE);
		activate_current_status(account);
	}
	host_cmd_ok(cmd);
}

static void
cmd_add_buddy(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	const char *who = need_string(cmd, "who");
	const char *alias = arg_string(cmd, "alias");
	const char *group_name = arg_string(cmd, "group");
	PurpleGroup *group;
	PurpleBuddy *buddy;

	if (who == NULL)
		return;
	if (group_name == NULL)
		group_name = "Buddies";
	if (purple_find_buddy(account, who) != NULL) {
		host_cmd_error(cmd, "'%s' is already on the buddy list", who);
		return;
	}
	/* What Pidgin's "Add Buddy" dialog does. */
	group = purple_find_group(group_name);
	if (group == NULL) {
		group = purple_group_new(group_name);
		purple_blist_add_group(group, NULL);
	}
	buddy = purple_buddy_new(account, who, alias);
	purple_blist_add_buddy(buddy, NULL, group, NULL);
	purple_account_add_buddy(account, buddy);
	host_cmd_ok(cmd);
}

static void
cmd_remove_buddy(const HostCmd *cmd)
{
	PurpleAccount *account = cmd->account;
	const char *who = need_string(cmd, "who");
	PurpleBuddy *buddy;

	if (who == NULL)
		return;
	buddy = purple_find_buddy(account, who);
	if (buddy == NULL) {
		host_cmd_error(cmd, "'%s' is not on the buddy list", who);
		return;
	}
	purple_account_remove_buddy(account, buddy, purple_buddy_get_group(buddy));
	purple_blist_remove_buddy(buddy);
	host_cmd_ok(cmd);
}

static void
cmd_close_notify(const HostCmd *cmd)
{
	GError *error = NULL;
	gint64 id;

	if (!arg_int(cmd, "id", 0, &id))
		return;
	if (id <= 0 || id > G_MAXUINT) {
		host_cmd_error(cmd, "no notification %" G_GINT64_FORMAT " is shown", id);
		return;
	}
	if (!host_notify_close_by_id((guint)id, &error))
		cmd_gerror(cmd, error);
	else
		host_cmd_ok(cmd);
}

static void
cmd_search_button(const HostCmd *cmd)
{
	GError *error = NULL;
	gint64 id, button, row;

	if (!arg_int(cmd, "id", 0, &id) || !arg_int(cmd, "button", 0, &button) ||
	    !arg_int(cmd, "row", 0, &row))
		return;
	if (id <= 0 || id > G_MAXUINT || button < 0 || button > G_MAXUINT || row < 0 ||
	    row > G_MAXUINT) {
		host_cmd_error(cmd, "id, button or row is out of range");
		return;
	}
	if (!host_notify_search_button((guint)id, (guint)button, (guint)row, &error))
		cmd_gerror(cmd, error);
	else
		host_cmd_ok(cmd);
}

/* The gap meter: a repeating 5 ms timer on the main loop that records the
 * largest time between two of its runs (a stall of the loop: a callback
 * that held it, from the plugin or libpurple). Off until asked. */
#define GAP_METER_INTERVAL_MS 5

/* intervals kept for the percentile: an hour of ticks at most */
#define GAP_METER_KEPT (3600 * 1000 / GAP_METER_INTERVAL_MS)

static struct {
	guint timer;
	gint64 last;    /* monotonic time of the last tick, µs */
	gint64 max_gap; /* µs */
	gint64 ticks;
	GArray *intervals; /* gint64 µs between two ticks, since the start */
	/* what the main thread did between two ticks, µs: its CPU time and
	 * its time waiting for a core (the kernel's run-queue delay) */
	gint64 last_cpu, last_wait;
	gint64 gap_cpu, gap_wait; /* in the largest gap */
	gint64 max_cpu;           /* the most CPU time between two ticks */
	int schedstat;            /* /proc/thread-self/schedstat, -1 if none */
} gap_meter = { .schedstat = -1 };

/* The main thread's CPU time and run-queue delay so far, µs (the delay
 * stays 0 without the kernel's schedstat). */
static void
gap_meter_thread_times(gint64 *cpu, gint64 *wait)
{
	struct timespec ts;
	char buf[128];
	ssize_t n;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	*cpu = (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
	*wait = 0;
	if (gap_meter.schedstat >= 0 &&
	    (n = pread(gap_meter.schedstat, buf, sizeof buf - 1, 0)) > 0) {
		char *field;

		buf[n] = '\0';
		/* "<on cpu ns> <waiting on a run queue ns> <timeslices>" */
		field = strchr(buf, ' ');
		if (field != NULL)
			*wait = g_ascii_strtoll(field + 1, NULL, 10) / 1000;
	}
}

static gboolean
gap_meter_tick(gpointer data)
{
	gint64 now = g_get_monotonic_time();
	gint64 gap = now - gap_meter.last;
	gint64 cpu, wait;

	gap_meter_thread_times(&cpu, &wait);
	if (gap > gap_meter.max_gap) {
		gap_meter.max_gap = gap;
		gap_meter.gap_cpu = cpu - gap_meter.last_cpu;
		gap_meter.gap_wait = wait - gap_meter.last_wait;
	}
	gap_meter.max_cpu = MAX(gap_meter.max_cpu, cpu - gap_meter.last_cpu);
	gap_meter.last_cpu = cpu;
	gap_meter.last_wait = wait;
	gap_meter.last = now;
	gap_meter.ticks++;
	if (gap_meter.intervals->len < GAP_METER_KEPT)
		g_array_append_val(gap_meter.intervals, gap);
	return G_SOURCE_CONTINUE;
}

static gint
compare_gint64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return x < y ? -1 : x > y;
}

/* The 99th percentile of the intervals between ticks (nearest rank), µs;
 * 0 before the second tick. */
static gint64
gap_meter_p99(void)
{
	g_autoptr(GArray) sorted = NULL;
	guint rank;

	if (gap_meter.intervals == NULL || gap_meter.intervals->len == 0)
		return 0;
	sorted = g_array_copy(gap_meter.intervals);
	g_array_sort(sorted, compare_gint64);
	rank = (sorted->len * 99 + 99) / 100; /* ceil(len * 0.99), 1-based */
	return g_array_index(sorted, gint64, rank - 1);
}

static void
cmd_gap_meter(const HostCmd *cmd)
{
	const char *action = arg_string(cmd, "action");
	JsonBuilder *b;

	if (action == NULL || strcmp(action, "read") == 0) {
		/* reported as it stands */
	} else if (strcmp(action, "start") == 0 || strcmp(action, "reset") == 0) {
		if (gap_meter.timer == 0)
			gap_meter.timer =
			        g_timeout_add(GAP_METER_INTERVAL_MS, gap_meter_tick, NULL);
		if (gap_meter.schedstat < 0)
			gap_meter.schedstat =
			        open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
		gap_meter.last = g_get_monotonic_time();
		gap_meter_thread_times(&gap_meter.last_cpu, &gap_meter.last_wait);
		gap_meter.max_gap = 0;
		gap_meter.gap_cpu = 0;
		gap_meter.gap_wait = 0;
		gap_meter.max_cpu = 0;
		gap_meter.ticks = 0;
		if (gap_meter.intervals == NULL)
			gap_meter.intervals = g_array_new(FALSE, FALSE, sizeof(gint64));
		g_array_set_size(gap_meter.intervals, 0);
	} else if (strcmp(action, "stop") == 0) {
		if (gap_meter.timer != 0)
			g_source_remove(gap_meter.timer);
		gap_meter.timer = 0;
	} else {
		host_cmd_error(cmd, "action must be start, reset, read or stop");
		return;
	}
	b = host_cmd_ok_begin(cmd);
	host_add_bool(b, "running", gap_meter.timer != 0);
	host_add_int(b, "interval_ms", GAP_METER_INTERVAL_MS);
	host_add_int(b, "max_gap_us", gap_meter.max_gap);
	host_add_int(b, "ticks", gap_meter.ticks);
	host_add_int(b, "p99_gap_us", gap_meter_p99());
	host_add_int(b, "gap_cpu_us", gap_meter.gap_cpu);
	host_add_int(b, "gap_wait_us", gap_meter.gap_wait);
	host_add_bool(b, "wait_known", gap_meter.schedstat >= 0);
	host_add_int(b, "max_cpu_us", gap_meter.max_cpu);
	host_event_emit(b);
}

/* Holds the main loop for "ms" milliseconds (a known stall, for the gap
 * meter's own test): asleep, or with "busy" true computing until the main
 * thread has used that much CPU time. */
static void
cmd_stall(const HostCmd *cmd)
{
	gint64 ms;
	gboolean busy = json_object_get_boolean_member_with_default(cmd->obj, "busy", FALSE);

	if (!arg_int(cmd, "ms", 0, &ms))
		return;
	if (ms < 0 || ms > 10000) {
		host_cmd_error(cmd, "ms must be 0 to 10000");
		return;
	}
	if (busy) {
		gint64 start, now, wait;

		gap_meter_thread_times(&start, &wait);
		do
			gap_meter_thread_times(&now, &wait);
		while (now - start < ms * 1000);
	} else {
		g_usleep((gulong)ms * 1000);
	}
	host_cmd_ok(cmd);
}

static void
cmd_quit(const HostCmd *cmd)
{
	host_cmd_ok(cmd);
	host_request_quit(0);
}

static const struct {
	const char *name;
	void (*run)(const HostCmd *cmd);
} commands[] = {
	{ "ping", cmd_ping },
	{ "send", cmd_send },
	{ "chat_send", cmd_chat_send },
	{ "send_file", cmd_send_file },
	{ "imgstore_add", cmd_imgstore_add },
	{ "xfer_cancel", cmd_xfer_cancel },
	{ "command", cmd_command },
	{ "focus", cmd_focus },
	{ "typing", cmd_typing },
	{ "answer", cmd_answer },
	{ "enable", cmd_enable },
	{ "disable", cmd_disable },
	{ "connect", cmd_connect },
	{ "disconnect", cmd_disconnect },
	{ "cycle", cmd_cycle },
	{ "status", cmd_status },
	{ "blist", cmd_blist },
	{ "convs", cmd_convs },
	{ "close_conv", cmd_close_conv },
	{ "get_info", cmd_get_info },
	{ "buddy_info", cmd_buddy_info },
	{ "buddy_menu", cmd_buddy_menu },
	{ "account_action", cmd_account_action },
	{ "ipc", cmd_ipc },
	{ "set_option", cmd_set_option },
	{ "add_account", cmd_add_account },
	{ "add_buddy", cmd_add_buddy },
	{ "remove_buddy", cmd_remove_buddy },
	{ "close_notify", cmd_close_notify },
	{ "search_button", cmd_search_button },
	{ "gap_meter", cmd_gap_meter },
	{ "stall", cmd_stall },
	{ "quit", cmd_quit },
};

/* --- input ----------------------------------------------------------------- */

/* Bracket depth outside strings; stops counting past the limit. */
static gboolean
depth_ok(const char *text, gsize len)
{
	int depth = 0;
	gboolean in_string = FALSE;

	for (gsize i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = FALSE;
		} else if (c == '"') {
			in_string = TRUE;
		} else if (c == '[' || c == '{') {
			if (++depth > HOST_MAX_JSON_DEPTH)
				return FALSE;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return TRUE;
}

static void
run_line(const char *line, gsize len)
{
	HostCmd cmd = { 0 };
	JsonParser *parser;
	GError *error = NULL;
	JsonNode *root;
	JsonNode *name;

	if (!depth_ok(line, len)) {
		host_cmd_error(&cmd, "command nested deeper than %d levels", HOST_MAX_JSON_DEPTH);
		return;
	}
	parser = json_parser_new();
	if (!json_parser_load_from_data(parser, line, (gssize)len, &error)) {
		host_cmd_error(&cmd, "invalid JSON: %s", error->message);
		g_error_free(error);
		g_object_unref(parser);
		return;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		host_cmd_error(&cmd, "a command is a JSON object");
		g_object_unref(parser);
		return;
	}
	cmd.obj = json_node_get_object(root);
	cmd.tag = json_object_get_member(cmd.obj, "tag");
	name = json_object_get_member(cmd.obj, "cmd");
	if (name != NULL && JSON_NODE_HOLDS_VALUE(name) &&
	    json_node_get_value_type(name) == G_TYPE_STRING)
		cmd.name = (char *)json_node_get_string(name);

	cmd.account = host_get()->account;
	if (json_object_has_member(cmd.obj, "account")) {
		const char *username = arg_string(&cmd, "account");

		cmd.account = username != NULL
		                      ? purple_accounts_find(username, host_get()->protocol)
		                      : NULL;
	}
	if (cmd.name == NULL) {
		host_cmd_error(&cmd, "\"cmd\" (a string) is required");
	} else if (cmd.account == NULL) {
		host_cmd_error(&cmd, "\"account\" names no account of the host");
	} else {
		gsize i;

		for (i = 0; i < G_N_ELEMENTS(commands); i++) {
			if (strcmp(commands[i].name, cmd.name) == 0)
				break;
		}
		if (i < G_N_ELEMENTS(commands))
			commands[i].run(&cmd);
		else
			host_cmd_error(&cmd, "unknown command '%s'", cmd.name);
	}
	g_object_unref(parser);
}

static gboolean
is_blank(const char *line, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isspace(line[i]))
			return FALSE;
	}
	return TRUE;
}

static gboolean
stdin_cb(GIOChannel *channel, GIOCondition condition, gpointer data)
{
	for (;;) {
		char *line = NULL;
		gsize len = 0, terminator = 0;
		GError *error = NULL;
		GIOStatus status =
		        g_io_channel_read_line(channel, &line, &len, &terminator, &error);

		switch (status) {
		case G_IO_STATUS_NORMAL:
			if (terminator == 0)
				terminator = len;
			if (!is_blank(line, terminator))
				run_line(line, terminator);
			g_free(line);
			if (host_get()->quitting) {
				in_watch = 0;
				return G_SOURCE_REMOVE;
			}
			break;
		case G_IO_STATUS_AGAIN:
			return G_SOURCE_CONTINUE;
		case G_IO_STATUS_ERROR:
			g_warning("reading commands: %s", error->message);
			g_error_free(error);
			G_GNUC_FALLTHROUGH;
		case G_IO_STATUS_EOF:
		default:
			/* The test went away: shut down cleanly. */
			in_watch = 0;
			host_request_quit(0);
			return G_SOURCE_REMOVE;
		}
	}
}

void
host_commands_start(void)
{
	in_flags = fcntl(0, F_GETFL);
	in_channel = g_io_channel_unix_new(0);
	g_io_channel_set_encoding(in_channel, NULL, NULL);
	g_io_channel_set_flags(in_channel, G_IO_FLAG_NONBLOCK, NULL);
	in_watch = g_io_add_watch(in_channel, G_IO_IN | G_IO_HUP | G_IO_ERR, stdin_cb, NULL);
}

void
host_commands_stop(void)
{
	if (gap_meter.timer != 0) {
		g_source_remove(gap_meter.timer);
		gap_meter.timer = 0;
	}
	g_clear_pointer(&gap_meter.intervals, g_array_unref);
	if (gap_meter.schedstat >= 0) {
		close(gap_meter.schedstat);
		gap_meter.schedstat = -1;
	}
	if (in_watch != 0) {
		g_source_remove(in_watch);
		in_watch = 0;
	}
	g_clear_pointer(&in_channel, g_io_channel_unref);
	/* fd 0 may be shared with a shell: give it back as we found it. */
	if (in_flags != -1) {
		fcntl(0, F_SETFL, in_flags);
		in_flags = -1;
	}
}
