/* wabiz-host: writes events as JSON lines on stdout, and names libpurple's
 * enums for them.  Nothing else may write to stdout (debug output goes to
 * stderr), so a test can parse every line. */
#include "host.h"

#include <stdio.h>

JsonBuilder *
host_event_new(const char *event)
{
	JsonBuilder *b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "event");
	json_builder_add_string_value(b, event);
	return b;
}

void
host_event_emit(JsonBuilder *b)
{
	JsonGenerator *gen;
	JsonNode *root;
	char *text;
	gsize len = 0;

	json_builder_end_object(b);
	root = json_builder_get_root(b);
	gen = json_generator_new();
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	/* A closed stdout (the test went away) is not an error worth dying for:
	 * SIGPIPE is ignored and EOF on stdin ends the host. */
	if (fwrite(text, 1, len, stdout) == len)
		fputc('\n', stdout);
	fflush(stdout);

	g_free(text);
	g_object_unref(gen);
	json_node_unref(root);
	g_object_unref(b);
}

static void
add_string_value(JsonBuilder *b, const char *value)
{
	if (value == NULL) {
		json_builder_add_null_value(b);
	} else if (g_utf8_validate(value, -1, NULL)) {
		json_builder_add_string_value(b, value);
	} else {
		char *valid = g_utf8_make_valid(value, -1);

		json_builder_add_string_value(b, valid);
		g_free(valid);
	}
}

void
host_add_string(JsonBuilder *b, const char *key, const char *value)
{
	json_builder_set_member_name(b, key);
	add_string_value(b, value);
}

void
host_add_account(JsonBuilder *b, PurpleAccount *account)
{
	host_add_string(b, "account",
	                account != NULL ? purple_account_get_username(account) : NULL);
}

void
host_add_string_element(JsonBuilder *b, const char *value)
{
	add_string_value(b, value);
}

void
host_add_int(JsonBuilder *b, const char *key, gint64 value)
{
	json_builder_set_member_name(b, key);
	json_builder_add_int_value(b, value);
}

void
host_add_bool(JsonBuilder *b, const char *key, gboolean value)
{
	json_builder_set_member_name(b, key);
	json_builder_add_boolean_value(b, value);
}

void
host_add_null(JsonBuilder *b, const char *key)
{
	json_builder_set_member_name(b, key);
	json_builder_add_null_value(b);
}

const char *
host_conv_type_name(PurpleConversationType type)
{
	switch (type) {
	case PURPLE_CONV_TYPE_IM:
		return "im";
	case PURPLE_CONV_TYPE_CHAT:
		return "chat";
	case PURPLE_CONV_TYPE_MISC:
		return "misc";
	case PURPLE_CONV_TYPE_ANY:
		return "any";
	case PURPLE_CONV_TYPE_UNKNOWN:
	default:
		return "unknown";
	}
}

static const char *const error_names[] = {
	[PURPLE_CONNECTION_ERROR_NETWORK_ERROR] = "NETWORK_ERROR",
	[PURPLE_CONNECTION_ERROR_INVALID_USERNAME] = "INVALID_USERNAME",
	[PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED] = "AUTHENTICATION_FAILED",
	[PURPLE_CONNECTION_ERROR_AUTHENTICATION_IMPOSSIBLE] = "AUTHENTICATION_IMPOSSIBLE",
	[PURPLE_CONNECTION_ERROR_NO_SSL_SUPPORT] = "NO_SSL_SUPPORT",
	[PURPLE_CONNECTION_ERROR_ENCRYPTION_ERROR] = "ENCRYPTION_ERROR",
	[PURPLE_CONNECTION_ERROR_NAME_IN_USE] = "NAME_IN_USE",
	[PURPLE_CONNECTION_ERROR_INVALID_SETTINGS] = "INVALID_SETTINGS",
	[PURPLE_CONNECTION_ERROR_CERT_NOT_PROVIDED] = "CERT_NOT_PROVIDED",
	[PURPLE_CONNECTION_ERROR_CERT_UNTRUSTED] = "CERT_UNTRUSTED",
	[PURPLE_CONNECTION_ERROR_CERT_EXPIRED] = "CERT_EXPIRED",
	[PURPLE_CONNECTION_ERROR_CERT_NOT_ACTIVATED] = "CERT_NOT_ACTIVATED",
	[PURPLE_CONNECTION_ERROR_CERT_HOSTNAME_MISMATCH] = "CERT_HOSTNAME_MISMATCH",
	[PURPLE_CONNECTION_ERROR_CERT_FINGERPRINT_MISMATCH] = "CERT_FINGERPRINT_MISMATCH",
	[PURPLE_CONNECTION_ERROR_CERT_SELF_SIGNED] = "CERT_SELF_SIGNED",
	[PURPLE_CONNECTION_ERROR_CERT_OTHER_ERROR] = "CERT_OTHER_ERROR",
	[PURPLE_CONNECTION_ERROR_OTHER_ERROR] = "OTHER_ERROR",
};

const char *
host_error_name(PurpleConnectionError reason)
{
	if ((unsigned)reason < G_N_ELEMENTS(error_names) && error_names[reason] != NULL)
		return error_names[reason];
	return "UNKNOWN";
}

const char *
host_cmd_status_name(PurpleCmdStatus status)
{
	switch (status) {
	case PURPLE_CMD_STATUS_OK:
		return "ok";
	case PURPLE_CMD_STATUS_FAILED:
		return "failed";
	case PURPLE_CMD_STATUS_NOT_FOUND:
		return "not-found";
	case PURPLE_CMD_STATUS_WRONG_ARGS:
		return "wrong-args";
	case PURPLE_CMD_STATUS_WRONG_PRPL:
		return "wrong-prpl";
	case PURPLE_CMD_STATUS_WRONG_TYPE:
		return "wrong-type";
	default:
		return "unknown";
	}
}

static const struct {
	PurpleMessageFlags flag;
	const char *name;
} message_flags[] = {
	{ PURPLE_MESSAGE_SEND, "send" },
	{ PURPLE_MESSAGE_RECV, "recv" },
	{ PURPLE_MESSAGE_SYSTEM, "system" },
	{ PURPLE_MESSAGE_AUTO_RESP, "auto-resp" },
	{ PURPLE_MESSAGE_ACTIVE_ONLY, "active-only" },
	{ PURPLE_MESSAGE_NICK, "nick" },
	{ PURPLE_MESSAGE_NO_LOG, "no-log" },
	{ PURPLE_MESSAGE_WHISPER, "whisper" },
	{ PURPLE_MESSAGE_ERROR, "error" },
	{ PURPLE_MESSAGE_DELAYED, "delayed" },
	{ PURPLE_MESSAGE_RAW, "raw" },
	{ PURPLE_MESSAGE_IMAGES, "images" },
	{ PURPLE_MESSAGE_NOTIFY, "notify" },
	{ PURPLE_MESSAGE_NO_LINKIFY, "no-linkify" },
	{ PURPLE_MESSAGE_INVISIBLE, "invisible" },
	{ PURPLE_MESSAGE_REMOTE_SEND, "remote-send" },
};

void
host_add_message_flags(JsonBuilder *b, const char *key, PurpleMessageFlags flags)
{
	guint known = 0;

	json_builder_set_member_name(b, key);
	json_builder_begin_array(b);
	for (gsize i = 0; i < G_N_ELEMENTS(message_flags); i++) {
		known |= message_flags[i].flag;
		if (flags & message_flags[i].flag)
			json_builder_add_string_value(b, message_flags[i].name);
	}
	/* Bits libpurple 2.14 does not name are shown, not dropped. */
	for (guint bit = 1; bit != 0; bit <<= 1) {
		if ((flags & bit) && !(known & bit)) {
			char name[16];

			g_snprintf(name, sizeof name, "0x%x", bit);
			json_builder_add_string_value(b, name);
		}
	}
	json_builder_end_array(b);
}

GQuark
host_error_quark(void)
{
	return g_quark_from_static_string("wabiz-host-error");
}
