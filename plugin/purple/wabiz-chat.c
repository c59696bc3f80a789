/* wabiz-chat.c: WhatsApp groups as chat conversations: members' messages
 * and group events are shown; the agent's text goes to the group through the
 * outbox (addressed "group:<id>", recipient_type "group"), like text to a
 * customer. Reactions, interactive messages, read receipts, typing and edits
 * are not offered in groups (the API does not allow them); media to groups
 * is sent by the file transfer code with the same address.
 * Must not: pass group text to libpurple itself (wabiz-conv.c turns it into
 * HTML). */
#include "wabiz.h"

#include "wa-describe.h"

/* A stable chat id for a group id (libpurple wants an int). */
static int
chat_id(const char *group_id)
{
  return (int) (g_str_hash(group_id) & 0x3fffffff) + 1;
}

static PurpleConversation *
group_conv(WabizAccount *wa, const char *group_id)
{
  int id = chat_id(group_id);
  PurpleConversation *conv = purple_find_chat(wa->gc, id);

  if (conv != NULL)
    return conv;
  conv = serv_got_joined_chat(wa->gc, id, group_id);
  if (conv != NULL)
    wabiz_conv_write_plain(conv,
                           _("This is a WhatsApp group: members' messages show here, and what you type goes to "
                             "the group as text. Reactions, buttons and lists cannot be sent to groups."),
                           PURPLE_MESSAGE_SYSTEM, 0);
  return conv;
}

PurpleConversation *
wabiz_group_conv(PurpleAccount *account, const char *group_id, gboolean create)
{
  WabizAccount *wa = wabiz_account_data(account);
  PurpleConversation *conv = purple_find_conversation_with_account(PURPLE_CONV_TYPE_CHAT, group_id, account);

  if (conv == NULL && create && wa != NULL)
    conv = group_conv(wa, group_id);
  return conv;
}

void
wabiz_group_message(WabizAccount *wa, const WaMessage *message, const char *sender_name)
{
  PurpleConversation *conv = group_conv(wa, message->group_id);
  const char *who =
    wa_id_phone_or_null(message->from) != NULL ? message->from : wa_id_bsuid_or_null(message->from_user_id);
  g_autofree char *text = NULL;

  if (conv == NULL)
    return;
  text = wa_message_describe(message);
  wabiz_conv_got_chat(wa, chat_id(message->group_id), who != NULL ? who : "?", text,
                      message->timestamp > 0 ? (time_t) message->timestamp : 0);
}

void
wabiz_group_event(WabizAccount *wa, const char *group_id, const char *text, time_t when)
{
  wabiz_conv_write_plain(group_conv(wa, group_id), text, PURPLE_MESSAGE_SYSTEM, when);
}

int
wabiz_chat_send(PurpleConnection *gc, int id, const char *message, PurpleMessageFlags flags)
{
  WabizAccount *wa = purple_connection_get_protocol_data(gc);
  PurpleConversation *conv = purple_find_chat(gc, id);
  g_autofree char *address = conv != NULL ? wa_group_address(purple_conversation_get_name(conv)) : NULL;
  g_autofree char *text = NULL;

  if (conv == NULL || wa == NULL || wa->sender == NULL || wa->store == NULL)
    return -ENOTCONN;
  text = wa_html_to_whatsapp(message);
  g_strstrip(text);
  if (*text == '\0')
    return 0;
  /* BitlBee runs no libpurple commands: a line starting with / or ! is one */
  if (wabiz_bitlbee() && wabiz_bitlbee_chat_text(conv, &text))
    return 0;
  if (wabiz_campaign_chat_text(wa, id, text))
    return 0;
  if (address == NULL) {
    wabiz_conv_write_plain(conv, _("Not sent: this chat has no valid WhatsApp group ID."), PURPLE_MESSAGE_ERROR, 0);
    return 0;
  }
  /* a chat shows only what the protocol echoes; the outbox reports
   * failures in the chat (wabiz_conv_im routes group addresses here) */
  wabiz_conv_write_sent(conv, text);
  wabiz_send_text(wa, address, text);
  return 0;
}
