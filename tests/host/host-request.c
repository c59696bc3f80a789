/* wabiz-host: request UI ops.  Each request dialog is reported as a
 * "request" event and stays pending until the "answer" command answers it
 * (calling the plugin's callback as a UI would) or libpurple closes it. */
#include "host.h"

#include <stdarg.h>

typedef struct {
	guint id;
	PurpleRequestType type;
	GCallback ok_cb;
	GCallback cancel_cb;
	gpointer user_data;
	char *default_value;   /* input */
	int default_int;       /* choice: default value; action: default index */
	GArray *choice_values; /* choice: int value of each choice */
	GCallback *action_cbs; /* action */
	gsize action_count;
	PurpleRequestFields *fields; /* fields: owned, destroyed on close */
} HostRequest;

/* id -> HostRequest *, which libpurple holds as the ui_handle. */
static GHashTable *pending;
static guint last_id;

static const char *
kind_name(PurpleRequestType type)
{
	switch (type) {
	case PURPLE_REQUEST_INPUT:
		return "input";
	case PURPLE_REQUEST_CHOICE:
		return "choice";
	case PURPLE_REQUEST_ACTION:
		return "action";
	case PURPLE_REQUEST_FIELDS:
		return "fields";
	case PURPLE_REQUEST_FILE:
		return "file";
	case PURPLE_REQUEST_FOLDER:
		return "folder";
	default:
		return "unknown";
	}
}

static const char *
field_type_name(PurpleRequestFieldType type)
{
	switch (type) {
	case PURPLE_REQUEST_FIELD_STRING:
		return "string";
	case PURPLE_REQUEST_FIELD_INTEGER:
		return "integer";
	case PURPLE_REQUEST_FIELD_BOOLEAN:
		return "boolean";
	case PURPLE_REQUEST_FIELD_CHOICE:
		return "choice";
	case PURPLE_REQUEST_FIELD_LIST:
		return "list";
	case PURPLE_REQUEST_FIELD_LABEL:
		return "label";
	case PURPLE_REQUEST_FIELD_IMAGE:
		return "image";
	case PURPLE_REQUEST_FIELD_ACCOUNT:
		return "account";
	case PURPLE_REQUEST_FIELD_NONE:
	default:
		return "none";
	}
}

static HostRequest *
request_new(PurpleRequestType type, gpointer user_data)
{
	HostRequest *req = g_new0(HostRequest, 1);

	if (pending == NULL)
		pending = g_hash_table_new(g_direct_hash, g_direct_equal);
	req->id = ++last_id;
	req->type = type;
	req->user_data = user_data;
	g_hash_table_insert(pending, GUINT_TO_POINTER(req->id), req);
	return req;
}

static void
request_free(HostRequest *req)
{
	g_hash_table_remove(pending, GUINT_TO_POINTER(req->id));
	g_free(req->default_value);
	if (req->choice_values != NULL)
		g_array_unref(req->choice_values);
	g_free(req->action_cbs);
	if (req->fields != NULL)
		purple_request_fields_destroy(req->fields);
	g_free(req);
}

static gboolean
is_pending(guint id, HostRequest *req)
{
	return pending != NULL && g_hash_table_lookup(pending, GUINT_TO_POINTER(id)) == req;
}

/* Starts a "request" event with what every kind has. */
static JsonBuilder *
request_event(HostRequest *req, const char *title, const char *primary, const char *secondary,
              PurpleAccount *account, const char *who, PurpleConversation *conv)
{
	JsonBuilder *b = host_event_new("request");

	host_add_int(b, "id", req->id);
	host_add_string(b, "kind", kind_name(req->type));
	host_add_string(b, "title", title);
	host_add_string(b, "primary", primary);
	host_add_string(b, "secondary", secondary);
	host_add_string(b, "account",
	                account != NULL ? purple_account_get_username(account) : NULL);
	host_add_string(b, "who", who);
	host_add_string(b, "conv", conv != NULL ? purple_conversation_get_name(conv) : NULL);
	return b;
}

static void
add_actions(JsonBuilder *b, const char *ok_text, const char *cancel_text)
{
	json_builder_set_member_name(b, "actions");
	json_builder_begin_array(b);
	host_add_string_element(b, ok_text);
	host_add_string_element(b, cancel_text);
	json_builder_end_array(b);
}

static void *
request_input(const char *title, const char *primary, const char *secondary,
              const char *default_value, gboolean multiline, gboolean masked, gchar *hint,
              const char *ok_text, GCallback ok_cb, const char *cancel_text, GCallback cancel_cb,
              PurpleAccount *account, const char *who, PurpleConversation *conv, void *user_data)
{
	HostRequest *req = request_new(PURPLE_REQUEST_INPUT, user_data);
	JsonBuilder *b;

	req->ok_cb = ok_cb;
	req->cancel_cb = cancel_cb;
	req->default_value = g_strdup(default_value);

	b = request_event(req, title, primary, secondary, account, who, conv);
	host_add_string(b, "default", default_value);
	host_add_bool(b, "multiline", multiline);
	host_add_bool(b, "masked", masked);
	host_add_string(b, "hint", hint);
	add_actions(b, ok_text, cancel_text);
	host_event_emit(b);
	return req;
}

static void *
request_choice(const char *title, const char *primary, const char *secondary, int default_value,
               const char *ok_text, GCallback ok_cb, const char *cancel_text, GCallback cancel_cb,
               PurpleAccount *account, const char *who, PurpleConversation *conv, void *user_data,
               va_list choices)
{
	HostRequest *req = request_new(PURPLE_REQUEST_CHOICE, user_data);
	JsonBuilder *b;
	const char *label;

	req->ok_cb = ok_cb;
	req->cancel_cb = cancel_cb;
	req->default_int = default_value;
	req->choice_values = g_array_new(FALSE, FALSE, sizeof(int));

	b = request_event(req, title, primary, secondary, account, who, conv);
	host_add_int(b, "default", default_value);
	add_actions(b, ok_text, cancel_text);
	json_builder_set_member_name(b, "choices");
	json_builder_begin_array(b);
	/* (label, value) pairs up to a NULL label. */
	while ((label = va_arg(choices, const char *)) != NULL) {
		int value = va_arg(choices, int);

		g_array_append_val(req->choice_values, value);
		json_builder_begin_object(b);
		host_add_string(b, "label", label);
		host_add_int(b, "value", value);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	host_event_emit(b);
	return req;
}

static HostRequest *
action_request(const char *title, const char *primary, const char *secondary, int default_action,
               PurpleAccount *account, const char *who, PurpleConversation *conv, void *user_data,
               size_t action_count, va_list actions, gsize icon_size)
{
	HostRequest *req = request_new(PURPLE_REQUEST_ACTION, user_data);
	JsonBuilder *b;

	req->default_int = default_action;
	req->action_count = action_count;
	req->action_cbs = g_new0(GCallback, action_count + 1);

	b = request_event(req, title, primary, secondary, account, who, conv);
	host_add_int(b, "default", default_action);
	if (icon_size > 0)
		host_add_int(b, "icon_size", (gint64)icon_size);
	json_builder_set_member_name(b, "actions");
	json_builder_begin_array(b);
	/* @action_count (label, callback) pairs. */
	for (size_t i = 0; i < action_count; i++) {
		const char *label = va_arg(actions, const char *);

		req->action_cbs[i] = va_arg(actions, GCallback);
		host_add_string_element(b, label);
	}
	json_builder_end_array(b);
	host_event_emit(b);
	return req;
}

static void *
request_action(const char *title, const char *primary, const char *secondary, int default_action,
               PurpleAccount *account, const char *who, PurpleConversation *conv, void *user_data,
               size_t action_count, va_list actions)
{
	return action_request(title, primary, secondary, default_action, account, who, conv,
	                      user_data, action_count, actions, 0);
}

static void *
request_action_with_icon(const char *title, const char *primary, const char *secondary,
                         int default_action, PurpleAccount *account, const char *who,
                         PurpleConversation *conv, gconstpointer icon_data, gsize icon_size,
                         void *user_data, size_t action_count, va_list actions)
{
	return action_request(title, primary, secondary, default_action, account, who, conv,
	                      user_data, action_count, actions, icon_size);
}

static void
add_field(JsonBuilder *b, PurpleRequestFieldGroup *group, PurpleRequestField *field)
{
	PurpleRequestFieldType type = purple_request_field_get_type(field);

	json_builder_begin_object(b);
	host_add_string(b, "group", purple_request_field_group_get_title(group));
	host_add_string(b, "id", purple_request_field_get_id(field));
	host_add_string(b, "type", field_type_name(type));
	host_add_string(b, "label", purple_request_field_get_label(field));
	host_add_bool(b, "required", purple_request_field_is_required(field));
	host_add_bool(b, "visible", purple_request_field_is_visible(field));
	host_add_string(b, "type_hint", purple_request_field_get_type_hint(field));

	switch (type) {
	case PURPLE_REQUEST_FIELD_STRING:
		host_add_string(b, "value", purple_request_field_string_get_value(field));
		host_add_bool(b, "multiline", purple_request_field_string_is_multiline(field));
		host_add_bool(b, "masked", purple_request_field_string_is_masked(field));
		host_add_bool(b, "editable", purple_request_field_string_is_editable(field));
		break;
	case PURPLE_REQUEST_FIELD_INTEGER:
		host_add_int(b, "value", purple_request_field_int_get_value(field));
		break;
	case PURPLE_REQUEST_FIELD_BOOLEAN:
		host_add_bool(b, "value", purple_request_field_bool_get_value(field));
		break;
	case PURPLE_REQUEST_FIELD_CHOICE:
		/* The value of a choice field is the index of its label. */
		host_add_int(b, "value", purple_request_field_choice_get_value(field));
		json_builder_set_member_name(b, "choices");
		json_builder_begin_array(b);
		for (GList *l = purple_request_field_choice_get_labels(field); l != NULL;
		     l = l->next)
			host_add_string_element(b, l->data);
		json_builder_end_array(b);
		break;
	case PURPLE_REQUEST_FIELD_LIST:
		json_builder_set_member_name(b, "value");
		json_builder_begin_array(b);
		for (GList *l = purple_request_field_list_get_selected(field); l != NULL;
		     l = l->next)
			host_add_string_element(b, l->data);
		json_builder_end_array(b);
		json_builder_set_member_name(b, "choices");
		json_builder_begin_array(b);
		for (GList *l = purple_request_field_list_get_items(field); l != NULL; l = l->next)
			host_add_string_element(b, l->data);
		json_builder_end_array(b);
		host_add_bool(b, "multi_select", purple_request_field_list_get_multi_select(field));
		break;
	case PURPLE_REQUEST_FIELD_ACCOUNT: {
		PurpleAccount *account = purple_request_field_account_get_value(field);

		host_add_string(b, "value",
		                account != NULL ? purple_account_get_username(account) : NULL);
		break;
	}
	case PURPLE_REQUEST_FIELD_IMAGE:
		host_add_null(b, "value");
		host_add_int(b, "size", (gint64)purple_request_field_image_get_size(field));
		break;
	case PURPLE_REQUEST_FIELD_LABEL:
	default:
		host_add_null(b, "value");
		break;
	}
	json_builder_end_object(b);
}

static void *
request_fields(const char *title, const char *primary, const char *secondary,
               PurpleRequestFields *fields, const char *ok_text, GCallback ok_cb,
               const char *cancel_text, GCallback cancel_cb, PurpleAccount *account,
               const char *who, PurpleConversation *conv, void *user_data)
{
	HostRequest *req = request_new(PURPLE_REQUEST_FIELDS, user_data);
	JsonBuilder *b;

	req->ok_cb = ok_cb;
	req->cancel_cb = cancel_cb;
	req->fields = fields;

	b = request_event(req, title, primary, secondary, account, who, conv);
	add_actions(b, ok_text, cancel_text);
	json_builder_set_member_name(b, "fields");
	json_builder_begin_array(b);
	for (GList *g = purple_request_fields_get_groups(fields); g != NULL; g = g->next) {
		for (GList *f = purple_request_field_group_get_fields(g->data); f != NULL;
		     f = f->next)
			add_field(b, g->data, f->data);
	}
	json_builder_end_array(b);
	host_event_emit(b);
	return req;
}

static void *
file_request(PurpleRequestType type, const char *title, const char *path, gboolean savedialog,
             GCallback ok_cb, GCallback cancel_cb, PurpleAccount *account, const char *who,
             PurpleConversation *conv, void *user_data)
{
	HostRequest *req = request_new(type, user_data);
	JsonBuilder *b;

	req->ok_cb = ok_cb;
	req->cancel_cb = cancel_cb;

	b = request_event(req, title, NULL, NULL, account, who, conv);
	host_add_string(b, "default", path);
	if (type == PURPLE_REQUEST_FILE)
		host_add_bool(b, "savedialog", savedialog);
	add_actions(b, "OK", "Cancel");
	host_event_emit(b);
	return req;
}

static void *
request_file(const char *title, const char *filename, gboolean savedialog, GCallback ok_cb,
             GCallback cancel_cb, PurpleAccount *account, const char *who, PurpleConversation *conv,
             void *user_data)
{
	return file_request(PURPLE_REQUEST_FILE, title, filename, savedialog, ok_cb, cancel_cb,
	                    account, who, conv, user_data);
}

static void *
request_folder(const char *title, const char *dirname, GCallback ok_cb, GCallback cancel_cb,
               PurpleAccount *account, const char *who, PurpleConversation *conv, void *user_data)
{
	return file_request(PURPLE_REQUEST_FOLDER, title, dirname, FALSE, ok_cb, cancel_cb, account,
	                    who, conv, user_data);
}

static void
close_request(PurpleRequestType type, void *ui_handle)
{
	HostRequest *req = ui_handle;
	JsonBuilder *b;

	if (!is_pending(req->id, req))
		return;
	b = host_event_new("request-closed");
	host_add_int(b, "id", req->id);
	host_add_string(b, "kind", kind_name(req->type));
	host_event_emit(b);
	request_free(req);
}

static PurpleRequestUiOps request_ops = {
	.request_input = request_input,
	.request_choice = request_choice,
	.request_action = request_action,
	.request_fields = request_fields,
	.request_file = request_file,
	.close_request = close_request,
	.request_folder = request_folder,
	.request_action_with_icon = request_action_with_icon,
};

/* With --bitlbee, only the request kinds BitlBee has: input and action
 * (libpurple answers NULL to the others, as in BitlBee). */
PurpleRequestUiOps *
host_request_ui_ops(void)
{
	if (host_get()->bitlbee) {
		request_ops.request_choice = NULL;
		request_ops.request_fields = NULL;
		request_ops.request_file = NULL;
		request_ops.request_folder = NULL;
		request_ops.request_action_with_icon = NULL;
	}
	return &request_ops;
}

/* --- answering ----------------------------------------------------------- */

static PurpleAccount *
find_account_by_username(const char *username)
{
	for (GList *l = purple_accounts_get_all(); l != NULL; l = l->next) {
		if (g_strcmp0(purple_account_get_username(l->data), username) == 0)
			return l->data;
	}
	return NULL;
}

static gboolean
list_has_item(PurpleRequestField *field, const char *item)
{
	for (GList *l = purple_request_field_list_get_items(field); l != NULL; l = l->next) {
		if (g_strcmp0(l->data, item) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
node_is_int(JsonNode *node)
{
	return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_INT64;
}

static gboolean
node_is_string(JsonNode *node)
{
	return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
}

/* Checks (@apply FALSE) or sets (@apply TRUE) @field from @value. */
static gboolean
set_field(PurpleRequestField *field, JsonNode *value, gboolean apply, GError **error)
{
	const char *id = purple_request_field_get_id(field);

	switch (purple_request_field_get_type(field)) {
	case PURPLE_REQUEST_FIELD_STRING:
		if (!JSON_NODE_HOLDS_NULL(value) && !node_is_string(value))
			break;
		if (apply)
			purple_request_field_string_set_value(
			        field,
			        JSON_NODE_HOLDS_NULL(value) ? NULL : json_node_get_string(value));
		return TRUE;
	case PURPLE_REQUEST_FIELD_INTEGER:
		if (!node_is_int(value))
			break;
		if (apply)
			purple_request_field_int_set_value(field, (int)json_node_get_int(value));
		return TRUE;
	case PURPLE_REQUEST_FIELD_BOOLEAN:
		if (!JSON_NODE_HOLDS_VALUE(value) ||
		    json_node_get_value_type(value) != G_TYPE_BOOLEAN)
			break;
		if (apply)
			purple_request_field_bool_set_value(field, json_node_get_boolean(value));
		return TRUE;
	case PURPLE_REQUEST_FIELD_CHOICE: {
		GList *labels = purple_request_field_choice_get_labels(field);
		gint64 index = -1;

		/* An index, or the label of a choice. */
		if (node_is_int(value)) {
			index = json_node_get_int(value);
		} else if (node_is_string(value)) {
			gint64 i = 0;

			for (GList *l = labels; l != NULL; l = l->next, i++) {
				if (g_strcmp0(l->data, json_node_get_string(value)) == 0) {
					index = i;
					break;
				}
			}
		} else {
			break;
		}
		if (index < 0 || index >= (gint64)g_list_length(labels)) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "field '%s' has no such choice", id);
			return FALSE;
		}
		if (apply)
			purple_request_field_choice_set_value(field, (int)index);
		return TRUE;
	}
	case PURPLE_REQUEST_FIELD_LIST: {
		/* One item, or an array of items to select. */
		GList *items = NULL;
		gboolean ok = TRUE;

		if (node_is_string(value)) {
			items = g_list_append(items, (gpointer)json_node_get_string(value));
		} else if (JSON_NODE_HOLDS_ARRAY(value)) {
			JsonArray *array = json_node_get_array(value);

			for (guint i = 0; i < json_array_get_length(array); i++) {
				JsonNode *item = json_array_get_element(array, i);

				if (!node_is_string(item)) {
					ok = FALSE;
					break;
				}
				items = g_list_append(items, (gpointer)json_node_get_string(item));
			}
		} else {
			ok = FALSE;
		}
		if (!ok) {
			g_list_free(items);
			break;
		}
		for (GList *l = items; l != NULL; l = l->next) {
			if (!list_has_item(field, l->data)) {
				g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
				            "field '%s' has no item '%s'", id,
				            (const char *)l->data);
				g_list_free(items);
				return FALSE;
			}
		}
		if (g_list_length(items) > 1 &&
		    !purple_request_field_list_get_multi_select(field)) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "field '%s' allows one item only", id);
			g_list_free(items);
			return FALSE;
		}
		if (apply) {
			purple_request_field_list_clear_selected(field);
			for (GList *l = items; l != NULL; l = l->next)
				purple_request_field_list_add_selected(field, l->data);
		}
		g_list_free(items);
		return TRUE;
	}
	case PURPLE_REQUEST_FIELD_ACCOUNT: {
		PurpleAccount *account;

		if (!node_is_string(value))
			break;
		account = find_account_by_username(json_node_get_string(value));
		if (account == NULL) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "field '%s': no account '%s'", id, json_node_get_string(value));
			return FALSE;
		}
		if (apply)
			purple_request_field_account_set_value(field, account);
		return TRUE;
	}
	default:
		g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID, "field '%s' (%s) cannot be set",
		            id, field_type_name(purple_request_field_get_type(field)));
		return FALSE;
	}

	g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
	            "field '%s' (%s) cannot take that JSON value", id,
	            field_type_name(purple_request_field_get_type(field)));
	return FALSE;
}

static gboolean
set_fields(HostRequest *req, JsonObject *values, GError **error)
{
	GList *members;
	gboolean ok = TRUE;

	if (values == NULL)
		return TRUE;
	members = json_object_get_members(values);
	/* All or nothing: check every value before setting any. */
	for (int apply = 0; apply <= 1 && ok; apply++) {
		for (GList *l = members; l != NULL && ok; l = l->next) {
			PurpleRequestField *field;

			if (!purple_request_fields_exists(req->fields, l->data)) {
				g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND,
				            "request %u has no field '%s'", req->id,
				            (const char *)l->data);
				ok = FALSE;
				break;
			}
			field = purple_request_fields_get_field(req->fields, l->data);
			ok = set_field(field, json_object_get_member(values, l->data), apply,
			               error);
		}
	}
	g_list_free(members);
	return ok;
}

static gboolean
get_int_member(JsonObject *obj, const char *name, gint64 *out, GError **error)
{
	JsonNode *node = json_object_get_member(obj, name);

	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return FALSE;
	if (!node_is_int(node)) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID, "'%s' must be an integer", name);
		return FALSE;
	}
	*out = json_node_get_int(node);
	return TRUE;
}

static const char *
get_string_member(JsonObject *obj, const char *name)
{
	JsonNode *node = json_object_get_member(obj, name);

	return node != NULL && node_is_string(node) ? json_node_get_string(node) : NULL;
}

/* Calls the callback @obj chooses; FALSE (with @error) leaves @req pending. */
static gboolean
call_back(HostRequest *req, JsonObject *obj, GError **error)
{
	GError *local = NULL;
	gint64 action = 0;
	gboolean has_action = get_int_member(obj, "action", &action, &local);

	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}

	if (req->type == PURPLE_REQUEST_ACTION) {
		if (!has_action)
			action = req->default_int;
		if (action < 0 || (guint64)action >= req->action_count) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "request %u has no action %" G_GINT64_FORMAT, req->id, action);
			return FALSE;
		}
		if (req->action_cbs[action] != NULL)
			((PurpleRequestActionCb)req->action_cbs[action])(req->user_data,
			                                                 (int)action);
		return TRUE;
	}

	/* Other kinds: action 0 is OK, 1 is Cancel. */
	if (action != 0 && action != 1) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
		            "action must be 0 (ok) or 1 (cancel) for a %s request",
		            kind_name(req->type));
		return FALSE;
	}
	GCallback cb = action == 0 ? req->ok_cb : req->cancel_cb;

	switch (req->type) {
	case PURPLE_REQUEST_INPUT: {
		const char *value = get_string_member(obj, "value");

		if (value == NULL)
			value = req->default_value;
		if (cb != NULL)
			((PurpleRequestInputCb)cb)(req->user_data, value);
		return TRUE;
	}
	case PURPLE_REQUEST_CHOICE: {
		gint64 choice = req->default_int;
		gboolean known = FALSE;

		if (!get_int_member(obj, "choice", &choice, &local) && local != NULL) {
			g_propagate_error(error, local);
			return FALSE;
		}
		for (guint i = 0; i < req->choice_values->len; i++)
			known = known || g_array_index(req->choice_values, int, i) == choice;
		if (action == 0 && !known) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "request %u has no choice with the value %" G_GINT64_FORMAT,
			            req->id, choice);
			return FALSE;
		}
		if (cb != NULL)
			((PurpleRequestChoiceCb)cb)(req->user_data, (int)choice);
		return TRUE;
	}
	case PURPLE_REQUEST_FIELDS: {
		JsonNode *values = json_object_get_member(obj, "fields");

		if (values != NULL && !JSON_NODE_HOLDS_OBJECT(values)) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "'fields' must be an object");
			return FALSE;
		}
		if (action == 0) {
			if (!set_fields(req, values != NULL ? json_node_get_object(values) : NULL,
			                error))
				return FALSE;
			/* Pidgin keeps OK insensitive until required fields are filled. */
			if (!purple_request_fields_all_required_filled(req->fields)) {
				g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
				            "request %u: required fields are empty", req->id);
				return FALSE;
			}
		}
		if (cb != NULL)
			((PurpleRequestFieldsCb)cb)(req->user_data, req->fields);
		return TRUE;
	}
	case PURPLE_REQUEST_FILE:
	case PURPLE_REQUEST_FOLDER: {
		const char *file = get_string_member(obj, "file");

		if (action == 0 && file == NULL) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "a %s request needs \"file\"", kind_name(req->type));
			return FALSE;
		}
		if (cb != NULL)
			((PurpleRequestFileCb)cb)(req->user_data, action == 0 ? file : NULL);
		return TRUE;
	}
	default:
		g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID, "cannot answer this request");
		return FALSE;
	}
}

gboolean
host_request_answer(guint id, JsonObject *obj, GError **error)
{
	HostRequest *req =
	        pending != NULL ? g_hash_table_lookup(pending, GUINT_TO_POINTER(id)) : NULL;

	if (req == NULL) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND, "no request %u is pending",
		            id);
		return FALSE;
	}
	if (!call_back(req, obj, error))
		return FALSE;
	/* The callback may have closed it already (or everything of its
	 * handle); otherwise close it as a UI does after a button. */
	if (is_pending(id, req))
		purple_request_close(req->type, req);
	if (is_pending(id, req))
		close_request(req->type, req);
	return TRUE;
}

void
host_request_close_all(void)
{
	GList *ids;

	if (pending == NULL)
		return;
	/* By id: closing one request may close others (those it owns). */
	ids = g_hash_table_get_keys(pending);
	for (GList *l = ids; l != NULL; l = l->next) {
		HostRequest *req = g_hash_table_lookup(pending, l->data);

		if (req == NULL)
			continue;
		/* Lets libpurple forget its record; no callback is called. */
		purple_request_close(req->type, req);
		if (is_pending(GPOINTER_TO_UINT(l->data), req))
			close_request(req->type, req);
	}
	g_list_free(ids);
	g_clear_pointer(&pending, g_hash_table_destroy);
}
