/* wabiz-host: conversation UI ops.  write_im and write_chat are left unset,
 * so every line libpurple shows (purple_conversation_write, IM and chat
 * writes, the echo of a sent message) reaches write_conv, as in Pidgin.
 *
 * With --bitlbee they are set, as bitlbee-libpurple 3.6 sets them
 * (protocols/purple/purple.c), and each "write" event says by which op it
 * came ("via": "im", "chat" or "conv") and whether BitlBee shows it to the
 * IRC user ("bitlbee_shows"): IM and chat lines unless they are the echo
 * of a line sent here (SEND without DELAYED or REMOTE_SEND); conversation
 * writes only when SEND (a system or error line is dropped). */
#include "host.h"

/* PurpleConversation * -> its name, from create_conversation on.  libpurple
 * frees the name before destroy_conversation, and reports logging and title
 * updates before create_conversation: neither is shown for an unknown conv. */
static GHashTable *created;

void
host_add_conv_members(JsonBuilder *b, PurpleConversation *conv)
{
	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_string(b, "conv_type", host_conv_type_name(purple_conversation_get_type(conv)));
	host_add_string(b, "title", purple_conversation_get_title(conv));
	host_add_bool(b, "logging", purple_conversation_is_logging(conv));
}

static void
create_conversation(PurpleConversation *conv)
{
	JsonBuilder *b = host_event_new("conv-created");

	g_hash_table_replace(created, conv, g_strdup(purple_conversation_get_name(conv)));
	host_add_conv_members(b, conv);
	host_add_account(b, purple_conversation_get_account(conv));
	/* "type" is the name the first users of the host expect. */
	host_add_string(b, "type", host_conv_type_name(purple_conversation_get_type(conv)));
	host_event_emit(b);
}

static void
destroy_conversation(PurpleConversation *conv)
{
	const char *type = host_conv_type_name(purple_conversation_get_type(conv));
	JsonBuilder *b = host_event_new("conv-destroyed");

	host_add_string(b, "conv", g_hash_table_lookup(created, conv));
	host_add_string(b, "conv_type", type);
	host_add_string(b, "type", type);
	host_event_emit(b);
	g_hash_table_remove(created, conv);
}

static void
emit_write(PurpleConversation *conv, const char *name, const char *alias, const char *message,
           PurpleMessageFlags flags, time_t mtime, const char *via)
{
	JsonBuilder *b = host_event_new("write");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_string(b, "conv_type", host_conv_type_name(purple_conversation_get_type(conv)));
	host_add_string(b, "who", name);
	host_add_string(b, "alias", alias);
	host_add_string(b, "message", message);
	host_add_account(b, purple_conversation_get_account(conv));
	host_add_message_flags(b, "flags", flags);
	host_add_int(b, "time", (gint64)mtime);
	/* Whether libpurple's plaintext log is on at the moment of this line. */
	host_add_bool(b, "logging", purple_conversation_is_logging(conv));
	if (host_get()->bitlbee) {
		gboolean shows = g_str_equal(via, "conv")
		                         ? (flags & PURPLE_MESSAGE_SEND) != 0
		                         : !(flags & PURPLE_MESSAGE_SEND) ||
		                                   (flags & (PURPLE_MESSAGE_DELAYED |
		                                             PURPLE_MESSAGE_REMOTE_SEND)) != 0;

		host_add_string(b, "via", via);
		host_add_bool(b, "bitlbee_shows", shows);
	}
	host_event_emit(b);
}

static void
write_conv(PurpleConversation *conv, const char *name, const char *alias, const char *message,
           PurpleMessageFlags flags, time_t mtime)
{
	emit_write(conv, name, alias, message, flags, mtime, "conv");
}

/* --bitlbee only: BitlBee writes IM and chat lines itself, without
 * purple_conversation_write. */
static void
write_im(PurpleConversation *conv, const char *who, const char *message, PurpleMessageFlags flags,
         time_t mtime)
{
	emit_write(conv, who, NULL, message, flags, mtime, "im");
}

static void
write_chat(PurpleConversation *conv, const char *who, const char *message, PurpleMessageFlags flags,
           time_t mtime)
{
	emit_write(conv, who, NULL, message, flags, mtime, "chat");
}

static void
add_chat_buddy(JsonBuilder *b, PurpleConvChatBuddy *cb)
{
	json_builder_begin_object(b);
	host_add_string(b, "name", cb->name);
	host_add_string(b, "alias", cb->alias);
	host_add_int(b, "flags", cb->flags);
	json_builder_end_object(b);
}

static void
chat_add_users(PurpleConversation *conv, GList *cbuddies, gboolean new_arrivals)
{
	JsonBuilder *b = host_event_new("chat-add-users");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_bool(b, "new_arrivals", new_arrivals);
	json_builder_set_member_name(b, "users");
	json_builder_begin_array(b);
	for (GList *l = cbuddies; l != NULL; l = l->next)
		add_chat_buddy(b, l->data);
	json_builder_end_array(b);
	host_event_emit(b);
}

static void
chat_remove_users(PurpleConversation *conv, GList *users)
{
	JsonBuilder *b = host_event_new("chat-remove-users");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	json_builder_set_member_name(b, "users");
	json_builder_begin_array(b);
	for (GList *l = users; l != NULL; l = l->next)
		host_add_string_element(b, l->data);
	json_builder_end_array(b);
	host_event_emit(b);
}

static void
chat_rename_user(PurpleConversation *conv, const char *old_name, const char *new_name,
                 const char *new_alias)
{
	JsonBuilder *b = host_event_new("chat-rename-user");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_string(b, "old_name", old_name);
	host_add_string(b, "new_name", new_name);
	host_add_string(b, "new_alias", new_alias);
	host_event_emit(b);
}

static void
chat_update_user(PurpleConversation *conv, const char *user)
{
	PurpleConvChatBuddy *cb = purple_conv_chat_cb_find(PURPLE_CONV_CHAT(conv), user);
	JsonBuilder *b = host_event_new("chat-update-user");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_string(b, "name", user);
	host_add_string(b, "alias", cb != NULL ? cb->alias : NULL);
	host_add_int(b, "flags", cb != NULL ? cb->flags : 0);
	host_event_emit(b);
}

static void
present(PurpleConversation *conv)
{
	JsonBuilder *b = host_event_new("conv-present");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_event_emit(b);
}

static gboolean
has_focus(PurpleConversation *conv)
{
	/* BitlBee has no such op: never focused there */
	return !host_get()->bitlbee && host_get()->focused != NULL &&
	       g_strcmp0(purple_conversation_get_name(conv), host_get()->focused) == 0;
}

static void
send_confirm(PurpleConversation *conv, const char *message)
{
	JsonBuilder *b = host_event_new("send-confirm");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_string(b, "message", message);
	host_event_emit(b);
}

static PurpleConversationUiOps conversation_ops = {
	.create_conversation = create_conversation,
	.destroy_conversation = destroy_conversation,
	.write_conv = write_conv,
	.chat_add_users = chat_add_users,
	.chat_rename_user = chat_rename_user,
	.chat_remove_users = chat_remove_users,
	.chat_update_user = chat_update_user,
	.present = present,
	.has_focus = has_focus,
	.send_confirm = send_confirm,
};

PurpleConversationUiOps *
host_conversation_ui_ops(void)
{
	if (host_get()->bitlbee) {
		conversation_ops.write_im = write_im;
		conversation_ops.write_chat = write_chat;
	}
	return &conversation_ops;
}

static void
chat_topic_changed_cb(PurpleConversation *conv, const char *who, const char *topic, gpointer data)
{
	JsonBuilder *b = host_event_new("chat-topic");

	host_add_string(b, "conv", purple_conversation_get_name(conv));
	host_add_string(b, "who", who);
	host_add_string(b, "topic", topic);
	host_event_emit(b);
}

static const char *
typing_state_name(PurpleTypingState state)
{
	switch (state) {
	case PURPLE_TYPING:
		return "typing";
	case PURPLE_TYPED:
		return "typed";
	case PURPLE_NOT_TYPING:
	default:
		return "not-typing";
	}
}

static void
conversation_updated_cb(PurpleConversation *conv, PurpleConvUpdateType type, gpointer data)
{
	JsonBuilder *b;

	if (!g_hash_table_contains(created, conv))
		return;
	switch (type) {
	case PURPLE_CONV_UPDATE_LOGGING:
		b = host_event_new("conv-logging");
		host_add_string(b, "conv", purple_conversation_get_name(conv));
		host_add_bool(b, "logging", purple_conversation_is_logging(conv));
		host_event_emit(b);
		break;
	case PURPLE_CONV_UPDATE_TYPING:
		if (purple_conversation_get_type(conv) != PURPLE_CONV_TYPE_IM)
			break;
		b = host_event_new("typing");
		host_add_string(b, "conv", purple_conversation_get_name(conv));
		host_add_string(
		        b, "state",
		        typing_state_name(purple_conv_im_get_typing_state(PURPLE_CONV_IM(conv))));
		host_event_emit(b);
		break;
	case PURPLE_CONV_UPDATE_TITLE:
		b = host_event_new("conv-title");
		host_add_string(b, "conv", purple_conversation_get_name(conv));
		host_add_string(b, "title", purple_conversation_get_title(conv));
		host_event_emit(b);
		break;
	default:
		break;
	}
}

void
host_conv_init(void *handle)
{
	void *convs = purple_conversations_get_handle();

	created = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	purple_signal_connect(convs, "chat-topic-changed", handle,
	                      PURPLE_CALLBACK(chat_topic_changed_cb), NULL);
	purple_signal_connect(convs, "conversation-updated", handle,
	                      PURPLE_CALLBACK(conversation_updated_cb), NULL);
}

void
host_conv_shutdown(void)
{
	g_clear_pointer(&created, g_hash_table_destroy);
}
