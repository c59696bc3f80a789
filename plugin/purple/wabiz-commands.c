/* wabiz-commands.c: the commands that send something other than plain text
 * (/reply, /react, /location, /buttons, /list, /askphone). Arguments are
 * parsed and checked against the API's limits by plugin/core wa-compose.c
 * before anything is stored; the message then goes through the outbox like
 * text (durable, paced, retried, reported), and the conversation shows the
 * agent's line once it is queued.
 * Must not: send anything past the 24-hour window or to a group (groups take
 * text only: wabiz-chat.c), or put customer text into markup unescaped. */
#include "wabiz.h"

#include "wa-compose.h"

/* inbound messages looked at for /reply N and /react: the last ones of the
 * customer's history, in and out */
#define HISTORY_LOOKBACK 500

typedef enum {
  KIND_STATIC, /* composed from the arguments alone */
  KIND_REPLY,  /* needs the N-th last inbound message */
  KIND_REACT,  /* needs the last inbound message */
  KIND_ASKPHONE,
} CommandKind;

/* A command on its way to the outbox. */
typedef struct {
  WabizAccount *wa;
  CommandKind kind;
  char *to;       /* the customer's address */
  char *customer; /* store id, once known */
  WaComposed *composed;
  char *text; /* /reply's text, /react's emoji, /askphone's text */
  guint nth;
  gboolean gated;         /* holds the address's send gate (wabiz-send.c) */
  char *consent_category; /* a template's category: the customer's consent is checked before queuing */
} CommandJob;

/* Later sends to the address may start: this one is queued or given up. */
static void
command_job_ungate(CommandJob *job)
{
  if (job->gated) {
    job->gated = FALSE;
    wabiz_send_gate_leave(job->wa, job->to);
  }
}

static void
command_job_free(CommandJob *job)
{
  command_job_ungate(job);
  g_free(job->to);
  g_free(job->customer);
  g_clear_pointer(&job->composed, wa_composed_free);
  g_free(job->text);
  g_free(job->consent_category);
  g_free(job);
}

static void
say_not_sent(CommandJob *job, const char *reason)
{
  g_autofree char *text = g_strdup_printf(_("Not sent: %s"), reason);

  wabiz_conv_write_plain(wabiz_conv_im(job->wa->account, job->to, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
}

/* /askphone to a customer whose number is known. */
static char *
askphone_refusal(const char *number)
{
  return g_strdup_printf(_("this customer's phone number is known already (+%s); /askphone is for customers "
                           "known only by a business-scoped user ID."),
                         number);
}

static void
queued_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  CommandJob *job = data;

  wabiz_store_release(job->wa, job);
  if (error != NULL) {
    g_autofree char *reason = g_strdup_printf(_("the message could not be stored (%s)."), error->message);

    say_not_sent(job, reason);
  } else {
    wabiz_conv_write_sent(wabiz_conv_im(job->wa->account, job->to, TRUE), job->composed->line);
  }
  command_job_free(job);
}

static void
enqueue(CommandJob *job)
{
  WabizAccount *wa = job->wa;
  g_autofree char *to = g_strdup(job->to);
  gboolean gated = job->gated;

  if (wa->sender == NULL || wa->store == NULL) {
    say_not_sent(job, _("the account is offline."));
    command_job_free(job);
    return;
  }
  /* the store takes requests in order: what comes next is queued after
   * this (left after the request, which may answer, and free the job, at
   * once) */
  job->gated = FALSE;
  wa_sender_enqueue(wa->sender, job->customer, job->to, job->composed->type, job->composed->line,
                    job->composed->payload, queued_cb, wabiz_store_hold(wa, job, (GDestroyNotify) command_job_free));
  if (gated)
    wabiz_send_gate_leave(wa, to);
}

static void
history_cb(GPtrArray *messages, const GError *error, gpointer data)
{
  CommandJob *job = data;
  const WaStoreMessage *target = NULL;
  g_autoptr(GError) local = NULL;
  guint seen = 0;

  wabiz_store_release(job->wa, job);
  if (error != NULL) {
    g_autofree char *reason = g_strdup_printf(_("the customer's messages could not be read (%s)."), error->message);

    say_not_sent(job, reason);
    command_job_free(job);
    return;
  }
  for (guint i = messages->len; i > 0 && target == NULL; i--) {
    const WaStoreMessage *m = g_ptr_array_index(messages, i - 1);

    /* a customer's reaction is not a message one can answer or react to */
    if (m->direction == WA_STORE_IN && m->wamid != NULL && g_strcmp0(m->type, "reaction") != 0 && ++seen == job->nth)
      target = m;
  }
  if (target == NULL) {
    say_not_sent(job, job->nth > 1 ? _("the customer has not sent that many messages.")
                                   : _("the customer has not sent a message yet."));
    command_job_free(job);
    return;
  }
  {
    g_autofree char *quote =
      target->body != NULL ? g_strdup(target->body) : g_strdup_printf(_("[%s message]"), target->type);

    if (job->kind == KIND_REPLY)
      job->composed = wa_compose_reply(job->text, target->wamid, quote, &local);
    else
      job->composed = wa_compose_reaction(job->text, target->wamid, quote, &local);
  }
  if (job->composed == NULL) {
    say_not_sent(job, local->message);
    command_job_free(job);
    return;
  }
  enqueue(job);
}

/* A template's consent, checked right before it is queued. */
static void
consent_cb(WabizAccount *wa, gboolean allowed, const char *why, gpointer data)
{
  CommandJob *job = data;

  wabiz_store_release(wa, job);
  if (!allowed) {
    say_not_sent(job, why);
    command_job_free(job);
    return;
  }
  enqueue(job);
}

static void
ensured_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  CommandJob *job = data;
  WabizAccount *wa = job->wa;

  wabiz_store_release(wa, job);
  if (error != NULL || wa->store == NULL) {
    g_autofree char *reason = g_strdup_printf(_("the message could not be stored (%s)."),
                                              error != NULL ? error->message : _("the account is offline"));

    say_not_sent(job, reason);
    command_job_free(job);
    return;
  }
  job->customer = g_strdup(update->customer->id);
  switch (job->kind) {
  case KIND_ASKPHONE:
    if (update->customer->wa_id != NULL) {
      g_autofree char *reason = askphone_refusal(update->customer->wa_id);

      say_not_sent(job, reason);
      command_job_free(job);
      return;
    }
    break;
  case KIND_REPLY:
  case KIND_REACT:
    wa_store_history(wa->store, job->customer, HISTORY_LOOKBACK, history_cb,
                     wabiz_store_hold(wa, job, (GDestroyNotify) command_job_free));
    return;
  case KIND_STATIC:
    if (job->consent_category != NULL) {
      wabiz_consent_check(wa, job->customer, job->to, job->consent_category, consent_cb,
                          wabiz_store_hold(wa, job, (GDestroyNotify) command_job_free));
      return;
    }
    break;
  }
  enqueue(job);
}

/* Its turn among the sends to the address: the customer is found or
 * created in the store first (as for text). */
static void
command_job_start(gpointer data)
{
  CommandJob *job = data;
  WabizAccount *wa = job->wa;

  if (wa->store == NULL) {
    say_not_sent(job, _("the account is offline."));
    command_job_free(job);
    return;
  }
  wabiz_store_ensure_address(wa, job->to, ensured_cb, wabiz_store_hold(wa, job, (GDestroyNotify) command_job_free));
}

/* The customer of @conv, checked as send_im checks it (connected, a
 * customer, the window open); NULL with *@error set otherwise. */
static char *
command_customer(PurpleConversation *conv, const char *cmd, gboolean closed_ok, WabizAccount **wa_out, char **error)
{
  WabizAccount *wa = purple_conversation_get_gc(conv) != NULL
                       ? purple_connection_get_protocol_data(purple_conversation_get_gc(conv))
                       : NULL;
  const char *name = purple_conversation_get_name(conv);
  g_autoptr(GError) local = NULL;
  g_autofree char *customer = NULL;

  if (purple_conversation_get_type(conv) == PURPLE_CONV_TYPE_CHAT) {
    if (g_str_equal(cmd, "react"))
      *error = g_strdup(_("Not sent: reactions cannot be sent in WhatsApp groups (the API does not allow them)."));
    else if (g_str_equal(cmd, "buttons") || g_str_equal(cmd, "list"))
      *error = g_strdup(_("Not sent: interactive messages cannot be sent in WhatsApp groups (the API does not "
                          "allow them)."));
    else
      *error = g_strdup_printf(_("Not sent: /%s is for conversations with a customer; a group takes text."), cmd);
    return NULL;
  }
  if (wa == NULL || wa->sender == NULL || wa->store == NULL) {
    *error = g_strdup(_("Not sent: the account is not connected."));
    return NULL;
  }
  if (wabiz_is_notices(name)) {
    *error = g_strdup(_("Not sent: this conversation only shows notices about the account."));
    return NULL;
  }
  customer = wa_customer_id_normalize(name, purple_account_get_string(wa->account, WABIZ_OPT_DEFAULT_CC, NULL), &local);
  if (customer == NULL) {
    *error = g_strdup_printf(_("Not sent: %s"), local->message);
    return NULL;
  }
  if (!closed_ok && wabiz_window_state(wa->account, customer, NULL) == WA_WINDOW_CLOSED) {
    *error = g_strdup(wabiz_window_closed_text());
    return NULL;
  }
  *wa_out = wa;
  return g_steal_pointer(&customer);
}

/* A job for @to (takes @composed) waits for the sends typed before it. */
static void
command_job_enter(WabizAccount *wa, CommandKind kind, const char *to, WaComposed *composed, const char *text, guint nth,
                  const char *consent_category)
{
  CommandJob *job = g_new0(CommandJob, 1);

  job->wa = wa;
  job->kind = kind;
  job->to = g_strdup(to);
  job->composed = composed;
  job->text = g_strdup(text);
  job->nth = nth;
  job->consent_category = g_strdup(consent_category);
  job->gated = TRUE;
  wabiz_send_gate_enter(wa, to, TRUE, command_job_start, job, (GDestroyNotify) command_job_free);
}

/* Starts @kind for @conv: it waits for the sends typed before it. */
static PurpleCmdRet
command_start(PurpleConversation *conv, const char *cmd, CommandKind kind, WaComposed *composed, const char *text,
              guint nth, char **error)
{
  WabizAccount *wa = NULL;
  g_autofree char *customer = command_customer(conv, cmd, FALSE, &wa, error);

  if (customer == NULL) {
    wa_composed_free(composed);
    return PURPLE_CMD_RET_FAILED;
  }
  if (kind == KIND_ASKPHONE && !wa_id_is_bsuid(customer)) {
    g_autofree char *reason = askphone_refusal(customer);

    *error = g_strdup_printf(_("Not sent: %s"), reason);
    wa_composed_free(composed);
    return PURPLE_CMD_RET_FAILED;
  }
  command_job_enter(wa, kind, customer, composed, text, nth, NULL);
  return PURPLE_CMD_RET_OK;
}

char *
wabiz_command_customer(PurpleConversation *conv, const char *cmd, gboolean closed_ok, WabizAccount **wa, char **error)
{
  return command_customer(conv, cmd, closed_ok, wa, error);
}

void
wabiz_command_queue(WabizAccount *wa, const char *to, WaComposed *composed, const char *consent_category)
{
  command_job_enter(wa, KIND_STATIC, to, composed, NULL, 0, consent_category);
}

/* A composing error as the command's failure. */
static PurpleCmdRet
refused(GError *local, char **error)
{
  *error = g_strdup_printf(_("Not sent: %s"), local->message);
  return PURPLE_CMD_RET_FAILED;
}

/* The argument: an "s" argument is the plain text typed (libpurple slices
 * markup only for "S"). */
static char *
arg(char **args)
{
  return g_strdup(args != NULL && args[0] != NULL ? args[0] : "");
}

PurpleCmdRet
wabiz_cmd_reply(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *text = NULL;
  guint nth = 1;

  g_autofree char *typed = arg(args);

  if (!wa_compose_reply_parse(typed, &nth, &text, &local))
    return refused(local, error);
  return command_start(conv, cmd, KIND_REPLY, NULL, text, nth, error);
}

PurpleCmdRet
wabiz_cmd_react(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  g_autofree char *emoji = g_strstrip(arg(args));

  if (*emoji != '\0' && !wa_compose_emoji_is_valid(emoji)) {
    *error = g_strdup_printf(_("Not sent: a reaction is one emoji (such as 👍); \"%s\" is not. /react alone "
                               "removes yours."),
                             emoji);
    return PURPLE_CMD_RET_FAILED;
  }
  return command_start(conv, cmd, KIND_REACT, NULL, emoji, 1, error);
}

/* /location, /buttons, /list: composed from the arguments alone. */
static PurpleCmdRet
compose_command(PurpleConversation *conv, const char *cmd, char **args, char **error,
                WaComposed *(*compose)(const char *, GError **) )
{
  g_autoptr(GError) local = NULL;
  g_autofree char *typed = arg(args);
  WaComposed *composed = compose(typed, &local);

  if (composed == NULL)
    return refused(local, error);
  return command_start(conv, cmd, KIND_STATIC, composed, NULL, 0, error);
}

PurpleCmdRet
wabiz_cmd_location(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  return compose_command(conv, cmd, args, error, wa_compose_location);
}

PurpleCmdRet
wabiz_cmd_buttons(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  return compose_command(conv, cmd, args, error, wa_compose_buttons);
}

PurpleCmdRet
wabiz_cmd_list(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  return compose_command(conv, cmd, args, error, wa_compose_list);
}

PurpleCmdRet
wabiz_cmd_askphone(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *typed = arg(args);
  WaComposed *composed = wa_compose_askphone(typed, &local);

  if (composed == NULL)
    return refused(local, error);
  return command_start(conv, cmd, KIND_ASKPHONE, composed, NULL, 0, error);
}
