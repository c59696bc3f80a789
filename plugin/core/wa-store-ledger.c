/* wa-store-ledger.c: the store's accountability and data-protection parts:
 * the consent ledger (append-only, enforced by triggers), the audit log
 * (append-only, hash-chained with the audit subkey, pseudonymous), export of
 * one customer as JSON, erasure with a suppression entry left behind, the
 * suppression list, and retention.
 *
 * Runs on the worker like the other wa-store-*.c files; JSON is built and serialised
 * on the worker and only the string crosses to the loop thread.
 *
 * Must not: put content, phone numbers, BSUIDs or names into the audit log,
 * delete consent rows except through erasure (erase_permit), or log anything
 * it reads. */
#include "wa-store-private.h"

#include <json-glib/json-glib.h>
#include <sodium.h>
#include <string.h>

/* ---- consent records ------------------------------------------------------------- */

WaStoreConsent *
wa_store_consent_copy(const WaStoreConsent *consent)
{
  WaStoreConsent *copy;

  if (consent == NULL)
    return NULL;
  copy = g_new0(WaStoreConsent, 1);
  *copy = *consent;
  copy->id = g_strdup(consent->id);
  copy->customer_id = g_strdup(consent->customer_id);
  copy->scope = g_strdup(consent->scope);
  copy->source = g_strdup(consent->source);
  copy->note = g_strdup(consent->note);
  return copy;
}

void
wa_store_consent_free(WaStoreConsent *consent)
{
  if (consent == NULL)
    return;
  g_free(consent->id);
  g_free(consent->customer_id);
  g_free(consent->scope);
  g_free(consent->source);
  wa_store_wipe_free(consent->note);
  g_free(consent);
}

#define CONSENT_COLUMNS "id, customer_id, state, scope, source, note, at"

static WaStoreConsent *
consent_from_row(WaStore *store, sqlite3_stmt *stmt)
{
  WaStoreConsent *consent = g_new0(WaStoreConsent, 1);
  const WaKey *key;

  consent->id = wa_store_col_text(stmt, 0);
  consent->customer_id = wa_store_col_text(stmt, 1);
  consent->state = (WaStoreConsentState) sqlite3_column_int(stmt, 2);
  consent->scope = wa_store_col_text(stmt, 3);
  consent->source = wa_store_col_text(stmt, 4);
  consent->at = sqlite3_column_int64(stmt, 6);
  key = consent->id != NULL && consent->customer_id != NULL ? wa_store_customer_key(store, consent->customer_id, NULL)
                                                            : NULL;
  if (key == NULL)
    consent->tampered = TRUE;
  else
    consent->note = wa_store_open_col(key, "consent", "note", consent->id, stmt, 5, &consent->tampered);
  return consent;
}

/* ---- the audit chain --------------------------------------------------------------- */

static void
hash_field(crypto_generichash_state *state, const char *value)
{
  guint8 len[4];
  guint32 n = value != NULL ? (guint32) strlen(value) : G_MAXUINT32; /* NULL differs from "" */

  len[0] = n >> 24;
  len[1] = n >> 16;
  len[2] = n >> 8;
  len[3] = n;
  crypto_generichash_update(state, len, sizeof len);
  if (value != NULL)
    crypto_generichash_update(state, (const guint8 *) value, strlen(value));
}

static void
hash_number(crypto_generichash_state *state, gint64 value)
{
  guint8 bytes[8];
  guint64 v = (guint64) value;

  for (int i = 7; i >= 0; i--) {
    bytes[i] = v & 0xff;
    v >>= 8;
  }
  crypto_generichash_update(state, bytes, sizeof bytes);
}

/* Keyed BLAKE2b over the previous row's hash and this row's canonical fields. */
static void
audit_hash(WaStore *store, const guint8 *prev, gint64 seq, gint64 at, const char *action, const char *customer_id,
           const char *detail, guint8 out[WA_CRYPT_HASH_BYTES])
{
  crypto_generichash_state state;

  crypto_generichash_init(&state, wa_key_bytes(store->audit_key), WA_CRYPT_KEY_BYTES, WA_CRYPT_HASH_BYTES);
  crypto_generichash_update(&state, (const guint8 *) "wabiz-audit-v1", 15);
  crypto_generichash_update(&state, prev, WA_CRYPT_HASH_BYTES);
  hash_number(&state, seq);
  hash_number(&state, at);
  hash_field(&state, action);
  hash_field(&state, customer_id);
  hash_field(&state, detail);
  crypto_generichash_final(&state, out, WA_CRYPT_HASH_BYTES);
  sodium_memzero(&state, sizeof state);
}

static char *
head_text(gint64 seq, const guint8 *hash)
{
  char hex[WA_CRYPT_HASH_BYTES * 2 + 1];

  sodium_bin2hex(hex, sizeof hex, hash, WA_CRYPT_HASH_BYTES);
  return g_strdup_printf("%" G_GINT64_FORMAT ":%s", seq, hex);
}

gboolean
wa_store_audit_row(WaStore *store, gint64 at, const char *action, const char *customer_id, const char *detail,
                   GError **error)
{
  guint8 prev[WA_CRYPT_HASH_BYTES] = {0};
  guint8 hash[WA_CRYPT_HASH_BYTES];
  g_autofree char *head = NULL;
  g_autoptr(GBytes) sealed = NULL;
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", NULL);
  gint64 seq = 0;
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW) {
    seq = sqlite3_column_int64(stmt, 0);
    if (sqlite3_column_bytes(stmt, 1) == WA_CRYPT_HASH_BYTES)
      memcpy(prev, sqlite3_column_blob(stmt, 1), WA_CRYPT_HASH_BYTES);
  }
  wa_store_sql_done(stmt);
  seq++;
  audit_hash(store, prev, seq, at, action, customer_id, detail, hash);
  head = head_text(seq, hash);
  return wa_store_sql_exec(store, error,
                           "INSERT INTO audit (seq, at, action, customer_id, detail, hash) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           "iittth", seq, at, action, customer_id, detail, hash) &&
         wa_store_seal(store->store_key, "meta", "value", "audit_head", head, &sealed, error) &&
         wa_store_sql_exec(store, error,
                           "INSERT INTO meta (name, value) VALUES ('audit_head', ?1) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           "b", sealed);
}

/* ---- requests ------------------------------------------------------------------------ */

typedef struct {
  Request base;
  char *customer_id;
  char *text1; /* action / scope / suppressed id / setting */
  char *text2; /* detail / source */
  char *note;
  gint64 number; /* consent state, suppression reason, retention age */
  gint64 at;
  /* results */
  WaStoreConsent *consent;
  WaStoreAuditReport report;
  char *json;
  guint count;
  gboolean suppressed;
  gint64 reason;
  gint64 reason_at;
} LedgerRequest;

static void
finalize_ledger(Request *req)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  g_free(lr->customer_id);
  wa_store_wipe_free(lr->text1);
  wa_store_wipe_free(lr->text2);
  wa_store_wipe_free(lr->note);
  g_clear_pointer(&lr->consent, wa_store_consent_free);
  wa_store_wipe_free(lr->json);
}

static LedgerRequest *
ledger_request(WaStore *store, const RequestClass *klass, StoreCallback cb, gpointer data, const char *customer_id)
{
  LedgerRequest *lr = wa_store_request_new(store, klass, cb, data);

  lr->customer_id = g_strdup(customer_id);
  return lr;
}

static void
answer_ledger_done(Request *req)
{
  if (req->cb != NULL)
    ((WaStoreDoneFunc) req->cb)(req->error, req->data);
}

static gboolean
invalid(GError **error, const char *message)
{
  g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, message);
  return FALSE;
}

/* ---- audit requests ---- */

static gboolean
run_audit_append(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (lr->text1 == NULL || *lr->text1 == '\0')
    return invalid(error, "an audit row needs an action");
  return wa_store_audit_row(store, req->now, lr->text1, lr->customer_id, lr->text2, error);
}

/* The head kept in meta: its seq and hash; FALSE when absent or not opening. */
static gboolean
read_head(WaStore *store, gint64 *seq, guint8 hash[WA_CRYPT_HASH_BYTES], gboolean *present, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT value FROM meta WHERE name = 'audit_head'", NULL);
  g_autofree char *text = NULL;
  gboolean tampered = FALSE;
  const char *colon;
  int rc;

  *present = FALSE;
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW) {
    *present = TRUE;
    text = wa_store_open_col(store->store_key, "meta", "value", "audit_head", stmt, 0, &tampered);
  }
  wa_store_sql_done(stmt);
  if (text == NULL || (colon = strchr(text, ':')) == NULL ||
      sodium_hex2bin(hash, WA_CRYPT_HASH_BYTES, colon + 1, strlen(colon + 1), NULL, NULL, NULL) != 0) {
    *seq = -1;
    return TRUE;
  }
  *seq = g_ascii_strtoll(text, NULL, 10);
  return TRUE;
}

static gboolean
run_audit_verify(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  WaStoreAuditReport *report = &lr->report;
  sqlite3_stmt *stmt =
    wa_store_sql(store, error, "SELECT seq, at, action, customer_id, detail, hash FROM audit ORDER BY seq", NULL);
  guint8 prev[WA_CRYPT_HASH_BYTES] = {0};
  guint8 head_hash[WA_CRYPT_HASH_BYTES] = {0};
  gint64 last = 0;
  gint64 head_seq;
  gboolean head_present;
  int rc;

  if (stmt == NULL)
    return FALSE;
  report->ok = TRUE;
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    guint8 expected[WA_CRYPT_HASH_BYTES];
    gint64 seq = sqlite3_column_int64(stmt, 0);

    report->rows++;
    audit_hash(store, prev, seq, sqlite3_column_int64(stmt, 1), (const char *) sqlite3_column_text(stmt, 2),
               (const char *) sqlite3_column_text(stmt, 3), (const char *) sqlite3_column_text(stmt, 4), expected);
    if (report->ok && (seq != last + 1 || sqlite3_column_bytes(stmt, 5) != WA_CRYPT_HASH_BYTES ||
                       sodium_memcmp(expected, sqlite3_column_blob(stmt, 5), WA_CRYPT_HASH_BYTES) != 0)) {
      report->ok = FALSE;
      report->first_broken = seq;
    }
    /* go on from the stored hash: one altered row breaks only itself and
     * the chain link after it is checked against what is there */
    if (sqlite3_column_bytes(stmt, 5) == WA_CRYPT_HASH_BYTES)
      memcpy(prev, sqlite3_column_blob(stmt, 5), WA_CRYPT_HASH_BYTES);
    last = seq;
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  if (!read_head(store, &head_seq, head_hash, &head_present, error))
    return FALSE;
  /* rows cut off at the end (or a head that does not open) */
  if (report->ok && (last > 0 || head_present) &&
      (head_seq != last || sodium_memcmp(head_hash, prev, WA_CRYPT_HASH_BYTES) != 0)) {
    report->ok = FALSE;
    report->first_broken = last + 1;
  }
  return TRUE;
}

static void
answer_audit(Request *req)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreAuditFunc) req->cb)(req->error == NULL ? &lr->report : NULL, req->error, req->data);
}

static const RequestClass audit_append_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_audit_append,
  .answer = answer_ledger_done,
  .finalize = finalize_ledger,
};
static const RequestClass audit_verify_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_audit_verify,
  .answer = answer_audit,
  .finalize = finalize_ledger,
};

void
wa_store_audit_append(WaStore *store, const char *action, const char *customer_id, const char *detail,
                      WaStoreDoneFunc done, gpointer data)
{
  LedgerRequest *lr;

  g_return_if_fail(store != NULL);
  lr = ledger_request(store, &audit_append_class, STORE_CALLBACK(done), data, customer_id);
  lr->text1 = g_strdup(action);
  lr->text2 = g_strdup(detail);
  wa_store_request_push(store, lr);
}

void
wa_store_audit_verify(WaStore *store, WaStoreAuditFunc done, gpointer data)
{
  g_return_if_fail(store != NULL);
  wa_store_request_push(store, ledger_request(store, &audit_verify_class, STORE_CALLBACK(done), data, NULL));
}

/* ---- consent requests ---- */

static const char *
consent_state_name(WaStoreConsentState state)
{
  return state == WA_STORE_CONSENT_OPT_IN ? "opt_in" : "opt_out";
}

static gboolean
run_consent_record(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  g_autofree char *id = NULL;
  g_autofree char *detail = NULL;
  g_autoptr(GBytes) note = NULL;
  const WaKey *key;

  if (lr->number != WA_STORE_CONSENT_OPT_IN && lr->number != WA_STORE_CONSENT_OPT_OUT)
    return invalid(error, "consent is opt_in or opt_out");
  if (lr->text1 == NULL || *lr->text1 == '\0' || lr->text2 == NULL || *lr->text2 == '\0')
    return invalid(error, "consent needs a scope and a source");
  key = wa_store_customer_key(store, lr->customer_id, error);
  if (key == NULL)
    return FALSE;
  id = wa_store_new_id();
  detail = g_strdup_printf("%s %s", consent_state_name((WaStoreConsentState) lr->number), lr->text1);
  return wa_store_seal(key, "consent", "note", id, lr->note, &note, error) &&
         wa_store_sql_exec(store, error,
                           "INSERT INTO consent (id, customer_id, state, scope, source, note, at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           "ttittbi", id, lr->customer_id, lr->number, lr->text1, lr->text2, note,
                           lr->at != 0 ? lr->at : req->now) &&
         wa_store_audit_row(store, req->now, "consent.recorded", lr->customer_id, detail, error);
}

static gboolean
run_consent_latest(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT " CONSENT_COLUMNS " FROM consent WHERE customer_id = ?1 AND scope = ?2 "
                                    "ORDER BY seq DESC LIMIT 1",
                                    "tt", lr->customer_id, lr->text1);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    lr->consent = consent_from_row(store, stmt);
  wa_store_sql_done(stmt);
  return TRUE;
}

static void
answer_consent(Request *req)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreConsentFunc) req->cb)(req->error == NULL ? lr->consent : NULL, req->error, req->data);
}

static const RequestClass consent_record_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_consent_record,
  .answer = answer_ledger_done,
  .finalize = finalize_ledger,
};
static const RequestClass consent_latest_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_consent_latest,
  .answer = answer_consent,
  .finalize = finalize_ledger,
};

void
wa_store_consent_record(WaStore *store, const char *customer_id, WaStoreConsentState state, const char *scope,
                        const char *source, const char *note, gint64 at, WaStoreDoneFunc done, gpointer data)
{
  LedgerRequest *lr;

  g_return_if_fail(store != NULL && customer_id != NULL);
  lr = ledger_request(store, &consent_record_class, STORE_CALLBACK(done), data, customer_id);
  lr->number = state;
  lr->text1 = g_strdup(scope);
  lr->text2 = g_strdup(source);
  lr->note = g_strdup(note);
  lr->at = at;
  wa_store_request_push(store, lr);
}

void
wa_store_consent_latest(WaStore *store, const char *customer_id, const char *scope, WaStoreConsentFunc done,
                        gpointer data)
{
  LedgerRequest *lr;

  g_return_if_fail(store != NULL && customer_id != NULL && scope != NULL);
  lr = ledger_request(store, &consent_latest_class, STORE_CALLBACK(done), data, customer_id);
  lr->text1 = g_strdup(scope);
  wa_store_request_push(store, lr);
}

/* ---- suppression ---- */

static const char *
reason_name(gint64 reason)
{
  return reason == WA_STORE_SUPPRESS_ERASURE ? "erasure" : "opt_out";
}

static gboolean
suppress(WaStore *store, const char *id, gint64 reason, gint64 now, GError **error)
{
  guint8 hash[WA_CRYPT_HASH_BYTES];

  wa_store_index(store, "suppress", id, hash);
  return wa_store_sql_exec(store, error,
                           "INSERT INTO suppression (hash, reason, at) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT (hash) DO UPDATE SET reason = excluded.reason, at = excluded.at",
                           "hii", hash, reason, now);
}

static gboolean
run_suppress(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (lr->text1 == NULL || *lr->text1 == '\0')
    return invalid(error, "nothing to suppress");
  if (lr->number != WA_STORE_SUPPRESS_OPT_OUT && lr->number != WA_STORE_SUPPRESS_ERASURE)
    return invalid(error, "unknown suppression reason");
  return suppress(store, lr->text1, lr->number, req->now, error) &&
         wa_store_audit_row(store, req->now, "suppression.added", NULL, reason_name(lr->number), error);
}

static gboolean
run_is_suppressed(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  sqlite3_stmt *stmt;
  int rc;

  if (lr->text1 == NULL)
    return TRUE;
  wa_store_index(store, "suppress", lr->text1, hash);
  stmt = wa_store_sql(store, error, "SELECT reason, at FROM suppression WHERE hash = ?1", "h", hash);
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW) {
    lr->suppressed = TRUE;
    lr->reason = sqlite3_column_int64(stmt, 0);
    lr->reason_at = sqlite3_column_int64(stmt, 1);
  }
  wa_store_sql_done(stmt);
  return TRUE;
}

static void
answer_suppressed(Request *req)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreSuppressedFunc) req->cb)(req->error == NULL && lr->suppressed, (WaStoreSuppressReason) lr->reason,
                                      lr->reason_at, req->error, req->data);
}

static const RequestClass suppress_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_suppress,
  .answer = answer_ledger_done,
  .finalize = finalize_ledger,
};
static const RequestClass is_suppressed_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_is_suppressed,
  .answer = answer_suppressed,
  .finalize = finalize_ledger,
};

void
wa_store_suppress(WaStore *store, const char *id, WaStoreSuppressReason reason, WaStoreDoneFunc done, gpointer data)
{
  LedgerRequest *lr;

  g_return_if_fail(store != NULL && id != NULL);
  lr = ledger_request(store, &suppress_class, STORE_CALLBACK(done), data, NULL);
  lr->text1 = g_strdup(id);
  lr->number = reason;
  wa_store_request_push(store, lr);
}

void
wa_store_is_suppressed(WaStore *store, const char *id, WaStoreSuppressedFunc done, gpointer data)
{
  LedgerRequest *lr;

  g_return_if_fail(store != NULL && id != NULL);
  lr = ledger_request(store, &is_suppressed_class, STORE_CALLBACK(done), data, NULL);
  lr->text1 = g_strdup(id);
  wa_store_request_push(store, lr);
}

/* ---- export ---- */

static const char *
direction_name(WaStoreDirection direction)
{
  switch (direction) {
  case WA_STORE_IN:
    return "in";
  case WA_STORE_OUT:
    return "out";
  case WA_STORE_ELSEWHERE:
    return "elsewhere";
  }
  return "unknown";
}

static const char *
outbox_state_name(gint64 state)
{
  static const char *const names[] = {"queued", "sending", "sent", "uncertain", "failed"};

  return state >= 0 && state < (gint64) G_N_ELEMENTS(names) ? names[state] : "unknown";
}

static void
add_string(JsonBuilder *builder, const char *name, const char *value)
{
  json_builder_set_member_name(builder, name);
  if (value != NULL)
    json_builder_add_string_value(builder, value);
  else
    json_builder_add_null_value(builder);
}

static void
add_int(JsonBuilder *builder, const char *name, gint64 value)
{
  json_builder_set_member_name(builder, name);
  json_builder_add_int_value(builder, value);
}

static void
add_bool(JsonBuilder *builder, const char *name, gboolean value)
{
  json_builder_set_member_name(builder, name);
  json_builder_add_boolean_value(builder, value);
}

/* Writes one row of an exported table as a JSON object. */
typedef void (*ExportRowFunc)(WaStore *store, JsonBuilder *builder, sqlite3_stmt *stmt, const char *customer_id);

/* The rows @sql (one "t" parameter: the customer id) selects, as the array
 * @member of the export. */
static gboolean
export_rows(WaStore *store, JsonBuilder *builder, const char *member, const char *sql, const char *customer_id,
            ExportRowFunc write_row, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error, sql, "t", customer_id);
  int rc;

  if (stmt == NULL)
    return FALSE;
  json_builder_set_member_name(builder, member);
  json_builder_begin_array(builder);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    json_builder_begin_object(builder);
    write_row(store, builder, stmt, customer_id);
    json_builder_end_object(builder);
  }
  json_builder_end_array(builder);
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static void
export_message(WaStore *store, JsonBuilder *builder, sqlite3_stmt *stmt, const char *customer_id)
{
  g_autoptr(WaStoreMessage) message = wa_store_read_message(store, stmt);
  const WaKey *key = wa_store_customer_key(store, customer_id, NULL);
  char *raw = key != NULL ? wa_store_open_col(key, "messages", "raw", message->id, stmt, WA_STORE_MESSAGE_N_COLUMNS,
                                              &message->tampered)
                          : NULL;

  add_string(builder, "id", message->id);
  add_string(builder, "direction", direction_name(message->direction));
  add_string(builder, "type", message->type);
  add_string(builder, "body", message->body);
  add_string(builder, "caption", message->caption);
  add_string(builder, "wamid", message->wamid);
  add_int(builder, "timestamp", message->timestamp);
  add_string(builder, "status", wa_store_status_to_string(message->status));
  add_int(builder, "status_time", message->status_time);
  add_string(builder, "error", message->error);
  if (message->outbox_id != 0)
    add_int(builder, "outbox_id", (gint64) message->outbox_id);
  add_string(builder, "raw_event", raw);
  add_bool(builder, "expired", message->expired);
  add_bool(builder, "tampered", message->tampered);
  wa_store_wipe_free(raw);
}

static void
export_attachment(WaStore *store, JsonBuilder *builder, sqlite3_stmt *stmt, const char *customer_id)
{
  static const char *const states[] = {"pending", "done", "failed", "expired"};
  g_autoptr(WaStoreMedia) media = wa_store_read_media(store, stmt);

  add_int(builder, "number", media->number);
  add_string(builder, "message_id", media->message_id);
  add_string(builder, "type", media->type);
  add_string(builder, "mime_type", media->mime_type);
  add_string(builder, "filename", media->filename);
  add_bool(builder, "voice", media->voice);
  add_int(builder, "size", media->size);
  add_string(builder, "sha256", media->sha256);
  add_string(builder, "state", media->state < G_N_ELEMENTS(states) ? states[media->state] : "unknown");
  add_string(builder, "error", media->error);
  add_bool(builder, "tampered", media->tampered);
}

static void
export_outbox_entry(WaStore *store, JsonBuilder *builder, sqlite3_stmt *stmt, const char *customer_id)
{
  g_autoptr(WaStoreOutbox) entry = wa_store_read_outbox(store, stmt);

  add_int(builder, "id", (gint64) entry->id);
  add_string(builder, "message_id", entry->message_id);
  add_string(builder, "state", outbox_state_name(entry->state));
  add_string(builder, "payload", entry->payload);
  add_int(builder, "attempts", entry->attempts);
  add_int(builder, "created", entry->created);
  add_int(builder, "updated", entry->updated);
  add_bool(builder, "tampered", entry->tampered);
}

static void
export_consent_row(WaStore *store, JsonBuilder *builder, sqlite3_stmt *stmt, const char *customer_id)
{
  g_autoptr(WaStoreConsent) consent = consent_from_row(store, stmt);

  add_string(builder, "state", consent_state_name(consent->state));
  add_string(builder, "scope", consent->scope);
  add_string(builder, "source", consent->source);
  add_string(builder, "note", consent->note);
  add_int(builder, "at", consent->at);
  add_bool(builder, "tampered", consent->tampered);
}

static void
export_audit_row(WaStore *store, JsonBuilder *builder, sqlite3_stmt *stmt, const char *customer_id)
{
  add_int(builder, "seq", sqlite3_column_int64(stmt, 0));
  add_int(builder, "at", sqlite3_column_int64(stmt, 1));
  add_string(builder, "action", (const char *) sqlite3_column_text(stmt, 2));
  add_string(builder, "detail", (const char *) sqlite3_column_text(stmt, 3));
}

static gboolean
export_settings(WaStore *store, JsonBuilder *builder, const char *customer_id, GError **error)
{
  g_autoptr(GHashTable) settings = wa_store_read_settings(store, customer_id, error);
  g_autoptr(GList) names = NULL;

  if (settings == NULL)
    return FALSE;
  names = g_list_sort(g_hash_table_get_keys(settings), (GCompareFunc) strcmp);
  json_builder_set_member_name(builder, "settings");
  json_builder_begin_object(builder);
  for (GList *l = names; l != NULL; l = l->next)
    add_string(builder, l->data, g_hash_table_lookup(settings, l->data));
  json_builder_end_object(builder);
  return TRUE;
}

static gboolean
run_export(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  g_autoptr(WaStoreCustomer) customer = wa_store_read_customer(store, lr->customer_id, error);
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (customer == NULL)
    return FALSE;
  builder = json_builder_new();
  json_builder_begin_object(builder);
  add_string(builder, "format", "wabiz-customer-export");
  add_int(builder, "version", 1);
  add_int(builder, "exported_at", req->now);
  json_builder_set_member_name(builder, "customer");
  json_builder_begin_object(builder);
  add_string(builder, "id", customer->id);
  add_string(builder, "wa_id", customer->wa_id);
  add_string(builder, "bsuid", customer->bsuid);
  add_string(builder, "profile_name", customer->name);
  add_int(builder, "newest_inbound", customer->newest_inbound);
  add_int(builder, "created", customer->created);
  add_bool(builder, "tampered", customer->tampered);
  json_builder_end_object(builder);
  if (!export_rows(store, builder, "messages",
                   "SELECT " WA_STORE_MESSAGE_COLUMNS ", m.raw FROM messages m "
                   "WHERE m.customer_id = ?1 ORDER BY m.timestamp, m.rowid",
                   customer->id, export_message, error) ||
      !export_rows(store, builder, "attachments",
                   "SELECT " WA_STORE_MEDIA_COLUMNS " FROM media d WHERE d.customer_id = ?1 ORDER BY d.number",
                   customer->id, export_attachment, error) ||
      !export_rows(store, builder, "outbox",
                   "SELECT " WA_STORE_OUTBOX_COLUMNS " FROM outbox o JOIN messages m "
                   "ON m.id = o.message_id WHERE o.customer_id = ?1 ORDER BY o.rowid",
                   customer->id, export_outbox_entry, error) ||
      !wa_store_campaigns_export(store, builder, customer->id, error) ||
      !export_rows(store, builder, "consent",
                   "SELECT " CONSENT_COLUMNS " FROM consent WHERE customer_id = ?1 ORDER BY seq", customer->id,
                   export_consent_row, error) ||
      !export_settings(store, builder, customer->id, error))
    return FALSE;
  /* this export is itself in the audit log, and so in the export */
  if (!wa_store_audit_row(store, req->now, "customer.exported", customer->id, NULL, error) ||
      !export_rows(store, builder, "audit",
                   "SELECT seq, at, action, detail FROM audit WHERE customer_id = ?1 ORDER BY seq", customer->id,
                   export_audit_row, error))
    return FALSE;
  json_builder_end_object(builder);
  root = json_builder_get_root(builder);
  generator = json_generator_new();
  json_generator_set_pretty(generator, TRUE);
  json_generator_set_root(generator, root);
  lr->json = json_generator_to_data(generator, NULL);
  return TRUE;
}

static void
answer_export(Request *req)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreStringFunc) req->cb)(req->error == NULL ? lr->json : NULL, req->error, req->data);
}

static const RequestClass export_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_export,
  .answer = answer_export,
  .finalize = finalize_ledger,
};

void
wa_store_customer_export(WaStore *store, const char *customer_id, WaStoreStringFunc done, gpointer data)
{
  g_return_if_fail(store != NULL && customer_id != NULL);
  wa_store_request_push(store, ledger_request(store, &export_class, STORE_CALLBACK(done), data, customer_id));
}

/* ---- erasure ---- */

static gboolean
run_erase(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  g_autoptr(WaStoreCustomer) customer = wa_store_read_customer(store, lr->customer_id, error);
  g_autofree char *detail = NULL;
  gint64 messages;

  if (customer == NULL)
    return FALSE;
  /* keep only who must not be contacted again, by keyed hash */
  if ((customer->wa_id != NULL && !suppress(store, customer->wa_id, WA_STORE_SUPPRESS_ERASURE, req->now, error)) ||
      (customer->bsuid != NULL && !suppress(store, customer->bsuid, WA_STORE_SUPPRESS_ERASURE, req->now, error)))
    return FALSE;
  if (!wa_store_sql_int(store, &messages, NULL, error, "SELECT count(*) FROM messages WHERE customer_id = ?1", "t",
                        customer->id))
    return FALSE;
  if (!wa_store_sql_exec(store, error, "INSERT INTO erase_permit (customer_id) VALUES (?1)", "t", customer->id) ||
      !wa_store_sql_exec(store, error, "DELETE FROM consent WHERE customer_id = ?1", "t", customer->id) ||
      !wa_store_sql_exec(store, error, "DELETE FROM erase_permit WHERE customer_id = ?1", "t", customer->id) ||
      !wa_store_campaigns_erase_customer(store, customer->id, error) ||
      !wa_store_sql_exec(store, error, "DELETE FROM outbox WHERE customer_id = ?1", "t", customer->id) ||
      !wa_store_media_erase_customer(store, customer->id, error) ||
      !wa_store_sql_exec(store, error, "DELETE FROM messages WHERE customer_id = ?1", "t", customer->id) ||
      !wa_store_sql_exec(store, error, "DELETE FROM settings WHERE customer_id = ?1", "t", customer->id) ||
      !wa_store_sql_exec(store, error, "DELETE FROM customers WHERE id = ?1", "t", customer->id))
    return FALSE;
  detail = g_strdup_printf("messages=%" G_GINT64_FORMAT, messages);
  if (!wa_store_audit_row(store, req->now, "customer.erased", customer->id, detail, error))
    return FALSE;
  wa_store_customer_key_forget(store, customer->id);
  /* move the zeroed pages into the database file and empty the WAL */
  store->checkpoint_soon = TRUE;
  return TRUE;
}

static const RequestClass erase_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_erase,
  .answer = answer_ledger_done,
  .finalize = finalize_ledger,
};

void
wa_store_customer_erase(WaStore *store, const char *customer_id, WaStoreDoneFunc done, gpointer data)
{
  g_return_if_fail(store != NULL && customer_id != NULL);
  wa_store_request_push(store, ledger_request(store, &erase_class, STORE_CALLBACK(done), data, customer_id));
}

/* ---- retention ---- */

static gboolean
run_retention(WaStore *store, Request *req, GError **error)
{
  LedgerRequest *lr = (LedgerRequest *) req;
  g_autofree char *detail = NULL;

  if (lr->number < 0)
    return invalid(error, "a retention period cannot be negative");
  if (!wa_store_sql_exec(store, error,
                         "UPDATE messages SET body = NULL, caption = NULL, raw = NULL, expired = 1 "
                         "WHERE timestamp < ?1 AND expired = 0 "
                         "AND id NOT IN (SELECT message_id FROM outbox WHERE state IN (?2, ?3, ?4))",
                         "iiii", req->now - lr->number, (gint64) WA_STORE_OUTBOX_QUEUED,
                         (gint64) WA_STORE_OUTBOX_SENDING, (gint64) WA_STORE_OUTBOX_UNCERTAIN))
    return FALSE;
  lr->count = (guint) sqlite3_changes(store->db);
  if (!wa_store_media_expire(store, req->now - lr->number, error) ||
      !wa_store_campaigns_expire(store, req->now, req->now - lr->number, error))
    return FALSE;
  if (lr->count == 0)
    return TRUE;
  detail = g_strdup_printf("messages=%u", lr->count);
  if (!wa_store_audit_row(store, req->now, "retention.applied", NULL, detail, error))
    return FALSE;
  store->checkpoint_soon = TRUE;
  return TRUE;
}

static void
answer_count(Request *req)
{
  LedgerRequest *lr = (LedgerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreCountFunc) req->cb)(req->error == NULL ? lr->count : 0, req->error, req->data);
}

static const RequestClass retention_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(LedgerRequest),
  .run = run_retention,
  .answer = answer_count,
  .finalize = finalize_ledger,
};

void
wa_store_apply_retention(WaStore *store, gint64 max_age_s, WaStoreCountFunc done, gpointer data)
{
  LedgerRequest *lr;

  g_return_if_fail(store != NULL);
  lr = ledger_request(store, &retention_class, STORE_CALLBACK(done), data, NULL);
  lr->number = max_age_s;
  wa_store_request_push(store, lr);
}
