/* wabiz-host: sets an account's protocol options from text, typed by the
 * protocol plugin's own option list, as Pidgin's account editor would. */
#include "host.h"

#include <string.h>

static PurpleAccountOption *
find_option(PurplePluginProtocolInfo *info, const char *key)
{
	for (GList *l = info->protocol_options; l != NULL; l = l->next) {
		PurpleAccountOption *option = l->data;

		if (g_strcmp0(purple_account_option_get_setting(option), key) == 0)
			return option;
	}
	return NULL;
}

static char *
known_keys(PurplePluginProtocolInfo *info)
{
	GString *keys = g_string_new(NULL);

	for (GList *l = info->protocol_options; l != NULL; l = l->next) {
		if (keys->len > 0)
			g_string_append(keys, ", ");
		g_string_append(keys, purple_account_option_get_setting(l->data));
	}
	return g_string_free(keys, FALSE);
}

static gboolean
parse_bool(const char *value, gboolean *out)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };

	for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
		if (g_ascii_strcasecmp(value, yes[i]) == 0) {
			*out = TRUE;
			return TRUE;
		}
		if (g_ascii_strcasecmp(value, no[i]) == 0) {
			*out = FALSE;
			return TRUE;
		}
	}
	return FALSE;
}

void
host_account_added(PurpleAccount *account, gboolean existing)
{
	JsonBuilder *b = host_event_new("account-added");

	host_add_string(b, "username", purple_account_get_username(account));
	host_add_string(b, "protocol", purple_account_get_protocol_id(account));
	host_add_bool(b, "existing", existing);
	host_event_emit(b);
}

gboolean
host_account_set_option(PurpleAccount *account, const char *key, const char *value, GError **error)
{
	PurplePlugin *prpl = purple_find_prpl(purple_account_get_protocol_id(account));
	PurplePluginProtocolInfo *info;
	PurpleAccountOption *option;

	if (prpl == NULL) {
		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND,
		            "protocol plugin %s is not loaded",
		            purple_account_get_protocol_id(account));
		return FALSE;
	}
	info = PURPLE_PLUGIN_PROTOCOL_INFO(prpl);
	option = find_option(info, key);
	if (option == NULL) {
		char *keys = known_keys(info);

		g_set_error(error, HOST_ERROR, HOST_ERROR_NOT_FOUND,
		            "unknown option '%s' for %s (known: %s)", key,
		            purple_account_get_protocol_id(account), keys);
		g_free(keys);
		return FALSE;
	}

	switch (purple_account_option_get_type(option)) {
	case PURPLE_PREF_STRING:
		purple_account_set_string(account, key, value);
		return TRUE;
	case PURPLE_PREF_INT: {
		gint64 number;
		GError *local = NULL;

		if (!g_ascii_string_to_signed(value, 10, G_MININT, G_MAXINT, &number, &local)) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "option '%s' needs an integer: %s", key, local->message);
			g_error_free(local);
			return FALSE;
		}
		purple_account_set_int(account, key, (int)number);
		return TRUE;
	}
	case PURPLE_PREF_BOOLEAN: {
		gboolean flag;

		if (!parse_bool(value, &flag)) {
			g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
			            "option '%s' needs true or false, not '%s'", key, value);
			return FALSE;
		}
		purple_account_set_bool(account, key, flag);
		return TRUE;
	}
	case PURPLE_PREF_STRING_LIST: {
		/* A list option stores the value of the chosen item. */
		for (GList *l = purple_account_option_get_list(option); l != NULL; l = l->next) {
			PurpleKeyValuePair *pair = l->data;

			if (g_strcmp0(pair->value, value) == 0) {
				purple_account_set_string(account, key, value);
				return TRUE;
			}
		}
		g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
		            "option '%s' has no item with the value '%s'", key, value);
		return FALSE;
	}
	default:
		g_set_error(error, HOST_ERROR, HOST_ERROR_INVALID,
		            "option '%s' has a type the host cannot set", key);
		return FALSE;
	}
}
