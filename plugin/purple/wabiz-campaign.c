/* wabiz-campaign.c: notifications to many customers (campaigns).
 *
 * /notify (and the account action "Send notification...") reads the
 * recipients (a CSV file or a buddy group), records the file's consent
 * column in the ledger, checks each recipient's consent and asks ONE
 * question: how many receive it, how many are skipped and why, the category
 * and its pricing category. On yes the campaign is created in the store
 * (schema 5: campaigns, campaign_recipients), RUNNING, with its own chat
 * ("Campaign 1a2b3c4d: NAME", chat ids above the WhatsApp groups').
 *
 * The runner (one per account; it drives the oldest running campaign) takes
 * pending recipients from the store in batches, checks consent again right
 * before each send (refusals are SKIPPED with the reason), takes a token of
 * the number's throughput (wa-pace.c: campaign class, so the agent's chats
 * go first; 130429 slows, 131057 pauses a minute, 131056 delays only that
 * customer) and begins the sends in one store request
 * (wa_store_campaign_begin_sends: the recipient's outbox entry, already
 * SENDING, and the once-a-day template record in one transaction, one
 * synced commit for the batch), then hands each entry to
 * the outbox (wa_sender_submit), so many requests are in flight across
 * customers. The outbox's answers move the recipients (a store trigger);
 * after kill -9 those in flight are uncertain and never resent
 * automatically. Progress lines come from the store's counts every few
 * seconds; failed and skipped recipients become chat members.
 *
 * Must not: send a recipient that is not begun in the store, resend
 * anything automatically, or put customer text into markup unescaped. */
#include "wabiz.h"

#include <string.h>

#include "wa-campaign.h"
#include "wa-crypt.h"
#include "wa-csv.h"
#include "wa-json.h"
#include "wa-pace.h"
#include "wa-template.h"

#define TICK_MS 25
#define PROGRESS_S 3
#define RATE_BASE_UNKNOWN G_MAXUINT
#define FETCH_BATCH 200
#define CHECKS_IN_FLIGHT 64
#define BEGIN_BATCH 100
#define SETTLE_US (1 * G_USEC_PER_SEC)
/* requests in flight: as many as the rate needs for the measured round trip
 * (so the rate, not the latency, sets the pace), counted with at most
 * ROUND_TRIP_US: an API that answers slower than that gets no more requests
 * (they would pile up until they time out and become uncertain) */
#define ROUND_TRIP_US (250 * 1000) /* the first guess */
#define MAX_IN_FLIGHT 256

/* One campaign of this account that is not over. */
typedef struct {
  char *id;
  char *name;
  char *template_name;
  char *language;
  char *category;
  WaStoreCampaignState state;
  gint64 start_at; /* Unix s; SCHEDULED: when it starts */
  int chat_id;
  /* progress */
  gint64 since_us;  /* monotonic: when the rate's count began */
  guint sent_since; /* SENT then; RATE_BASE_UNKNOWN: the next progress sets both */
  gboolean told_done;
  gboolean opened; /* its chat was opened this session: closed by the agent, only news reopens it */
} Camp;

/* A recipient on its way: fetched, consent being checked, ready to begin. */
typedef struct {
  WabizCampaigns *cs;
  char *recipient_id;
  char *customer_id;
  char *to;
  GPtrArray *values; /* its placeholders' values, read once (wiped when freed) */
  guint generation;
  gboolean confirmed; /* the agent agreed to send it again within 24 hours */
} Pending;

struct _WabizCampaigns {
  WabizAccount *wa;
  GHashTable *camps; /* id -> Camp* */
  Camp *active;      /* the one being sent (RUNNING), or NULL */
  WaTemplate *tpl;   /* the active campaign's template */
  WaPace *pace;
  WaPortfolio *portfolio; /* shared by the accounts of one WABA (portfolios) */
  gboolean told_full;     /* the chat was told the daily limit is reached */
  GQueue fetched;         /* Pending*: consent not yet checked */
  GQueue ready;           /* Pending*: allowed */
  GQueue repeats;         /* Pending*: got this template within 24 hours; the agent is asked */
  GHashTable *checks;     /* Pending*: consent being checked (freed here if the account signs off first) */
  gpointer asking;        /* the open question about the repeats, or NULL */
  guint after_seq;
  guint generation; /* changes when the active campaign stops: late answers are dropped */
  gboolean fetching;
  gboolean exhausted;   /* no pending recipient left after after_seq */
  guint checking;       /* consent checks in flight */
  gboolean beginning;   /* a begin_sends in flight */
  gboolean settling;    /* the end is being checked */
  gint64 settle_at_us;  /* monotonic: not asked again before */
  GHashTable *owned;    /* outbox id (guint64*) -> Sending: campaign sends in flight */
  GHashTable *by_to;    /* address -> outbox id (guint64*) */
  gint64 round_trip_us; /* how long a send takes to be answered (moving average) */
  guint tick;
  guint progress_timer;
  guint schedule_timer; /* every second: scheduled campaigns whose time came */
  GList *plans;         /* Plan*: being read or waiting for the agent's answer */
  /* sends begun before a restart and not yet sent (the outbox leaves them
   * to the runner): outbox id (guint64*) -> WaStoreOutbox*, until their
   * recipient is read; then in resumed, submitted at the pace, never begun again */
  GHashTable *queued;
  GQueue resumed;     /* Resumed* */
  guint resume_timer; /* while resumed is not empty (whichever campaign runs, if any) */
};

typedef struct {
  WaStoreOutbox *entry;
  char *to;
} Resumed;

/* WABA id -> WaPortfolio*: the daily limit counts across the accounts of one
 * business in this messenger (each holds a reference). */
static GHashTable *portfolios;

static void run(WabizCampaigns *cs);
static char *local_hhmm(gint64 at);
static void progress_all(WabizCampaigns *cs);
static void activate_next(WabizCampaigns *cs);

static void
resumed_free(Resumed *r)
{
  wa_store_outbox_free(r->entry);
  g_free(r->to);
  g_free(r);
}

static void
camp_free(Camp *c)
{
  g_free(c->id);
  g_free(c->name);
  g_free(c->template_name);
  g_free(c->language);
  g_free(c->category);
  g_free(c);
}

static void
pending_free(Pending *p)
{
  if (p == NULL)
    return;
  g_free(p->recipient_id);
  g_free(p->customer_id);
  g_free(p->to);
  if (p->values != NULL) {
    g_ptr_array_set_free_func(p->values, (GDestroyNotify) wa_crypt_wipe_free);
    g_ptr_array_unref(p->values);
  }
  g_free(p);
}

/* The state is freed by wabiz_campaigns_stop(), not by the store. */
static void
keep(gpointer data)
{
}

/* ---- the campaign's conversation ------------------------------------------ */

static PurpleConversation *
camp_conv(WabizCampaigns *cs, Camp *c, gboolean create)
{
  PurpleConversation *conv = purple_find_chat(cs->wa->gc, c->chat_id);
  g_autofree char *name = NULL;

  /* after a reconnect the chat is still there, but left: joined again */
  if (conv != NULL && purple_conv_chat_has_left(PURPLE_CONV_CHAT(conv)))
    conv = NULL;
  if (conv != NULL || !create)
    return conv;
  name = wa_campaign_chat_name(c->id, c->name);
  conv = serv_got_joined_chat(cs->wa->gc, c->chat_id, name);
  if (conv != NULL)
    purple_conversation_set_logging(conv, FALSE);
  c->opened = TRUE;
  return conv;
}

/* A line in the campaign's chat; @news opens it again when the agent closed
 * it (progress lines and members do not). */
static void
camp_write(WabizCampaigns *cs, Camp *c, const char *text, gboolean news)
{
  PurpleConversation *conv = camp_conv(cs, c, news || !c->opened);

  if (conv != NULL)
    wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_SYSTEM | PURPLE_MESSAGE_NO_LOG, 0);
}

static void
camp_say(WabizCampaigns *cs, Camp *c, const char *text)
{
  camp_write(cs, c, text, TRUE);
}

/* A failed or skipped recipient joins the chat's member list. */
static void
camp_member(WabizCampaigns *cs, Camp *c, const char *to, const char *why)
{
  PurpleConversation *conv = camp_conv(cs, c, !c->opened);
  PurpleConvChat *chat = conv != NULL ? purple_conversation_get_chat_data(conv) : NULL;

  if (chat == NULL || to == NULL || purple_conv_chat_find_user(chat, to))
    return;
  {
    /* the reason may hold the API's text: markup only once escaped */
    g_autofree char *escaped = why != NULL ? g_markup_escape_text(why, -1) : NULL;

    purple_conv_chat_add_user(chat, to, escaped, PURPLE_CBFLAGS_NONE, FALSE);
  }
}

static Camp *
camp_by_chat(WabizCampaigns *cs, int chat_id)
{
  GHashTableIter iter;
  gpointer value;

  if (cs == NULL || !wa_campaign_chat_id_is_campaign(chat_id))
    return NULL;
  g_hash_table_iter_init(&iter, cs->camps);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (((Camp *) value)->chat_id == chat_id)
      return value;
  return NULL;
}

static Camp *
camp_add(WabizCampaigns *cs, const WaStoreCampaign *sc)
{
  Camp *c = g_hash_table_lookup(cs->camps, sc->id);

  if (c == NULL) {
    c = g_new0(Camp, 1);
    c->id = g_strdup(sc->id);
    c->name = g_strdup(sc->name);
    c->template_name = g_strdup(sc->template_name);
    c->language = g_strdup(sc->language);
    c->category = g_strdup(sc->category);
    c->chat_id = wa_campaign_chat_id(sc->id);
    g_hash_table_insert(cs->camps, c->id, c);
  }
  c->state = sc->state;
  c->start_at = sc->start_at;
  return c;
}

/* ---- progress --------------------------------------------------------------- */

typedef struct {
  WabizCampaigns *cs;
  char *id;
  gboolean final;
} ProgressAsk;

static void
progress_ask_free(ProgressAsk *a)
{
  g_free(a->id);
  g_free(a);
}

static void camp_finished(WabizCampaigns *cs, Camp *c, const WaStoreCampaign *sc);

static void
progress_cb(const WaStoreCampaign *sc, const GError *error, gpointer data)
{
  ProgressAsk *a = data;
  WabizCampaigns *cs = a->cs;
  Camp *c;
  const guint *n;
  guint sent, failed, skipped, open;
  double rate = -1;
  gint64 eta = -1;
  g_autofree char *text = NULL;

  wabiz_store_release(cs->wa, a);
  c = g_hash_table_lookup(cs->camps, a->id);
  if (error != NULL || sc == NULL || c == NULL) {
    progress_ask_free(a);
    return;
  }
  n = sc->counts;
  sent = n[WA_STORE_RECIPIENT_SENT];
  failed = n[WA_STORE_RECIPIENT_FAILED] + n[WA_STORE_RECIPIENT_UNCERTAIN];
  skipped = n[WA_STORE_RECIPIENT_SKIPPED];
  open = n[WA_STORE_RECIPIENT_PENDING] + n[WA_STORE_RECIPIENT_SENDING];
  if (c->sent_since == RATE_BASE_UNKNOWN) {
    /* (re)started: the rate counts what is sent from now on, not before */
    c->since_us = g_get_monotonic_time();
    c->sent_since = sent;
  } else if (c->since_us > 0 && c->state == WA_STORE_CAMPAIGN_RUNNING) {
    double elapsed = (double) (g_get_monotonic_time() - c->since_us) / G_USEC_PER_SEC;

    if (elapsed >= 1 && sent >= c->sent_since) {
      rate = (sent - c->sent_since) / elapsed;
      if (rate > 0)
        eta = (gint64) (open / rate + 0.5);
    }
  }
  text = wa_campaign_progress_text(sent, sc->total, failed, skipped, rate, eta);
  if (n[WA_STORE_RECIPIENT_UNCERTAIN] > 0) {
    g_autofree char *more =
      g_strdup_printf(ngettext("%s; %u may or may not have gone (not sent again; statuses settle it)",
                               "%s; %u may or may not have gone (not sent again; statuses settle them)",
                               n[WA_STORE_RECIPIENT_UNCERTAIN]),
                      text, n[WA_STORE_RECIPIENT_UNCERTAIN]);

    g_free(text);
    text = g_steal_pointer(&more);
  }
  if (!a->final || !c->told_done)
    camp_write(cs, c, text, FALSE);
  if (a->final)
    camp_finished(cs, c, sc);
  progress_ask_free(a);
}

static void
progress_one(WabizCampaigns *cs, Camp *c, gboolean final)
{
  ProgressAsk *a = g_new0(ProgressAsk, 1);

  a->cs = cs;
  a->id = g_strdup(c->id);
  a->final = final;
  wa_store_campaign_get(cs->wa->store, c->id, progress_cb,
                        wabiz_store_hold(cs->wa, a, (GDestroyNotify) progress_ask_free));
}

static gboolean
progress_fired(gpointer data)
{
  WabizCampaigns *cs = data;

  if (cs->active != NULL)
    progress_one(cs, cs->active, FALSE);
  return G_SOURCE_CONTINUE;
}

static void camp_set_state(WabizCampaigns *cs, Camp *c, WaStoreCampaignState state, gint64 start_at);

/* Scheduled campaigns start when their time has come (the plugin's clock). */
static gboolean
schedule_fired(gpointer data)
{
  WabizCampaigns *cs = data;
  g_autoptr(GPtrArray) due = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, cs->camps);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Camp *c = value;

    if (c->state == WA_STORE_CAMPAIGN_SCHEDULED && c->start_at <= wabiz_now())
      g_ptr_array_add(due, c);
  }
  for (guint i = 0; i < due->len; i++) {
    Camp *c = g_ptr_array_index(due, i);

    /* asked once: the store's answer moves it on */
    c->start_at = G_MAXINT64;
    camp_set_state(cs, c, WA_STORE_CAMPAIGN_RUNNING, -1);
  }
  return G_SOURCE_CONTINUE;
}

/* "HH:MM" of @at in local time. */
static char *
local_hhmm(gint64 at)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(at);

  return t != NULL ? g_date_time_format(t, "%H:%M") : g_strdup("?");
}

static void
progress_all(WabizCampaigns *cs)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, cs->camps);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (!((Camp *) value)->told_done)
      progress_one(cs, value, FALSE);
}

/* ---- the runner ------------------------------------------------------------- */

static void
runner_clear(WabizCampaigns *cs)
{
  Pending *p;

  while ((p = g_queue_pop_head(&cs->fetched)) != NULL)
    pending_free(p);
  while ((p = g_queue_pop_head(&cs->ready)) != NULL)
    pending_free(p);
  while ((p = g_queue_pop_head(&cs->repeats)) != NULL)
    pending_free(p);
  if (cs->asking != NULL) {
    gpointer asking = g_steal_pointer(&cs->asking);

    purple_request_close(PURPLE_REQUEST_ACTION, asking);
  }
  cs->after_seq = 0;
  cs->exhausted = FALSE;
  cs->generation++;
  g_clear_pointer(&cs->tpl, wa_template_free);
  if (cs->tick != 0) {
    purple_timeout_remove(cs->tick);
    cs->tick = 0;
  }
}

static gboolean
tick_fired(gpointer data)
{
  run(data);
  return G_SOURCE_CONTINUE;
}

/* Recipients' params: {"to": address, "v": [slot values, null where not given]}. */
static char *
params_json(const char *to, GPtrArray *values)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "to");
  json_builder_add_string_value(b, to);
  json_builder_set_member_name(b, "v");
  json_builder_begin_array(b);
  for (guint i = 0; values != NULL && i < values->len; i++) {
    const char *v = g_ptr_array_index(values, i);

    if (v != NULL)
      json_builder_add_string_value(b, v);
    else
      json_builder_add_null_value(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  root = json_builder_get_root(b);
  return wa_json_to_string(root);
}

/* The address and values back from params; NULL when they do not read. */
static char *
params_read(const char *params, GPtrArray **values)
{
  g_autoptr(JsonNode) root = params != NULL ? wa_json_parse(params, strlen(params), NULL) : NULL;
  JsonObject *obj = root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonArray *v = obj != NULL && json_object_has_member(obj, "v") ? json_object_get_array_member(obj, "v") : NULL;
  const char *to = obj != NULL ? wa_json_get_string(obj, "to") : NULL;

  if (to == NULL || v == NULL)
    return NULL;
  if (values != NULL) {
    *values = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < json_array_get_length(v); i++) {
      JsonNode *node = json_array_get_element(v, i);

      g_ptr_array_add(*values, JSON_NODE_HOLDS_VALUE(node) ? g_strdup(json_node_get_string(node)) : NULL);
    }
  }
  return g_strdup(to);
}

/* A campaign send handed to the outbox, until its answer. */
typedef struct {
  guint64 outbox_id; /* the key */
  char *recipient_id;
  char *campaign_id;
  gint64 begun_us; /* monotonic: when it was handed over (the round trip) */
} Sending;

static void
sending_free(Sending *s)
{
  g_free(s->recipient_id);
  g_free(s->campaign_id);
  g_free(s);
}

static void
own(WabizCampaigns *cs, guint64 outbox_id, const char *recipient_id, const char *to, const char *campaign_id)
{
  Sending *s = g_new0(Sending, 1);
  guint64 *id = g_new(guint64, 1);

  s->outbox_id = *id = outbox_id;
  s->recipient_id = g_strdup(recipient_id);
  s->campaign_id = g_strdup(campaign_id);
  s->begun_us = g_get_monotonic_time();
  g_hash_table_replace(cs->owned, &s->outbox_id, s);
  g_hash_table_replace(cs->by_to, g_strdup(to), id);
}

typedef struct {
  WabizCampaigns *cs;
  guint generation;
  char *campaign_id;
  GPtrArray *pendings; /* Pending* */
  GArray *sends;       /* WaStoreCampaignSend */
  GPtrArray *strings;  /* what the sends point to */
} Begin;

static void
begin_free(Begin *b)
{
  g_ptr_array_unref(b->pendings);
  g_array_unref(b->sends);
  g_ptr_array_unref(b->strings);
  g_free(b->campaign_id);
  g_free(b);
}

/* A store request many of which may be out at once: each has its own key. */
typedef struct {
  WabizAccount *wa;
} Token;

static void
skipped_cb(const GError *error, gpointer data)
{
  Token *t = data;

  wabiz_store_release(t->wa, t);
  if (error != NULL)
    purple_debug_warning("wabiz", "campaign recipient not skipped: %s\n", error->message);
  g_free(t);
}

static void
skip(WabizCampaigns *cs, const char *recipient_id, const char *reason)
{
  Token *t = g_new0(Token, 1);

  t->wa = cs->wa;
  wa_store_campaign_recipient_skip(cs->wa->store, recipient_id, reason, skipped_cb,
                                   wabiz_store_hold(cs->wa, t, g_free));
}

static void
begun_cb(const WaStoreSendResult *results, guint n, const GError *error, gpointer data)
{
  Begin *b = data;
  WabizCampaigns *cs = b->cs;
  WabizAccount *wa = cs->wa;
  Camp *c = g_hash_table_lookup(cs->camps, b->campaign_id);

  wabiz_store_release(wa, b);
  cs->beginning = FALSE;
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("Sending waits: the store could not record it (%s)."), error->message);

    if (c != NULL)
      camp_say(cs, c, text);
    /* the same recipients are fetched again */
    cs->after_seq = 0;
    cs->exhausted = FALSE;
    begin_free(b);
    return;
  }
  for (guint i = 0; i < n; i++) {
    Pending *p = g_ptr_array_index(b->pendings, i);

    switch (results[i].outcome) {
    case WA_STORE_SEND_BEGUN:
      own(cs, results[i].entry->id, p->recipient_id, p->to, b->campaign_id);
      if (wa->sender != NULL)
        wa_sender_submit(wa->sender, results[i].entry, p->to);
      break;
    case WA_STORE_SEND_REPEAT:
      /* still pending: the agent decides once the others are done */
      if (b->generation == cs->generation) {
        g_queue_push_tail(&cs->repeats, p);
        b->pendings->pdata[i] = NULL;
      }
      break;
    case WA_STORE_SEND_NOT_RUNNING:
      /* paused or cancelled meanwhile: still pending (or cancelled) */
      cs->after_seq = 0;
      cs->exhausted = FALSE;
      break;
    case WA_STORE_SEND_NOT_PENDING:
    default:
      break;
    }
  }
  begin_free(b);
  run(cs);
}

/* Sends begun before a restart and not sent yet: handed to the outbox as the
 * pace allows, before any new one (they already have their outbox entry). */
static gboolean
submit_resumed(WabizCampaigns *cs)
{
  Resumed *r;

  if (cs->wa->sender == NULL)
    return !g_queue_is_empty(&cs->resumed);
  while ((r = g_queue_peek_head(&cs->resumed)) != NULL) {
    if (wa_pace_pair_next_at(cs->pace, r->to) > g_get_monotonic_time() || !wa_pace_try_take(cs->pace))
      break;
    g_queue_pop_head(&cs->resumed);
    wa_sender_submit(cs->wa->sender, r->entry, r->to);
    resumed_free(r);
  }
  return !g_queue_is_empty(&cs->resumed);
}

/* Paused, cancelled or waiting campaigns' sends too: under way before the
 * restart, they go out as they would have in the session (paced). */
static gboolean
resume_fired(gpointer data)
{
  WabizCampaigns *cs = data;

  if (submit_resumed(cs))
    return G_SOURCE_CONTINUE;
  cs->resume_timer = 0;
  return G_SOURCE_REMOVE;
}

/* Begins the sends of as many ready recipients as the pace allows now. */
static void
begin_ready(WabizCampaigns *cs)
{
  WabizAccount *wa = cs->wa;
  gboolean marketing;
  Begin *b;

  if (cs->beginning || g_queue_is_empty(&cs->ready) || cs->tpl == NULL)
    return;
  marketing = g_strcmp0(cs->tpl->category, "MARKETING") == 0 &&
              purple_account_get_bool(wa->account, WABIZ_OPT_MARKETING_ENDPOINT, FALSE);
  b = g_new0(Begin, 1);
  b->cs = cs;
  b->generation = cs->generation;
  b->campaign_id = g_strdup(cs->active->id);
  b->pendings = g_ptr_array_new_with_free_func((GDestroyNotify) pending_free);
  b->sends = g_array_new(FALSE, TRUE, sizeof(WaStoreCampaignSend));
  b->strings = g_ptr_array_new_with_free_func(g_free);
  while (!g_queue_is_empty(&cs->ready) && b->pendings->len < BEGIN_BATCH) {
    Pending *p = g_queue_peek_head(&cs->ready);
    g_autoptr(GError) local = NULL;
    char *payload;
    char *line;
    WaStoreCampaignSend send = {0};
    WaWindowState window;

    gboolean reach;

    if (g_hash_table_size(cs->owned) + b->pendings->len >=
        MIN(MAX_IN_FLIGHT,
            wa_pace_in_flight_for(wa_pace_configured_rate(cs->pace), MIN(cs->round_trip_us, ROUND_TRIP_US))))
      break;
    if (wa_pace_pair_next_at(cs->pace, p->to) > g_get_monotonic_time())
      break; /* 131056: this customer waits; the others keep their order behind */
    window = wabiz_window_state(wa->account, p->to, NULL);
    reach = window != WA_WINDOW_OPEN && window != WA_WINDOW_CLOSING;
    if (reach && !wa_portfolio_allows(cs->portfolio, p->to)) {
      /* the portfolio's daily limit: wait for a slot (the outbox's other sends go on) */
      if (!cs->told_full) {
        g_autofree char *hhmm = local_hhmm(wa_portfolio_next_slot_at(cs->portfolio));
        g_autofree char *text = g_strdup_printf(
          _("Waiting: the daily limit of %u customers reached with templates is used up; the next slot frees at %s."),
          wa_portfolio_limit(cs->portfolio), hhmm);

        cs->told_full = TRUE;
        camp_say(cs, cs->active, text);
      }
      break;
    }
    cs->told_full = FALSE;
    if (wa_pace_next_at(cs->pace) > g_get_monotonic_time())
      break;
    g_queue_pop_head(&cs->ready);
    payload = wa_template_payload(cs->tpl, p->values, marketing, wabiz_now() * 1000, &local);
    if (payload == NULL) {
      /* nothing goes: no token used (an offer that ended skips the rest at once) */
      skip(cs, p->recipient_id, "invalid-values");
      pending_free(p);
      continue;
    }
    wa_pace_charge(cs->pace); /* allowed a moment ago: the bucket only grew since */
    line = wa_template_render(cs->tpl, p->values);
    g_ptr_array_add(b->strings, payload);
    g_ptr_array_add(b->strings, line);
    send.recipient_id = p->recipient_id;
    send.type = "template";
    send.body = line;
    send.payload = payload;
    send.confirmed = p->confirmed;
    send.count_reach = reach;
    /* handed to the outbox as soon as it is begun: one synced commit per
     * batch records the recipients and their entries SENDING before their
     * requests start (the outbox does not record each one again) */
    send.start = TRUE;
    if (reach)
      wa_portfolio_note(cs->portfolio, p->to, 0);
    g_array_append_val(b->sends, send);
    g_ptr_array_add(b->pendings, p);
  }
  if (b->pendings->len == 0) {
    begin_free(b);
    return;
  }
  cs->beginning = TRUE;
  wa_store_campaign_begin_sends(wa->store, b->campaign_id, (WaStoreCampaignSend *) b->sends->data, b->sends->len,
                                begun_cb, wabiz_store_hold(wa, b, (GDestroyNotify) begin_free));
}

/* A MARKETING template to a number of a country the account lists as closed
 * to marketing: TRUE, and *@why says so. */
static gboolean
closed_country(WabizAccount *wa, const char *category, const char *to, char **why)
{
  g_autofree char *code = NULL;

  if (category == NULL || g_ascii_strncasecmp(category, "MARKETING", 9) != 0)
    return FALSE;
  code =
    wa_campaign_closed_country(to, purple_account_get_string(wa->account, WABIZ_OPT_MARKETING_CLOSED_COUNTRIES, NULL));
  if (code == NULL)
    return FALSE;
  g_free(*why);
  *why = g_strdup_printf(_("closed to marketing in their country (+%s)"), code);
  return TRUE;
}

static void
checked_cb(WabizAccount *wa, WaConsentVerdict verdict, const char *why, gpointer data)
{
  Pending *p = data;
  WabizCampaigns *cs = p->cs;
  g_autofree char *closed = NULL;

  g_hash_table_steal(cs->checks, p);
  cs->checking--;
  if (p->generation != cs->generation || cs->active == NULL) {
    pending_free(p);
    return;
  }
  if (verdict != WA_CONSENT_ALLOWED) {
    /* refused right before the send: recorded, with the reason */
    skip(cs, p->recipient_id, wa_campaign_consent_reason(verdict));
    camp_member(cs, cs->active, p->to, why);
    pending_free(p);
  } else if (closed_country(wa, cs->active->category, p->to, &closed)) {
    skip(cs, p->recipient_id, "closed-country");
    camp_member(cs, cs->active, p->to, closed);
    pending_free(p);
  } else {
    g_queue_push_tail(&cs->ready, p);
  }
  run(cs);
}

typedef struct {
  WabizCampaigns *cs;
  guint generation;
} Fetch;

static void
fetched_cb(GPtrArray *recipients, const GError *error, gpointer data)
{
  Fetch *f = data;
  WabizCampaigns *cs = f->cs;

  wabiz_store_release(cs->wa, f);
  cs->fetching = FALSE;
  if (f->generation != cs->generation || cs->active == NULL) {
    g_free(f);
    return;
  }
  g_free(f);
  if (error != NULL) {
    purple_debug_warning("wabiz", "campaign recipients not read: %s\n", error->message);
    return; /* tried again on the next tick */
  }
  if (recipients->len == 0)
    cs->exhausted = TRUE;
  for (guint i = 0; i < recipients->len; i++) {
    const WaStoreRecipient *r = g_ptr_array_index(recipients, i);
    Pending *p;

    cs->after_seq = MAX(cs->after_seq, r->seq);
    if (r->tampered || r->params == NULL) {
      skip(cs, r->id, "unreadable");
      continue;
    }
    p = g_new0(Pending, 1);
    p->cs = cs;
    p->generation = cs->generation;
    p->recipient_id = g_strdup(r->id);
    p->customer_id = g_strdup(r->customer_id);
    p->to = params_read(r->params, &p->values);
    if (p->to == NULL) {
      skip(cs, r->id, "unreadable");
      pending_free(p);
      continue;
    }
    g_queue_push_tail(&cs->fetched, p);
  }
  run(cs);
}

static void
ended_cb(const WaStoreCampaign *sc, const GError *error, gpointer data)
{
  Fetch *f = data;
  WabizCampaigns *cs = f->cs;
  Camp *c;

  wabiz_store_release(cs->wa, f);
  g_free(f);
  cs->settling = FALSE;
  if (error != NULL || sc == NULL)
    return;
  c = g_hash_table_lookup(cs->camps, sc->id);
  if (c == NULL || c != cs->active)
    return;
  if (sc->counts[WA_STORE_RECIPIENT_PENDING] > 0) {
    /* some came back (paused and resumed meanwhile): fetch again */
    cs->after_seq = 0;
    cs->exhausted = FALSE;
    return;
  }
  if (sc->counts[WA_STORE_RECIPIENT_SENDING] > 0)
    return; /* answers still to come: asked again on the next tick */
  wa_store_campaign_set_state(cs->wa->store, c->id, WA_STORE_CAMPAIGN_DONE, -1, NULL, NULL);
  c->state = WA_STORE_CAMPAIGN_DONE;
  progress_one(cs, c, TRUE);
  runner_clear(cs);
  cs->active = NULL;
  activate_next(cs);
}

static void
repeats_send(WabizCampaigns *cs, int choice)
{
  Pending *p;

  cs->asking = NULL;
  while ((p = g_queue_pop_head(&cs->repeats)) != NULL) {
    p->confirmed = TRUE;
    g_queue_push_tail(&cs->ready, p);
  }
  run(cs);
}

static void
repeats_skip(WabizCampaigns *cs, int choice)
{
  Pending *p;

  cs->asking = NULL;
  while ((p = g_queue_pop_head(&cs->repeats)) != NULL) {
    skip(cs, p->recipient_id, "sent-within-24h");
    if (cs->active != NULL)
      camp_member(cs, cs->active, p->to, _("this template went to them in the last 24 hours"));
    pending_free(p);
  }
  run(cs);
}

/* Customers who got this template in the last 24 hours (another campaign):
 * sent again only when the agent says so. */
static void
ask_repeats(WabizCampaigns *cs)
{
  WabizAccount *wa = cs->wa;
  guint n = g_queue_get_length(&cs->repeats);
  g_autofree char *question = g_strdup_printf(
    ngettext("%u customer got template %s in the last 24 hours (from another campaign). Send it to them again?",
             "%u customers got template %s in the last 24 hours (from another campaign). Send it to them again?", n),
    n, cs->active->template_name);

  camp_say(cs, cs->active, question);
  cs->asking = purple_request_action(wa->gc, _("Send notification"), question,
                                     _("Cancel skips them; they are listed in the report as sent-within-24h."), 1,
                                     wa->account, NULL, NULL, cs, 2, wabiz_caption_yes(_("Send _again")),
                                     G_CALLBACK(repeats_send), wabiz_caption_no(), G_CALLBACK(repeats_skip));
}

static void
run(WabizCampaigns *cs)
{
  WabizAccount *wa = cs->wa;
  gint64 now = g_get_monotonic_time();

  if (cs->active == NULL || wa->store == NULL || wa->sender == NULL)
    return;
  if (cs->active->state != WA_STORE_CAMPAIGN_RUNNING)
    return;
  if (cs->tick == 0)
    cs->tick = purple_timeout_add(TICK_MS, tick_fired, cs);
  if (wa_pace_paused_until(cs->pace) > now)
    return; /* 131057: a minute's pause */
  submit_resumed(cs);
  if (!cs->fetching && !cs->exhausted &&
      g_queue_get_length(&cs->fetched) + g_queue_get_length(&cs->ready) < FETCH_BATCH) {
    Fetch *f = g_new0(Fetch, 1);

    f->cs = cs;
    f->generation = cs->generation;
    cs->fetching = TRUE;
    wa_store_campaign_recipients(wa->store, cs->active->id, WA_STORE_RECIPIENT_MASK(WA_STORE_RECIPIENT_PENDING),
                                 cs->after_seq, FETCH_BATCH, fetched_cb, wabiz_store_hold(wa, f, g_free));
  }
  /* consent right before the send */
  while (cs->checking < CHECKS_IN_FLIGHT && !g_queue_is_empty(&cs->fetched) &&
         g_queue_get_length(&cs->ready) < BEGIN_BATCH * 2) {
    Pending *p = g_queue_pop_head(&cs->fetched);

    cs->checking++;
    g_hash_table_add(cs->checks, p);
    wabiz_consent_check_verdict(wa, p->customer_id, p->to, cs->active->category, checked_cb, p);
    if (cs->active == NULL)
      return;
  }
  begin_ready(cs);
  /* the end: nothing pending, every send answered (the store's counts say;
   * asked at most every SETTLE_US while answers are still to come) */
  if (cs->exhausted && !cs->fetching && cs->checking == 0 && !cs->beginning && cs->asking == NULL &&
      !g_queue_is_empty(&cs->repeats) && g_queue_is_empty(&cs->fetched) && g_queue_is_empty(&cs->ready)) {
    ask_repeats(cs);
    return;
  }
  if (cs->exhausted && !cs->fetching && cs->checking == 0 && !cs->beginning && !cs->settling && cs->asking == NULL &&
      g_queue_is_empty(&cs->repeats) && g_queue_is_empty(&cs->fetched) && g_queue_is_empty(&cs->ready) &&
      (g_hash_table_size(cs->owned) == 0 || now >= cs->settle_at_us)) {
    Fetch *f = g_new0(Fetch, 1);

    f->cs = cs;
    cs->settling = TRUE;
    cs->settle_at_us = now + SETTLE_US;
    wa_store_campaign_get(wa->store, cs->active->id, ended_cb, wabiz_store_hold(wa, f, g_free));
  }
}

/* The template of @c, from the catalogue; then it runs. */
static void
activate_ready(WabizAccount *wa, const char *error, gpointer data)
{
  WabizCampaigns *cs = wa->campaigns;
  char *id = data;
  Camp *c = cs != NULL ? g_hash_table_lookup(cs->camps, id) : NULL;
  g_autoptr(GError) local = NULL;
  WaTemplate *tpl;

  if (c == NULL || cs->active != c)
    return;
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("Waiting: the template catalogue could not be read (%s)."), error);

    camp_say(cs, c, text);
    cs->active = NULL;
    return;
  }
  tpl = wa_template_pick(wabiz_templates_catalogue(wa), c->template_name, c->language, NULL, &local);
  if (tpl == NULL) {
    g_autofree char *text = g_strdup_printf(_("Paused: %s"), local->message);

    camp_say(cs, c, text);
    c->state = WA_STORE_CAMPAIGN_PAUSED;
    wa_store_campaign_set_state(wa->store, c->id, WA_STORE_CAMPAIGN_PAUSED, -1, NULL, NULL);
    cs->active = NULL;
    return;
  }
  g_clear_pointer(&cs->tpl, wa_template_free);
  cs->tpl = tpl;
  c->sent_since = RATE_BASE_UNKNOWN; /* the next progress starts the rate's count */
  run(cs);
}

/* The oldest running campaign becomes the active one. */
static void
activate_next(WabizCampaigns *cs)
{
  GHashTableIter iter;
  gpointer value;
  Camp *next = NULL;

  if (cs->active != NULL)
    return;
  g_hash_table_iter_init(&iter, cs->camps);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Camp *c = value;

    if (c->state == WA_STORE_CAMPAIGN_RUNNING && (next == NULL || strcmp(c->id, next->id) < 0))
      next = c;
  }
  if (next == NULL)
    return;
  cs->active = next;
  cs->generation++;
  wabiz_templates_with(cs->wa, activate_ready, g_strdup(next->id), g_free);
}

static void
camp_finished(WabizCampaigns *cs, Camp *c, const WaStoreCampaign *sc)
{
  g_autofree char *text = NULL;

  if (c->told_done)
    return;
  c->told_done = TRUE;
  text = g_strdup_printf(_("Campaign finished: %u sent, %u failed, %u skipped of %u. /report FILE writes the "
                           "outcome of each recipient."),
                         sc->counts[WA_STORE_RECIPIENT_SENT],
                         sc->counts[WA_STORE_RECIPIENT_FAILED] + sc->counts[WA_STORE_RECIPIENT_UNCERTAIN],
                         sc->counts[WA_STORE_RECIPIENT_SKIPPED], sc->total);
  camp_say(cs, c, text);
}

/* ---- the outbox's answers --------------------------------------------------- */

gboolean
wabiz_campaign_outcome(WabizAccount *wa, guint64 id, const char *to, WabizCampaignOutcome outcome,
                       const WaGraphError *error)
{
  WabizCampaigns *cs = wa->campaigns;
  Sending *sending = cs != NULL ? g_hash_table_lookup(cs->owned, &id) : NULL;
  const char *recipient_id;
  Camp *c;

  if (sending == NULL)
    return FALSE;
  recipient_id = sending->recipient_id;
  c = g_hash_table_lookup(cs->camps, sending->campaign_id);
  switch (outcome) {
  case WABIZ_CAMPAIGN_SENT:
    wa_pace_pair_ok(cs->pace, to);
    break;
  case WABIZ_CAMPAIGN_FAILED:
  case WABIZ_CAMPAIGN_UNCERTAIN: {
    g_autofree char *reason = wa_graph_error_describe(error);

    if (error != NULL && error->code > 0 && error->code <= G_MAXINT)
      wa_store_campaign_recipient_note(wa->store, recipient_id, (gint) error->code, NULL, NULL, NULL);
    if (c != NULL)
      camp_member(cs, c, to, reason);
    /* 131050: the customer stopped marketing messages (recorded in the ledger) */
    if (outcome == WABIZ_CAMPAIGN_FAILED)
      wabiz_consent_api_error(wa, to, error, NULL, NULL);
    wa_pace_pair_ok(cs->pace, to); /* its pair backoff ends with it */
    break;
  }
  case WABIZ_CAMPAIGN_SKIPPED:
  default:
    break;
  }
  cs->round_trip_us = (cs->round_trip_us * 7 + (g_get_monotonic_time() - sending->begun_us)) / 8;
  g_hash_table_remove(cs->owned, &id); /* frees sending */
  g_hash_table_remove(cs->by_to, to);
  run(cs);
  return TRUE;
}

void
wabiz_campaign_chat_sent(WabizAccount *wa)
{
  /* every chat send takes its token, the bucket may owe: campaign sends
   * wait until it is paid back */
  if (wa->campaigns != NULL)
    wa_pace_charge(wa->campaigns->pace);
}

gboolean
wabiz_campaign_waiting(WabizAccount *wa, const char *to, const WaGraphError *error)
{
  WabizCampaigns *cs = wa->campaigns;
  gint64 retry_at = 0;

  if (cs == NULL || to == NULL || !g_hash_table_contains(cs->by_to, to))
    return FALSE;
  /* 130429 slows every campaign send, 131057 pauses them a minute, 131056
   * delays this customer; the outbox tries the same send again itself */
  if (error != NULL && error->code > 0 && error->code <= G_MAXINT &&
      wa_pace_rate_error(cs->pace, (gint) error->code, to, &retry_at) && cs->active != NULL && error->code == 131057) {
    camp_say(cs, cs->active, _("WhatsApp says the business account is in maintenance: sending pauses for a minute."));
  }
  return TRUE;
}

/* ---- chat commands ----------------------------------------------------------- */

typedef struct {
  WabizCampaigns *cs;
  char *id;
  WaStoreCampaignState state;
  WaStoreCampaignState from;
} StateChange;

static void
state_change_free(StateChange *s)
{
  g_free(s->id);
  g_free(s);
}

static void
state_changed_cb(const WaStoreCampaign *sc, const GError *error, gpointer data)
{
  StateChange *s = data;
  WabizCampaigns *cs = s->cs;
  Camp *c = g_hash_table_lookup(cs->camps, s->id);

  wabiz_store_release(cs->wa, s);
  if (c == NULL) {
    state_change_free(s);
    return;
  }
  if (error != NULL || sc == NULL) {
    g_autofree char *text = g_strdup_printf(_("Not changed: %s"), error != NULL ? error->message : "?");

    camp_say(cs, c, text);
    state_change_free(s);
    return;
  }
  c->state = sc->state;
  switch (sc->state) {
  case WA_STORE_CAMPAIGN_PAUSED:
    camp_say(cs, c, _("Paused: nothing more is sent until /resume (sends already under way finish)."));
    break;
  case WA_STORE_CAMPAIGN_RUNNING:
    camp_say(cs, c, s->from == WA_STORE_CAMPAIGN_SCHEDULED ? _("Starting now, as scheduled.") : _("Resumed."));
    break;
  case WA_STORE_CAMPAIGN_CANCELLED:
    camp_say(cs, c, _("Cancelled: the remaining recipients are skipped (sends already under way finish)."));
    progress_one(cs, c, FALSE);
    break;
  default:
    break;
  }
  if (cs->active == c && sc->state != WA_STORE_CAMPAIGN_RUNNING) {
    runner_clear(cs);
    cs->active = NULL;
  }
  activate_next(cs);
  state_change_free(s);
}

static void
camp_set_state(WabizCampaigns *cs, Camp *c, WaStoreCampaignState state, gint64 start_at)
{
  StateChange *s = g_new0(StateChange, 1);

  s->cs = cs;
  s->id = g_strdup(c->id);
  s->state = state;
  s->from = c->state;
  if (cs->active == c && state != WA_STORE_CAMPAIGN_RUNNING) {
    /* stop taking recipients now; the store's answer confirms it */
    runner_clear(cs);
    cs->active = NULL;
  }
  wa_store_campaign_set_state(cs->wa->store, c->id, state, start_at, state_changed_cb,
                              wabiz_store_hold(cs->wa, s, (GDestroyNotify) state_change_free));
}

typedef struct {
  WabizCampaigns *cs;
  char *id;
  char *path;
} Report;

static void
report_free(Report *r)
{
  g_free(r->id);
  g_free(r->path);
  g_free(r);
}

static void
report_cb(GPtrArray *recipients, const GError *error, gpointer data)
{
  Report *r = data;
  WabizCampaigns *cs = r->cs;
  Camp *c = g_hash_table_lookup(cs->camps, r->id);
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GError) local = NULL;
  g_autofree char *text = NULL;

  wabiz_store_release(cs->wa, r);
  if (c == NULL) {
    report_free(r);
    return;
  }
  if (error != NULL) {
    text = g_strdup_printf(_("The report could not be read: %s"), error->message);
    camp_say(cs, c, text);
    report_free(r);
    return;
  }
  wa_campaign_report_header(out);
  for (guint i = 0; i < recipients->len; i++) {
    const WaStoreRecipient *rec = g_ptr_array_index(recipients, i);
    g_autofree char *to = params_read(rec->params, NULL);

    wa_campaign_report_row(out, to != NULL ? to : rec->customer_id, rec, wa_campaign_pricing_category(c->category));
  }
  if (!g_file_set_contents_full(r->path, out->str, (gssize) out->len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
    text = g_strdup_printf(_("The report could not be written: %s"), local->message);
  else
    text = g_strdup_printf(ngettext("Report of %u recipient written to %s.", "Report of %u recipients written to %s.",
                                    recipients->len),
                           recipients->len, r->path);
  camp_say(cs, c, text);
  report_free(r);
}

PurpleCmdRet
wabiz_cmd_campaign(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  PurpleConnection *gc = purple_conversation_get_gc(conv);
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  WabizCampaigns *cs = wa != NULL ? wa->campaigns : NULL;
  PurpleConvChat *chat =
    purple_conversation_get_type(conv) == PURPLE_CONV_TYPE_CHAT ? purple_conversation_get_chat_data(conv) : NULL;
  Camp *c = chat != NULL && cs != NULL ? camp_by_chat(cs, purple_conv_chat_get_id(chat)) : NULL;

  if (c == NULL || wa->store == NULL) {
    *error = g_strdup_printf(_("/%s works in a campaign's conversation (see /notify)."), cmd);
    return PURPLE_CMD_RET_FAILED;
  }
  if (g_str_equal(cmd, "report")) {
    g_autofree char *path = g_strstrip(g_strdup(args != NULL && args[0] != NULL ? args[0] : ""));
    Report *r;

    if (*path == '\0') {
      *error = g_strdup(_("Use: report FILE"));
      return PURPLE_CMD_RET_FAILED;
    }
    r = g_new0(Report, 1);
    r->cs = cs;
    r->id = g_strdup(c->id);
    r->path = g_steal_pointer(&path);
    wa_store_campaign_recipients(wa->store, c->id, 0xff, 0, 0, report_cb,
                                 wabiz_store_hold(wa, r, (GDestroyNotify) report_free));
    return PURPLE_CMD_RET_OK;
  }
  if (c->state == WA_STORE_CAMPAIGN_DONE || c->state == WA_STORE_CAMPAIGN_CANCELLED) {
    *error = g_strdup(_("This campaign is over."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (g_str_equal(cmd, "pause"))
    camp_set_state(cs, c, WA_STORE_CAMPAIGN_PAUSED, -1);
  else if (g_str_equal(cmd, "resume"))
    camp_set_state(cs, c, WA_STORE_CAMPAIGN_RUNNING, -1);
  else if (g_str_equal(cmd, "cancel"))
    camp_set_state(cs, c, WA_STORE_CAMPAIGN_CANCELLED, -1);
  return PURPLE_CMD_RET_OK;
}

gboolean
wabiz_campaign_chat_text(WabizAccount *wa, int id, const char *text)
{
  WabizCampaigns *cs = wa->campaigns;
  Camp *c = camp_by_chat(cs, id);

  if (c == NULL)
    return wa_campaign_chat_id_is_campaign(id);
  camp_say(cs, c,
           wabiz_bitlbee() ? _("This is a campaign's conversation: nothing typed here is sent. Commands: !pause, "
                               "!resume, !cancel, !report FILE.")
                           : _("This is a campaign's conversation: nothing typed here is sent. Commands: /pause, "
                               "/resume, /cancel, /report FILE."));
  return TRUE;
}

/* ---- planning: /notify and the one question --------------------------------- */

typedef struct _Plan Plan;

typedef struct {
  char *to;
  char *customer_id;
  GPtrArray *values; /* char*, one per slot */
  WaCsvConsent consent;
  const char *skip; /* reason code, or NULL */
  char *why;
  Plan *plan; /* while its consent is checked */
} Item;

struct _Plan {
  WabizCampaigns *cs;
  char *conv_name; /* where the agent asked (answers go there) */
  PurpleConversationType conv_type;
  char *text; /* the /notify arguments */
  WaCampaignArgs *args;
  WaTemplate *tpl;
  GPtrArray *items;  /* Item* */
  guint problems[8]; /* CSV problems by kind */
  guint waiting;     /* store requests out */
  guint step;
  char *campaign_id;
  gint64 start_at; /* Unix s; 0: at once */
  /* the recipients' rows, made a slice per turn of the loop */
  GArray *rows;      /* WaStoreRecipientNew */
  GPtrArray *params; /* char*: the rows' params */
  guint next_row;    /* the next item to make a row of */
  guint rows_slice;  /* the source making the next slice; 0: none */
};

static void
item_free(Item *it)
{
  g_free(it->to);
  g_free(it->customer_id);
  g_clear_pointer(&it->values, g_ptr_array_unref);
  g_free(it->why);
  g_free(it);
}

static void
plan_free(Plan *p)
{
  if (p->cs != NULL)
    p->cs->plans = g_list_remove(p->cs->plans, p);
  g_free(p->conv_name);
  g_free(p->text);
  g_clear_pointer(&p->args, wa_campaign_args_free);
  g_clear_pointer(&p->tpl, wa_template_free);
  g_clear_pointer(&p->items, g_ptr_array_unref);
  g_free(p->campaign_id);
  if (p->rows_slice != 0)
    purple_timeout_remove(p->rows_slice);
  g_clear_pointer(&p->rows, g_array_unref);
  g_clear_pointer(&p->params, g_ptr_array_unref);
  g_free(p);
}

static void
plan_say(Plan *p, const char *text, PurpleMessageFlags flags)
{
  WabizAccount *wa = p->cs->wa;
  PurpleConversation *conv =
    p->conv_name != NULL ? purple_find_conversation_with_account(p->conv_type, p->conv_name, wa->account) : NULL;

  if (conv == NULL)
    conv = wabiz_conv_im(wa->account, wabiz_notices_name(), TRUE);
  wabiz_conv_write_plain(conv, text, flags, 0);
}

static void
plan_refuse(Plan *p, const char *reason)
{
  g_autofree char *text = g_strdup_printf(_("No notification sent: %s"), reason);

  plan_say(p, text, PURPLE_MESSAGE_ERROR);
  plan_free(p);
}

static void plan_next(Plan *p);

/* Each item's store request answers here; the plan goes on when all have. */
typedef struct {
  Plan *plan;
  Item *item;
} ItemAsk;

static void
item_answered(ItemAsk *a)
{
  Plan *p = a->plan;

  wabiz_store_release(p->cs->wa, a);
  g_free(a);
  if (--p->waiting == 0)
    plan_next(p);
}

static void
ensured_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  ItemAsk *a = data;
  const WaStoreCustomer *customer = update != NULL ? update->customer : NULL;

  if (g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_SUPPRESSED)) {
    /* erased or listed as opted out: refused, and no record is made for it */
    a->item->skip = "suppressed";
    a->item->why = g_strdup(_("on the suppression list (erased, or listed as opted out)"));
  } else if (error != NULL || customer == NULL) {
    a->item->skip = "invalid-number";
    a->item->why = g_strdup(error != NULL ? error->message : "?");
  } else {
    a->item->customer_id = g_strdup(customer->id);
  }
  item_answered(a);
}

static void
recorded_cb(WabizAccount *wa, WaConsentScopes recorded, const GError *error, gpointer data)
{
  Plan *p = data;

  if (--p->waiting == 0)
    plan_next(p);
}

static void
verdict_cb(WabizAccount *wa, WaConsentVerdict verdict, const char *why, gpointer data)
{
  Item *it = data;
  Plan *p = it->plan;

  if (verdict != WA_CONSENT_ALLOWED) {
    it->skip = wa_campaign_consent_reason(verdict);
    it->why = g_strdup(why);
  } else if (closed_country(wa, p->tpl->category, it->to, &it->why)) {
    it->skip = "closed-country";
  }
  if (--p->waiting == 0)
    plan_next(p);
}

static void
added_cb(guint count, const GError *error, gpointer data)
{
  Plan *p = data;

  wabiz_store_release(p->cs->wa, p);
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("the recipients could not be stored (%s)"), error->message);

    plan_refuse(p, text);
    return;
  }
  plan_next(p);
}

static void
created_cb(const WaStoreCampaign *sc, const GError *error, gpointer data)
{
  Plan *p = data;

  wabiz_store_release(p->cs->wa, p);
  if (error != NULL || sc == NULL) {
    g_autofree char *text = g_strdup_printf(_("the campaign could not be stored (%s)"), error ? error->message : "?");

    plan_refuse(p, text);
    return;
  }
  if (p->campaign_id == NULL)
    p->campaign_id = g_strdup(sc->id);
  else
    camp_add(p->cs, sc);
  plan_next(p);
}

static void
plan_confirmed(Plan *p, int choice)
{
  p->cs->plans = g_list_remove(p->cs->plans, p);
  p->cs->plans = g_list_prepend(p->cs->plans, p);
  p->step = 10;
  plan_next(p);
}

static void
plan_declined(Plan *p, int choice)
{
  plan_say(p, _("No notification sent."), PURPLE_MESSAGE_SYSTEM);
  plan_free(p);
}

static const char *
reason_text(const char *code)
{
  if (g_strcmp0(code, "no-consent") == 0)
    return _("no consent");
  if (g_strcmp0(code, "opted-out") == 0)
    return _("opted out");
  if (g_strcmp0(code, "suppressed") == 0)
    return _("suppressed");
  if (g_strcmp0(code, "invalid-number") == 0)
    return _("invalid number");
  if (g_strcmp0(code, "duplicate") == 0)
    return _("duplicate");
  if (g_strcmp0(code, "invalid-values") == 0)
    return _("missing or invalid values");
  if (g_strcmp0(code, "closed-country") == 0)
    return _("closed to marketing in their country");
  return code;
}

/* The question: who receives it, who is skipped and why. */
static void
plan_ask(Plan *p)
{
  WabizAccount *wa = p->cs->wa;
  g_autoptr(GHashTable) skipped = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GString) why = g_string_new(NULL);
  const char *pricing = wa_campaign_pricing_category(p->tpl->category);
  guint receive = 0;
  GHashTableIter iter;
  gpointer key, value;
  g_autofree char *primary = NULL;
  g_autofree char *secondary = NULL;
  static const char *const problem_codes[] = {NULL,        "invalid-number", "invalid-number",
                                              "duplicate", "invalid-values", "invalid-values"};

  for (guint i = 0; i < p->items->len; i++) {
    Item *it = g_ptr_array_index(p->items, i);

    if (it->skip == NULL)
      receive++;
    else
      g_hash_table_insert(skipped, (gpointer) it->skip,
                          GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(skipped, it->skip)) + 1));
  }
  for (guint k = 1; k < G_N_ELEMENTS(problem_codes); k++)
    if (p->problems[k] > 0)
      g_hash_table_insert(skipped, (gpointer) problem_codes[k],
                          GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(skipped, problem_codes[k])) +
                                           p->problems[k]));
  g_hash_table_iter_init(&iter, skipped);
  while (g_hash_table_iter_next(&iter, &key, &value))
    g_string_append_printf(why, "%s%u %s", why->len > 0 ? ", " : "", GPOINTER_TO_UINT(value), reason_text(key));
  if (receive == 0) {
    g_autofree char *text = g_strdup_printf(_("nobody would receive it (skipped: %s)."), why->str);

    plan_refuse(p, text);
    return;
  }
  primary = g_strdup_printf(ngettext("Send template %s (%s) to %u customer?", "Send template %s (%s) to %u customers?",
                                     receive),
                            p->tpl->name, p->tpl->language, receive);
  secondary =
    g_strdup_printf(_("%s\nSkipped: %s.\nCategory %s, billed as %s."), primary, why->len > 0 ? why->str : _("none"),
                    p->tpl->category != NULL ? p->tpl->category : "?", pricing != NULL ? pricing : "?");
  if (p->start_at > 0) {
    g_autofree char *hhmm = local_hhmm(p->start_at);
    g_autofree char *with = g_strdup_printf(_("%s\nStarts at %s (local time)."), secondary, hhmm);

    g_free(secondary);
    secondary = g_steal_pointer(&with);
  }
  /* BitlBee shows only the primary text: everything is in it there */
  purple_request_action(wa->gc, _("Send notification"), wabiz_bitlbee() ? secondary : primary,
                        wabiz_bitlbee() ? NULL : secondary + strlen(primary) + 1, 1, wa->account, NULL, NULL, p, 2,
                        wabiz_caption_yes(_("_Send")), G_CALLBACK(plan_confirmed), wabiz_caption_no(),
                        G_CALLBACK(plan_declined));
  /* shown as a line too (clients that show only the question's title) */
  plan_say(p, secondary, PURPLE_MESSAGE_SYSTEM | PURPLE_MESSAGE_NO_LOG);
}

/* A recipient with the same @values as the others (group, selection). */
static void
plan_add(Plan *p, const char *to, GPtrArray *values)
{
  Item *it = g_new0(Item, 1);

  it->to = g_strdup(to);
  it->values = g_ptr_array_new_with_free_func(g_free);
  for (guint s = 0; s < values->len; s++)
    g_ptr_array_add(it->values, g_strdup(g_ptr_array_index(values, s)));
  g_ptr_array_add(p->items, it);
}

/* A selection's item: a buddy of the account by name, then by its alias
 * (case ignored), else a phone number (national ones with @cc) or a BSUID;
 * NULL when it is none of them. */
static char *
selection_address(WabizAccount *wa, const char *item, const char *cc)
{
  PurpleBuddy *buddy = purple_find_buddy(wa->account, item);
  g_autofree char *want = g_utf8_casefold(item, -1);
  GSList *all;
  char *found = NULL;

  if (wabiz_is_notices(item) || wa_group_address_id(item) != NULL)
    return NULL; /* no customer */
  if (buddy != NULL)
    return g_strdup(purple_buddy_get_name(buddy));
  all = purple_find_buddies(wa->account, NULL);
  for (GSList *l = all; l != NULL && found == NULL; l = l->next) {
    const char *alias = purple_buddy_get_alias(l->data);
    g_autofree char *have = alias != NULL ? g_utf8_casefold(alias, -1) : NULL;

    if (have != NULL && g_str_equal(have, want) && !wabiz_is_notices(purple_buddy_get_name(l->data)) &&
        wa_group_address_id(purple_buddy_get_name(l->data)) == NULL)
      found = g_strdup(purple_buddy_get_name(l->data));
  }
  g_slist_free(all);
  return found != NULL ? found : wa_customer_id_normalize(item, cc, NULL);
}

/* The recipients from the CSV file, the buddy group or the selection. */
static gboolean
plan_read(Plan *p, GError **error)
{
  WabizAccount *wa = p->cs->wa;
  const char *cc = purple_account_get_string(wa->account, WABIZ_OPT_DEFAULT_CC, NULL);

  p->items = g_ptr_array_new_with_free_func((GDestroyNotify) item_free);
  if (p->args->file != NULL) {
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    g_autoptr(WaCsvRecipients) rows = NULL;

    if (!g_file_get_contents(p->args->file, &data, &len, error))
      return FALSE;
    for (guint i = 0; i < p->tpl->slots->len; i++) {
      const WaTemplateSlot *slot = g_ptr_array_index(p->tpl->slots, i);

      if (!slot->optional)
        g_ptr_array_add(keys, slot->key);
    }
    rows = wa_csv_recipients_parse(data, len, (const char *const *) keys->pdata, keys->len, cc, NULL, error);
    if (rows == NULL)
      return FALSE;
    for (guint i = 0; i < rows->problems->len; i++) {
      const WaCsvProblem *pr = g_ptr_array_index(rows->problems, i);

      if ((guint) pr->kind < G_N_ELEMENTS(p->problems))
        p->problems[pr->kind]++;
    }
    for (guint i = 0; i < rows->rows->len; i++) {
      const WaCsvRecipient *r = g_ptr_array_index(rows->rows, i);
      Item *it = g_new0(Item, 1);
      guint k = 0;

      it->to = g_strdup(r->to);
      it->consent = r->consent;
      it->values = g_ptr_array_new_with_free_func(g_free);
      for (guint s = 0; s < p->tpl->slots->len; s++) {
        const WaTemplateSlot *slot = g_ptr_array_index(p->tpl->slots, s);

        g_ptr_array_add(it->values, !slot->optional && r->params[k] != NULL ? g_strdup(r->params[k++]) : NULL);
      }
      g_ptr_array_add(p->items, it);
    }
    return TRUE;
  } else {
    PurpleGroup *group = p->args->group != NULL ? purple_find_group(p->args->group) : NULL;
    g_autofree char *line = g_strdup_printf("%s %s", p->tpl->name, p->args->values);
    g_autoptr(WaTemplateArgs) targs = wa_template_args_parse(line, NULL, error);
    g_autoptr(GPtrArray) values = targs != NULL ? wa_template_fill(p->tpl, targs, error) : NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    if (values == NULL)
      return FALSE;
    if (p->args->selection != NULL) {
      for (guint i = 0; p->args->selection[i] != NULL; i++) {
        g_autofree char *to = selection_address(wa, p->args->selection[i], cc);

        if (to == NULL) {
          p->problems[WA_CSV_PROBLEM_INVALID_NUMBER]++;
          continue;
        }
        if (g_hash_table_contains(seen, to)) {
          p->problems[WA_CSV_PROBLEM_DUPLICATE]++;
          continue;
        }
        g_hash_table_add(seen, g_strdup(to));
        plan_add(p, to, values);
      }
      return TRUE;
    }
    if (group == NULL) {
      g_set_error(error, WA_CAMPAIGN_ERROR, WA_CAMPAIGN_ERROR_SYNTAX, _("there is no buddy group \"%s\""),
                  p->args->group);
      return FALSE;
    }
    for (PurpleBlistNode *n = purple_blist_node_get_first_child(PURPLE_BLIST_NODE(group)); n != NULL;
         n = purple_blist_node_get_sibling_next(n)) {
      for (PurpleBlistNode *b = purple_blist_node_get_first_child(n); b != NULL;
           b = purple_blist_node_get_sibling_next(b)) {
        PurpleBuddy *buddy = PURPLE_BLIST_NODE_IS_BUDDY(b) ? (PurpleBuddy *) b : NULL;
        const char *name =
          buddy != NULL && purple_buddy_get_account(buddy) == wa->account ? purple_buddy_get_name(buddy) : NULL;

        if (name == NULL || wabiz_is_notices(name) || wa_group_address_id(name) != NULL)
          continue;
        if (g_hash_table_contains(seen, name)) {
          p->problems[WA_CSV_PROBLEM_DUPLICATE]++;
          continue;
        }
        g_hash_table_add(seen, g_strdup(name));
        plan_add(p, name, values);
      }
    }
    return TRUE;
  }
}

/* Rows made in one turn of the loop: 10,000 recipients' params took 43 ms
 * of the main loop in one go. */
#define PLAN_ROWS_SLICE 256

static gboolean plan_rows_cb(gpointer data);

/* Makes the next slice of the recipients' rows; the last one sends them
 * to the store in one request. */
static void
plan_rows(Plan *p)
{
  WabizAccount *wa = p->cs->wa;
  guint end = MIN(p->next_row + PLAN_ROWS_SLICE, p->items->len);

  for (; p->next_row < end; p->next_row++) {
    Item *it = g_ptr_array_index(p->items, p->next_row);
    WaStoreRecipientNew row = {0};
    char *params;

    if (it->customer_id == NULL)
      continue;
    params = params_json(it->to, it->values);
    g_ptr_array_add(p->params, params);
    row.customer_id = it->customer_id;
    row.params = params;
    row.skip_reason = it->skip;
    g_array_append_val(p->rows, row);
  }
  if (p->next_row < p->items->len) {
    p->rows_slice = purple_timeout_add(0, plan_rows_cb, p);
    return;
  }
  if (wa->store == NULL) {
    plan_free(p);
    return;
  }
  wa_store_campaign_add_recipients(wa->store, p->campaign_id, (WaStoreRecipientNew *) p->rows->data, p->rows->len,
                                   added_cb, wabiz_store_hold(wa, p, (GDestroyNotify) plan_free));
  /* the request has its copy */
  g_clear_pointer(&p->rows, g_array_unref);
  g_clear_pointer(&p->params, g_ptr_array_unref);
}

static gboolean
plan_rows_cb(gpointer data)
{
  Plan *p = data;

  p->rows_slice = 0;
  plan_rows(p);
  return G_SOURCE_REMOVE;
}

/* The plan's steps, each waiting for all of its store requests. */
static void
plan_next(Plan *p)
{
  WabizCampaigns *cs = p->cs;
  WabizAccount *wa = cs->wa;

  if (wa->store == NULL) {
    plan_free(p);
    return;
  }
  switch (p->step++) {
  case 0: /* every recipient a customer record, none for a suppressed number */
    for (guint i = 0; i < p->items->len; i++) {
      ItemAsk *a = g_new0(ItemAsk, 1);
      gboolean bsuid;

      a->plan = p;
      a->item = g_ptr_array_index(p->items, i);
      bsuid = wa_id_is_bsuid(a->item->to);
      p->waiting++;
      wa_store_customer_ensure(wa->store, bsuid ? NULL : a->item->to, bsuid ? a->item->to : NULL, NULL,
                               WA_STORE_ENSURE_REFUSE_SUPPRESSED, ensured_cb, wabiz_store_hold(wa, a, g_free));
    }
    if (p->waiting == 0)
      plan_next(p);
    return;
  case 1: /* the file's consent column goes to the ledger */
    for (guint i = 0; i < p->items->len; i++) {
      Item *it = g_ptr_array_index(p->items, i);

      if (it->customer_id == NULL || it->consent == WA_CSV_CONSENT_NONE)
        continue;
      p->waiting++;
      wabiz_consent_record(wa, it->customer_id,
                           g_strcmp0(p->tpl->category, "MARKETING") == 0 ? WA_CONSENT_MARKETING : WA_CONSENT_ALL,
                           it->consent == WA_CSV_CONSENT_OPT_IN ? WA_STORE_CONSENT_OPT_IN : WA_STORE_CONSENT_OPT_OUT,
                           "import", NULL, 0, recorded_cb, p);
    }
    if (p->waiting == 0)
      plan_next(p);
    return;
  case 2: /* consent as it stands now */
    for (guint i = 0; i < p->items->len; i++) {
      Item *it = g_ptr_array_index(p->items, i);

      if (it->customer_id == NULL)
        continue;
      it->plan = p;
      p->waiting++;
      wabiz_consent_check_verdict(wa, it->customer_id, it->to, p->tpl->category, verdict_cb, it);
    }
    if (p->waiting == 0)
      plan_next(p);
    return;
  case 3:
    plan_ask(p);
    return;
  case 10: { /* yes: the campaign is stored */
    g_autofree char *name = g_strdup_printf("%s %s", p->tpl->name, p->tpl->language);

    wa_store_campaign_create(wa->store, name, p->tpl->name, p->tpl->language,
                             p->tpl->category != NULL ? p->tpl->category : "MARKETING", p->start_at, created_cb,
                             wabiz_store_hold(wa, p, (GDestroyNotify) plan_free));
    return;
  }
  case 11: /* its recipients, in one request */
    p->rows = g_array_new(FALSE, TRUE, sizeof(WaStoreRecipientNew));
    p->params = g_ptr_array_new_with_free_func(g_free);
    p->next_row = 0;
    plan_rows(p);
    return;
  case 12: /* running, or waiting for its time (kept across restarts) */
    wa_store_campaign_set_state(wa->store, p->campaign_id,
                                p->start_at > 0 ? WA_STORE_CAMPAIGN_SCHEDULED : WA_STORE_CAMPAIGN_RUNNING, -1,
                                created_cb, wabiz_store_hold(wa, p, (GDestroyNotify) plan_free));
    return;
  case 13: {
    Camp *c = g_hash_table_lookup(cs->camps, p->campaign_id);
    g_autofree char *text = NULL;

    if (c != NULL) {
      if (p->start_at > 0) {
        g_autofree char *hhmm = local_hhmm(p->start_at);

        text = g_strdup_printf(_("Template %s (%s) is scheduled for %s (local time). /pause, /cancel, /report FILE."),
                               c->template_name, c->language, hhmm);
      } else {
        text = g_strdup_printf(_("Sending template %s (%s). Progress shows here; /pause, /resume, /cancel, /report "
                                 "FILE."),
                               c->template_name, c->language);
      }
      camp_say(cs, c, text);
      for (guint i = 0; i < p->items->len; i++) {
        Item *it = g_ptr_array_index(p->items, i);

        if (it->skip != NULL)
          camp_member(cs, c, it->to, it->why != NULL ? it->why : reason_text(it->skip));
      }
      {
        g_autofree char *where = wa_campaign_chat_name(c->id, c->name);
        g_autofree char *said = g_strdup_printf(_("Notification started: see the conversation \"%s\"."), where);

        plan_say(p, said, PURPLE_MESSAGE_SYSTEM | PURPLE_MESSAGE_NO_LOG);
      }
    }
    plan_free(p);
    activate_next(cs);
    return;
  }
  default:
    plan_free(p);
    return;
  }
}

static void
plan_catalogue(WabizAccount *wa, const char *error, gpointer data)
{
  Plan *p = data;
  g_autoptr(GError) local = NULL;

  if (wa->campaigns == NULL)
    return;
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("the template catalogue could not be read (%s)."), error);

    plan_refuse(p, text);
    return;
  }
  p->tpl = wa_template_pick(wabiz_templates_catalogue(wa), p->args->name, p->args->language,
                            purple_account_get_string(wa->account, WABIZ_OPT_TEMPLATE_LANGUAGE, NULL), &local);
  if (p->tpl == NULL || !plan_read(p, &local)) {
    plan_refuse(p, local->message);
    return;
  }
  plan_next(p);
}

static void
plan_start(WabizAccount *wa, PurpleConversation *conv, const char *text)
{
  WabizCampaigns *cs = wa->campaigns;
  g_autoptr(GError) local = NULL;
  Plan *p = g_new0(Plan, 1);

  p->cs = cs;
  cs->plans = g_list_prepend(cs->plans, p);
  if (conv != NULL) {
    p->conv_name = g_strdup(purple_conversation_get_name(conv));
    p->conv_type = purple_conversation_get_type(conv);
  }
  p->text = g_strdup(text);
  p->args = wa_campaign_args_parse(text, &local);
  if (p->args == NULL) {
    plan_refuse(p, local->message);
    return;
  }
  if (p->args->start != NULL && !wa_campaign_start_at(p->args->start, wabiz_now(), NULL, &p->start_at)) {
    plan_refuse(p, _("the start time does not read (HH:MM, 00:00 to 23:59)"));
    return;
  }
  /* the plan lives in cs->plans; the catalogue's wait does not own it */
  wabiz_templates_with(wa, plan_catalogue, p, NULL);
}

PurpleCmdRet
wabiz_cmd_notify(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  PurpleConnection *gc = purple_conversation_get_gc(conv);
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;

  if (wa == NULL || wa->campaigns == NULL || wa->store == NULL) {
    *error = g_strdup(_("The account is not connected."));
    return PURPLE_CMD_RET_FAILED;
  }
  plan_start(wa, conv, args != NULL && args[0] != NULL ? args[0] : "");
  return PURPLE_CMD_RET_OK;
}

static void
action_ok(PurpleConnection *gc, PurpleRequestFields *fields)
{
  WabizAccount *wa = PURPLE_CONNECTION_IS_VALID(gc) ? purple_connection_get_protocol_data(gc) : NULL;
  const char *name = purple_request_fields_get_string(fields, "template");
  const char *lang = purple_request_fields_get_string(fields, "language");
  const char *target = purple_request_fields_get_string(fields, "recipients");
  g_autofree char *text = NULL;

  if (wa == NULL || wa->campaigns == NULL)
    return;
  text = g_strdup_printf("%s %s %s", name != NULL ? name : "", lang != NULL ? lang : "", target != NULL ? target : "");
  plan_start(wa, NULL, text);
}

void
wabiz_campaign_action(PurplePluginAction *action)
{
  PurpleConnection *gc = action->context;
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  PurpleRequestFields *fields;
  PurpleRequestFieldGroup *group;

  if (wa == NULL || wa->campaigns == NULL)
    return;
  fields = purple_request_fields_new();
  group = purple_request_field_group_new(NULL);
  purple_request_fields_add_group(fields, group);
  purple_request_field_group_add_field(group, purple_request_field_string_new("template", _("Template"), NULL, FALSE));
  purple_request_field_group_add_field(group, purple_request_field_string_new("language", _("Language (optional)"),
                                                                              NULL, FALSE));
  purple_request_field_group_add_field(group, purple_request_field_string_new("recipients",
                                                                              _("CSV file, or @group and values"), NULL,
                                                                              FALSE));
  purple_request_field_set_required(purple_request_fields_get_field(fields, "template"), TRUE);
  purple_request_field_set_required(purple_request_fields_get_field(fields, "recipients"), TRUE);
  purple_request_fields(
    gc, _("Send notification"), _("Send a template to many customers"),
    _("Recipients: a CSV file (columns: to, one per placeholder, optional consent), @GROUP, or "
      "numbers or buddy names separated by commas (+NUMBER,\"Anna Schmidt\",...; one alone: "
      "+NUMBER or \"NAME\"), then the values for everyone (V1 | V2). You confirm once before anything is sent."),
    fields, _("_Next"), G_CALLBACK(action_ok), _("Cancel"), NULL, wa->account, NULL, NULL, gc);
}

/* ---- sign-on and sign-off ------------------------------------------------------ */

typedef struct {
  WabizCampaigns *cs;
  char *campaign_id;
} Owned;

static void
owned_free(Owned *o)
{
  g_free(o->campaign_id);
  g_free(o);
}

/* Sends of an earlier session still under way (restored by the outbox): their
 * answers belong to the campaign. */
static void
sending_cb(GPtrArray *recipients, const GError *error, gpointer data)
{
  Owned *o = data;
  WabizCampaigns *cs = o->cs;

  wabiz_store_release(cs->wa, o);
  for (guint i = 0; error == NULL && i < recipients->len; i++) {
    const WaStoreRecipient *r = g_ptr_array_index(recipients, i);
    g_autofree char *to = params_read(r->params, NULL);

    WaStoreOutbox *entry;

    if (to == NULL || r->outbox_id == 0)
      continue;
    own(cs, r->outbox_id, r->id, to, o->campaign_id);
    entry = g_hash_table_lookup(cs->queued, &r->outbox_id);
    if (entry != NULL) {
      Resumed *q = g_new0(Resumed, 1);

      q->entry = wa_store_outbox_copy(entry);
      q->to = g_steal_pointer(&to);
      g_hash_table_remove(cs->queued, &r->outbox_id);
      g_queue_push_tail(&cs->resumed, q);
    }
  }
  owned_free(o);
  if (!g_queue_is_empty(&cs->resumed) && cs->resume_timer == 0)
    cs->resume_timer = purple_timeout_add(TICK_MS, resume_fired, cs);
}

/* The campaign sends still queued in the outbox (read before the campaigns:
 * the store answers in order). */
static void
queued_cb(GPtrArray *entries, const GError *error, gpointer data)
{
  Fetch *f = data;
  WabizCampaigns *cs = f->cs;

  wabiz_store_release(cs->wa, f);
  g_free(f);
  for (guint i = 0; error == NULL && i < entries->len; i++) {
    const WaStoreOutbox *entry = g_ptr_array_index(entries, i);
    guint64 *key;

    if (!entry->campaign || entry->tampered)
      continue;
    key = g_new(guint64, 1);
    *key = entry->id;
    g_hash_table_replace(cs->queued, key, wa_store_outbox_copy(entry));
  }
}

static void
listed_cb(GPtrArray *campaigns, const GError *error, gpointer data)
{
  WabizCampaigns *cs = data;

  wabiz_store_release(cs->wa, cs);
  if (error != NULL) {
    purple_debug_warning("wabiz", "campaigns not read: %s\n", error->message);
    return;
  }
  for (guint i = 0; i < campaigns->len; i++) {
    const WaStoreCampaign *sc = g_ptr_array_index(campaigns, i);
    Camp *c = camp_add(cs, sc);
    Owned *o;

    if (sc->state == WA_STORE_CAMPAIGN_DONE || sc->state == WA_STORE_CAMPAIGN_DRAFT) {
      /* over (or never confirmed): known, so /report works in its chat if
       * that is still open, but not reopened */
      c->told_done = TRUE;
      continue;
    }
    /* sends still under way (a cancelled campaign's too) answer to it */
    o = g_new0(Owned, 1);
    o->cs = cs;
    o->campaign_id = g_strdup(sc->id);
    wa_store_campaign_recipients(cs->wa->store, sc->id, WA_STORE_RECIPIENT_MASK(WA_STORE_RECIPIENT_SENDING), 0, 0,
                                 sending_cb, wabiz_store_hold(cs->wa, o, (GDestroyNotify) owned_free));
    if (sc->state == WA_STORE_CAMPAIGN_CANCELLED) {
      c->told_done = TRUE;
      continue;
    }
    camp_say(cs, c,
             c->state == WA_STORE_CAMPAIGN_PAUSED      ? _("Campaign reopened: paused (/resume goes on).")
             : c->state == WA_STORE_CAMPAIGN_SCHEDULED ? _("Campaign reopened: scheduled, it starts at its time.")
                                                       : _("Campaign reopened: it goes on where it stopped; sends that "
                                                           "were under way are not repeated."));
  }
  progress_all(cs);
  activate_next(cs);
}

/* The limit the account's option or the API gives; FALSE: none known (keep). */
static gboolean
portfolio_limit(WabizAccount *wa, guint *limit)
{
  const char *option = purple_account_get_string(wa->account, WABIZ_OPT_PORTFOLIO_LIMIT, "api");
  guint64 n;

  if (option != NULL && g_ascii_string_to_unsigned(option, 10, 0, G_MAXUINT, &n, NULL)) {
    *limit = (guint) n;
    return TRUE;
  }
  return wa->phone != NULL && wa->phone->messaging_limit != NULL &&
         wa_portfolio_tier_limit(wa->phone->messaging_limit, limit);
}

static void
reach_cb(const WaStoreReach *reach, guint n, const GError *error, gpointer data)
{
  Fetch *f = data;
  WabizCampaigns *cs = f->cs;

  wabiz_store_release(cs->wa, f);
  g_free(f);
  for (guint i = 0; error == NULL && i < n; i++)
    wa_portfolio_note(cs->portfolio, reach[i].key, reach[i].at);
}

/* The business's shared counter (one per WABA id), with this store's reach
 * records of the last 24 hours. */
static void
portfolio_join(WabizCampaigns *cs)
{
  WabizAccount *wa = cs->wa;
  const char *waba = wabiz_account_string(wa->account, WABIZ_OPT_WABA_ID);
  g_autofree char *key = g_strdup(waba != NULL && *waba != '\0' ? waba : wa->pnid);
  guint limit = 0;

  if (portfolios == NULL)
    portfolios = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) wa_portfolio_unref);
  cs->portfolio = g_hash_table_lookup(portfolios, key);
  if (cs->portfolio == NULL) {
    cs->portfolio = wa_portfolio_new(wa_clock_system(), 0);
    g_hash_table_insert(portfolios, g_strdup(key), cs->portfolio);
  }
  wa_portfolio_ref(cs->portfolio);
  if (portfolio_limit(wa, &limit))
    wa_portfolio_set_limit(cs->portfolio, limit);
  {
    Fetch *f = g_new0(Fetch, 1);

    f->cs = cs;
    wa_store_portfolio_reach(wa->store, wabiz_now() - WA_PORTFOLIO_WINDOW_S, reach_cb, wabiz_store_hold(wa, f, g_free));
  }
}

/* The account's reference goes; the table keeps the counter for the process
 * (another account of the business, or this one signing on again). */
static void
portfolio_leave(WabizCampaigns *cs)
{
  g_clear_pointer(&cs->portfolio, wa_portfolio_unref);
}

void
wabiz_campaigns_start(WabizAccount *wa)
{
  WabizCampaigns *cs = g_new0(WabizCampaigns, 1);
  const char *rate = purple_account_get_string(wa->account, WABIZ_OPT_CAMPAIGN_THROUGHPUT, "80");
  guint64 mps = 0;

  if (!g_ascii_string_to_unsigned(rate != NULL ? rate : "", 10, 1, 100000, &mps, NULL))
    mps = WA_PACE_RATE_DEFAULT;
  cs->wa = wa;
  cs->camps = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) camp_free);
  cs->owned = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify) sending_free);
  cs->round_trip_us = ROUND_TRIP_US;
  cs->by_to = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  cs->pace = wa_pace_new(wa_clock_system(), (guint) mps);
  portfolio_join(cs);
  g_queue_init(&cs->fetched);
  g_queue_init(&cs->ready);
  g_queue_init(&cs->repeats);
  cs->checks = g_hash_table_new_full(g_direct_hash, g_direct_equal, (GDestroyNotify) pending_free, NULL);
  wa->campaigns = cs;
  cs->progress_timer = purple_timeout_add_seconds(PROGRESS_S, progress_fired, cs);
  cs->schedule_timer = purple_timeout_add_seconds(1, schedule_fired, cs);
  cs->queued = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, (GDestroyNotify) wa_store_outbox_free);
  g_queue_init(&cs->resumed);
  {
    Fetch *f = g_new0(Fetch, 1);

    f->cs = cs;
    wa_store_outbox_list(wa->store, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_QUEUED), queued_cb,
                         wabiz_store_hold(wa, f, g_free));
  }
  /* every campaign: those not over reopen, the others stay known for /report */
  wa_store_campaign_list(wa->store, 0xff, listed_cb, wabiz_store_hold(wa, cs, keep));
}

void
wabiz_campaigns_stop(WabizAccount *wa)
{
  WabizCampaigns *cs = wa->campaigns;

  if (cs == NULL)
    return;
  wabiz_store_release(wa, cs);
  /* closed with the connection's requests already (wabiz_close) */
  cs->asking = NULL;
  runner_clear(cs);
  while (cs->plans != NULL) {
    /* not freed again when the store closes */
    wabiz_store_release(wa, cs->plans->data);
    plan_free(cs->plans->data);
  }
  if (cs->progress_timer != 0)
    purple_timeout_remove(cs->progress_timer);
  if (cs->schedule_timer != 0)
    purple_timeout_remove(cs->schedule_timer);
  if (cs->resume_timer != 0)
    purple_timeout_remove(cs->resume_timer);
  g_hash_table_destroy(cs->camps);
  g_hash_table_destroy(cs->owned);
  g_hash_table_destroy(cs->checks);
  g_hash_table_destroy(cs->by_to);
  g_hash_table_destroy(cs->queued);
  g_queue_clear_full(&cs->resumed, (GDestroyNotify) resumed_free);
  wa_pace_free(cs->pace);
  portfolio_leave(cs);
  g_free(cs);
  wa->campaigns = NULL;
}
