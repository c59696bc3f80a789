/* wabiz-chat.c: WhatsApp groups as chat conversations, read-only until groups
 * are a feature: members' messages and group events are shown, the agent's
 * lines are refused with an explanation.
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
                           _("This is a WhatsApp group. Groups are read-only in this version: "
                             "members' messages show here, replies cannot be sent yet."),
                           PURPLE_MESSAGE_SYSTEM, 0);
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
  PurpleConversation *conv = purple_find_chat(gc, id);

  wabiz_conv_write_plain(conv, _("Not sent: replying in WhatsApp groups is not supported yet."), PURPLE_MESSAGE_ERROR,
                         0);
  return -1;
}
