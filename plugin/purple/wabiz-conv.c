/* wabiz-conv.c: conversations, and the one place where text from customers or
 * the API becomes libpurple HTML (wa_text_to_html escapes it first). No other
 * file may pass such text to purple_conversation_write or serv_got_im. */
#include "wabiz.h"

PurpleConversation *
wabiz_conv_im(PurpleAccount *account, const char *customer, gboolean create)
{
  PurpleConversation *conv =
    purple_find_conversation_with_account(PURPLE_CONV_TYPE_IM, customer, account);

  if (conv == NULL && create)
    conv = purple_conversation_new(PURPLE_CONV_TYPE_IM, account, customer);
  return conv;
}

void
wabiz_conv_write_plain(PurpleConversation *conv, const char *text, PurpleMessageFlags flags, time_t when)
{
  g_autofree char *html = wa_text_to_html(text, FALSE);

  if (conv == NULL)
    return;
  purple_conversation_write(conv, NULL, html, flags | PURPLE_MESSAGE_NO_LINKIFY,
                            when != 0 ? when : time(NULL));
}

/* Our conversations stay out of libpurple's plain-text logs unless the agent
 * opted in: customers' messages are personal data. */
void
wabiz_conv_created_cb(PurpleConversation *conv, gpointer data)
{
  PurpleAccount *account = purple_conversation_get_account(conv);

  if (account == NULL || g_strcmp0(purple_account_get_protocol_id(account), WABIZ_PRPL_ID) != 0)
    return;
  if (!purple_account_get_bool(account, WABIZ_OPT_PLAINTEXT_LOG, FALSE))
    purple_conversation_set_logging(conv, FALSE);
}

/* A customer's message: WhatsApp markup becomes HTML after escaping, so
 * "<b>" typed by a customer stays text. */
void
wabiz_conv_got_im(WabizAccount *wa, const char *customer, const char *text, time_t when)
{
  g_autofree char *html = wa_text_to_html(text, TRUE);

  serv_got_im(wa->gc, customer, html, PURPLE_MESSAGE_RECV, when != 0 ? when : time(NULL));
}

/* A message the business sent from another app or agent: shown as sent, never
 * as incoming (serv_got_im would notify the agent of their own message). */
void
wabiz_conv_write_elsewhere(PurpleAccount *account, const char *customer, const char *text, time_t when)
{
  PurpleConversation *conv = wabiz_conv_im(account, customer, TRUE);
  g_autofree char *html = wa_text_to_html(text, TRUE);

  purple_conversation_write(conv, NULL, html,
                            PURPLE_MESSAGE_SEND | PURPLE_MESSAGE_REMOTE_SEND | PURPLE_MESSAGE_NO_LINKIFY,
                            when != 0 ? when : time(NULL));
}

/* The account's notices conversation: set-up hints, receiver problems and
 * account-level events. Its name cannot be a customer (no digits, no dot). */
void
wabiz_notice(WabizAccount *wa, const char *text)
{
  PurpleConversation *conv = wabiz_conv_im(wa->account, WABIZ_NOTICES_NAME, TRUE);

  purple_conversation_set_title(conv, _("WhatsApp Business notices"));
  wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_SYSTEM, 0);
}
