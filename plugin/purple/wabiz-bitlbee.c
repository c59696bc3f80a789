/* wabiz-bitlbee.c: the plugin in BitlBee (bitlbee-libpurple, the IRC
 * gateway), which shows only received IM and chat lines and runs no
 * libpurple commands.
 *
 * In BitlBee every line the plugin tells the agent (wabiz-conv.c) is written
 * as a received line starting with "[wabiz]", in the customer's query or,
 * for the account, from the contact "wabiz"; a customer's own line that
 * starts with the marker is escaped with a backslash so it cannot pass for
 * one of ours. Text the agent types that starts with "/" or "!" runs the
 * plugin's command of that name instead of going to the customer; "//" and
 * "!!" send the text with one of them. Pidgin and Finch are not affected.
 * Must not: send a command line, or a line typed to the "wabiz" contact, to
 * a customer. */
#include "wabiz.h"

#include <string.h>

gboolean
wabiz_bitlbee(void)
{
  return g_strcmp0(purple_core_get_ui(), "BitlBee") == 0;
}

const char *
wabiz_notices_name(void)
{
  return wabiz_bitlbee() ? WABIZ_BITLBEE_NOTICES_NAME : WABIZ_NOTICES_NAME;
}

gboolean
wabiz_is_notices(const char *name)
{
  return g_strcmp0(name, WABIZ_NOTICES_NAME) == 0 || g_strcmp0(name, WABIZ_BITLBEE_NOTICES_NAME) == 0;
}

/* BitlBee wires only buttons whose caption contains "OK"/"Accept" (yes) or
 * "Cancel"/"Reject" (no), matched in English: there a question's buttons are
 * OK and Cancel, untranslated. */
const char *
wabiz_caption_yes(const char *caption)
{
  return wabiz_bitlbee() ? "OK" : caption;
}

const char *
wabiz_caption_no(void)
{
  return wabiz_bitlbee() ? "Cancel" : _("Cancel");
}

/* Whether a command name starts at @p: "/" after the line's start, a space,
 * "(" or the end of an entity or tag, then one of the plugin's commands,
 * then neither a letter, digit, "_", "-" nor "/" (so URLs and paths stay). */
static gsize
command_at(const char *line, const char *p)
{
  gsize n = 0;

  if (*p != '/' || (p > line && !g_ascii_isspace(p[-1]) && p[-1] != '(' && p[-1] != ';' && p[-1] != '>'))
    return 0;
  while (g_ascii_islower(p[1 + n]))
    n++;
  if (n == 0 || g_ascii_isalnum(p[1 + n]) || strchr("_-/", p[1 + n]) != NULL || !wabiz_command_known(p + 1, n))
    return 0;
  return n;
}

/* The plugin's lines name its commands "/name"; in an IRC client "/name" is
 * the client's own command, so in BitlBee they read "!name". */
char *
wabiz_bitlbee_mark(const char *html)
{
  GString *out = g_string_new(WABIZ_MARK " ");

  for (const char *p = html; *p != '\0'; p++)
    g_string_append_c(out, command_at(html, p) > 0 ? '!' : *p);
  return g_string_free(out, FALSE);
}

char *
wabiz_bitlbee_escape(const char *text)
{
  const char *p = text;

  while (g_ascii_isspace(*p))
    p++;
  if (g_ascii_strncasecmp(p, WABIZ_MARK, strlen(WABIZ_MARK)) == 0)
    return g_strconcat("\\", text, NULL);
  return g_strdup(text);
}

/* "/help": every command the conversation offers, with its help text. */
static void
show_help(PurpleConversation *conv)
{
  GList *help = purple_cmd_help(conv, NULL);
  GString *text = g_string_new(_("Commands (type them with / or !; \"//\" or \"!!\" sends a line that starts "
                                 "with / or ! as text):"));

  g_string_append(text, "\n/help: this list.");
  for (GList *l = help; l != NULL; l = l->next)
    g_string_append_printf(text, "\n/%s", (const char *) l->data);
  g_list_free_full(help, g_free);
  wabiz_conv_write_plain(conv, text->str, PURPLE_MESSAGE_SYSTEM, 0);
  g_string_free(text, TRUE);
}

/* The names of the commands @conv offers, for a refusal: "help, export, ...". */
static char *
command_names(PurpleConversation *conv)
{
  GList *names = purple_cmd_list(conv);
  GString *text = g_string_new("/help");

  for (GList *l = names; l != NULL; l = l->next)
    g_string_append_printf(text, ", /%s", (const char *) l->data);
  g_list_free(names);
  return g_string_free(text, FALSE);
}

static void
run_command(PurpleConversation *conv, const char *line)
{
  g_autofree char *name = g_strndup(line, strcspn(line, " \t"));
  g_autofree char *markup = g_markup_escape_text(line, -1);
  g_autofree char *error = NULL;
  g_autofree char *text = NULL;

  if (*name == '\0' || g_ascii_strcasecmp(name, "help") == 0) {
    show_help(conv);
    return;
  }
  switch (purple_cmd_do_command(conv, line, markup, &error)) {
  case PURPLE_CMD_STATUS_OK:
    return;
  case PURPLE_CMD_STATUS_FAILED:
    text = g_strdup_printf(_("/%s failed: %s"), name, error != NULL ? error : _("no reason given"));
    break;
  case PURPLE_CMD_STATUS_WRONG_ARGS: {
    GList *help = purple_cmd_help(conv, name);

    text = g_strdup_printf(_("Usage: /%s"), help != NULL ? (const char *) help->data : name);
    g_list_free_full(help, g_free);
    break;
  }
  default: {
    g_autofree char *names = command_names(conv);

    text = g_strdup_printf(_("Not sent: /%s is not a command here. Commands: %s. To send a line that "
                             "starts with / or !, double it (// or !!)."),
                           name, names);
    break;
  }
  }
  wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_ERROR, 0);
}

/* TRUE when @t is a command line; "//x" becomes "/x" (text) in place. */
static gboolean
is_command_line(char *t)
{
  if ((t[0] == '/' || t[0] == '!') && t[1] == t[0]) {
    memmove(t, t + 1, strlen(t)); /* "//x" sends "/x" */
    return FALSE;
  }
  return t[0] == '/' || t[0] == '!';
}

WabizTextAction
wabiz_bitlbee_text(WabizAccount *wa, const char *who, char **text)
{
  char *t = *text;

  if (!is_command_line(t))
    return wabiz_is_notices(who) ? WABIZ_TEXT_REFUSED_NOTICES : WABIZ_TEXT_SEND;
  run_command(wabiz_conv_im(wa->account, who, TRUE), g_strchug(t + 1));
  return WABIZ_TEXT_HANDLED;
}

gboolean
wabiz_bitlbee_chat_text(PurpleConversation *conv, char **text)
{
  char *t = *text;

  if (!is_command_line(t))
    return FALSE;
  run_command(conv, g_strchug(t + 1));
  return TRUE;
}
