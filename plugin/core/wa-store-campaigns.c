/* wa-store-campaigns.c: the store's campaigns (schema 5): a campaign and its
 * state, its recipients (params sealed with the customer's key), beginning a
 * batch of sends (recipient PENDING -> SENDING with its outbox entry, in one
 * savepoint), the "once a day per template and customer" record, the
 * portfolio's reach records, and the campaign parts of erasure, retention
 * and export.
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * After SENDING, the recipient's state follows its outbox entry through the
 * trigger outbox_campaign_state (wa-store.c, schema 5): nothing here moves a
 * recipient that has an outbox entry.
 *
 * Must not: log content, ids or hashes, begin a recipient that is not
 * PENDING, give one recipient two outbox entries, or touch a connection or
 * key outside the worker. */
#include "wa-store-private.h"

#include <string.h>

/* The "once a day" rule and the portfolio's window. */
#define CAMPAIGN_DAY_S (24 * 3600)

/* ---- records ---------------------------------------------------------------- */

const char *
wa_store_campaign_state_to_string(WaStoreCampaignState state)
{
  static const char *const names[] = {"draft", "scheduled", "running", "paused", "cancelled", "done"};

  return (guint) state < G_N_ELEMENTS(names) ? names[state] : "unknown";
}

const char *
wa_store_recipient_state_to_string(WaStoreRecipientState state)
{
  static const char *const names[] = {"pending", "skipped", "sending", "sent", "uncertain", "failed"};

  return (guint) state < G_N_ELEMENTS(names) ? names[state] : "unknown";
}

WaStoreCampaign *
wa_store_campaign_copy(const WaStoreCampaign *campaign)
{
  WaStoreCampaign *copy;

  if (campaign == NULL)
    return NULL;
  copy = g_memdup2(campaign, sizeof *campaign);
  copy->id = g_strdup(campaign->id);
  copy->name = g_strdup(campaign->name);
  copy->template_name = g_strdup(campaign->template_name);
  copy->language = g_strdup(campaign->language);
  copy->category = g_strdup(campaign->category);
  return copy;
}

void
wa_store_campaign_free(WaStoreCampaign *campaign)
{
  if (campaign == NULL)
    return;
  g_free(campaign->id);
  g_free(campaign->name);
  g_free(campaign->template_name);
  g_free(campaign->language);
  g_free(campaign->category);
  g_free(campaign);
}

WaStoreRecipient *
wa_store_recipient_copy(const WaStoreRecipient *recipient)
{
  WaStoreRecipient *copy;

  if (recipient == NULL)
    return NULL;
  copy = g_memdup2(recipient, sizeof *recipient);
  copy->id = g_strdup(recipient->id);
  copy->campaign_id = g_strdup(recipient->campaign_id);
  copy->customer_id = g_strdup(recipient->customer_id);
  copy->params = g_strdup(recipient->params);
  copy->reason = g_strdup(recipient->reason);
  copy->pricing = g_strdup(recipient->pricing);
  copy->message_id = g_strdup(recipient->message_id);
  copy->wamid = g_strdup(recipient->wamid);
  return copy;
}

void
wa_store_recipient_free(WaStoreRecipient *recipient)
{
  if (recipient == NULL)
    return;
  g_free(recipient->id);
  g_free(recipient->campaign_id);
  g_free(recipient->customer_id);
  wa_store_wipe_free(recipient->params);
  g_free(recipient->reason);
  g_free(recipient->pricing);
  g_free(recipient->message_id);
  wa_store_wipe_free(recipient->wamid);
  g_free(recipient);
}

/* ---- readers (worker) ---------------------------------------------------------- */

#define CAMPAIGN_COLUMNS "id, name, template, language, category, state, start_at, created, updated"

static gboolean
campaign_counts(WaStore *store, WaStoreCampaign *campaign, GError **error)
{
  sqlite3_stmt *stmt =
    wa_store_sql(store, error, "SELECT state, count(*) FROM campaign_recipients WHERE campaign_id = ?1 GROUP BY state",
                 "t", campaign->id);
  int rc;

  if (stmt == NULL)
    return FALSE;
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    gint64 state = sqlite3_column_int64(stmt, 0);
    guint count = (guint) sqlite3_column_int64(stmt, 1);

    if (state >= 0 && state < WA_STORE_RECIPIENT_N_STATES)
      campaign->counts[state] = count;
    campaign->total += count;
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static WaStoreCampaign *
campaign_from_row(sqlite3_stmt *stmt)
{
  WaStoreCampaign *campaign = g_new0(WaStoreCampaign, 1);

  campaign->id = wa_store_col_text(stmt, 0);
  campaign->name = wa_store_col_text(stmt, 1);
  campaign->template_name = wa_store_col_text(stmt, 2);
  campaign->language = wa_store_col_text(stmt, 3);
  campaign->category = wa_store_col_text(stmt, 4);
  campaign->state = (WaStoreCampaignState) sqlite3_column_int(stmt, 5);
  campaign->start_at = sqlite3_column_int64(stmt, 6);
  campaign->created = sqlite3_column_int64(stmt, 7);
  campaign->updated = sqlite3_column_int64(stmt, 8);
  return campaign;
}

/* The campaign @id with its counts, or NULL in *@out (no error). */
static gboolean
read_campaign(WaStore *store, const char *id, WaStoreCampaign **out, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT " CAMPAIGN_COLUMNS " FROM campaigns WHERE id = ?1", "t", id);
  int rc;

  *out = NULL;
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    *out = campaign_from_row(stmt);
  wa_store_sql_done(stmt);
  if (*out != NULL && !campaign_counts(store, *out, error)) {
    g_clear_pointer(out, wa_store_campaign_free);
    return FALSE;
  }
  return TRUE;
}

#define RECIPIENT_COLUMNS                                                                               \
  "r.id, r.campaign_id, r.customer_id, r.seq, r.params, r.state, r.reason, r.error_code, r.outbox_id, " \
  "r.pricing, r.created, r.updated, m.id, m.wamid, m.status"
#define RECIPIENT_FROM \
  " FROM campaign_recipients r LEFT JOIN outbox o ON o.id = r.outbox_id LEFT JOIN messages m ON m.id = o.message_id"

static WaStoreRecipient *
recipient_from_row(WaStore *store, sqlite3_stmt *stmt)
{
  WaStoreRecipient *r = g_new0(WaStoreRecipient, 1);
  const WaKey *key;

  r->id = wa_store_col_text(stmt, 0);
  r->campaign_id = wa_store_col_text(stmt, 1);
  r->customer_id = wa_store_col_text(stmt, 2);
  r->seq = (guint) sqlite3_column_int64(stmt, 3);
  r->state = (WaStoreRecipientState) sqlite3_column_int(stmt, 5);
  r->reason = wa_store_col_text(stmt, 6);
  r->error_code = sqlite3_column_int(stmt, 7);
  r->outbox_id = (guint64) sqlite3_column_int64(stmt, 8);
  r->pricing = wa_store_col_text(stmt, 9);
  r->created = sqlite3_column_int64(stmt, 10);
  r->updated = sqlite3_column_int64(stmt, 11);
  r->message_id = wa_store_col_text(stmt, 12);
  r->status = (WaStoreStatus) sqlite3_column_int(stmt, 14);
  key = r->id != NULL && r->customer_id != NULL ? wa_store_customer_key(store, r->customer_id, NULL) : NULL;
  if (key == NULL) {
    r->tampered = TRUE;
    return r;
  }
  r->params = wa_store_open_col(key, "campaign_recipients", "params", r->id, stmt, 4, &r->tampered);
  if (r->message_id != NULL)
    r->wamid = wa_store_open_col(key, "messages", "wamid", r->message_id, stmt, 13, &r->tampered);
  return r;
}

static gboolean
invalid(GError **error, const char *message)
{
  g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, message);
  return FALSE;
}

static gboolean
not_found(GError **error, const char *message)
{
  g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND, message);
  return FALSE;
}

/* ---- requests -------------------------------------------------------------------- */

typedef struct {
  Request base;
  char *campaign_id;
  char *recipient_id;
  char *name;
  char *template_name;
  char *language;
  char *category;
  char *text; /* skip reason, pricing */
  guint64 outbox_id;
  WaStoreCampaignState state;
  gint64 number; /* start_at, error code, since */
  guint mask;
  guint after_seq;
  guint limit;
  /* add_recipients / begin_sends (copies) */
  WaStoreRecipientNew *recipients;
  WaStoreCampaignSend *sends;
  guint n;
  /* results */
  WaStoreCampaign *campaign;
  GPtrArray *list;
  WaStoreSendResult *results;
  GPtrArray *entries; /* WaStoreOutbox* of the results */
  GArray *reach;      /* WaStoreReach, keys in @keys */
  GPtrArray *keys;
  guint count;
} CampaignRequest;

static void
finalize_campaign(Request *req)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  g_free(cr->campaign_id);
  g_free(cr->recipient_id);
  g_free(cr->name);
  g_free(cr->template_name);
  g_free(cr->language);
  g_free(cr->category);
  g_free(cr->text);
  for (guint i = 0; cr->recipients != NULL && i < cr->n; i++) {
    g_free((char *) cr->recipients[i].customer_id);
    wa_store_wipe_free((char *) cr->recipients[i].params);
    g_free((char *) cr->recipients[i].skip_reason);
  }
  g_free(cr->recipients);
  for (guint i = 0; cr->sends != NULL && i < cr->n; i++) {
    g_free((char *) cr->sends[i].recipient_id);
    g_free((char *) cr->sends[i].type);
    wa_store_wipe_free((char *) cr->sends[i].body);
    wa_store_wipe_free((char *) cr->sends[i].payload);
  }
  g_free(cr->sends);
  g_clear_pointer(&cr->campaign, wa_store_campaign_free);
  g_clear_pointer(&cr->list, g_ptr_array_unref);
  g_free(cr->results);
  g_clear_pointer(&cr->entries, g_ptr_array_unref);
  g_clear_pointer(&cr->reach, g_array_unref);
  g_clear_pointer(&cr->keys, g_ptr_array_unref);
}

/* ---- campaigns ---- */

static gboolean
run_create(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  g_autofree char *id = wa_store_new_id();

  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO campaigns (id, name, template, language, category, state, start_at, created, "
                         "updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                         "tttttiii", id, cr->name, cr->template_name, cr->language, cr->category,
                         (gint64) WA_STORE_CAMPAIGN_DRAFT, cr->number, req->now) ||
      !wa_store_audit_row(store, req->now, "campaign.created", NULL, id, error))
    return FALSE;
  return read_campaign(store, id, &cr->campaign, error);
}

static gboolean
campaign_transition_allowed(WaStoreCampaignState from, WaStoreCampaignState to)
{
  if (from == to)
    return TRUE;
  switch (from) {
  case WA_STORE_CAMPAIGN_DRAFT:
    return to == WA_STORE_CAMPAIGN_SCHEDULED || to == WA_STORE_CAMPAIGN_RUNNING || to == WA_STORE_CAMPAIGN_CANCELLED;
  case WA_STORE_CAMPAIGN_SCHEDULED:
    return to == WA_STORE_CAMPAIGN_RUNNING || to == WA_STORE_CAMPAIGN_PAUSED || to == WA_STORE_CAMPAIGN_CANCELLED ||
           to == WA_STORE_CAMPAIGN_DRAFT;
  case WA_STORE_CAMPAIGN_RUNNING:
    return to == WA_STORE_CAMPAIGN_PAUSED || to == WA_STORE_CAMPAIGN_CANCELLED || to == WA_STORE_CAMPAIGN_DONE;
  case WA_STORE_CAMPAIGN_PAUSED:
    return to == WA_STORE_CAMPAIGN_RUNNING || to == WA_STORE_CAMPAIGN_CANCELLED;
  case WA_STORE_CAMPAIGN_CANCELLED:
  case WA_STORE_CAMPAIGN_DONE:
    break;
  }
  return FALSE;
}

static gboolean
run_set_state(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  g_autoptr(WaStoreCampaign) current = NULL;
  g_autofree char *action = NULL;

  if (!read_campaign(store, cr->campaign_id, &current, error))
    return FALSE;
  if (current == NULL)
    return not_found(error, "no such campaign");
  if (!campaign_transition_allowed(current->state, cr->state)) {
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "a campaign cannot go from %s to %s",
                wa_store_campaign_state_to_string(current->state), wa_store_campaign_state_to_string(cr->state));
    return FALSE;
  }
  if (current->state == cr->state && cr->number < 0) {
    cr->campaign = g_steal_pointer(&current);
    return TRUE;
  }
  if (!wa_store_sql_exec(store, error,
                         "UPDATE campaigns SET state = ?2, start_at = CASE WHEN ?3 >= 0 THEN ?3 ELSE start_at END, "
                         "updated = ?4 WHERE id = ?1",
                         "tiii", cr->campaign_id, (gint64) cr->state, cr->number, req->now))
    return FALSE;
  if (cr->state == WA_STORE_CAMPAIGN_CANCELLED &&
      !wa_store_sql_exec(store, error,
                         "UPDATE campaign_recipients SET state = ?2, reason = 'cancelled', updated = ?3 "
                         "WHERE campaign_id = ?1 AND state = ?4",
                         "tiii", cr->campaign_id, (gint64) WA_STORE_RECIPIENT_SKIPPED, req->now,
                         (gint64) WA_STORE_RECIPIENT_PENDING))
    return FALSE;
  action = g_strconcat("campaign.", wa_store_campaign_state_to_string(cr->state), NULL);
  if (current->state != cr->state && !wa_store_audit_row(store, req->now, action, NULL, cr->campaign_id, error))
    return FALSE;
  return read_campaign(store, cr->campaign_id, &cr->campaign, error);
}

static gboolean
run_get(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  return read_campaign(store, cr->campaign_id, &cr->campaign, error);
}

static gboolean
run_list(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT " CAMPAIGN_COLUMNS " FROM campaigns WHERE (?1 >> state) & 1 "
                                    "ORDER BY created, rowid",
                                    "i", (gint64) cr->mask);
  int rc;

  if (stmt == NULL)
    return FALSE;
  cr->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_campaign_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(cr->list, campaign_from_row(stmt));
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  for (guint i = 0; i < cr->list->len; i++)
    if (!campaign_counts(store, cr->list->pdata[i], error))
      return FALSE;
  return TRUE;
}

/* ---- recipients ---- */

static gboolean
run_add_recipients(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  g_autoptr(WaStoreCampaign) campaign = NULL;
  gint64 seq = 0;

  if (!read_campaign(store, cr->campaign_id, &campaign, error))
    return FALSE;
  if (campaign == NULL)
    return not_found(error, "no such campaign");
  if (campaign->state != WA_STORE_CAMPAIGN_DRAFT && campaign->state != WA_STORE_CAMPAIGN_SCHEDULED)
    return invalid(error, "recipients can be added only before a campaign starts");
  if (!wa_store_sql_int(store, &seq, NULL, error,
                        "SELECT COALESCE(max(seq), 0) FROM campaign_recipients WHERE campaign_id = ?1", "t",
                        cr->campaign_id))
    return FALSE;
  for (guint i = 0; i < cr->n; i++) {
    const WaStoreRecipientNew *in = &cr->recipients[i];
    g_autofree char *id = NULL;
    g_autoptr(GBytes) params = NULL;
    gboolean taken = FALSE;
    gint64 unused;
    const WaKey *key;

    if (in->customer_id == NULL)
      return invalid(error, "a recipient needs a customer");
    if (!wa_store_sql_int(store, &unused, &taken, error,
                          "SELECT 1 FROM campaign_recipients WHERE campaign_id = ?1 AND customer_id = ?2", "tt",
                          cr->campaign_id, in->customer_id))
      return FALSE;
    if (taken)
      continue;
    key = wa_store_customer_key(store, in->customer_id, error);
    if (key == NULL)
      return FALSE;
    id = wa_store_new_id();
    if (!wa_store_seal(key, "campaign_recipients", "params", id, in->params, &params, error) ||
        !wa_store_sql_exec(store, error,
                           "INSERT INTO campaign_recipients (id, campaign_id, customer_id, seq, params, state, reason, "
                           "created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                           "tttibiti", id, cr->campaign_id, in->customer_id, ++seq, params,
                           (gint64) (in->skip_reason != NULL ? WA_STORE_RECIPIENT_SKIPPED : WA_STORE_RECIPIENT_PENDING),
                           in->skip_reason, req->now))
      return FALSE;
    cr->count++;
  }
  return TRUE;
}

static gboolean
run_recipients(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT " RECIPIENT_COLUMNS RECIPIENT_FROM
                                    " WHERE r.campaign_id = ?1 AND (?2 >> r.state) & 1 AND r.seq > ?3 "
                                    "ORDER BY r.seq LIMIT ?4",
                                    "tiii", cr->campaign_id, (gint64) cr->mask, (gint64) cr->after_seq,
                                    cr->limit > 0 ? (gint64) cr->limit : (gint64) -1);
  int rc;

  if (stmt == NULL)
    return FALSE;
  cr->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_recipient_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(cr->list, recipient_from_row(store, stmt));
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

/* The recipient's campaign, customer and state, or *@found FALSE. */
static gboolean
read_recipient_brief(WaStore *store, const char *recipient_id, char **campaign_id, char **customer_id, gint64 *state,
                     gboolean *found, GError **error)
{
  sqlite3_stmt *stmt =
    wa_store_sql(store, error, "SELECT campaign_id, customer_id, state FROM campaign_recipients WHERE id = ?1", "t",
                 recipient_id);
  int rc;

  *found = FALSE;
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW) {
    *found = TRUE;
    *campaign_id = wa_store_col_text(stmt, 0);
    *customer_id = wa_store_col_text(stmt, 1);
    *state = sqlite3_column_int64(stmt, 2);
  }
  wa_store_sql_done(stmt);
  return TRUE;
}

static gboolean
begin_one(WaStore *store, CampaignRequest *cr, const WaStoreCampaign *campaign, gint64 now,
          const WaStoreCampaignSend *send, WaStoreSendResult *result, GError **error)
{
  g_autofree char *campaign_id = NULL;
  g_autofree char *customer_id = NULL;
  gint64 state = 0, last = 0;
  gboolean found = FALSE, sent_before = FALSE;
  WaStoreOutbox *entry = NULL;

  result->recipient_id = send->recipient_id;
  if (send->recipient_id == NULL)
    return invalid(error, "a send needs its recipient");
  if (!read_recipient_brief(store, send->recipient_id, &campaign_id, &customer_id, &state, &found, error))
    return FALSE;
  if (!found || strcmp(campaign_id, campaign->id) != 0 || state != WA_STORE_RECIPIENT_PENDING) {
    result->outcome = WA_STORE_SEND_NOT_PENDING;
    return TRUE;
  }
  if (!wa_store_sql_int(store, &last, &sent_before, error,
                        "SELECT at FROM template_sends WHERE customer_id = ?1 AND template = ?2 AND at > ?3", "tti",
                        customer_id, campaign->template_name, now - CAMPAIGN_DAY_S))
    return FALSE;
  if (sent_before && !send->confirmed) {
    result->outcome = WA_STORE_SEND_REPEAT;
    result->last_sent = last;
    return TRUE;
  }
  if (!wa_store_outbox_insert(store, now, customer_id, send->type != NULL ? send->type : "template", send->body,
                              send->payload, FALSE, send->start, &entry, error))
    return FALSE;
  /* the entry as written, not read back (and decrypted) */
  entry->campaign = TRUE;
  g_ptr_array_add(cr->entries, entry);
  if (!wa_store_sql_exec(store, error,
                         "UPDATE campaign_recipients SET state = ?2, outbox_id = ?3, updated = ?4 WHERE id = ?1",
                         "tiui", send->recipient_id, (gint64) WA_STORE_RECIPIENT_SENDING, entry->id, now) ||
      !wa_store_sql_exec(store, error,
                         "INSERT INTO template_sends (customer_id, template, at) VALUES (?1, ?2, ?3) "
                         "ON CONFLICT (customer_id, template) DO UPDATE SET at = excluded.at",
                         "tti", customer_id, campaign->template_name, now))
    return FALSE;
  if (send->count_reach && !wa_store_sql_exec(store, error,
                                              "INSERT INTO portfolio_reach (customer_id, at) VALUES (?1, ?2) "
                                              "ON CONFLICT (customer_id) DO UPDATE SET at = excluded.at",
                                              "ti", customer_id, now))
    return FALSE;
  result->outcome = WA_STORE_SEND_BEGUN;
  result->entry = entry;
  return TRUE;
}

static gboolean
run_begin_sends(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  g_autoptr(WaStoreCampaign) campaign = NULL;

  if (!read_campaign(store, cr->campaign_id, &campaign, error))
    return FALSE;
  if (campaign == NULL)
    return not_found(error, "no such campaign");
  cr->results = g_new0(WaStoreSendResult, MAX(cr->n, 1));
  cr->entries = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_outbox_free);
  for (guint i = 0; i < cr->n; i++) {
    if (campaign->state != WA_STORE_CAMPAIGN_RUNNING) {
      cr->results[i].recipient_id = cr->sends[i].recipient_id;
      cr->results[i].outcome = WA_STORE_SEND_NOT_RUNNING;
    } else if (!begin_one(store, cr, campaign, req->now, &cr->sends[i], &cr->results[i], error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
run_skip(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (cr->text == NULL || *cr->text == '\0')
    return invalid(error, "a skipped recipient needs a reason");
  if (!wa_store_sql_exec(store, error,
                         "UPDATE campaign_recipients SET state = ?2, reason = ?3, updated = ?4 WHERE id = ?1 AND "
                         "state = ?5",
                         "titii", cr->recipient_id, (gint64) WA_STORE_RECIPIENT_SKIPPED, cr->text, req->now,
                         (gint64) WA_STORE_RECIPIENT_PENDING))
    return FALSE;
  if (sqlite3_changes(store->db) == 0)
    return invalid(error, "only a pending recipient can be skipped");
  return TRUE;
}

static gboolean
run_note(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (cr->recipient_id != NULL) {
    if (!wa_store_sql_exec(store, error,
                           "UPDATE campaign_recipients SET error_code = CASE WHEN ?2 <> 0 THEN ?2 ELSE error_code END, "
                           "pricing = COALESCE(?3, pricing), updated = ?4 WHERE id = ?1",
                           "titi", cr->recipient_id, cr->number, cr->text, req->now))
      return FALSE;
    if (sqlite3_changes(store->db) == 0)
      return not_found(error, "no such recipient");
    return TRUE;
  }
  /* by outbox entry: not a campaign's is not an error */
  return wa_store_sql_exec(store, error,
                           "UPDATE campaign_recipients SET error_code = CASE WHEN ?2 <> 0 THEN ?2 ELSE error_code END, "
                           "pricing = COALESCE(?3, pricing), updated = ?4 WHERE outbox_id = ?1",
                           "uiti", cr->outbox_id, cr->number, cr->text, req->now);
}

/* ---- portfolio reach ---- */

static gboolean
run_reach(WaStore *store, Request *req, GError **error)
{
  CampaignRequest *cr = (CampaignRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT p.rowid, p.customer_id, p.at, c.wa_id, c.bsuid FROM portfolio_reach p "
                                    "LEFT JOIN customers c ON c.id = p.customer_id WHERE p.at >= ?1 ORDER BY p.at",
                                    "i", cr->number);
  int rc;

  if (stmt == NULL)
    return FALSE;
  cr->reach = g_array_new(FALSE, TRUE, sizeof(WaStoreReach));
  cr->keys = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_wipe_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    g_autofree char *customer_id = wa_store_col_text(stmt, 1);
    const WaKey *key = customer_id != NULL ? wa_store_customer_key(store, customer_id, NULL) : NULL;
    gboolean tampered = FALSE;
    char *value = NULL;
    WaStoreReach reach = {.at = sqlite3_column_int64(stmt, 2)};

    if (key != NULL) {
      value = wa_store_open_col(key, "customers", "wa_id", customer_id, stmt, 3, &tampered);
      if (value == NULL)
        value = wa_store_open_col(key, "customers", "bsuid", customer_id, stmt, 4, &tampered);
    }
    if (value == NULL) /* erased (or unreadable): counted, not named */
      value = g_strdup_printf("erased:%" G_GINT64_FORMAT, (gint64) sqlite3_column_int64(stmt, 0));
    g_ptr_array_add(cr->keys, value);
    reach.key = value;
    g_array_append_val(cr->reach, reach);
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

/* ---- erasure, retention, export (worker, inside their transactions) ---- */

gboolean
wa_store_campaigns_erase_customer(WaStore *store, const char *customer_id, GError **error)
{
  return wa_store_sql_exec(store, error, "DELETE FROM campaign_recipients WHERE customer_id = ?1", "t", customer_id) &&
         wa_store_sql_exec(store, error, "DELETE FROM template_sends WHERE customer_id = ?1", "t", customer_id) &&
         wa_store_sql_exec(store, error, "UPDATE portfolio_reach SET customer_id = NULL WHERE customer_id = ?1", "t",
                           customer_id);
}

gboolean
wa_store_campaigns_expire(WaStore *store, gint64 now, gint64 before, GError **error)
{
  return wa_store_sql_exec(store, error,
                           "UPDATE campaign_recipients SET params = NULL WHERE updated < ?1 AND params IS NOT NULL "
                           "AND state NOT IN (?2, ?3)",
                           "iii", before, (gint64) WA_STORE_RECIPIENT_PENDING, (gint64) WA_STORE_RECIPIENT_SENDING) &&
         wa_store_sql_exec(store, error, "DELETE FROM template_sends WHERE at <= ?1", "i", now - CAMPAIGN_DAY_S) &&
         wa_store_sql_exec(store, error, "DELETE FROM portfolio_reach WHERE at <= ?1", "i", now - CAMPAIGN_DAY_S);
}

gboolean
wa_store_campaigns_export(WaStore *store, JsonBuilder *builder, const char *customer_id, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT " RECIPIENT_COLUMNS ", c.name, c.template, c.language" RECIPIENT_FROM
                                    " JOIN campaigns c ON c.id = r.campaign_id WHERE r.customer_id = ?1 "
                                    "ORDER BY r.created, r.rowid",
                                    "t", customer_id);
  int rc;

  if (stmt == NULL)
    return FALSE;
  json_builder_set_member_name(builder, "campaigns");
  json_builder_begin_array(builder);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    g_autoptr(WaStoreRecipient) r = recipient_from_row(store, stmt);

    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "campaign");
    json_builder_add_string_value(builder, (const char *) sqlite3_column_text(stmt, 15));
    json_builder_set_member_name(builder, "template");
    json_builder_add_string_value(builder, (const char *) sqlite3_column_text(stmt, 16));
    json_builder_set_member_name(builder, "language");
    json_builder_add_string_value(builder, (const char *) sqlite3_column_text(stmt, 17));
    json_builder_set_member_name(builder, "params");
    json_builder_add_string_value(builder, r->params);
    json_builder_set_member_name(builder, "state");
    json_builder_add_string_value(builder, wa_store_recipient_state_to_string(r->state));
    json_builder_set_member_name(builder, "reason");
    json_builder_add_string_value(builder, r->reason);
    json_builder_set_member_name(builder, "error_code");
    json_builder_add_int_value(builder, r->error_code);
    json_builder_set_member_name(builder, "pricing");
    json_builder_add_string_value(builder, r->pricing);
    json_builder_set_member_name(builder, "message_id");
    json_builder_add_string_value(builder, r->message_id);
    json_builder_set_member_name(builder, "created");
    json_builder_add_int_value(builder, r->created);
    json_builder_set_member_name(builder, "updated");
    json_builder_add_int_value(builder, r->updated);
    json_builder_set_member_name(builder, "tampered");
    json_builder_add_boolean_value(builder, r->tampered);
    json_builder_end_object(builder);
  }
  json_builder_end_array(builder);
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

/* ---- answers (loop thread) ---- */

static void
answer_campaign(Request *req)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (req->cb != NULL)
    ((WaStoreCampaignFunc) req->cb)(req->error == NULL ? cr->campaign : NULL, req->error, req->data);
}

static void
answer_list(Request *req)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (req->cb != NULL)
    ((WaStoreCampaignListFunc) req->cb)(req->error == NULL ? cr->list : NULL, req->error, req->data);
}

static void
answer_count(Request *req)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (req->cb != NULL)
    ((WaStoreCountFunc) req->cb)(req->error == NULL ? cr->count : 0, req->error, req->data);
}

static void
answer_sends(Request *req)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (req->cb != NULL)
    ((WaStoreSendsFunc) req->cb)(req->error == NULL ? cr->results : NULL, req->error == NULL ? cr->n : 0, req->error,
                                 req->data);
}

static void
answer_reach(Request *req)
{
  CampaignRequest *cr = (CampaignRequest *) req;

  if (req->cb != NULL)
    ((WaStoreReachFunc) req->cb)(req->error == NULL ? (const WaStoreReach *) (void *) cr->reach->data : NULL,
                                 req->error == NULL ? cr->reach->len : 0, req->error, req->data);
}

#define CAMPAIGN_CLASS(name, m, run_fn, answer_fn) \
  static const RequestClass name = {               \
    .mode = m,                                     \
    .needs_key = TRUE,                             \
    .size = sizeof(CampaignRequest),               \
    .run = run_fn,                                 \
    .answer = answer_fn,                           \
    .finalize = finalize_campaign,                 \
  }

CAMPAIGN_CLASS(create_class, MODE_WRITE, run_create, answer_campaign);
CAMPAIGN_CLASS(set_state_class, MODE_WRITE, run_set_state, answer_campaign);
CAMPAIGN_CLASS(get_class, MODE_READ, run_get, answer_campaign);
CAMPAIGN_CLASS(list_class, MODE_READ, run_list, answer_list);
CAMPAIGN_CLASS(add_class, MODE_WRITE, run_add_recipients, answer_count);
CAMPAIGN_CLASS(recipients_class, MODE_READ, run_recipients, answer_list);
CAMPAIGN_CLASS(begin_class, MODE_WRITE, run_begin_sends, answer_sends);
CAMPAIGN_CLASS(skip_class, MODE_WRITE, run_skip, wa_store_answer_done);
CAMPAIGN_CLASS(note_class, MODE_WRITE, run_note, wa_store_answer_done);
CAMPAIGN_CLASS(reach_class, MODE_READ, run_reach, answer_reach);

static CampaignRequest *
campaign_request(WaStore *store, const RequestClass *klass, StoreCallback cb, gpointer data, const char *campaign_id)
{
  CampaignRequest *cr = wa_store_request_new(store, klass, cb, data);

  cr->campaign_id = g_strdup(campaign_id);
  return cr;
}

void
wa_store_campaign_create(WaStore *store, const char *name, const char *template_name, const char *language,
                         const char *category, gint64 start_at, WaStoreCampaignFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && name != NULL && template_name != NULL && language != NULL && category != NULL);
  cr = campaign_request(store, &create_class, STORE_CALLBACK(done), data, NULL);
  cr->name = g_strdup(name);
  cr->template_name = g_strdup(template_name);
  cr->language = g_strdup(language);
  cr->category = g_strdup(category);
  cr->number = MAX(start_at, 0);
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_set_state(WaStore *store, const char *campaign_id, WaStoreCampaignState state, gint64 start_at,
                            WaStoreCampaignFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && campaign_id != NULL);
  cr = campaign_request(store, &set_state_class, STORE_CALLBACK(done), data, campaign_id);
  cr->state = state;
  cr->number = start_at;
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_get(WaStore *store, const char *campaign_id, WaStoreCampaignFunc done, gpointer data)
{
  g_return_if_fail(store != NULL && campaign_id != NULL);
  wa_store_request_push(store, campaign_request(store, &get_class, STORE_CALLBACK(done), data, campaign_id));
}

void
wa_store_campaign_list(WaStore *store, guint state_mask, WaStoreCampaignListFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL);
  cr = campaign_request(store, &list_class, STORE_CALLBACK(done), data, NULL);
  cr->mask = state_mask;
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_add_recipients(WaStore *store, const char *campaign_id, const WaStoreRecipientNew *recipients,
                                 guint n, WaStoreCountFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && campaign_id != NULL && (recipients != NULL || n == 0));
  cr = campaign_request(store, &add_class, STORE_CALLBACK(done), data, campaign_id);
  cr->n = n;
  cr->recipients = g_new0(WaStoreRecipientNew, MAX(n, 1));
  for (guint i = 0; i < n; i++) {
    cr->recipients[i].customer_id = g_strdup(recipients[i].customer_id);
    cr->recipients[i].params = g_strdup(recipients[i].params);
    cr->recipients[i].skip_reason = g_strdup(recipients[i].skip_reason);
  }
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_recipients(WaStore *store, const char *campaign_id, guint state_mask, guint after_seq, guint limit,
                             WaStoreRecipientListFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && campaign_id != NULL);
  cr = campaign_request(store, &recipients_class, STORE_CALLBACK(done), data, campaign_id);
  cr->mask = state_mask;
  cr->after_seq = after_seq;
  cr->limit = limit;
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_begin_sends(WaStore *store, const char *campaign_id, const WaStoreCampaignSend *sends, guint n,
                              WaStoreSendsFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && campaign_id != NULL && (sends != NULL || n == 0));
  cr = campaign_request(store, &begin_class, STORE_CALLBACK(done), data, campaign_id);
  cr->n = n;
  cr->sends = g_new0(WaStoreCampaignSend, MAX(n, 1));
  for (guint i = 0; i < n; i++) {
    cr->sends[i] = sends[i];
    cr->sends[i].recipient_id = g_strdup(sends[i].recipient_id);
    cr->sends[i].type = g_strdup(sends[i].type);
    cr->sends[i].body = g_strdup(sends[i].body);
    cr->sends[i].payload = g_strdup(sends[i].payload);
  }
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_recipient_skip(WaStore *store, const char *recipient_id, const char *reason, WaStoreDoneFunc done,
                                 gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && recipient_id != NULL);
  cr = campaign_request(store, &skip_class, STORE_CALLBACK(done), data, NULL);
  cr->recipient_id = g_strdup(recipient_id);
  cr->text = g_strdup(reason);
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_recipient_note(WaStore *store, const char *recipient_id, gint error_code, const char *pricing,
                                 WaStoreDoneFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && recipient_id != NULL);
  cr = campaign_request(store, &note_class, STORE_CALLBACK(done), data, NULL);
  cr->recipient_id = g_strdup(recipient_id);
  cr->number = error_code;
  cr->text = g_strdup(pricing);
  wa_store_request_push(store, cr);
}

void
wa_store_portfolio_reach(WaStore *store, gint64 since, WaStoreReachFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL);
  cr = campaign_request(store, &reach_class, STORE_CALLBACK(done), data, NULL);
  cr->number = since;
  wa_store_request_push(store, cr);
}

void
wa_store_campaign_outbox_note(WaStore *store, guint64 outbox_id, gint error_code, const char *pricing,
                              WaStoreDoneFunc done, gpointer data)
{
  CampaignRequest *cr;

  g_return_if_fail(store != NULL && outbox_id != 0);
  cr = campaign_request(store, &note_class, STORE_CALLBACK(done), data, NULL);
  cr->outbox_id = outbox_id;
  cr->number = error_code;
  cr->text = g_strdup(pricing);
  wa_store_request_push(store, cr);
}
