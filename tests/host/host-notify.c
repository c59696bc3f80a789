/* wabiz-host: notify UI ops.  Every notification stays "on screen" (pending)
 * until libpurple or the "close_notify" command closes it, like a Pidgin
 * dialog; its id lets a test close it or press a search-result button. */
#include "host.h"

typedef struct {
	guint id;
	PurpleNotifyType type;
	PurpleConnection *gc;
	PurpleNotifySearchResults *results; /* owned (the UI frees results) */
	gpointer user_data;
} HostNotify;

/* id -> HostNotify *, which libpurple holds as the ui_handle. */
static GHashTable *shown;
static guint last_id;

static const char *
kind_name(PurpleNotifyType type)
{
	switch (type) {
	case PURPLE_NOTIFY_MESSAGE:
		return "message";
	case PURPLE_NOTIFY_EMAIL:
		return "email";
	case PURPLE_NOTIFY_EMAILS:
		return "emails";
	case PURPLE_NOTIFY_FORMATTED:
		return "formatted";
	case PURPLE_NOTIFY_SEARCHRESULTS:
		return "searchresults";
	case PURPLE_NOTIFY_USERINFO:
		return "userinfo";
	case PURPLE_NOTIFY_URI:
		return "uri";
	default:
		return "unknown";
	}
}

static const char *
msg_type_name(PurpleNotifyMsgType type)
{
	switch (type) {
	case PURPLE_NOTIFY_MSG_ERROR:
		return "error";
	case PURPLE_NOTIFY_MSG_WARNING:
		return "warning";
	case PURPLE_NOTIFY_MSG_INFO:
	default:
		return "info";
	}
}

static HostNotify *
notify_new(PurpleNotifyType type, PurpleConnection *gc)
{
	HostNotify *note = g_new0(HostNotify, 1);

	if (shown == NULL)
		shown = g_hash_table_new(g_direct_hash, g_direct_equal);
	note->id = ++last_id;
	note->type = type;
	note->gc = gc;
	g_hash_table_insert(shown, GUINT_TO_POINTER(note->id), note);
	return note;
}

static void
notify_free(HostNotify *note)
{
	g_hash_table_remove(shown, GUINT_TO_POINTER(note->id));
	if (note->results != NULL)
		purple_notify_searchresults_free(note->results);
	g_free(note);
}

/* Starts a "notify" event of @kind for @note. */
static JsonBuilder *
notify_event(const char *event, HostNotify *note)
{
	JsonBuilder *b = host_event_new(event);

	host_add_int(b, "id", note->id);
	host_add_string(b, "kind", kind_name(note->type));
	return b;
}

static void *
notify_message(PurpleNotifyMsgType type, const char *title, const char *primary,
               const char *secondary)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_MESSAGE, NULL);
	JsonBuilder *b = notify_event("notify", note);

	host_add_string(b, "type", msg_type_name(type));
	host_add_string(b, "title", title);
	host_add_string(b, "primary", primary);
	host_add_string(b, "secondary", secondary);
	host_event_emit(b);
	return note;
}

static void *
notify_email(PurpleConnection *gc, const char *subject, const char *from, const char *to,
             const char *url)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_EMAIL, gc);
	JsonBuilder *b = notify_event("notify", note);

	host_add_string(b, "subject", subject);
	host_add_string(b, "from", from);
	host_add_string(b, "to", to);
	host_add_string(b, "url", url);
	host_event_emit(b);
	return note;
}

static void *
notify_emails(PurpleConnection *gc, size_t count, gboolean detailed, const char **subjects,
              const char **froms, const char **tos, const char **urls)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_EMAILS, gc);
	JsonBuilder *b = notify_event("notify", note);

	host_add_int(b, "count", (gint64)count);
	host_add_bool(b, "detailed", detailed);
	host_event_emit(b);
	return note;
}

static void *
notify_formatted(const char *title, const char *primary, const char *secondary, const char *text)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_FORMATTED, NULL);
	JsonBuilder *b = notify_event("notify", note);

	host_add_string(b, "title", title);
	host_add_string(b, "primary", primary);
	host_add_string(b, "secondary", secondary);
	host_add_string(b, "text", text);
	host_event_emit(b);
	return note;
}

static void
add_rows(JsonBuilder *b, GList *rows)
{
	json_builder_set_member_name(b, "rows");
	json_builder_begin_array(b);
	for (GList *r = rows; r != NULL; r = r->next) {
		json_builder_begin_array(b);
		for (GList *cell = r->data; cell != NULL; cell = cell->next)
			host_add_string_element(b, cell->data);
		json_builder_end_array(b);
	}
	json_builder_end_array(b);
}

static void *
notify_searchresults(PurpleConnection *gc, const char *title, const char *primary,
                     const char *secondary, PurpleNotifySearchResults *results, gpointer user_data)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_SEARCHRESULTS, gc);
	JsonBuilder *b = notify_event("searchresults", note);

	note->results = results;
	note->user_data = user_data;

	host_add_string(b, "title", title);
	host_add_string(b, "primary", primary);
	host_add_string(b, "secondary", secondary);
	json_builder_set_member_name(b, "columns");
	json_builder_begin_array(b);
	for (GList *c = results->columns; c != NULL; c = c->next)
		host_add_string_element(b, ((PurpleNotifySearchColumn *)c->data)->title);
	json_builder_end_array(b);
	add_rows(b, results->rows);
	json_builder_set_member_name(b, "buttons");
	json_builder_begin_array(b);
	for (GList *l = results->buttons; l != NULL; l = l->next) {
		PurpleNotifySearchButton *button = l->data;

		json_builder_begin_object(b);
		host_add_int(b, "type", button->type);
		host_add_string(b, "label", button->label);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	host_event_emit(b);
	return note;
}

static void
notify_searchresults_new_rows(PurpleConnection *gc, PurpleNotifySearchResults *results, void *data)
{
	HostNotify *note = data;
	JsonBuilder *b = notify_event("searchresults-rows", note);

	/* libpurple hands over the new results; the old ones are ours to free. */
	if (note->results != NULL && note->results != results)
		purple_notify_searchresults_free(note->results);
	note->results = results;
	add_rows(b, results->rows);
	host_event_emit(b);
}

static const char *
entry_type_name(PurpleNotifyUserInfoEntryType type)
{
	switch (type) {
	case PURPLE_NOTIFY_USER_INFO_ENTRY_SECTION_BREAK:
		return "section-break";
	case PURPLE_NOTIFY_USER_INFO_ENTRY_SECTION_HEADER:
		return "section-header";
	case PURPLE_NOTIFY_USER_INFO_ENTRY_PAIR:
	default:
		return "pair";
	}
}

static void *
notify_userinfo(PurpleConnection *gc, const char *who, PurpleNotifyUserInfo *user_info)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_USERINFO, gc);
	JsonBuilder *b = notify_event("userinfo", note);

	/* The caller frees @user_info after this returns: copy it now. */
	host_add_string(b, "who", who);
	json_builder_set_member_name(b, "entries");
	json_builder_begin_array(b);
	for (GList *l = purple_notify_user_info_get_entries(user_info); l != NULL; l = l->next) {
		PurpleNotifyUserInfoEntry *entry = l->data;

		json_builder_begin_object(b);
		host_add_string(b, "type",
		                entry_type_name(purple_notify_user_info_entry_get_type(entry)));
		host_add_string(b, "label", purple_notify_user_info_entry_get_label(entry));
		host_add_string(b, "value", purple_notify_user_info_entry_get_value(entry));
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	host_event_emit(b);
	return note;
}

static void *
notify_uri(const char *uri)
{
	HostNotify *note = notify_new(PURPLE_NOTIFY_URI, NULL);
	JsonBuilder *b = notify_event("notify", note);

	host_add_string(b, "uri", uri);
	host_event_emit(b);
	return note;
}

static void
close_notify(PurpleNotifyType type, void *ui_handle)
{
	HostNotify *note = ui_handle;

	if (shown == NULL || g_hash_table_lookup(shown, GUINT_TO_POINTER(note->id)) != note)
		return;
	host_event_emit(notify_event("notify-closed", note));
	notify_free(note);
}

static PurpleNotifyUiOps notify_ops = {
	.notify_message = notify_message,
	.notify_email = notify_email,
	.notify_emails = notify_emails,
	.notify_formatted = notify_formatted,
	.notify_searchresults = notify_searchresults,
	.notify_searchresults_new_rows = notify_searchresults_new_rows,
	.notify_userinfo = notify_userinfo,
	.notify_uri = notify_uri,
	.close_notify = close_notify,
};

/* With --bitlbee, only the notifications BitlBee has: messages, e-mail
 * and user info. */
PurpleNotifyUiOps *
host_notify_ui_ops(void)
{
	if (host_get()->bitlbee) {
		notify_ops.notify_emails = NULL;
		notify_ops.notify_formatted = NULL;
		notify_ops.notify_searchresults = NULL;
		notify_ops.notify_searchresults_new_rows = NULL;
		notify_ops.notify_uri = NULL;
	}
	return &notify_ops;
}

gboolean
host_notify_close_by_id(guint id, GError **error)
{
	HostNotify *note = shown != NULL ? g_hash_table_lookup(shown, GUINT_TO_POINTER(id)) : NULL;

	if (note == NULL) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND, "no notification %u is shown",
		            id);
		return FALSE;
	}
	/* As the user closing the dialog: libpurple calls close_notify and then
	 * the plugin's close callback. */
	purple_notify_close(note->type, note);
	if (g_hash_table_lookup(shown, GUINT_TO_POINTER(id)) == note)
		notify_free(note);
	return TRUE;
}

gboolean
host_notify_search_button(guint id, guint button, guint row, GError **error)
{
	HostNotify *note = shown != NULL ? g_hash_table_lookup(shown, GUINT_TO_POINTER(id)) : NULL;
	PurpleNotifySearchButton *b;
	GList *cells;

	if (note == NULL || note->type != PURPLE_NOTIFY_SEARCHRESULTS) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND,
		            "no search results %u are shown", id);
		return FALSE;
	}
	b = g_list_nth_data(note->results->buttons, button);
	if (b == NULL || b->callback == NULL) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND, "no button %u", button);
		return FALSE;
	}
	cells = g_list_nth_data(note->results->rows, row);
	if (cells == NULL) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND, "no row %u", row);
		return FALSE;
	}
	b->callback(note->gc, cells, note->user_data);
	return TRUE;
}

void
host_notify_close_all(void)
{
	GList *ids;

	if (shown == NULL)
		return;
	ids = g_hash_table_get_keys(shown);
	for (GList *l = ids; l != NULL; l = l->next)
		host_notify_close_by_id(GPOINTER_TO_UINT(l->data), NULL);
	g_list_free(ids);
}

void
host_notify_shutdown(void)
{
	GList *notes;

	if (shown == NULL)
		return;
	/* Shown after the last chance to close them (during the core's quit):
	 * free our side only, libpurple is gone. */
	notes = g_hash_table_get_values(shown);
	for (GList *l = notes; l != NULL; l = l->next)
		notify_free(l->data);
	g_list_free(notes);
	g_clear_pointer(&shown, g_hash_table_destroy);
}
