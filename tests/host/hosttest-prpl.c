/* prpl-hosttest: a tiny protocol plugin that exists only to test wabiz-host.
 *
 * It signs on at once (or fails with the reason in its "fail_reason"
 * option) and registers slash commands that open every kind of request
 * dialog and notification, so the host's request/notify code is exercised
 * by its own tests, under valgrind and AddressSanitizer too.  Answers are
 * written back into the conversation as system lines.  It must never be
 * installed or shipped. */
#define PURPLE_PLUGINS 1 /* as purple.h defines it */

#include <purple.h>
#include <stdarg.h>
#include <string.h>

#define HT_ID "prpl-hosttest"

typedef struct {
	char *conv; /* the conversation of the last command */
	guint login_id;
	gboolean closing;
} HtData;

static GSList *cmd_ids;
static PurplePluginProtocolInfo prpl_info;

static HtData *
ht_data(PurpleConnection *gc)
{
	return purple_connection_get_protocol_data(gc);
}

/* Writes a system line into the IM conversation of the last command. */
static void ht_say(PurpleConnection *gc, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
ht_say(PurpleConnection *gc, const char *format, ...)
{
	HtData *ht = ht_data(gc);
	PurpleAccount *account = purple_connection_get_account(gc);
	PurpleConversation *conv;
	va_list args;
	char *text;
	char *html;

	if (ht->closing || ht->conv == NULL)
		return;
	conv = purple_find_conversation_with_account(PURPLE_CONV_TYPE_ANY, ht->conv, account);
	if (conv == NULL)
		conv = purple_conversation_new(PURPLE_CONV_TYPE_IM, account, ht->conv);
	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	html = g_markup_escape_text(text, -1);
	purple_conversation_write(conv, NULL, html, PURPLE_MESSAGE_SYSTEM, time(NULL));
	g_free(html);
	g_free(text);
}

/* --- request callbacks ---------------------------------------------------- */

static void
input_ok(PurpleConnection *gc, const char *value)
{
	ht_say(gc, "input ok: %s", value != NULL ? value : "(null)");
}

static void
input_cancel(PurpleConnection *gc, const char *value)
{
	ht_say(gc, "input cancel");
}

static void
choice_ok(PurpleConnection *gc, int value)
{
	ht_say(gc, "choice ok: %d", value);
}

static void
choice_cancel(PurpleConnection *gc, int value)
{
	ht_say(gc, "choice cancel");
}

static void
action_cb(PurpleConnection *gc, int index)
{
	ht_say(gc, "action: %d", index);
}

static void
fields_ok(PurpleConnection *gc, PurpleRequestFields *fields)
{
	PurpleRequestField *tags = purple_request_fields_get_field(fields, "tags");
	PurpleAccount *account = purple_request_fields_get_account(fields, "acct");
	GString *joined = g_string_new(NULL);

	for (GList *l = purple_request_field_list_get_selected(tags); l != NULL; l = l->next)
		g_string_append_printf(joined, "%s%s", joined->len > 0 ? "," : "", (char *)l->data);
	ht_say(gc, "fields ok: name=%s age=%d vip=%d lang=%d tags=%s acct=%s",
	       purple_request_fields_get_string(fields, "name"),
	       purple_request_fields_get_integer(fields, "age"),
	       purple_request_fields_get_bool(fields, "vip"),
	       purple_request_fields_get_choice(fields, "lang"), joined->str,
	       account != NULL ? purple_account_get_username(account) : "(none)");
	g_string_free(joined, TRUE);
}

static void
fields_cancel(PurpleConnection *gc, PurpleRequestFields *fields)
{
	ht_say(gc, "fields cancel");
}

static void
file_ok(PurpleConnection *gc, const char *path)
{
	ht_say(gc, "file ok: %s", path);
}

static void
file_cancel(PurpleConnection *gc, const char *path)
{
	ht_say(gc, "file cancel");
}

static void
notify_closed(gpointer data)
{
	ht_say(data, "notify closed");
}

static void
search_pick(PurpleConnection *gc, GList *row, gpointer data)
{
	ht_say(gc, "picked: %s", row != NULL ? (const char *)row->data : "(none)");
}

/* --- commands -------------------------------------------------------------- */

/* /htslow MS: a libpurple timeout that holds the main loop MS milliseconds
 * (the host's slow-dispatch report has to name it). */
static gboolean
ht_slow_fired(gpointer data)
{
	g_usleep((gulong)GPOINTER_TO_UINT(data) * 1000);
	return G_SOURCE_REMOVE;
}

static PurpleCmdRet
ht_cmd(PurpleConversation *conv, const gchar *cmd, gchar **args, gchar **error, void *data)
{
	PurpleConnection *gc = purple_conversation_get_gc(conv);
	PurpleAccount *account = purple_conversation_get_account(conv);
	HtData *ht;

	if (gc == NULL) {
		*error = g_strdup("not connected");
		return PURPLE_CMD_RET_FAILED;
	}
	ht = ht_data(gc);
	g_free(ht->conv);
	ht->conv = g_strdup(purple_conversation_get_name(conv));

	if (strcmp(cmd, "htinput") == 0) {
		purple_request_input(gc, "Input", "Your name?", "secondary", "default name", FALSE,
		                     FALSE, NULL, "OK", G_CALLBACK(input_ok), "Cancel",
		                     G_CALLBACK(input_cancel), account, "who", conv, gc);
	} else if (strcmp(cmd, "htchoice") == 0) {
		purple_request_choice(gc, "Choice", "Pick one", NULL, 20, "OK",
		                      G_CALLBACK(choice_ok), "Cancel", G_CALLBACK(choice_cancel),
		                      account, NULL, conv, gc, "ten", 10, "twenty", 20, "thirty",
		                      30, NULL);
	} else if (strcmp(cmd, "htaction") == 0) {
		purple_request_action(gc, "Action", "Do what?", NULL, 1, account, NULL, conv, gc, 3,
		                      "First", G_CALLBACK(action_cb), "Second",
		                      G_CALLBACK(action_cb), "Nothing", NULL);
	} else if (strcmp(cmd, "htfields") == 0) {
		PurpleRequestFields *fields = purple_request_fields_new();
		PurpleRequestFieldGroup *group = purple_request_field_group_new("Customer");
		PurpleRequestField *f;

		f = purple_request_field_string_new("name", "Name", NULL, FALSE);
		purple_request_field_set_required(f, TRUE);
		purple_request_field_group_add_field(group, f);
		purple_request_field_group_add_field(
		        group, purple_request_field_int_new("age", "Age", 30));
		purple_request_field_group_add_field(
		        group, purple_request_field_bool_new("vip", "VIP", FALSE));
		f = purple_request_field_choice_new("lang", "Language", 0);
		purple_request_field_choice_add(f, "English");
		purple_request_field_choice_add(f, "Deutsch");
		purple_request_field_group_add_field(group, f);
		f = purple_request_field_list_new("tags", "Tags");
		purple_request_field_list_set_multi_select(f, TRUE);
		/* libpurple refuses list items without data. */
		purple_request_field_list_add(f, "new", GINT_TO_POINTER(1));
		purple_request_field_list_add(f, "paid", GINT_TO_POINTER(2));
		purple_request_field_list_add(f, "late", GINT_TO_POINTER(3));
		purple_request_field_group_add_field(group, f);
		purple_request_field_group_add_field(
		        group, purple_request_field_label_new("hint", "Preview: <b>bold</b>"));
		f = purple_request_field_account_new("acct", "Account", account);
		purple_request_field_account_set_show_all(f, TRUE);
		purple_request_field_group_add_field(group, f);
		purple_request_fields_add_group(fields, group);
		purple_request_fields(gc, "Fields", "Fill in", NULL, fields, "Save",
		                      G_CALLBACK(fields_ok), "Cancel", G_CALLBACK(fields_cancel),
		                      account, NULL, conv, gc);
	} else if (strcmp(cmd, "htfile") == 0) {
		purple_request_file(gc, "File", "/tmp/default.txt", TRUE, G_CALLBACK(file_ok),
		                    G_CALLBACK(file_cancel), account, NULL, conv, gc);
	} else if (strcmp(cmd, "htfolder") == 0) {
		purple_request_folder(gc, "Folder", "/tmp", G_CALLBACK(file_ok),
		                      G_CALLBACK(file_cancel), account, NULL, conv, gc);
	} else if (strcmp(cmd, "htnotify") == 0) {
		purple_notify_formatted(gc, "Formatted", "Primary", "Secondary", "<b>body</b>",
		                        notify_closed, gc);
	} else if (strcmp(cmd, "htmessage") == 0) {
		purple_notify_message(gc, PURPLE_NOTIFY_MSG_WARNING, "Title", "Careful", "details",
		                      notify_closed, gc);
	} else if (strcmp(cmd, "htsearch") == 0) {
		PurpleNotifySearchResults *results = purple_notify_searchresults_new();
		GList *row;

		purple_notify_searchresults_column_add(
		        results, purple_notify_searchresults_column_new("Name"));
		purple_notify_searchresults_column_add(
		        results, purple_notify_searchresults_column_new("Phone"));
		row = g_list_append(g_list_append(NULL, g_strdup("Ann")), g_strdup("+1555"));
		purple_notify_searchresults_row_add(results, row);
		row = g_list_append(g_list_append(NULL, g_strdup("Bob")), g_strdup("+1666"));
		purple_notify_searchresults_row_add(results, row);
		purple_notify_searchresults_button_add_labeled(results, "Pick", search_pick);
		purple_notify_searchresults(gc, "Search", "Found", NULL, results, NULL, gc);
	} else if (strcmp(cmd, "htremote") == 0) {
		/* A message the business sent from elsewhere. */
		purple_conversation_write(
		        conv, purple_account_get_username(account), args[0] != NULL ? args[0] : "",
		        PURPLE_MESSAGE_SEND | PURPLE_MESSAGE_REMOTE_SEND, time(NULL));
	} else if (strcmp(cmd, "htnolog") == 0) {
		purple_conversation_set_logging(conv, FALSE);
	} else if (strcmp(cmd, "htslow") == 0) {
		guint64 ms = 0;

		g_ascii_string_to_unsigned(args[0] != NULL ? args[0] : "", 10, 0, 10000, &ms, NULL);
		purple_timeout_add(0, ht_slow_fired, GUINT_TO_POINTER((guint)ms));
	} else if (strcmp(cmd, "htfatal") == 0) {
		purple_connection_error_reason(gc, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
		                               "token refused");
	} else {
		return PURPLE_CMD_RET_CONTINUE;
	}
	return PURPLE_CMD_RET_OK;
}

/* --- prpl ------------------------------------------------------------------ */

static const char *
ht_list_icon(PurpleAccount *account, PurpleBuddy *buddy)
{
	return "irc";
}

static GList *
ht_status_types(PurpleAccount *account)
{
	GList *types = NULL;

	types = g_list_append(types, purple_status_type_new_with_attrs(
	                                     PURPLE_STATUS_AVAILABLE, NULL, NULL, TRUE, TRUE, FALSE,
	                                     "message", "Message",
	                                     purple_value_new(PURPLE_TYPE_STRING), NULL));
	types = g_list_append(types,
	                      purple_status_type_new_with_attrs(
	                              PURPLE_STATUS_AWAY, NULL, NULL, TRUE, TRUE, FALSE, "message",
	                              "Message", purple_value_new(PURPLE_TYPE_STRING), NULL));
	types = g_list_append(types,
	                      purple_status_type_new(PURPLE_STATUS_OFFLINE, NULL, NULL, TRUE));
	return types;
}

static gboolean
ht_login_cb(gpointer data)
{
	PurpleConnection *gc = data;
	PurpleAccount *account = purple_connection_get_account(gc);
	int reason = purple_account_get_int(account, "fail_reason", -1);

	ht_data(gc)->login_id = 0;
	if (reason >= 0) {
		purple_connection_error_reason(gc, (PurpleConnectionError)reason, "asked to fail");
		return FALSE;
	}
	purple_connection_set_display_name(
	        gc, purple_account_get_string(account, "display", "Host Test"));
	purple_connection_set_state(gc, PURPLE_CONNECTED);
	return FALSE;
}

static void
ht_login(PurpleAccount *account)
{
	PurpleConnection *gc = purple_account_get_connection(account);
	HtData *ht = g_new0(HtData, 1);

	purple_connection_set_protocol_data(gc, ht);
	purple_connection_update_progress(gc, "Connecting", 0, 2);
	ht->login_id = purple_timeout_add(0, ht_login_cb, gc);
}

static void
ht_close(PurpleConnection *gc)
{
	HtData *ht = ht_data(gc);

	ht->closing = TRUE;
	if (ht->login_id != 0)
		purple_timeout_remove(ht->login_id);
	purple_request_close_with_handle(gc);
	purple_notify_close_with_handle(gc);
	g_free(ht->conv);
	g_free(ht);
	purple_connection_set_protocol_data(gc, NULL);
}

static int
ht_send_im(PurpleConnection *gc, const char *who, const char *message, PurpleMessageFlags flags)
{
	/* Lets a test see libpurple's own "unable to send" line. */
	if (strstr(message, "fail") != NULL)
		return -1;
	return 1;
}

static void
ht_get_info(PurpleConnection *gc, const char *who)
{
	PurpleNotifyUserInfo *info = purple_notify_user_info_new();

	purple_notify_user_info_add_pair_plaintext(info, "Name", "<Ann & Co>");
	purple_notify_user_info_add_section_break(info);
	purple_notify_user_info_add_section_header(info, "Notes");
	purple_notify_user_info_add_pair(info, "Phone", who);
	purple_notify_userinfo(gc, who, info, NULL, NULL);
	purple_notify_user_info_destroy(info);
}

static gboolean
ht_load(PurplePlugin *plugin)
{
	static const char *const names[] = {
		"htinput",   "htchoice", "htaction", "htfields", "htfile",  "htfolder", "htnotify",
		"htmessage", "htsearch", "htremote", "htnolog",  "htfatal", "htslow",
	};

	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		PurpleCmdId id = purple_cmd_register(names[i], "s", PURPLE_CMD_P_PRPL,
		                                     PURPLE_CMD_FLAG_IM | PURPLE_CMD_FLAG_CHAT |
		                                             PURPLE_CMD_FLAG_PRPL_ONLY |
		                                             PURPLE_CMD_FLAG_ALLOW_WRONG_ARGS,
		                                     HT_ID, ht_cmd, "host test command", NULL);

		cmd_ids = g_slist_prepend(cmd_ids, GUINT_TO_POINTER(id));
	}
	return TRUE;
}

static gboolean
ht_unload(PurplePlugin *plugin)
{
	for (GSList *l = cmd_ids; l != NULL; l = l->next)
		purple_cmd_unregister(GPOINTER_TO_UINT(l->data));
	g_slist_free(cmd_ids);
	cmd_ids = NULL;
	return TRUE;
}

static void
ht_destroy(PurplePlugin *plugin)
{
	g_list_free_full(prpl_info.protocol_options, (GDestroyNotify)purple_account_option_destroy);
	prpl_info.protocol_options = NULL;
}

static PurplePluginProtocolInfo prpl_info = {
	.options = OPT_PROTO_NO_PASSWORD,
	.icon_spec = NO_BUDDY_ICONS,
	.list_icon = ht_list_icon,
	.status_types = ht_status_types,
	.login = ht_login,
	.close = ht_close,
	.send_im = ht_send_im,
	.get_info = ht_get_info,
	.struct_size = sizeof(PurplePluginProtocolInfo),
};

static PurplePluginInfo info = {
	.magic = PURPLE_PLUGIN_MAGIC,
	.major_version = PURPLE_MAJOR_VERSION,
	.minor_version = PURPLE_MINOR_VERSION,
	.type = PURPLE_PLUGIN_PROTOCOL,
	.priority = PURPLE_PRIORITY_DEFAULT,
	.id = HT_ID,
	.name = "Host Test",
	.version = "1",
	.summary = "Protocol plugin for testing wabiz-host",
	.description = "Opens requests and notifications on command; tests only.",
	.load = ht_load,
	.unload = ht_unload,
	.destroy = ht_destroy,
	.extra_info = &prpl_info,
};

static void
ht_init(PurplePlugin *plugin)
{
	PurpleAccountOption *list;
	GList *items = NULL;
	PurpleKeyValuePair *pair;

	prpl_info.protocol_options = g_list_append(
	        prpl_info.protocol_options,
	        purple_account_option_string_new("Display name", "display", "Host Test"));
	prpl_info.protocol_options =
	        g_list_append(prpl_info.protocol_options,
	                      purple_account_option_int_new("Fail with reason", "fail_reason", -1));
	prpl_info.protocol_options =
	        g_list_append(prpl_info.protocol_options,
	                      purple_account_option_bool_new("A flag", "flag", FALSE));

	pair = g_new0(PurpleKeyValuePair, 1);
	pair->key = g_strdup("Alpha");
	pair->value = g_strdup("a");
	items = g_list_append(items, pair);
	pair = g_new0(PurpleKeyValuePair, 1);
	pair->key = g_strdup("Beta");
	pair->value = g_strdup("b");
	items = g_list_append(items, pair);
	list = purple_account_option_list_new("Mode", "mode", items);
	prpl_info.protocol_options = g_list_append(prpl_info.protocol_options, list);
}

PURPLE_INIT_PLUGIN(hosttest, ht_init, info)
