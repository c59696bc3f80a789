/* test-store-campaigns.c: the store's campaign foundations (schema 5,
 * plugin/core/wa-store-campaigns.c) as a campaign runner and the disk see
 * them: a campaign's states, recipients (duplicates, skips, sealed params),
 * beginning sends in a batch (one outbox entry per recipient, never a second
 * one), the recipient following its outbox entry (sent, failed, and
 * uncertain after a restart, never pending again), the "once a day per
 * template and customer" rule across campaigns, portfolio reach records,
 * erasure, export, retention, and the migration from a schema 4 store.
 *
 * Each test runs in a fresh temporary directory on the default main context
 * with a fake clock. Raw SQL on the file happens only while the store is
 * closed. Must not: sleep to wait for the worker. */
#include "test-util.h"
#include "wa-store.h"

#include <json-glib/json-glib.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* wa-store.c's test hooks (deliberately not in wa-store.h). */
void wa_store_test_hold(WaStore *store, gboolean hold);
guint wa_store_test_commits(WaStore *store);

#define NOW 1751250000
#define DAY (24 * 3600)
#define DEADLINE_S 20
#define HEADER "{\"test-header\":1}"

#define WA_ID_A "4915112345678"
#define WA_ID_B "14155550123"
#define WA_ID_C "447700900123"
#define PARAMS_A "{\"1\":\"Ada\",\"2\":\"parcel QX-7781\"}"

typedef struct {
  char *tmp;
  char *path;
  WaClock *clock;
  WaKey *key;
  WaStore *store;
} Fixture;

typedef struct {
  gboolean done;
  GError *error;
  WaStoreCampaign *campaign;
  GPtrArray *list;
  WaStoreCustomer *customer;
  WaStoreOutbox *outbox;
  char *text;
  guint count;
  GArray *results; /* WaStoreSendResult, entry and recipient_id not kept */
  GPtrArray *entries;
  GPtrArray *reach_keys;
  GArray *reach_at;
} Wait;

static void
wait_clear(Wait *w)
{
  g_clear_error(&w->error);
  g_clear_pointer(&w->campaign, wa_store_campaign_free);
  g_clear_pointer(&w->list, g_ptr_array_unref);
  g_clear_pointer(&w->customer, wa_store_customer_free);
  g_clear_pointer(&w->outbox, wa_store_outbox_free);
  g_clear_pointer(&w->text, g_free);
  g_clear_pointer(&w->results, g_array_unref);
  g_clear_pointer(&w->entries, g_ptr_array_unref);
  g_clear_pointer(&w->reach_keys, g_ptr_array_unref);
  g_clear_pointer(&w->reach_at, g_array_unref);
  memset(w, 0, sizeof *w);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Wait, wait_clear)

static void
wait_for(Wait *w)
{
  test_wait_until(w->done, DEADLINE_S);
}

static void
finish(Wait *w, const GError *error)
{
  g_assert_false(w->done);
  w->done = TRUE;
  w->error = error != NULL ? g_error_copy(error) : NULL;
}

static void
on_open(const char *header, const GError *error, gpointer data)
{
  Wait *w = data;

  w->text = g_strdup(header);
  finish(w, error);
}

static void
on_done(const GError *error, gpointer data)
{
  finish(data, error);
}

static void
on_campaign(const WaStoreCampaign *campaign, const GError *error, gpointer data)
{
  Wait *w = data;

  w->campaign = wa_store_campaign_copy(campaign);
  finish(w, error);
}

static void
on_list(GPtrArray *list, const GError *error, gpointer data)
{
  Wait *w = data;

  g_assert_true((list == NULL) == (error != NULL));
  w->list = list != NULL ? g_ptr_array_ref(list) : NULL;
  finish(w, error);
}

static void
on_count(guint count, const GError *error, gpointer data)
{
  Wait *w = data;

  w->count = count;
  finish(w, error);
}

static void
on_update(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  Wait *w = data;

  w->customer = update != NULL ? wa_store_customer_copy(update->customer) : NULL;
  finish(w, error);
}

static void
on_outbox(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  Wait *w = data;

  w->outbox = wa_store_outbox_copy(entry);
  finish(w, error);
}

static void
on_string(const char *value, const GError *error, gpointer data)
{
  Wait *w = data;

  w->text = g_strdup(value);
  finish(w, error);
}

static void
on_sends(const WaStoreSendResult *results, guint n, const GError *error, gpointer data)
{
  Wait *w = data;

  g_assert_true((results == NULL) == (error != NULL));
  w->results = g_array_new(FALSE, TRUE, sizeof(WaStoreSendResult));
  w->entries = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_outbox_free);
  for (guint i = 0; i < n; i++) {
    WaStoreSendResult r = results[i];

    g_assert_true((r.entry != NULL) == (r.outcome == WA_STORE_SEND_BEGUN));
    g_ptr_array_add(w->entries, wa_store_outbox_copy(r.entry));
    r.entry = NULL;
    r.recipient_id = NULL;
    g_array_append_val(w->results, r);
  }
  finish(w, error);
}

static void
on_reach(const WaStoreReach *reach, guint n, const GError *error, gpointer data)
{
  Wait *w = data;

  w->reach_keys = g_ptr_array_new_with_free_func(g_free);
  w->reach_at = g_array_new(FALSE, TRUE, sizeof(gint64));
  for (guint i = 0; i < n; i++) {
    g_ptr_array_add(w->reach_keys, g_strdup(reach[i].key));
    g_array_append_val(w->reach_at, reach[i].at);
  }
  finish(w, error);
}

/* ---- fixture ---------------------------------------------------------------------- */

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->tmp = g_dir_make_tmp("test-campaigns-XXXXXX", &error);
  g_assert_no_error(error);
  f->path = g_build_filename(f->tmp, "store", "account.db", NULL);
  f->clock = wa_clock_fake_new((gint64) NOW * G_USEC_PER_SEC);
  f->key = wa_key_new_random(&error);
  g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->store, wa_store_close);
  wa_key_free(f->key);
  wa_clock_free(f->clock);
  test_remove_tree(f->tmp);
  g_free(f->tmp);
  g_free(f->path);
}

static void
store_ready(Fixture *f)
{
  WaStoreOptions options = {.clock = f->clock};
  g_auto(Wait) w = {0}, u = {0};

  g_assert_null(f->store);
  f->store = wa_store_open(wa_loop_glib(), f->path, &options, on_open, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  wa_store_unlock(f->store, f->key, w.text == NULL ? HEADER : NULL, on_done, &u);
  wait_for(&u);
  g_assert_no_error(u.error);
}

static void
reopen(Fixture *f)
{
  g_clear_pointer(&f->store, wa_store_close);
  store_ready(f);
}

static void
raw_exec(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  char *message = NULL;

  g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
  if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK)
    g_error("raw SQL failed: %s", message);
  sqlite3_close(db);
}

static gint64
raw_int(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 out = -1;

  g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step(stmt) == SQLITE_ROW)
    out = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

static char *
customer(Fixture *f, const char *wa_id)
{
  g_auto(Wait) w = {0};

  wa_store_customer_ensure(f->store, wa_id, NULL, NULL, WA_STORE_ENSURE_DEFAULT, on_update, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_strdup(w.customer->id);
}

static WaStoreCampaign *
create(Fixture *f, const char *name, const char *template_name)
{
  g_auto(Wait) w = {0};

  wa_store_campaign_create(f->store, name, template_name, "en", "UTILITY", 0, on_campaign, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_cmpint(w.campaign->state, ==, WA_STORE_CAMPAIGN_DRAFT);
  return g_steal_pointer(&w.campaign);
}

/* Moves the campaign; returns the error (NULL when it moved). */
static GError *
set_state(Fixture *f, const char *campaign_id, WaStoreCampaignState state)
{
  g_auto(Wait) w = {0};

  wa_store_campaign_set_state(f->store, campaign_id, state, -1, on_campaign, &w);
  wait_for(&w);
  if (w.error == NULL)
    g_assert_cmpint(w.campaign->state, ==, state);
  return g_steal_pointer(&w.error);
}

static guint
add(Fixture *f, const char *campaign_id, const WaStoreRecipientNew *rows, guint n)
{
  g_auto(Wait) w = {0};

  wa_store_campaign_add_recipients(f->store, campaign_id, rows, n, on_count, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return w.count;
}

static GPtrArray *
recipients(Fixture *f, const char *campaign_id, guint mask)
{
  g_auto(Wait) w = {0};

  wa_store_campaign_recipients(f->store, campaign_id, mask, 0, 0, on_list, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.list);
}

static WaStoreCampaign *
get(Fixture *f, const char *campaign_id)
{
  g_auto(Wait) w = {0};

  wa_store_campaign_get(f->store, campaign_id, on_campaign, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.campaign);
}

/* Begins one send per recipient id in @ids (NULL-terminated) into @w. */
static void
begin(Fixture *f, const char *campaign_id, const char *const *ids, gboolean confirmed, gboolean count_reach, Wait *w)
{
  GArray *sends = g_array_new(FALSE, TRUE, sizeof(WaStoreCampaignSend));

  for (guint i = 0; ids[i] != NULL; i++) {
    WaStoreCampaignSend s = {
      .recipient_id = ids[i],
      .type = "template",
      .body = "Your parcel is out for delivery",
      .payload = "{\"template\":{\"name\":\"parcel\"}}",
      .confirmed = confirmed,
      .count_reach = count_reach,
    };

    g_array_append_val(sends, s);
  }
  wa_store_campaign_begin_sends(f->store, campaign_id, (WaStoreCampaignSend *) (void *) sends->data, sends->len,
                                on_sends, w);
  wait_for(w);
  g_array_unref(sends);
}

static WaStoreSendOutcome
outcome(Wait *w, guint i)
{
  g_assert_cmpuint(i, <, w->results->len);
  return g_array_index(w->results, WaStoreSendResult, i).outcome;
}

static void
outbox_move(Fixture *f, guint64 id, WaStoreOutboxState state, const char *wamid)
{
  WaStoreOutboxChange change = {.state = state, .wamid = wamid, .error_text = "test"};
  g_auto(Wait) w = {0};

  wa_store_outbox_update(f->store, id, &change, on_outbox, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
}

#define RECIPIENT(list, i) ((WaStoreRecipient *) (list)->pdata[i])

/* A running campaign @template_name with the given customers as pending
 * recipients; *@list gets them (by seq). */
static WaStoreCampaign *
running(Fixture *f, const char *template_name, char **customer_ids, guint n, GPtrArray **list)
{
  g_autofree WaStoreRecipientNew *rows = g_new0(WaStoreRecipientNew, n);
  WaStoreCampaign *campaign = create(f, template_name, template_name);

  for (guint i = 0; i < n; i++) {
    rows[i].customer_id = customer_ids[i];
    rows[i].params = PARAMS_A;
  }
  g_assert_cmpuint(add(f, campaign->id, rows, n), ==, n);
  g_assert_no_error(set_state(f, campaign->id, WA_STORE_CAMPAIGN_RUNNING));
  *list = recipients(f, campaign->id, ~0u);
  return campaign;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void
test_campaign_states(Fixture *f, gconstpointer data)
{
  g_autofree char *a = NULL, *b = NULL;
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(WaStoreCampaign) after = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Wait) w = {0};

  store_ready(f);
  a = customer(f, WA_ID_A);
  b = customer(f, WA_ID_B);
  campaign = create(f, "December parcels", "parcel_out");
  g_assert_cmpstr(campaign->template_name, ==, "parcel_out");
  g_assert_cmpint(campaign->created, ==, NOW);
  {
    WaStoreRecipientNew rows[] = {
      {.customer_id = a, .params = PARAMS_A},
      {.customer_id = b, .skip_reason = "no-consent"},
      {.customer_id = a, .params = "{\"1\":\"again\"}"}, /* the same customer twice: added once */
    };

    g_assert_cmpuint(add(f, campaign->id, rows, G_N_ELEMENTS(rows)), ==, 2);
  }
  after = get(f, campaign->id);
  g_assert_cmpuint(after->total, ==, 2);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_PENDING], ==, 1);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_SKIPPED], ==, 1);
  list = recipients(f, campaign->id, WA_STORE_RECIPIENT_MASK(WA_STORE_RECIPIENT_PENDING));
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(RECIPIENT(list, 0)->params, ==, PARAMS_A);
  g_assert_cmpuint(RECIPIENT(list, 0)->seq, ==, 1);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = recipients(f, campaign->id, WA_STORE_RECIPIENT_MASK(WA_STORE_RECIPIENT_SKIPPED));
  g_assert_cmpstr(RECIPIENT(list, 0)->reason, ==, "no-consent");
  g_assert_cmpuint(RECIPIENT(list, 0)->seq, ==, 2);

  /* scheduled survives a restart, with its start time */
  wa_store_campaign_set_state(f->store, campaign->id, WA_STORE_CAMPAIGN_SCHEDULED, NOW + 3600, on_campaign, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_cmpint(w.campaign->start_at, ==, NOW + 3600);
  reopen(f);
  wait_clear(&w);
  wa_store_campaign_list(f->store, WA_STORE_CAMPAIGN_MASK(WA_STORE_CAMPAIGN_SCHEDULED), on_list, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_cmpuint(w.list->len, ==, 1);
  g_assert_cmpint(((WaStoreCampaign *) w.list->pdata[0])->start_at, ==, NOW + 3600);
  g_assert_cmpuint(((WaStoreCampaign *) w.list->pdata[0])->total, ==, 2);

  g_assert_no_error(set_state(f, campaign->id, WA_STORE_CAMPAIGN_RUNNING));
  /* no recipients once it runs */
  wait_clear(&w);
  {
    WaStoreRecipientNew row = {.customer_id = b};

    wa_store_campaign_add_recipients(f->store, campaign->id, &row, 1, on_count, &w);
  }
  wait_for(&w);
  g_assert_error(w.error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_assert_no_error(set_state(f, campaign->id, WA_STORE_CAMPAIGN_PAUSED));
  error = set_state(f, campaign->id, WA_STORE_CAMPAIGN_DONE);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  /* cancelling skips whoever is still pending; nothing leaves CANCELLED */
  g_assert_no_error(set_state(f, campaign->id, WA_STORE_CAMPAIGN_CANCELLED));
  g_clear_pointer(&after, wa_store_campaign_free);
  after = get(f, campaign->id);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_PENDING], ==, 0);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_SKIPPED], ==, 2);
  error = set_state(f, campaign->id, WA_STORE_CAMPAIGN_RUNNING);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  error = set_state(f, "00000000000000000000000000000000", WA_STORE_CAMPAIGN_RUNNING);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND);
}

static void
test_begin_sends(Fixture *f, gconstpointer data)
{
  char *ids[3] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(WaStoreCampaign) after = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) report = NULL;
  g_auto(Wait) w = {0};
  const char *both[3];
  WaStoreOutbox *entry;

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  ids[1] = customer(f, WA_ID_B);
  campaign = create(f, "paused first", "parcel_out");
  {
    WaStoreRecipientNew rows[] = {{.customer_id = ids[0], .params = PARAMS_A}, {.customer_id = ids[1]}};

    add(f, campaign->id, rows, 2);
  }
  list = recipients(f, campaign->id, ~0u);
  both[0] = RECIPIENT(list, 0)->id;
  both[1] = RECIPIENT(list, 1)->id;
  both[2] = NULL;

  /* a draft campaign begins nothing */
  begin(f, campaign->id, both, FALSE, FALSE, &w);
  g_assert_no_error(w.error);
  g_assert_cmpint(outcome(&w, 0), ==, WA_STORE_SEND_NOT_RUNNING);
  g_assert_cmpint(outcome(&w, 1), ==, WA_STORE_SEND_NOT_RUNNING);
  wait_clear(&w);

  g_assert_no_error(set_state(f, campaign->id, WA_STORE_CAMPAIGN_RUNNING));
  begin(f, campaign->id, both, FALSE, FALSE, &w);
  g_assert_no_error(w.error);
  g_assert_cmpint(outcome(&w, 0), ==, WA_STORE_SEND_BEGUN);
  g_assert_cmpint(outcome(&w, 1), ==, WA_STORE_SEND_BEGUN);
  entry = w.entries->pdata[0];
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_QUEUED);
  g_assert_cmpstr(entry->customer_id, ==, ids[0]);
  g_assert_cmpstr(entry->body, ==, "Your parcel is out for delivery");
  g_assert_cmpstr(entry->payload, ==, "{\"template\":{\"name\":\"parcel\"}}");
  /* marked as a campaign's, so that the chat outbox's restore leaves it to the runner */
  g_assert_true(entry->campaign);
  after = get(f, campaign->id);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_SENDING], ==, 2);

  /* beginning them again gives no second outbox entry */
  {
    g_auto(Wait) again = {0};
    g_auto(Wait) outbox = {0};

    begin(f, campaign->id, both, TRUE, FALSE, &again);
    g_assert_no_error(again.error);
    g_assert_cmpint(outcome(&again, 0), ==, WA_STORE_SEND_NOT_PENDING);
    g_assert_cmpint(outcome(&again, 1), ==, WA_STORE_SEND_NOT_PENDING);
    wa_store_outbox_list(f->store, ~0u, on_list, &outbox);
    wait_for(&outbox);
    g_assert_cmpuint(outbox.list->len, ==, 2);
    g_assert_true(((WaStoreOutbox *) outbox.list->pdata[0])->campaign);
  }
  /* the agent's own messages are not */
  {
    g_auto(Wait) chat = {0};

    wa_store_outbox_enqueue(f->store, ids[0], "text", "hello", NULL, FALSE, on_outbox, &chat);
    wait_for(&chat);
    g_assert_no_error(chat.error);
    g_assert_false(chat.outbox->campaign);
  }

  /* the outbox drives the recipients: one sent, one failed */
  outbox_move(f, entry->id, WA_STORE_OUTBOX_SENDING, NULL);
  outbox_move(f, entry->id, WA_STORE_OUTBOX_SENT, "wamid.CAMP1");
  outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[1])->id, WA_STORE_OUTBOX_SENDING, NULL);
  outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[1])->id, WA_STORE_OUTBOX_FAILED, NULL);
  {
    g_auto(Wait) note = {0}, note2 = {0};

    g_auto(Wait) note3 = {0}, note4 = {0};

    wa_store_campaign_recipient_note(f->store, both[1], 131026, NULL, on_done, &note);
    /* by the outbox id a status echoes; the error code stays */
    wa_store_campaign_outbox_note(f->store, entry->id, 0, "utility", on_done, &note2);
    /* an entry that is not a campaign's: nothing, no error */
    wa_store_campaign_outbox_note(f->store, 12345, 0, "marketing", on_done, &note3);
    wa_store_campaign_recipient_note(f->store, "ffffffffffffffffffffffffffffffff", 1, NULL, on_done, &note4);
    wait_for(&note);
    wait_for(&note2);
    wait_for(&note3);
    wait_for(&note4);
    g_assert_no_error(note.error);
    g_assert_no_error(note2.error);
    g_assert_no_error(note3.error);
    g_assert_error(note4.error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND);
  }
  report = recipients(f, campaign->id, ~0u);
  g_assert_cmpint(RECIPIENT(report, 0)->state, ==, WA_STORE_RECIPIENT_SENT);
  g_assert_cmpstr(RECIPIENT(report, 0)->wamid, ==, "wamid.CAMP1");
  g_assert_cmpstr(RECIPIENT(report, 0)->pricing, ==, "utility");
  g_assert_cmpuint(RECIPIENT(report, 0)->outbox_id, ==, entry->id);
  g_assert_nonnull(RECIPIENT(report, 0)->message_id);
  g_assert_cmpint(RECIPIENT(report, 1)->state, ==, WA_STORE_RECIPIENT_FAILED);
  g_assert_cmpint(RECIPIENT(report, 1)->error_code, ==, 131026);
  g_assert_cmpint(RECIPIENT(report, 1)->status, ==, WA_STORE_STATUS_FAILED);

  /* skipping: only from pending */
  wait_clear(&w);
  wa_store_campaign_recipient_skip(f->store, both[0], "opted-out", on_done, &w);
  wait_for(&w);
  g_assert_error(w.error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_free(ids[0]);
  g_free(ids[1]);
}

/* A send begun with start: its entry is SENDING (its first attempt) in the
 * same commit, so the outbox goes on to the answer without recording it
 * again; after a restart it is uncertain like any request under way. */
static void
test_begin_started(Fixture *f, gconstpointer data)
{
  char *ids[2] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) report = NULL;
  g_auto(Wait) w = {0}, again = {0};
  WaStoreOutboxChange change = {.state = WA_STORE_OUTBOX_SENDING};
  WaStoreCampaignSend sends[2] = {{0}};
  const WaStoreOutbox *entry;

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  ids[1] = customer(f, WA_ID_B);
  campaign = running(f, "parcel_out", ids, 2, &list);
  for (guint i = 0; i < 2; i++) {
    sends[i].recipient_id = RECIPIENT(list, i)->id;
    sends[i].type = "template";
    sends[i].body = "Your parcel is out for delivery";
    sends[i].payload = "{\"template\":{\"name\":\"parcel\"}}";
    sends[i].start = TRUE;
  }
  wa_store_campaign_begin_sends(f->store, campaign->id, sends, 2, on_sends, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_cmpint(outcome(&w, 0), ==, WA_STORE_SEND_BEGUN);
  entry = w.entries->pdata[0];
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_SENDING);
  g_assert_cmpuint(entry->attempts, ==, 1);
  g_assert_true(entry->campaign);
  /* not SENDING twice */
  wa_store_outbox_update(f->store, entry->id, &change, on_outbox, &again);
  wait_for(&again);
  g_assert_error(again.error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  outbox_move(f, entry->id, WA_STORE_OUTBOX_SENT, "wamid.STARTED");
  reopen(f);
  report = recipients(f, campaign->id, ~0u);
  g_assert_cmpint(RECIPIENT(report, 0)->state, ==, WA_STORE_RECIPIENT_SENT);
  g_assert_cmpstr(RECIPIENT(report, 0)->wamid, ==, "wamid.STARTED");
  /* under way at the restart: uncertain, never begun again */
  g_assert_cmpint(RECIPIENT(report, 1)->state, ==, WA_STORE_RECIPIENT_UNCERTAIN);
  g_free(ids[0]);
  g_free(ids[1]);
}

/* A restart (as after kill -9: the store state is what was committed)
 * leaves a begun recipient SENDING only while its entry is still queued,
 * UNCERTAIN once its entry was in flight; neither is begun again. */
static void
test_uncertain_after_restart(Fixture *f, gconstpointer data)
{
  char *ids[3] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(WaStoreCampaign) after = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) report = NULL;
  g_auto(Wait) w = {0}, again = {0};
  const char *rid[4];

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  ids[1] = customer(f, WA_ID_B);
  ids[2] = customer(f, WA_ID_C);
  campaign = running(f, "parcel_out", ids, 3, &list);
  rid[0] = RECIPIENT(list, 0)->id;
  rid[1] = RECIPIENT(list, 1)->id;
  rid[2] = NULL;
  begin(f, campaign->id, rid, FALSE, FALSE, &w);
  g_assert_no_error(w.error);
  /* the first went to the API when the process died; the second was queued */
  outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[0])->id, WA_STORE_OUTBOX_SENDING, NULL);
  reopen(f);

  report = recipients(f, campaign->id, ~0u);
  g_assert_cmpint(RECIPIENT(report, 0)->state, ==, WA_STORE_RECIPIENT_UNCERTAIN);
  g_assert_cmpint(RECIPIENT(report, 1)->state, ==, WA_STORE_RECIPIENT_SENDING);
  g_assert_cmpint(RECIPIENT(report, 2)->state, ==, WA_STORE_RECIPIENT_PENDING);
  rid[0] = RECIPIENT(list, 0)->id;
  rid[1] = RECIPIENT(list, 1)->id;
  rid[2] = RECIPIENT(list, 2)->id;
  rid[3] = NULL;
  begin(f, campaign->id, rid, TRUE, FALSE, &again);
  g_assert_no_error(again.error);
  g_assert_cmpint(outcome(&again, 0), ==, WA_STORE_SEND_NOT_PENDING);
  g_assert_cmpint(outcome(&again, 1), ==, WA_STORE_SEND_NOT_PENDING);
  g_assert_cmpint(outcome(&again, 2), ==, WA_STORE_SEND_BEGUN);
  after = get(f, campaign->id);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_UNCERTAIN], ==, 1);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_SENDING], ==, 2);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_PENDING], ==, 0);
  g_clear_pointer(&f->store, wa_store_close);
  /* one outbox entry per recipient on disk */
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM outbox"), ==, 3);
  g_assert_cmpint(raw_int(f->path, "SELECT count(DISTINCT outbox_id) FROM campaign_recipients"), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_free(ids[i]);
}

static void
test_once_a_day(Fixture *f, gconstpointer data)
{
  char *ids[1] = {NULL};
  g_autoptr(WaStoreCampaign) first = NULL, second = NULL, other = NULL, third = NULL;
  g_autoptr(GPtrArray) l1 = NULL, l2 = NULL, l3 = NULL, l4 = NULL;
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0};
  const char *rid[2] = {NULL, NULL};

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  first = running(f, "parcel_out", ids, 1, &l1);
  second = running(f, "parcel_out", ids, 1, &l2);
  other = running(f, "appointment", ids, 1, &l3);
  rid[0] = RECIPIENT(l1, 0)->id;
  begin(f, first->id, rid, FALSE, FALSE, &w1);
  g_assert_cmpint(outcome(&w1, 0), ==, WA_STORE_SEND_BEGUN);

  /* an overlapping campaign with the same template: not without the agent */
  wa_clock_fake_advance(f->clock, (gint64) 3600 * G_USEC_PER_SEC);
  rid[0] = RECIPIENT(l2, 0)->id;
  begin(f, second->id, rid, FALSE, FALSE, &w2);
  g_assert_no_error(w2.error);
  g_assert_cmpint(outcome(&w2, 0), ==, WA_STORE_SEND_REPEAT);
  g_assert_cmpint(g_array_index(w2.results, WaStoreSendResult, 0).last_sent, ==, NOW);
  /* still pending: the agent may confirm */
  {
    g_autoptr(GPtrArray) still = recipients(f, second->id, WA_STORE_RECIPIENT_MASK(WA_STORE_RECIPIENT_PENDING));

    g_assert_cmpuint(still->len, ==, 1);
  }
  /* another template is another notification */
  rid[0] = RECIPIENT(l3, 0)->id;
  begin(f, other->id, rid, FALSE, FALSE, &w3);
  g_assert_cmpint(outcome(&w3, 0), ==, WA_STORE_SEND_BEGUN);
  /* confirmed, it goes */
  rid[0] = RECIPIENT(l2, 0)->id;
  begin(f, second->id, rid, TRUE, FALSE, &w4);
  g_assert_cmpint(outcome(&w4, 0), ==, WA_STORE_SEND_BEGUN);

  /* a day after the last send, the same template goes without asking */
  third = running(f, "parcel_out", ids, 1, &l4);
  rid[0] = RECIPIENT(l4, 0)->id;
  wa_clock_fake_advance(f->clock, (gint64) (DAY - 1) * G_USEC_PER_SEC);
  {
    g_auto(Wait) early = {0};

    begin(f, third->id, rid, FALSE, FALSE, &early);
    g_assert_cmpint(outcome(&early, 0), ==, WA_STORE_SEND_REPEAT);
  }
  wa_clock_fake_advance(f->clock, (gint64) 2 * G_USEC_PER_SEC);
  begin(f, third->id, rid, FALSE, FALSE, &w5);
  g_assert_cmpint(outcome(&w5, 0), ==, WA_STORE_SEND_BEGUN);
  g_free(ids[0]);
}

static void
test_portfolio_reach_and_erasure(Fixture *f, gconstpointer data)
{
  char *ids[2] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_auto(Wait) w = {0}, reach = {0}, erase = {0}, export = {0}, after = {0}, retention = {0};
  const char *rid[3];
  g_autoptr(JsonNode) root = NULL;
  JsonArray *rows;
  JsonObject *row;

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  ids[1] = customer(f, WA_ID_B);
  campaign = running(f, "parcel_out", ids, 2, &list);
  rid[0] = RECIPIENT(list, 0)->id;
  rid[1] = RECIPIENT(list, 1)->id;
  rid[2] = NULL;
  begin(f, campaign->id, rid, FALSE, TRUE, &w);
  g_assert_no_error(w.error);
  wa_store_portfolio_reach(f->store, NOW - DAY, on_reach, &reach);
  wait_for(&reach);
  g_assert_no_error(reach.error);
  g_assert_cmpuint(reach.reach_keys->len, ==, 2);
  g_assert_true(g_ptr_array_find_with_equal_func(reach.reach_keys, WA_ID_A, g_str_equal, NULL));
  g_assert_true(g_ptr_array_find_with_equal_func(reach.reach_keys, WA_ID_B, g_str_equal, NULL));
  g_assert_cmpint(g_array_index(reach.reach_at, gint64, 0), ==, NOW);

  /* the export holds the customer's campaign rows, params decrypted */
  wa_store_customer_export(f->store, ids[0], on_string, &export);
  wait_for(&export);
  g_assert_no_error(export.error);
  root = json_from_string(export.text, NULL);
  rows = json_object_get_array_member(json_node_get_object(root), "campaigns");
  g_assert_cmpuint(json_array_get_length(rows), ==, 1);
  row = json_array_get_object_element(rows, 0);
  g_assert_cmpstr(json_object_get_string_member(row, "params"), ==, PARAMS_A);
  g_assert_cmpstr(json_object_get_string_member(row, "template"), ==, "parcel_out");
  g_assert_cmpstr(json_object_get_string_member(row, "state"), ==, "sending");

  /* erasure: the rows go; the reach stays counted without naming them */
  wa_store_customer_erase(f->store, ids[0], on_done, &erase);
  wait_for(&erase);
  g_assert_no_error(erase.error);
  wa_store_portfolio_reach(f->store, NOW - DAY, on_reach, &after);
  wait_for(&after);
  g_assert_cmpuint(after.reach_keys->len, ==, 2);
  g_assert_false(g_ptr_array_find_with_equal_func(after.reach_keys, WA_ID_A, g_str_equal, NULL));
  g_assert_true(g_str_has_prefix(after.reach_keys->pdata[0], "erased:") ||
                g_str_has_prefix(after.reach_keys->pdata[1], "erased:"));
  {
    g_autoptr(GPtrArray) left = recipients(f, campaign->id, ~0u);

    g_assert_cmpuint(left->len, ==, 1);
    g_assert_cmpstr(RECIPIENT(left, 0)->customer_id, ==, ids[1]);
  }

  /* retention: reach and template records older than a day go; params of
   * recipients still sending stay until they are answered */
  wa_clock_fake_advance(f->clock, (gint64) (DAY + 1) * G_USEC_PER_SEC);
  wa_store_apply_retention(f->store, 3600, on_count, &retention);
  wait_for(&retention);
  g_assert_no_error(retention.error);
  g_clear_pointer(&f->store, wa_store_close);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM portfolio_reach"), ==, 0);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM template_sends"), ==, 0);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM campaign_recipients WHERE params IS NOT NULL"), ==, 1);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM campaign_recipients"), ==, 1);
  g_free(ids[0]);
  g_free(ids[1]);
}

static void
test_retention_of_params(Fixture *f, gconstpointer data)
{
  char *ids[2] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) report = NULL;
  g_auto(Wait) w = {0}, retention = {0};
  const char *rid[2];

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  ids[1] = customer(f, WA_ID_B);
  campaign = running(f, "parcel_out", ids, 2, &list);
  rid[0] = RECIPIENT(list, 0)->id;
  rid[1] = NULL;
  begin(f, campaign->id, rid, FALSE, FALSE, &w);
  outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[0])->id, WA_STORE_OUTBOX_SENDING, NULL);
  outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[0])->id, WA_STORE_OUTBOX_SENT, "wamid.R1");
  wa_clock_fake_advance(f->clock, (gint64) 2 * DAY * G_USEC_PER_SEC);
  wa_store_apply_retention(f->store, DAY, on_count, &retention);
  wait_for(&retention);
  g_assert_no_error(retention.error);
  report = recipients(f, campaign->id, ~0u);
  /* the sent one lost its params (personal data past retention), the pending one kept them */
  g_assert_null(RECIPIENT(report, 0)->params);
  g_assert_false(RECIPIENT(report, 0)->tampered);
  g_assert_cmpint(RECIPIENT(report, 0)->state, ==, WA_STORE_RECIPIENT_SENT);
  g_assert_cmpstr(RECIPIENT(report, 1)->params, ==, PARAMS_A);
  g_free(ids[0]);
  g_free(ids[1]);
}

static void
test_params_sealed(Fixture *f, gconstpointer data)
{
  char *ids[2] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *contents = NULL;
  gsize size = 0;

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  ids[1] = customer(f, WA_ID_B);
  campaign = running(f, "parcel_out", ids, 2, &list);
  g_clear_pointer(&f->store, wa_store_close);
  g_assert_true(g_file_get_contents(f->path, &contents, &size, NULL));
  g_assert_null(memmem(contents, size, "QX-7781", strlen("QX-7781")));
  /* sealed params copied to another row (another customer) do not open there */
  raw_exec(f->path, "UPDATE campaign_recipients SET params = (SELECT params FROM campaign_recipients WHERE seq = 1) "
                    "WHERE seq = 2");
  store_ready(f);
  {
    g_autoptr(GPtrArray) all = recipients(f, campaign->id, ~0u);

    g_assert_cmpuint(all->len, ==, 2);
    g_assert_false(RECIPIENT(all, 0)->tampered);
    g_assert_cmpstr(RECIPIENT(all, 0)->params, ==, PARAMS_A);
    g_assert_true(RECIPIENT(all, 1)->tampered);
    g_assert_null(RECIPIENT(all, 1)->params);
  }
  g_free(ids[0]);
  g_free(ids[1]);
}

static void
on_rotate(const WaStoreRotateProgress *progress, const GError *error, gpointer data)
{
  Wait *w = data;

  w->count = progress != NULL && progress->finished ? 1 : 0;
  finish(w, error);
}

/* A key rotation seals campaign params again under the customer's new key. */
static void
test_rotation(Fixture *f, gconstpointer data)
{
  char *ids[1] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *header = NULL;
  g_autofree char *code = NULL;
  WaKey *new_key = NULL;
  g_auto(Wait) w = {0};
  gboolean finished = FALSE;

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  campaign = running(f, "parcel_out", ids, 1, &list);
  parsed = wa_key_header_create_keyfile(file_key, &new_key, &code, &error);
  g_assert_no_error(error);
  header = wa_key_header_to_json(parsed);
  wa_store_rotate_begin(f->store, f->key, new_key, header, code, on_done, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  while (!finished) {
    g_auto(Wait) step = {0};

    wa_store_rotate_step(f->store, 100, on_rotate, &step);
    wait_for(&step);
    g_assert_no_error(step.error);
    finished = step.count == 1;
  }
  g_clear_pointer(&f->store, wa_store_close);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM campaign_recipients WHERE key_gen <> 2"), ==, 0);
  wa_key_free(f->key);
  f->key = new_key;
  store_ready(f);
  {
    g_autoptr(GPtrArray) after = recipients(f, campaign->id, ~0u);

    g_assert_false(RECIPIENT(after, 0)->tampered);
    g_assert_cmpstr(RECIPIENT(after, 0)->params, ==, PARAMS_A);
  }
  g_free(ids[0]);
}

/* kill -9 in the middle of a campaign (a child process holds the store and
 * dies with entries in flight, begun and pending): after it, nothing is
 * begun twice and every recipient is pending, sending (queued, not sent),
 * or uncertain. */
static void
test_kill_9(Fixture *f, gconstpointer data)
{
  char *ids[4] = {NULL};
  g_autoptr(GPtrArray) report = NULL;
  g_auto(Wait) list = {0}, again = {0};
  const char *rid[5];
  const char *campaign_id;
  int status = 0;
  pid_t child;

  /* the store is created (and its worker started) only in the child */
  child = fork();
  g_assert_cmpint(child, >=, 0);
  if (child == 0) {
    g_autoptr(WaStoreCampaign) campaign = NULL;
    g_autoptr(GPtrArray) recipients_list = NULL;
    g_auto(Wait) w = {0};

    store_ready(f);
    ids[0] = customer(f, WA_ID_A);
    ids[1] = customer(f, WA_ID_B);
    ids[2] = customer(f, WA_ID_C);
    ids[3] = customer(f, "4930123456789");
    campaign = running(f, "parcel_out", ids, 4, &recipients_list);
    rid[0] = RECIPIENT(recipients_list, 0)->id;
    rid[1] = RECIPIENT(recipients_list, 1)->id;
    rid[2] = RECIPIENT(recipients_list, 2)->id;
    rid[3] = NULL;
    begin(f, campaign->id, rid, FALSE, TRUE, &w);
    g_assert_no_error(w.error);
    /* one answered, one in flight, one queued, one never begun */
    outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[0])->id, WA_STORE_OUTBOX_SENDING, NULL);
    outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[0])->id, WA_STORE_OUTBOX_SENT, "wamid.K1");
    outbox_move(f, ((WaStoreOutbox *) w.entries->pdata[1])->id, WA_STORE_OUTBOX_SENDING, NULL);
    kill(getpid(), SIGKILL);
    _exit(3); /* not reached */
  }
  g_assert_cmpint(waitpid(child, &status, 0), ==, child);
  g_assert_true(WIFSIGNALED(status));
  g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);

  store_ready(f);
  wa_store_campaign_list(f->store, WA_STORE_CAMPAIGN_MASK(WA_STORE_CAMPAIGN_RUNNING), on_list, &list);
  wait_for(&list);
  g_assert_no_error(list.error);
  g_assert_cmpuint(list.list->len, ==, 1);
  campaign_id = ((WaStoreCampaign *) list.list->pdata[0])->id;
  report = recipients(f, campaign_id, ~0u);
  g_assert_cmpuint(report->len, ==, 4);
  g_assert_cmpint(RECIPIENT(report, 0)->state, ==, WA_STORE_RECIPIENT_SENT);
  g_assert_cmpstr(RECIPIENT(report, 0)->wamid, ==, "wamid.K1");
  g_assert_cmpint(RECIPIENT(report, 1)->state, ==, WA_STORE_RECIPIENT_UNCERTAIN);
  g_assert_cmpint(RECIPIENT(report, 2)->state, ==, WA_STORE_RECIPIENT_SENDING);
  g_assert_cmpint(RECIPIENT(report, 3)->state, ==, WA_STORE_RECIPIENT_PENDING);
  for (guint i = 0; i < 4; i++)
    rid[i] = RECIPIENT(report, i)->id;
  rid[4] = NULL;
  /* the runner starting over begins only the one never begun */
  begin(f, campaign_id, rid, TRUE, TRUE, &again);
  g_assert_no_error(again.error);
  g_assert_cmpint(outcome(&again, 0), ==, WA_STORE_SEND_NOT_PENDING);
  g_assert_cmpint(outcome(&again, 1), ==, WA_STORE_SEND_NOT_PENDING);
  g_assert_cmpint(outcome(&again, 2), ==, WA_STORE_SEND_NOT_PENDING);
  g_assert_cmpint(outcome(&again, 3), ==, WA_STORE_SEND_BEGUN);
  g_clear_pointer(&f->store, wa_store_close);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM outbox"), ==, 4);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM outbox WHERE state = 3"), ==, 1);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM portfolio_reach"), ==, 4);
}

/* Many recipients per request, and requests queued together, share one
 * commit: a campaign's writes do not wait on a synced commit per message. */
static void
test_batched_writes(Fixture *f, gconstpointer data)
{
  enum { N = 240, BATCHES = 3 };
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  g_autofree WaStoreRecipientNew *rows = g_new0(WaStoreRecipientNew, N);
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(WaStoreCampaign) after = NULL;
  g_autoptr(GPtrArray) list = NULL;
  Wait w[BATCHES] = {{0}};
  guint before;

  store_ready(f);
  for (guint i = 0; i < N; i++) {
    g_autofree char *number = g_strdup_printf("4915100%06u", i);

    g_ptr_array_add(ids, customer(f, number));
    rows[i].customer_id = ids->pdata[i];
    rows[i].params = PARAMS_A;
  }
  campaign = create(f, "batch", "parcel_out");
  before = wa_store_test_commits(f->store);
  g_assert_cmpuint(add(f, campaign->id, rows, N), ==, N);
  g_assert_cmpuint(wa_store_test_commits(f->store), ==, before + 1);
  g_assert_no_error(set_state(f, campaign->id, WA_STORE_CAMPAIGN_RUNNING));
  list = recipients(f, campaign->id, WA_STORE_RECIPIENT_MASK(WA_STORE_RECIPIENT_PENDING));
  g_assert_cmpuint(list->len, ==, N);

  before = wa_store_test_commits(f->store);
  wa_store_test_hold(f->store, TRUE);
  for (guint b = 0; b < BATCHES; b++) {
    GArray *sends = g_array_new(FALSE, TRUE, sizeof(WaStoreCampaignSend));

    for (guint i = 0; i < N / BATCHES; i++) {
      WaStoreCampaignSend s = {.recipient_id = RECIPIENT(list, b * (N / BATCHES) + i)->id, .payload = "{}"};

      g_array_append_val(sends, s);
    }
    wa_store_campaign_begin_sends(f->store, campaign->id, (WaStoreCampaignSend *) (void *) sends->data, sends->len,
                                  on_sends, &w[b]);
    g_array_unref(sends);
  }
  wa_store_test_hold(f->store, FALSE);
  for (guint b = 0; b < BATCHES; b++) {
    wait_for(&w[b]);
    g_assert_no_error(w[b].error);
    for (guint i = 0; i < N / BATCHES; i++)
      g_assert_cmpint(outcome(&w[b], i), ==, WA_STORE_SEND_BEGUN);
    wait_clear(&w[b]);
  }
  g_assert_cmpuint(wa_store_test_commits(f->store), ==, before + 1);
  after = get(f, campaign->id);
  g_assert_cmpuint(after->counts[WA_STORE_RECIPIENT_SENDING], ==, N);
}

/* A store written by schema 4 (before campaigns) gains the tables, keeps its data. */
static void
test_migration_from_v4(Fixture *f, gconstpointer data)
{
  char *ids[1] = {NULL};
  g_autoptr(WaStoreCampaign) campaign = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_auto(Wait) w = {0};

  store_ready(f);
  ids[0] = customer(f, WA_ID_A);
  g_clear_pointer(&f->store, wa_store_close);
  raw_exec(f->path, "DROP TRIGGER outbox_campaign_state; DROP TABLE campaign_recipients; DROP TABLE campaigns;"
                    "DROP TABLE template_sends; DROP TABLE portfolio_reach; PRAGMA user_version = 4");
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'campaigns'"), ==, 0);
  store_ready(f);
  g_clear_pointer(&f->store, wa_store_close);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 5);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM customers"), ==, 1);
  store_ready(f);
  /* the customer from before is found, and a campaign reaches them */
  wa_store_customer_ensure(f->store, WA_ID_A, NULL, NULL, WA_STORE_ENSURE_DEFAULT, on_update, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_cmpstr(w.customer->id, ==, ids[0]);
  campaign = running(f, "parcel_out", ids, 1, &list);
  g_assert_cmpstr(RECIPIENT(list, 0)->params, ==, PARAMS_A);
  g_free(ids[0]);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/store-campaigns/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD("states", test_campaign_states);
  ADD("begin-sends", test_begin_sends);
  ADD("uncertain-after-restart", test_uncertain_after_restart);
  ADD("begin-started", test_begin_started);
  ADD("once-a-day", test_once_a_day);
  ADD("portfolio-reach-and-erasure", test_portfolio_reach_and_erasure);
  ADD("retention-of-params", test_retention_of_params);
  ADD("params-sealed", test_params_sealed);
  ADD("rotation", test_rotation);
  ADD("batched-writes", test_batched_writes);
  ADD("kill-9", test_kill_9);
  ADD("migration-from-v4", test_migration_from_v4);
#undef ADD
  return g_test_run();
}
