/* wabiz-consent.c: the consent ledger in the plugin. Records opt-ins and
 * opt-outs (the agent's /optin, /optout and buddy menu; the customer's
 * keywords and opt-out button payloads; WhatsApp's user_preferences webhook
 * and error 131050), shows a customer's state (/consent), and answers
 * whether a template may go now (wabiz_consent_check, read again before
 * each send). The decision itself is plugin/core wa-consent.c's.
 *
 * Opt-outs are ledger rows only: they add no suppression entry, so a later
 * opt-in counts. Suppression entries come from erasure (and imports of
 * suppression lists); a suppressed number counts as opted out of everything.
 *
 * Must not: record anything for a customer without a line in their
 * conversation saying so, put customer text into the ledger's plaintext
 * columns (scopes and sources only), or send anything. */
#include "wabiz.h"

#include "wa-json.h"

/* ---- recording ------------------------------------------------------------------ */

/* The account signed off (its store is closed). */
static GError *
store_closed(void)
{
  return g_error_new_literal(WA_STORE_ERROR, WA_STORE_ERROR_INVALID, _("the store is not open"));
}

typedef struct {
  WabizAccount *wa;
  char *customer_id;
  WaConsentScopes todo; /* scopes still to record */
  WaConsentScopes done_scopes;
  WaStoreConsentState state;
  char *source;
  char *note;
  gint64 at;
  WabizConsentRecordFunc done;
  gpointer data;
  GDestroyNotify data_free; /* frees @data when the store drops the request (sign-off) */
} Record;

static void
record_free(Record *r)
{
  g_free(r->customer_id);
  g_free(r->source);
  g_free(r->note);
  g_free(r);
}

/* The store closed with the request pending: done is never called. */
static void
record_dropped(Record *r)
{
  if (r->data_free != NULL)
    r->data_free(r->data);
  record_free(r);
}

static WaConsentScopes
next_scope(WaConsentScopes scopes)
{
  return (scopes & WA_CONSENT_MARKETING) != 0 ? WA_CONSENT_MARKETING : WA_CONSENT_UTILITY;
}

static void record_step(Record *r);

static void
record_end(Record *r, const GError *error)
{
  if (r->done != NULL)
    r->done(r->wa, r->done_scopes, error, r->data);
  record_free(r);
}

static void
recorded_cb(const GError *error, gpointer data)
{
  Record *r = data;

  wabiz_store_release(r->wa, r);
  if (error != NULL) {
    record_end(r, error);
    return;
  }
  r->done_scopes |= next_scope(r->todo);
  r->todo &= ~next_scope(r->todo);
  record_step(r);
}

static void
latest_cb(const WaStoreConsent *latest, const GError *error, gpointer data)
{
  Record *r = data;
  WaConsentScopes scope = next_scope(r->todo);

  wabiz_store_release(r->wa, r);
  if (error != NULL) {
    record_end(r, error);
    return;
  }
  /* what WhatsApp or the customer says again (a replayed webhook, STOP sent
   * twice) is not a new fact; the agent's own records always are */
  if (latest != NULL && latest->state == r->state && g_strcmp0(latest->source, r->source) == 0) {
    r->todo &= ~scope;
    record_step(r);
    return;
  }
  wa_store_consent_record(r->wa->store, r->customer_id, r->state, wa_consent_scope_name(scope), r->source, r->note,
                          r->at, recorded_cb, wabiz_store_hold(r->wa, r, (GDestroyNotify) record_dropped));
}

static void
record_step(Record *r)
{
  WaConsentScopes scope = next_scope(r->todo);

  if (r->todo == 0) {
    record_end(r, NULL);
    return;
  }
  if (g_str_equal(r->source, WA_CONSENT_SOURCE_AGENT))
    wa_store_consent_record(r->wa->store, r->customer_id, r->state, wa_consent_scope_name(scope), r->source, r->note,
                            r->at, recorded_cb, wabiz_store_hold(r->wa, r, (GDestroyNotify) record_dropped));
  else
    wa_store_consent_latest(r->wa->store, r->customer_id, wa_consent_scope_name(scope), latest_cb,
                            wabiz_store_hold(r->wa, r, (GDestroyNotify) record_dropped));
}

static void
record_start(WabizAccount *wa, const char *customer_id, WaConsentScopes scopes, WaStoreConsentState state,
             const char *source, const char *note, gint64 at, WabizConsentRecordFunc done, gpointer data,
             GDestroyNotify data_free)
{
  Record *r = g_new0(Record, 1);

  r->wa = wa;
  r->customer_id = g_strdup(customer_id);
  r->todo = scopes & WA_CONSENT_ALL;
  r->state = state;
  r->source = g_strdup(source);
  r->note = g_strdup(note);
  r->at = at;
  r->done = done;
  r->data = data;
  r->data_free = data_free;
  if (wa->store == NULL) {
    g_autoptr(GError) error = store_closed();

    record_end(r, error);
    return;
  }
  record_step(r);
}

void
wabiz_consent_record(WabizAccount *wa, const char *customer_id, WaConsentScopes scopes, WaStoreConsentState state,
                     const char *source, const char *note, gint64 at, WabizConsentRecordFunc done, gpointer data)
{
  g_return_if_fail(wa != NULL && customer_id != NULL && source != NULL);
  record_start(wa, customer_id, scopes, state, source, note, at, done, data, NULL);
}

/* "marketing", "utility" or "marketing and utility" messages, translated. */
static const char *
scopes_text(WaConsentScopes scopes)
{
  if (scopes == WA_CONSENT_ALL)
    return _("marketing and utility messages");
  return scopes == WA_CONSENT_UTILITY ? _("utility messages") : _("marketing messages");
}

static void
say(WabizAccount *wa, const char *who, const char *text, PurpleMessageFlags flags)
{
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, who, TRUE), text, flags, 0);
}

/* ---- a change with a line in the customer's conversation ---------------------- */

typedef enum {
  LINE_AGENT,       /* /optin, /optout, the buddy menu */
  LINE_KEYWORD,     /* the customer's message was an opt-out keyword */
  LINE_BUTTON,      /* the customer's button reply carried an opt-out payload */
  LINE_PREFERENCES, /* user_preferences: stop or resume */
  LINE_API,         /* error 131050 */
} LineKind;

typedef struct {
  WabizAccount *wa;
  char *who;  /* the conversation */
  char *what; /* the keyword or button the customer sent (their text), or NULL */
  LineKind kind;
  WaConsentScopes scopes;
  WaStoreConsentState state;
  gint64 at;
  WabizConsentSettledFunc settled; /* or NULL: told once the change is recorded (or refused) */
  gpointer settled_data;
} Change;

static void
change_free(Change *c)
{
  g_free(c->who);
  g_free(c->what);
  g_free(c);
}

/* The change's write is over (committed, refused or failed; not when the
 * store closed first): whoever waits for it is told. */
static void
change_settle(Change *c)
{
  if (c->settled != NULL)
    c->settled(c->settled_data);
}

static char *
change_line(const Change *c, WaConsentScopes recorded)
{
  const char *scopes = scopes_text(recorded);

  switch (c->kind) {
  case LINE_KEYWORD:
    return g_strdup_printf(_("The customer opted out with \"%s\": recorded for %s; templates will not be sent to "
                             "them."),
                           c->what, scopes);
  case LINE_BUTTON:
    return g_strdup_printf(_("The customer opted out with the button \"%s\": recorded for %s; such templates will "
                             "not be sent to them."),
                           c->what, scopes);
  case LINE_PREFERENCES:
    return g_strdup(c->state == WA_STORE_CONSENT_OPT_OUT
                      ? _("The customer stopped marketing messages in WhatsApp: recorded as an opt-out of marketing "
                          "messages; marketing templates will not be sent to them.")
                      : _("The customer allowed marketing messages again in WhatsApp: recorded as an opt-in for "
                          "marketing messages."));
  case LINE_API:
    return g_strdup(_("WhatsApp says the customer stopped marketing messages: recorded as an opt-out of marketing "
                      "messages."));
  case LINE_AGENT:
  default:
    if (c->state == WA_STORE_CONSENT_OPT_IN)
      return g_strdup_printf(_("Recorded: the customer opted in to %s (source: agent)."), scopes);
    return g_strdup_printf(_("Recorded: the customer opted out of %s (source: agent); such templates will not be "
                             "sent to them."),
                           scopes);
  }
}

static void
change_recorded(WabizAccount *wa, WaConsentScopes recorded, const GError *error, gpointer data)
{
  Change *c = data;

  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("The consent change could not be recorded: %s"), error->message);

    say(wa, c->who, text, PURPLE_MESSAGE_ERROR);
  } else if (recorded != 0) {
    g_autofree char *text = change_line(c, recorded);

    say(wa, c->who, text, PURPLE_MESSAGE_SYSTEM);
  }
  change_settle(c);
  change_free(c);
}

static void
change_ensured_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  Change *c = data;
  WabizAccount *wa = c->wa;

  wabiz_store_release(wa, c);
  if (error != NULL || update == NULL || update->customer == NULL) {
    /* a suppressed number is opted out of everything already: nothing
     * is recorded (no record is made for it either) */
    if (g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_SUPPRESSED)) {
      if (c->kind == LINE_AGENT)
        say(wa, c->who,
            _("This number is on the suppression list (its data was erased, or it was listed as opted out): "
              "nothing is recorded, and nothing is sent to it."),
            PURPLE_MESSAGE_ERROR);
      change_settle(c);
      change_free(c);
    } else {
      change_recorded(wa, 0, error, c);
    }
    return;
  }
  record_start(wa, update->customer->id, c->scopes, c->state,
               c->kind == LINE_AGENT         ? WA_CONSENT_SOURCE_AGENT
               : c->kind == LINE_KEYWORD     ? WA_CONSENT_SOURCE_KEYWORD
               : c->kind == LINE_BUTTON      ? WA_CONSENT_SOURCE_BUTTON
               : c->kind == LINE_PREFERENCES ? WA_CONSENT_SOURCE_PREFERENCES
                                             : WA_CONSENT_SOURCE_API,
               NULL, c->at, change_recorded, c, (GDestroyNotify) change_free);
}

/* Records @state for @scopes of the customer at address @to (phone digits
 * or a BSUID; created when the store does not know them, unless the number
 * is suppressed), then writes the line in conversation @who and calls
 * @settled (may be NULL). FALSE when nothing was started (then @settled is
 * never called). */
static gboolean
change_start(WabizAccount *wa, const char *who, const char *to, LineKind kind, WaConsentScopes scopes,
             WaStoreConsentState state, const char *what, gint64 at, WabizConsentSettledFunc settled,
             gpointer settled_data)
{
  Change *c;
  gboolean bsuid = wa_id_bsuid_or_null(to) != NULL;

  if (wa == NULL || wa->store == NULL || (wa_id_phone_or_null(to) == NULL && !bsuid))
    return FALSE;
  c = g_new0(Change, 1);
  c->settled = settled;
  c->settled_data = settled_data;
  c->wa = wa;
  c->who = g_strdup(who);
  c->what = g_strdup(what);
  c->kind = kind;
  c->scopes = scopes;
  c->state = state;
  c->at = at;
  wa_store_customer_ensure(wa->store, bsuid ? NULL : to, bsuid ? to : NULL, NULL, WA_STORE_ENSURE_REFUSE_SUPPRESSED,
                           change_ensured_cb, wabiz_store_hold(wa, c, (GDestroyNotify) change_free));
  return TRUE;
}

/* ---- the check before a template goes ------------------------------------------ */

typedef struct _Check {
  WabizAccount *wa;
  char *customer_id;
  char *to;
  WaConsentCategory category;
  WabizConsentFunc done;
  WabizConsentVerdictFunc verdict_done; /* instead of done (wabiz_consent_check_verdict) */
  gpointer data;
  WaConsentFacts facts;
  char *sources[2]; /* owned: facts.marketing.source, facts.utility.source */
  int step;         /* 1 suppression, 2 marketing, 3 utility */
  void (*end)(struct _Check *c, const GError *error);
  char *who; /* /consent: the conversation */
} Check;

static void
check_free(Check *c)
{
  g_free(c->customer_id);
  g_free(c->to);
  g_free(c->sources[0]);
  g_free(c->sources[1]);
  g_free(c->who);
  g_free(c);
}

static WaConsentUtilityPolicy
utility_policy(WabizAccount *wa)
{
  return wa_consent_utility_policy_parse(
    purple_account_get_string(wa->account, WABIZ_OPT_UTILITY_CONSENT, WA_CONSENT_UTILITY_REQUIRED_WORD));
}

static void
check_end(Check *c, const GError *error)
{
  g_autofree char *why = NULL;
  WaConsentVerdict verdict = WA_CONSENT_ALLOWED;

  if (error != NULL) {
    why = g_strdup_printf(_("Not sent: the customer's consent could not be read (%s)."), error->message);
  } else {
    verdict = wa_consent_decide(c->category, &c->facts, utility_policy(c->wa));
    why = wa_consent_verdict_text(verdict, &c->facts, wabiz_bitlbee() ? '!' : '/');
  }
  if (c->verdict_done != NULL)
    c->verdict_done(c->wa, error != NULL ? WA_CONSENT_NO_MARKETING_OPT_IN : verdict, why, c->data);
  else
    c->done(c->wa, error == NULL && verdict == WA_CONSENT_ALLOWED, why, c->data);
  check_free(c);
}

static void check_step(Check *c);

static Check *
check_new(WabizAccount *wa, const char *customer_id, const char *to, void (*end)(Check *c, const GError *error))
{
  Check *c = g_new0(Check, 1);
  WaWindowState window = to != NULL ? wabiz_window_state(wa->account, to, NULL) : WA_WINDOW_UNKNOWN;

  c->wa = wa;
  c->customer_id = g_strdup(customer_id);
  c->to = g_strdup(to);
  c->end = end;
  c->facts.window_open = window == WA_WINDOW_OPEN || window == WA_WINDOW_CLOSING;
  return c;
}

static void
check_suppressed_cb(gboolean suppressed, WaStoreSuppressReason reason, gint64 at, const GError *error, gpointer data)
{
  Check *c = data;

  wabiz_store_release(c->wa, c);
  if (error != NULL) {
    c->end(c, error);
    return;
  }
  c->facts.suppressed = suppressed;
  c->facts.suppress_reason = reason;
  check_step(c);
}

static void
check_latest_cb(const WaStoreConsent *latest, const GError *error, gpointer data)
{
  Check *c = data;
  WaConsentRow *row = c->step == 2 ? &c->facts.marketing : &c->facts.utility;

  wabiz_store_release(c->wa, c);
  if (error != NULL) {
    c->end(c, error);
    return;
  }
  if (latest != NULL) {
    row->state = latest->state;
    row->at = latest->at;
    c->sources[c->step - 2] = g_strdup(latest->source);
    row->source = c->sources[c->step - 2];
  }
  check_step(c);
}

/* Suppression, then the marketing and the utility rows, one after another. */
static void
check_step(Check *c)
{
  WabizAccount *wa = c->wa;

  switch (++c->step) {
  case 1:
    if (c->to == NULL)
      break;
    wa_store_is_suppressed(wa->store, c->to, check_suppressed_cb, wabiz_store_hold(wa, c, (GDestroyNotify) check_free));
    return;
  case 2:
  case 3:
    if (c->customer_id == NULL)
      break;
    wa_store_consent_latest(wa->store, c->customer_id,
                            c->step == 2 ? WA_CONSENT_SCOPE_MARKETING : WA_CONSENT_SCOPE_UTILITY, check_latest_cb,
                            wabiz_store_hold(wa, c, (GDestroyNotify) check_free));
    return;
  default:
    c->end(c, NULL);
    return;
  }
  check_step(c);
}

/* Starts a check whose answer goes to @done or @verdict_done (one is NULL). */
static void
check_start(WabizAccount *wa, const char *customer_id, const char *to, const char *category, WabizConsentFunc done,
            WabizConsentVerdictFunc verdict_done, gpointer data)
{
  Check *c = check_new(wa, customer_id, to, check_end);

  c->category = wa_consent_category_parse(category, NULL);
  c->done = done;
  c->verdict_done = verdict_done;
  c->data = data;
  if (wa->store == NULL) {
    g_autoptr(GError) error = store_closed();

    check_end(c, error);
    return;
  }
  check_step(c);
}

void
wabiz_consent_check(WabizAccount *wa, const char *customer_id, const char *to, const char *category,
                    WabizConsentFunc done, gpointer data)
{
  g_return_if_fail(wa != NULL && done != NULL);
  check_start(wa, customer_id, to, category, done, NULL, data);
}

void
wabiz_consent_check_verdict(WabizAccount *wa, const char *customer_id, const char *to, const char *category,
                            WabizConsentVerdictFunc done, gpointer data)
{
  g_return_if_fail(wa != NULL && done != NULL);
  check_start(wa, customer_id, to, category, NULL, done, data);
}

/* ---- /consent: the state per scope ------------------------------------------------- */

static void
show_end(Check *c, const GError *error)
{
  WabizAccount *wa = c->wa;
  WaConsentUtilityPolicy policy = utility_policy(wa);
  g_autofree char *marketing = NULL;
  g_autofree char *utility = NULL;
  g_autofree char *text = NULL;
  GString *now;
  static const struct {
    WaConsentCategory category;
    const char *name;
  } categories[] = {
    {WA_CONSENT_CATEGORY_MARKETING, "marketing"},
    {WA_CONSENT_CATEGORY_UTILITY, "utility"},
    {WA_CONSENT_CATEGORY_AUTHENTICATION, "authentication"},
  };

  if (error != NULL) {
    text = g_strdup_printf(_("The customer's consent could not be read: %s"), error->message);
    say(wa, c->who, text, PURPLE_MESSAGE_ERROR);
    check_free(c);
    return;
  }
  marketing = wa_consent_row_text(&c->facts.marketing);
  utility = wa_consent_row_text(&c->facts.utility);
  /* what would go now, by category */
  now = g_string_new(NULL);
  for (guint i = 0; i < G_N_ELEMENTS(categories); i++) {
    gboolean allowed = wa_consent_decide(categories[i].category, &c->facts, policy) == WA_CONSENT_ALLOWED;

    if (now->len > 0)
      g_string_append(now, ", ");
    /* TRANSLATORS: a template category (untranslated, as Meta names it) and whether it may go now */
    g_string_append_printf(now, allowed ? _("%s yes") : _("%s no"), categories[i].name);
  }
  text = g_strdup_printf(_("Consent: marketing: %s; utility: %s. %s Templates now: %s."), marketing, utility,
                         c->facts.suppressed ? (c->facts.suppress_reason == WA_STORE_SUPPRESS_ERASURE
                                                  ? _("This number is on the suppression list (its data was erased).")
                                                  : _("This number is on the suppression list (opted out)."))
                         : policy == WA_CONSENT_UTILITY_REQUIRED
                           ? _("Utility templates need an opt-in on this account, except in an open service window.")
                           : _("Utility templates go unless the customer opted out of them."),
                         now->str);
  g_string_free(now, TRUE);
  say(wa, c->who, text, PURPLE_MESSAGE_SYSTEM);
  check_free(c);
}

static void
show_ensured_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  Check *c = data;

  wabiz_store_release(c->wa, c);
  /* a suppressed number has no record (and gets none): its suppression is shown */
  if (error != NULL && !g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_SUPPRESSED)) {
    show_end(c, error);
    return;
  }
  if (update != NULL && update->customer != NULL)
    c->customer_id = g_strdup(update->customer->id);
  check_step(c);
}

static void
show_consent(WabizAccount *wa, const char *who)
{
  gboolean bsuid = wa_id_bsuid_or_null(who) != NULL;
  Check *c = check_new(wa, NULL, who, show_end);

  c->who = g_strdup(who);
  wa_store_customer_ensure(wa->store, bsuid ? NULL : who, bsuid ? who : NULL, NULL, WA_STORE_ENSURE_REFUSE_SUPPRESSED,
                           show_ensured_cb, wabiz_store_hold(wa, c, (GDestroyNotify) check_free));
}

/* ---- commands and the buddy menu ------------------------------------------------- */

/* The signed-in account of @conv when it is a customer's conversation;
 * otherwise NULL and *@error says why. */
static WabizAccount *
command_account(PurpleConversation *conv, const char *cmd, char **error)
{
  WabizAccount *wa = wabiz_account_data(purple_conversation_get_account(conv));
  const char *name = purple_conversation_get_name(conv);

  if (wa == NULL || wa->store == NULL) {
    *error = g_strdup(_("The account is not signed in."));
    return NULL;
  }
  if (wabiz_is_notices(name) || (wa_id_phone_or_null(name) == NULL && wa_id_bsuid_or_null(name) == NULL)) {
    *error = g_strdup_printf(_("Use %c%s in a customer's conversation."), wabiz_bitlbee() ? '!' : '/', cmd);
    return NULL;
  }
  return wa;
}

static const char *
command_word(char **args)
{
  return args != NULL && args[0] != NULL ? g_strstrip(args[0]) : "";
}

/* /optin and /optout: @state for the scopes the word names (@fallback
 * without one; "all" only when @allow_all), or @usage as the error. */
static PurpleCmdRet
record_command(PurpleConversation *conv, const char *cmd, char **args, char **error, WaStoreConsentState state,
               gboolean allow_all, WaConsentScopes fallback, const char *usage)
{
  WabizAccount *wa = command_account(conv, cmd, error);
  WaConsentScopes scopes = wa_consent_scopes_parse(command_word(args), allow_all, fallback);
  const char *name = purple_conversation_get_name(conv);

  if (wa == NULL)
    return PURPLE_CMD_RET_FAILED;
  if (scopes == 0) {
    *error = g_strdup(usage);
    return PURPLE_CMD_RET_FAILED;
  }
  change_start(wa, name, name, LINE_AGENT, scopes, state, NULL, 0, NULL, NULL);
  return PURPLE_CMD_RET_OK;
}

PurpleCmdRet
wabiz_cmd_optin(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  /* without a word: marketing, the consent that needs an opt-in most */
  return record_command(conv, cmd, args, error, WA_STORE_CONSENT_OPT_IN, FALSE, WA_CONSENT_MARKETING,
                        _("optin [marketing|utility]: record that this customer agreed to marketing (the default) or "
                          "utility templates."));
}

PurpleCmdRet
wabiz_cmd_optout(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  return record_command(conv, cmd, args, error, WA_STORE_CONSENT_OPT_OUT, TRUE, WA_CONSENT_ALL,
                        _("optout [marketing|utility|all]: record that this customer opted out (default: all)."));
}

PurpleCmdRet
wabiz_cmd_consent(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  WabizAccount *wa = command_account(conv, cmd, error);

  if (wa == NULL)
    return PURPLE_CMD_RET_FAILED;
  show_consent(wa, purple_conversation_get_name(conv));
  return PURPLE_CMD_RET_OK;
}

/* The menu items' data: the change, or 0 for "show". */
#define MENU_ITEM(state, scopes) GINT_TO_POINTER(((state) << 4) | (scopes))

static void
menu_cb(PurpleBlistNode *node, gpointer data)
{
  PurpleBuddy *buddy = (PurpleBuddy *) node;
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));
  const char *name = purple_buddy_get_name(buddy);
  int item = GPOINTER_TO_INT(data);

  if (wa == NULL || wa->store == NULL)
    return;
  if (item == 0)
    show_consent(wa, name);
  else
    change_start(wa, name, name, LINE_AGENT, item & WA_CONSENT_ALL, (WaStoreConsentState) (item >> 4), NULL, 0, NULL,
                 NULL);
}

PurpleMenuAction *
wabiz_consent_menu(PurpleBuddy *buddy)
{
  static const struct {
    const char *label;
    int state;
    int scopes;
  } items[] = {
    {N_("Show consent"), 0, 0},
    {N_("Opted in to marketing"), WA_STORE_CONSENT_OPT_IN, WA_CONSENT_MARKETING},
    {N_("Opted in to utility"), WA_STORE_CONSENT_OPT_IN, WA_CONSENT_UTILITY},
    {N_("Opted out of marketing"), WA_STORE_CONSENT_OPT_OUT, WA_CONSENT_MARKETING},
    {N_("Opted out of utility"), WA_STORE_CONSENT_OPT_OUT, WA_CONSENT_UTILITY},
    {N_("Opted out of everything"), WA_STORE_CONSENT_OPT_OUT, WA_CONSENT_ALL},
  };
  GList *children = NULL;

  for (guint i = 0; i < G_N_ELEMENTS(items); i++)
    children = g_list_append(children, purple_menu_action_new(_(items[i].label), PURPLE_CALLBACK(menu_cb),
                                                              MENU_ITEM(items[i].state, items[i].scopes), NULL));
  return purple_menu_action_new(_("Consent"), NULL, NULL, children);
}

/* ---- what customers and WhatsApp say ------------------------------------------- */

/* When the customer said it (a time from the future, a wrong clock, counts as now). */
static gint64
sent_at(const WaMessage *msg)
{
  return msg->timestamp > 0 ? MIN(msg->timestamp, wabiz_now()) : 0;
}

guint
wabiz_consent_inbound(WabizAccount *wa, const char *who, const WaMessage *msg, WabizConsentSettledFunc settled,
                      gpointer data)
{
  const char *keywords =
    purple_account_get_string(wa->account, WABIZ_OPT_OPTOUT_KEYWORDS, WABIZ_DEFAULT_OPTOUT_KEYWORDS);
  const char *payloads =
    purple_account_get_string(wa->account, WABIZ_OPT_OPTOUT_PAYLOADS, WABIZ_DEFAULT_OPTOUT_PAYLOADS);

  if (who == NULL || msg == NULL || msg->type == NULL)
    return 0;
  /* the whole message is the keyword: "STOP" opts out of everything */
  if (g_str_equal(msg->type, "text") && wa_consent_keyword_match(msg->text, keywords)) {
    g_autofree char *said = g_strstrip(g_strdup(msg->text));

    return change_start(wa, who, who, LINE_KEYWORD, WA_CONSENT_ALL, WA_STORE_CONSENT_OPT_OUT, said, sent_at(msg),
                        settled, data);
  }
  /* a template's quick-reply button: opt-out buttons sit on marketing templates */
  if (g_str_equal(msg->type, "button") && wa_consent_keyword_match(msg->reply_id, payloads))
    return change_start(wa, who, who, LINE_BUTTON, WA_CONSENT_MARKETING, WA_STORE_CONSENT_OPT_OUT,
                        msg->text != NULL ? msg->text : msg->reply_id, sent_at(msg), settled, data);
  return 0;
}

guint
wabiz_consent_preferences(WabizAccount *wa, const WaChange *change, WabizConsentSettledFunc settled, gpointer data)
{
  JsonObject *value =
    change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value) ? json_node_get_object(change->value) : NULL;
  JsonArray *prefs = value != NULL ? wa_json_get_array(value, "user_preferences") : NULL;
  guint n = prefs != NULL ? json_array_get_length(prefs) : 0;
  guint started = 0;

  for (guint i = 0; i < n; i++) {
    JsonObject *pref = wa_json_array_get_object(prefs, i);
    g_autofree char *wa_id = pref != NULL ? wa_json_dup_id(pref, "wa_id") : NULL;
    const char *user_id = pref != NULL ? wa_json_get_string(pref, "user_id") : NULL;
    const char *phone = wa_id_phone_or_null(wa_id);
    const char *bsuid = wa_id_bsuid_or_null(user_id);
    const char *to = phone != NULL ? phone : bsuid;
    const char *category = pref != NULL ? wa_json_get_string(pref, "category") : NULL;
    const char *word = pref != NULL ? wa_json_get_string(pref, "value") : NULL;
    PurpleBuddy *buddy;
    const char *who;

    if (to == NULL)
      continue; /* names nobody */
    buddy = wabiz_customer_buddy(wa, phone, bsuid, NULL, FALSE);
    who = buddy != NULL ? purple_buddy_get_name(buddy) : to;
    if (g_strcmp0(category, "marketing_messages") == 0 &&
        (g_strcmp0(word, "stop") == 0 || g_strcmp0(word, "resume") == 0))
      started += change_start(wa, who, to, LINE_PREFERENCES, WA_CONSENT_MARKETING,
                              g_str_equal(word, "stop") ? WA_STORE_CONSENT_OPT_OUT : WA_STORE_CONSENT_OPT_IN, NULL,
                              wa_json_get_int(pref, "timestamp", 0), settled, data);
    else {
      g_autofree char *line =
        g_strdup_printf(_("WhatsApp reported a preference of the customer (%s: %s); nothing was recorded."),
                        category != NULL ? category : "?", word != NULL ? word : "?");

      say(wa, who, line, PURPLE_MESSAGE_SYSTEM);
    }
  }
  return started;
}

guint
wabiz_consent_api_error(WabizAccount *wa, const char *who, const WaGraphError *error, WabizConsentSettledFunc settled,
                        gpointer data)
{
  if (wa != NULL && who != NULL && error != NULL && error->code == WA_CONSENT_ERROR_OPTED_OUT)
    return change_start(wa, who, who, LINE_API, WA_CONSENT_MARKETING, WA_STORE_CONSENT_OPT_OUT, NULL, 0, settled, data);
  return 0;
}
