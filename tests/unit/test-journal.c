/* test-journal.c: the receiver's journal (plugin/receiver/rx-journal.c) as the
 * plugin and the disk see it: file modes, sealed envelopes opened with the
 * account's key pair, deduplication of messages, statuses and replayed changes,
 * the per-account cap and the free-space floor, acknowledgement,
 * seq growth, registrations, group commit, storage failures, the schema
 * version and the exclusive lock.
 *
 * Each test runs in a fresh temporary directory and drives its own
 * GMainContext against a deadline. Must not: sleep to wait for the worker,
 * rely on file permissions to provoke failures (CI runs as root; storage
 * failures come from max_page_count), or derive expected envelopes from the
 * code under test. */
#include "test-util.h"
#include "rx-journal.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wa-json.h"

/* rx-journal.c's test hook (deliberately not in rx-journal.h). */
void rx_journal_test_hold(RxJournal *journal, gboolean hold);

/* rx-journal.c checkpoints (TRUNCATE) after this many commits. */
#define CHECKPOINT_COMMITS 64

#define ACCOUNT "106540352242922"
#define OTHER "106540352242999"
#define WABA "102290129340398"
#define ENTRY_TIME 1751247548
#define NOW 1751250000
#define DEADLINE_S 30

#define METADATA                                                                               \
  "\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550001111\"," \
  "\"phone_number_id\":\"" ACCOUNT "\"}"
#define CONTACTS "\"contacts\":[{\"profile\":{\"name\":\"Kerry\"},\"wa_id\":\"16315551181\"}]"

static GThread *main_thread;
static GMainContext *current_context;

typedef struct {
  char *tmp; /* from g_dir_make_tmp */
  char *dir; /* tmp/state: the journal's directory, created by open */
  GMainContext *context;
  WaKeyPair *pair;
  RxJournal *journal;
  GPtrArray *news; /* "account:seq" per new_func call */
} Fixture;

/* ---- plumbing ------------------------------------------------------------ */

static void
assert_on_context(void)
{
  g_assert_true(g_thread_self() == main_thread);
  g_assert_true(g_main_context_is_owner(current_context));
}

static void
on_new(const char *account, gint64 last_seq, gpointer data)
{
  Fixture *f = data;

  assert_on_context();
  g_ptr_array_add(f->news, g_strdup_printf("%s:%" G_GINT64_FORMAT, account, last_seq));
}

static RxJournal *
open_journal(Fixture *f, gint64 max_page_count)
{
  g_autoptr(GError) error = NULL;
  RxJournal *journal = rx_journal_open(f->dir, f->context, max_page_count, &error);

  g_assert_no_error(error);
  g_assert_nonnull(journal);
  rx_journal_set_new_func(journal, on_new, f);
  return journal;
}

static void
reopen(Fixture *f, gint64 max_page_count)
{
  rx_journal_close(f->journal);
  f->journal = open_journal(f, max_page_count);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->tmp = g_dir_make_tmp("test-journal-XXXXXX", &error);
  g_assert_no_error(error);
  f->dir = g_build_filename(f->tmp, "state", NULL);
  f->context = g_main_context_new();
  current_context = f->context;
  f->pair = wa_keypair_new(&error);
  g_assert_no_error(error);
  f->news = g_ptr_array_new_with_free_func(g_free);
  if (data == NULL) /* tests that open the journal themselves pass non-NULL */
    f->journal = open_journal(f, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->journal, rx_journal_close);
  while (g_main_context_iteration(f->context, FALSE))
    ;
  g_main_context_unref(f->context);
  current_context = NULL;
  wa_keypair_free(f->pair);
  g_ptr_array_unref(f->news);
  test_remove_tree(f->tmp);
  g_free(f->dir);
  g_free(f->tmp);
}

/* ---- requests, waited for ------------------------------------------------ */

typedef struct {
  guint calls;
  guint stored;
  guint duplicates;
  GError *error;
  GPtrArray *events;
  GHashTable *counts;
} Result;

static void
result_clear(Result *r)
{
  g_clear_error(&r->error);
  g_clear_pointer(&r->events, g_ptr_array_unref);
  g_clear_pointer(&r->counts, g_hash_table_unref);
  memset(r, 0, sizeof *r);
}

static void
on_append(guint stored, guint duplicates, const GError *error, gpointer data)
{
  Result *r = data;

  assert_on_context();
  r->calls++;
  r->stored = stored;
  r->duplicates = duplicates;
  r->error = error != NULL ? g_error_copy(error) : NULL;
}

static void
on_fetch(GPtrArray *events, const GError *error, gpointer data)
{
  Result *r = data;

  assert_on_context();
  r->calls++;
  r->events = events != NULL ? g_ptr_array_ref(events) : NULL;
  r->error = error != NULL ? g_error_copy(error) : NULL;
}

static void
on_counts(GHashTable *counts, const GError *error, gpointer data)
{
  Result *r = data;

  assert_on_context();
  r->calls++;
  r->counts = counts != NULL ? g_hash_table_ref(counts) : NULL;
  r->error = error != NULL ? g_error_copy(error) : NULL;
}

static void
on_done(const GError *error, gpointer data)
{
  Result *r = data;

  assert_on_context();
  r->calls++;
  r->error = error != NULL ? g_error_copy(error) : NULL;
}

static RxChange *
change_new(Fixture *f, const char *account, const char *waba_id, gint64 entry_time, const char *field,
           const char *value_json)
{
  g_autoptr(GError) error = NULL;
  JsonNode *value = wa_json_parse_object(value_json, strlen(value_json), &error);

  g_assert_no_error(error);
  return rx_change_new(account, f->pair->public_key, waba_id, entry_time, field, value);
}

/* {"messaging_product":...,"metadata":...,"contacts":[...],"messages":[...]}
 * with one text message per comma-separated id ("-" = a message without id). */
static char *
messages_json(const char *ids, const char *extra)
{
  g_auto(GStrv) list = g_strsplit(ids, ",", -1);
  GString *s = g_string_new("{" METADATA "," CONTACTS ",\"messages\":[");

  for (guint i = 0; list[i] != NULL; i++) {
    if (i > 0)
      g_string_append_c(s, ',');
    g_string_append(s, "{\"from\":\"16315551181\",");
    if (strcmp(list[i], "-") != 0)
      g_string_append_printf(s, "\"id\":\"%s\",", list[i]);
    g_string_append_printf(s,
                           "\"timestamp\":\"1751247548\",\"type\":\"text\","
                           "\"text\":{\"body\":\"hello %u\"}}",
                           i);
  }
  g_string_append(s, "]");
  if (extra != NULL)
    g_string_append_printf(s, ",%s", extra);
  g_string_append(s, "}");
  return g_string_free(s, FALSE);
}

/* As messages_json() with statuses "id:status,...". */
static char *
statuses_json(const char *pairs)
{
  g_auto(GStrv) list = g_strsplit(pairs, ",", -1);
  GString *s = g_string_new("{" METADATA ",\"statuses\":[");

  for (guint i = 0; list[i] != NULL; i++) {
    g_auto(GStrv) parts = g_strsplit(list[i], ":", 2);

    if (i > 0)
      g_string_append_c(s, ',');
    g_string_append_printf(s,
                           "{\"id\":\"%s\",\"status\":\"%s\",\"timestamp\":\"1751247600\","
                           "\"recipient_id\":\"16315551181\"}",
                           parts[0], parts[1]);
  }
  g_string_append(s, "]}");
  return g_string_free(s, FALSE);
}

static RxChange *
statuses_change(Fixture *f, const char *pairs)
{
  g_autofree char *json = statuses_json(pairs);

  return change_new(f, ACCOUNT, WABA, 0, "messages", json);
}

static RxChange *
messages_change(Fixture *f, const char *account, const char *ids)
{
  g_autofree char *json = messages_json(ids, NULL);

  return change_new(f, account, WABA, ENTRY_TIME, "messages", json);
}

/* Appends @changes (taken) and waits for the answer. */
static void
append_wait(Fixture *f, GPtrArray *changes, gint64 now, Result *r)
{
  result_clear(r);
  rx_journal_append(f->journal, changes, now, on_append, r);
  test_wait_count_in(f->context, r->calls, 1, DEADLINE_S);
}

/* Appends one change and asserts the numbers stored and dropped. */
static void
append_one(Fixture *f, RxChange *change, gint64 now, guint stored, guint duplicates)
{
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  Result r = {0};

  g_ptr_array_add(changes, change);
  append_wait(f, changes, now, &r);
  g_assert_no_error(r.error);
  g_assert_cmpuint(r.stored, ==, stored);
  g_assert_cmpuint(r.duplicates, ==, duplicates);
  result_clear(&r);
}

static GPtrArray *
fetch(Fixture *f, const char *account, gint64 after_seq, guint limit)
{
  Result r = {0};
  GPtrArray *events;

  rx_journal_fetch(f->journal, account, after_seq, limit, on_fetch, &r);
  test_wait_count_in(f->context, r.calls, 1, DEADLINE_S);
  g_assert_no_error(r.error);
  g_assert_nonnull(r.events);
  events = g_steal_pointer(&r.events);
  result_clear(&r);
  return events;
}

static void
ack(Fixture *f, const char *account, gint64 upto_seq)
{
  Result r = {0};

  rx_journal_ack(f->journal, account, upto_seq, on_done, &r);
  test_wait_count_in(f->context, r.calls, 1, DEADLINE_S);
  g_assert_no_error(r.error);
  result_clear(&r);
}

static GHashTable *
pending(Fixture *f)
{
  Result r = {0};
  GHashTable *counts;

  rx_journal_pending(f->journal, on_counts, &r);
  test_wait_count_in(f->context, r.calls, 1, DEADLINE_S);
  g_assert_no_error(r.error);
  g_assert_nonnull(r.counts);
  counts = g_steal_pointer(&r.counts);
  result_clear(&r);
  return counts;
}

static GHashTable *
load_accounts(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  GHashTable *accounts = rx_journal_load_accounts(f->journal, &error);

  g_assert_no_error(error);
  g_assert_nonnull(accounts);
  return accounts;
}

/* Returns once the worker has answered everything queued so far (the
 * synchronous load_accounts queues behind it), after running those answers. */
static void
settle(Fixture *f)
{
  g_autoptr(GHashTable) accounts = load_accounts(f);

  g_assert_nonnull(accounts);
  while (g_main_context_iteration(f->context, FALSE))
    ;
}

/* The plaintext of @event, opened with the account's key pair. */
static char *
open_event(Fixture *f, RxEvent *event)
{
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *sealed = g_bytes_get_data(event->sealed, &len);
  g_autoptr(GBytes) plain = wa_seal_open(f->pair, sealed, len, &error);

  g_assert_no_error(error);
  return g_strndup(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
}

/* entry[0].changes[0].value of an opened event, re-serialised. */
static JsonNode *
event_value(Fixture *f, RxEvent *event)
{
  g_autofree char *plain = open_event(f, event);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = wa_json_parse_object(plain, strlen(plain), &error);
  JsonObject *entry;
  JsonObject *change;

  g_assert_no_error(error);
  entry = wa_json_array_get_object(wa_json_get_array(json_node_get_object(root), "entry"), 0);
  change = wa_json_array_get_object(wa_json_get_array(entry, "changes"), 0);
  g_assert_nonnull(change);
  return json_node_ref(json_object_get_member(change, "value"));
}

/* "id,id" of the messages, or "id:status,..." of the statuses, of an event's
 * value; "-" for an element without id; NULL when the array is absent. */
static char *
event_ids(Fixture *f, RxEvent *event, const char *array_name)
{
  g_autoptr(JsonNode) value = event_value(f, event);
  JsonArray *array = wa_json_get_array(json_node_get_object(value), array_name);
  GString *s;

  if (array == NULL)
    return NULL;
  s = g_string_new(NULL);
  for (guint i = 0; i < json_array_get_length(array); i++) {
    JsonObject *obj = wa_json_array_get_object(array, i);
    const char *id = wa_json_get_string(obj, "id");
    const char *status = wa_json_get_string(obj, "status");

    if (i > 0)
      g_string_append_c(s, ',');
    g_string_append(s, id != NULL ? id : "-");
    if (status != NULL)
      g_string_append_printf(s, ":%s", status);
  }
  return g_string_free(s, FALSE);
}

static guint
file_mode(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  struct stat st;

  g_assert_cmpint(stat(path, &st), ==, 0);
  return st.st_mode & 07777;
}

static gboolean
file_exists(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);

  return g_file_test(path, G_FILE_TEST_EXISTS);
}

static gint64
file_size(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  struct stat st;

  if (stat(path, &st) != 0)
    return -1;
  return st.st_size;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_modes(Fixture *f, gconstpointer data)
{
  g_autofree char *db = g_build_filename(f->dir, "journal.db", NULL);
  g_autofree char *key = g_build_filename(f->dir, "journal.key", NULL);
  mode_t old_umask;

  /* created by open, with a umask that would strip the owner's write and
   * execute bits: the modes are set explicitly, the umask left alone */
  old_umask = umask(0377);
  f->journal = open_journal(f, 0);
  g_assert_cmpuint(umask(old_umask), ==, 0377);

  g_assert_cmpuint(file_mode(f->dir, "."), ==, 0700);
  g_assert_cmpuint(file_mode(f->dir, "journal.db"), ==, 0600);
  g_assert_cmpuint(file_mode(f->dir, "journal.key"), ==, 0600);
  g_assert_cmpint(file_size(f->dir, "journal.key"), ==, 32);
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  g_assert_true(file_exists(f->dir, "journal.db-wal"));
  g_assert_cmpuint(file_mode(f->dir, "journal.db-wal"), ==, 0600);
  /* exclusive locking mode keeps the WAL index in memory: no -shm file */
  g_assert_false(file_exists(f->dir, "journal.db-shm"));

  /* modes loosened while the receiver was stopped are tightened again */
  g_clear_pointer(&f->journal, rx_journal_close);
  g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
  g_assert_cmpint(chmod(db, 0644), ==, 0);
  g_assert_cmpint(chmod(key, 0664), ==, 0);
  f->journal = open_journal(f, 0);
  g_assert_cmpuint(file_mode(f->dir, "."), ==, 0700);
  g_assert_cmpuint(file_mode(f->dir, "journal.db"), ==, 0600);
  g_assert_cmpuint(file_mode(f->dir, "journal.key"), ==, 0600);
}

static void
test_key_file(Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename(f->dir, "journal.key", NULL);
  g_autofree char *first = NULL;
  g_autofree char *again = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  RxJournal *journal;

  g_assert_true(g_file_get_contents(path, &first, &len, NULL));
  g_assert_cmpuint(len, ==, 32);
  reopen(f, 0);
  g_assert_true(g_file_get_contents(path, &again, &len, NULL));
  g_assert_cmpuint(len, ==, 32);
  g_assert_cmpmem(first, 32, again, 32); /* created once, then only read */

  /* a damaged key is refused, not replaced (it keys every stored hash) */
  g_clear_pointer(&f->journal, rx_journal_close);
  g_assert_true(g_file_set_contents(path, "short", 5, NULL));
  journal = rx_journal_open(f->dir, f->context, 0, &error);
  g_assert_null(journal);
  g_assert_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN);
  g_assert_nonnull(strstr(error->message, "damaged"));
}

static void
test_append_fetch_sealed(Fixture *f, gconstpointer data)
{
  g_autofree char *value = messages_json("wamid.A", NULL);
  const char *template_value = "{\"event\":\"APPROVED\",\"message_template_id\":594425479261596,"
                               "\"message_template_name\":\"hello_world\"}";
  g_autofree char *expected_first =
    g_strdup_printf("{\"object\":\"whatsapp_business_account\",\"wabiz_received\":%d,\"entry\":[{\"id\":\"" WABA
                    "\",\"time\":%d,\"changes\":[{\"field\":\"messages\",\"value\":%s}]}]}",
                    NOW, ENTRY_TIME, value);
  g_autofree char *expected_second =
    g_strdup_printf("{\"object\":\"whatsapp_business_account\",\"wabiz_received\":%d,\"entry\":[{\"changes\":"
                    "[{\"field\":\"message_template_status_update\",\"value\":%s}]}]}",
                    NOW, template_value);
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GPtrArray) later = NULL;
  g_autoptr(GPtrArray) first_only = NULL;
  g_autoptr(WaKeyPair) other = wa_keypair_new(NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *plain = NULL;
  Result r = {0};
  RxEvent *e0, *e1;
  gsize len;
  const guint8 *sealed;

  g_ptr_array_add(changes, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", value));
  g_ptr_array_add(changes, change_new(f, ACCOUNT, NULL, 0, "message_template_status_update", template_value));
  append_wait(f, changes, NOW, &r);
  g_assert_no_error(r.error);
  g_assert_cmpuint(r.stored, ==, 2);
  g_assert_cmpuint(r.duplicates, ==, 0);
  result_clear(&r);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 2);
  e0 = g_ptr_array_index(events, 0);
  e1 = g_ptr_array_index(events, 1);
  g_assert_cmpint(e0->seq, >, 0);
  g_assert_cmpint(e1->seq, >, e0->seq);
  g_assert_cmpint(e0->received, ==, NOW);

  /* sealed: no plaintext on disk or in the event, and only our pair opens it */
  sealed = g_bytes_get_data(e0->sealed, &len);
  g_assert_null(memmem(sealed, len, "wamid", 5));
  g_assert_null(wa_seal_open(other, sealed, len, &error));
  g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);

  /* the envelope, exactly: one entry, one change, id and time only when known */
  plain = open_event(f, e0);
  g_assert_cmpstr(plain, ==, expected_first);
  g_clear_pointer(&plain, g_free);
  plain = open_event(f, e1);
  g_assert_cmpstr(plain, ==, expected_second);

  /* after_seq and limit */
  later = fetch(f, ACCOUNT, e0->seq, 100);
  g_assert_cmpuint(later->len, ==, 1);
  g_assert_cmpint(((RxEvent *) g_ptr_array_index(later, 0))->seq, ==, e1->seq);
  first_only = fetch(f, ACCOUNT, 0, 1);
  g_assert_cmpuint(first_only->len, ==, 1);
  g_assert_cmpint(((RxEvent *) g_ptr_array_index(first_only, 0))->seq, ==, e0->seq);
  g_ptr_array_unref(fetch(f, OTHER, 0, 100)); /* another account's: none */

  /* new_func: once, with the highest seq */
  settle(f);
  g_assert_cmpuint(f->news->len, ==, 1);
  {
    g_autofree char *expected = g_strdup_printf(ACCOUNT ":%" G_GINT64_FORMAT, e1->seq);

    g_assert_cmpstr(g_ptr_array_index(f->news, 0), ==, expected);
  }
}

static void
test_dedupe_messages(Fixture *f, gconstpointer data)
{
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  const char *template_value = "{\"event\":\"APPROVED\",\"message_template_id\":1}";
  g_autoptr(GPtrArray) events = NULL;
  Result r = {0};

  /* the same message twice in one batch: kept once */
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  append_wait(f, changes, NOW, &r);
  g_assert_no_error(r.error);
  g_assert_cmpuint(r.stored, ==, 1);
  g_assert_cmpuint(r.duplicates, ==, 1);
  result_clear(&r);

  /* again in a later batch: dropped, and no new-event notification */
  settle(f);
  g_assert_cmpuint(f->news->len, ==, 1);
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW + 1, 0, 1);
  settle(f);
  g_assert_cmpuint(f->news->len, ==, 1);

  /* and after a restart (the key and the hashes persist) */
  reopen(f, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW + 2, 0, 1);
  append_one(f, messages_change(f, ACCOUNT, "wamid.2"), NOW + 2, 1, 0);

  /* the same id for another account is that account's own message */
  append_one(f, messages_change(f, OTHER, "wamid.1"), NOW + 3, 1, 0);

  /* changes without messages or statuses: by their bytes, entry time
   * included (a template approved again later is news; a replay is not) */
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "message_template_status_update", template_value), NOW + 4, 1,
             0);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "message_template_status_update", template_value), NOW + 4, 0,
             1);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME + 60, "message_template_status_update", template_value),
             NOW + 4, 1, 0);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 4);
}

static void
test_dedupe_statuses(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) events = NULL;
  g_autofree char *ids = NULL;

  append_one(f, statuses_change(f, "wamid.S:sent"), NOW, 1, 0);
  /* the same send with a new status is news */
  append_one(f, statuses_change(f, "wamid.S:delivered"), NOW, 1, 0);
  append_one(f, statuses_change(f, "wamid.S:delivered"), NOW, 0, 1);
  append_one(f, statuses_change(f, "wamid.S:sent"), NOW, 0, 1);
  /* twice in one change: kept once; a status is not mistaken for a message */
  append_one(f, statuses_change(f, "wamid.S:read,wamid.S:read,wamid.M:sent"), NOW, 1, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.S"), NOW, 1, 0);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 4);
  ids = event_ids(f, g_ptr_array_index(events, 2), "statuses");
  g_assert_cmpstr(ids, ==, "wamid.S:read,wamid.M:sent");
}

static void
test_partial_duplicate(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(JsonNode) value = NULL;
  g_autofree char *ids = NULL;
  g_autofree char *statuses = NULL;
  g_autofree char *mixed = g_strdup_printf("{" METADATA ",\"messages\":[{\"id\":\"wamid.1\",\"type\":\"text\"}],"
                                           "\"statuses\":[{\"id\":\"wamid.9\",\"status\":\"sent\"}]}");
  JsonObject *obj;

  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  /* one old, one new, one without id: the old one goes */
  append_one(f, messages_change(f, ACCOUNT, "wamid.1,wamid.2,-"), NOW, 1, 0);
  /* messages all old, statuses new: stored without the emptied array */
  append_one(f, change_new(f, ACCOUNT, WABA, 0, "messages", mixed), NOW, 1, 0);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 3);
  ids = event_ids(f, g_ptr_array_index(events, 1), "messages");
  g_assert_cmpstr(ids, ==, "wamid.2,-");
  value = event_value(f, g_ptr_array_index(events, 1));
  obj = json_node_get_object(value);
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(obj, "metadata"), "phone_number_id"), ==, ACCOUNT);
  g_assert_cmpuint(json_array_get_length(wa_json_get_array(obj, "contacts")), ==, 1);
  g_assert_cmpstr(wa_json_get_string(obj, "messaging_product"), ==, "whatsapp");

  g_clear_pointer(&ids, g_free);
  ids = event_ids(f, g_ptr_array_index(events, 2), "messages");
  g_assert_null(ids);
  statuses = event_ids(f, g_ptr_array_index(events, 2), "statuses");
  g_assert_cmpstr(statuses, ==, "wamid.9:sent");
}

static void
test_shared_subtree(Fixture *f, gconstpointer data)
{
  g_autofree char *text = messages_json("wamid.1,wamid.2", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) parsed = wa_json_parse_object(text, strlen(text), &error);
  g_autoptr(JsonNode) messages = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autofree char *after = NULL;
  g_autofree char *ids = NULL;
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  JsonObject *second;
  Result r = {0};

  g_assert_no_error(error);
  /* a second value sharing the first one's (immutable) messages array */
  messages = json_node_ref(json_object_get_member(json_node_get_object(parsed), "messages"));
  second = json_object_new();
  json_object_set_string_member(second, "messaging_product", "whatsapp");
  json_object_set_member(second, "messages", json_node_ref(messages));

  g_ptr_array_add(changes,
                  rx_change_new(ACCOUNT, f->pair->public_key, WABA, ENTRY_TIME, "messages", json_node_ref(parsed)));
  g_ptr_array_add(changes, rx_change_new(ACCOUNT, f->pair->public_key, WABA, ENTRY_TIME, "messages",
                                         json_node_init_object(json_node_alloc(), second)));
  json_object_unref(second);
  append_wait(f, changes, NOW, &r);
  g_assert_no_error(r.error);
  g_assert_cmpuint(r.stored, ==, 1);
  g_assert_cmpuint(r.duplicates, ==, 1);
  result_clear(&r);

  /* the caller's tree is untouched, and the first change kept both messages */
  g_assert_cmpuint(json_array_get_length(json_node_get_array(messages)), ==, 2);
  after = wa_json_to_string(parsed);
  g_assert_cmpstr(after, ==, text);
  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 1);
  ids = event_ids(f, g_ptr_array_index(events, 0), "messages");
  g_assert_cmpstr(ids, ==, "wamid.1,wamid.2");
}

static void
test_duplicates_with_errors(Fixture *f, gconstpointer data)
{
  g_autofree char *with_errors =
    messages_json("wamid.1", "\"errors\":[{\"code\":131000,\"title\":\"Something went wrong\"}]");
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(JsonNode) value = NULL;
  JsonArray *errors;

  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  /* only a duplicate, but "errors" is news: kept, without the message */
  append_one(f, change_new(f, ACCOUNT, WABA, 0, "messages", with_errors), NOW, 1, 0);
  /* only a duplicate with routine members (metadata, contacts): dropped */
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 0, 1);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 2);
  value = event_value(f, g_ptr_array_index(events, 1));
  g_assert_null(wa_json_get_array(json_node_get_object(value), "messages"));
  errors = wa_json_get_array(json_node_get_object(value), "errors");
  g_assert_nonnull(errors);
  g_assert_cmpint(wa_json_get_int(wa_json_array_get_object(errors, 0), "code", 0), ==, 131000);
}

/* A replayed delivery (the same signed bytes again) is journalled once,
 * whatever its field: account updates, template status, group events, echoes,
 * and a message change whose "errors" member alone would have kept it. */
static void
test_replay_any_field(Fixture *f, gconstpointer data)
{
  static const char *const fields[][2] = {
    {"account_update", "{\"phone_number\":\"15550001111\",\"event\":\"VERIFIED_ACCOUNT\"}"},
    {"message_template_status_update", "{\"event\":\"PAUSED\",\"message_template_id\":7}"},
    {"group_lifecycle_update", "{" METADATA ",\"groups\":[{\"timestamp\":\"1751247548\",\"group_id\":\"g1\","
                               "\"type\":\"group_create\"}]}"},
    {"smb_message_echoes", "{" METADATA ",\"message_echoes\":[{\"from\":\"15550001111\",\"to\":\"16315551181\","
                           "\"id\":\"wamid.E\",\"timestamp\":\"1751247548\",\"type\":\"text\","
                           "\"text\":{\"body\":\"hi\"}}]}"},
  };
  g_autofree char *with_errors =
    messages_json("wamid.1", "\"errors\":[{\"code\":131000,\"title\":\"Something went wrong\"}]");
  g_autoptr(GPtrArray) events = NULL;

  for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
    append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, fields[i][0], fields[i][1]), NOW, 1, 0);
    append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, fields[i][0], fields[i][1]), NOW + 1, 0, 1);
    /* the same value for another account is that account's */
    append_one(f, change_new(f, OTHER, WABA, ENTRY_TIME, fields[i][0], fields[i][1]), NOW + 1, 1, 0);
  }
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  append_one(f, change_new(f, ACCOUNT, WABA, 0, "messages", with_errors), NOW, 1, 0);
  append_one(f, change_new(f, ACCOUNT, WABA, 0, "messages", with_errors), NOW, 0, 1);
  /* the hashes persist */
  reopen(f, 0);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, fields[0][0], fields[0][1]), NOW + 2, 0, 1);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, G_N_ELEMENTS(fields) + 2);
}

/* The keyed hash of @parts joined with NUL bytes, under the journal's key,
 * as PROTOCOL.md and rx-journal.c document the dedupe keys. */
static void
documented_key(Fixture *f, const char *const *parts, guint n_parts, guint8 out[32])
{
  g_autofree char *path = g_build_filename(f->dir, "journal.key", NULL);
  g_autofree char *key = NULL;
  gsize len = 0;
  crypto_generichash_state state;

  g_assert_true(g_file_get_contents(path, &key, &len, NULL));
  g_assert_cmpuint(len, ==, 32);
  g_assert_cmpint(crypto_generichash_init(&state, (const guint8 *) key, len, 32), ==, 0);
  for (guint i = 0; i < n_parts; i++)
    g_assert_cmpint(crypto_generichash_update(&state, (const guint8 *) parts[i], strlen(parts[i]) + (i + 1 < n_parts)),
                    ==, 0);
  g_assert_cmpint(crypto_generichash_final(&state, out, 32), ==, 0);
}

/* Dedupe keys recorded by earlier receivers (a change by its field, entry
 * and value as JSON; a message by id; a status by id and status) still drop
 * the replays after an upgrade: the keys are made from the same bytes. */
static void
test_keys_of_older_journals(Fixture *f, gconstpointer data)
{
  static const char update[] = "{\"phone_number\":\"15550001111\",\"event\":\"VERIFIED_ACCOUNT\"}";
  g_autofree char *entry_time = g_strdup_printf("%d", ENTRY_TIME);
  const char *change_parts[] = {"c", ACCOUNT, "account_update", WABA, entry_time, update};
  const char *message_parts[] = {"m", ACCOUNT, "wamid.K1"};
  const char *status_parts[] = {"s", ACCOUNT, "wamid.S1", "delivered"};
  const char *const *keys[] = {change_parts, message_parts, status_parts};
  const guint n_parts[] = {G_N_ELEMENTS(change_parts), G_N_ELEMENTS(message_parts), G_N_ELEMENTS(status_parts)};
  g_autofree char *db_path = g_build_filename(f->dir, "journal.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  rx_journal_close(f->journal);
  f->journal = NULL;
  g_assert_cmpint(sqlite3_open(db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_prepare_v2(db, "INSERT INTO seen (hash, at) VALUES (?1, ?2)", -1, &stmt, NULL), ==,
                  SQLITE_OK);
  for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
    guint8 hash[32];

    documented_key(f, keys[i], n_parts[i], hash);
    g_assert_cmpint(sqlite3_bind_blob(stmt, 1, hash, sizeof hash, SQLITE_TRANSIENT), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_bind_int64(stmt, 2, NOW), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_DONE);
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
  f->journal = open_journal(f, 0);

  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "account_update", update), NOW, 0, 1);
  append_one(f, messages_change(f, ACCOUNT, "wamid.K1"), NOW, 0, 1);
  append_one(f, statuses_change(f, "wamid.S1:delivered"), NOW, 0, 1);
  /* what was not recorded is news */
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME + 1, "account_update", update), NOW, 1, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.K2"), NOW, 1, 0);
  append_one(f, statuses_change(f, "wamid.S1:read"), NOW, 1, 0);
}

/* Dedupe hashes in the journal (it is closed and opened again to count them). */
static gint64
seen_rows(Fixture *f)
{
  g_autofree char *db_path = g_build_filename(f->dir, "journal.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 rows;

  rx_journal_close(f->journal);
  f->journal = NULL;
  g_assert_cmpint(sqlite3_open(db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT count(*) FROM seen", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
  rows = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
  f->journal = open_journal(f, 0);
  return rows;
}

/* A change made only of messages and statuses with ids is known by their
 * keys alone (one hash per message, not two); a change with anything else
 * (a message without id, "errors", an empty list) also gets the key of its
 * bytes, and its replay is still dropped. */
static void
test_keys_per_event(Fixture *f, gconstpointer data)
{
  g_autofree char *with_errors = messages_json("wamid.3", "\"errors\":[{\"code\":131000}]");
  g_autofree char *without_id = messages_json("wamid.4,-", NULL);
  static const char empty[] = "{" METADATA ",\"messages\":[]}";

  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  g_assert_cmpint(seen_rows(f), ==, 1);
  append_one(f, statuses_change(f, "wamid.1:sent,wamid.1:delivered"), NOW, 1, 0);
  g_assert_cmpint(seen_rows(f), ==, 3);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", with_errors), NOW, 1, 0);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", without_id), NOW, 1, 0);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", empty), NOW, 1, 0);
  g_assert_cmpint(seen_rows(f), ==, 3 + 2 + 2 + 1);

  /* replays: all dropped, nothing recorded */
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW + 1, 0, 1);
  append_one(f, statuses_change(f, "wamid.1:sent,wamid.1:delivered"), NOW + 1, 0, 1);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", with_errors), NOW + 1, 0, 1);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", without_id), NOW + 1, 0, 1);
  append_one(f, change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", empty), NOW + 1, 0, 1);
  g_assert_cmpint(seen_rows(f), ==, 8);
}

static RxChange *
capped_change(Fixture *f, const char *ids, gint64 max_pending)
{
  RxChange *change = messages_change(f, ACCOUNT, ids);

  change->max_pending = max_pending;
  return change;
}

static gsize
pending_bytes(Fixture *f)
{
  g_autoptr(GPtrArray) events = fetch(f, ACCOUNT, 0, 1000);
  gsize total = 0;

  for (guint i = 0; i < events->len; i++)
    total += g_bytes_get_size(((RxEvent *) g_ptr_array_index(events, i))->sealed);
  return total;
}

static void
append_refused(Fixture *f, RxChange *change)
{
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  Result r = {0};

  g_ptr_array_add(changes, change);
  append_wait(f, changes, NOW, &r);
  g_assert_error(r.error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_FULL);
  g_assert_cmpuint(r.stored, ==, 0);
  result_clear(&r);
}

/* The per-account cap on pending bytes: past it a change is refused (and
 * nothing of it recorded, so Meta's retry is taken once there is room);
 * acknowledged events make room; a restart counts what is on disk; other
 * accounts are not affected. */
static void
test_pending_cap(Fixture *f, gconstpointer data)
{
  gsize one, cap;
  g_autoptr(GPtrArray) events = NULL;

  /* with nothing pending, one event is taken even past the cap */
  append_one(f, capped_change(f, "wamid.1", 1), NOW, 1, 0);
  one = pending_bytes(f);
  g_assert_cmpuint(one, >, 0);
  append_refused(f, capped_change(f, "wamid.2", 1));

  /* room for three events of this size */
  cap = 3 * one + one / 2;
  append_one(f, capped_change(f, "wamid.2", cap), NOW, 1, 0);
  append_one(f, capped_change(f, "wamid.3", cap), NOW, 1, 0);
  append_refused(f, capped_change(f, "wamid.4", cap));
  append_one(f, messages_change(f, OTHER, "wamid.4"), NOW, 1, 0);
  /* counted again from disk after a restart */
  reopen(f, 0);
  append_refused(f, capped_change(f, "wamid.4", cap));
  g_assert_cmpuint(pending_bytes(f), <=, cap);

  /* acknowledged: room again, and the refused message was not remembered */
  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 3);
  ack(f, ACCOUNT, ((RxEvent *) g_ptr_array_index(events, 1))->seq);
  append_one(f, capped_change(f, "wamid.4", cap), NOW, 1, 0);
  append_one(f, capped_change(f, "wamid.5", cap), NOW, 1, 0);
  append_refused(f, capped_change(f, "wamid.6", cap));
  /* everything acknowledged: a change of two messages is one event */
  ack(f, ACCOUNT, G_MAXINT64);
  append_one(f, capped_change(f, "wamid.6,wamid.7", cap), NOW, 1, 0);
  g_assert_cmpuint(pending_bytes(f), <=, cap);
}

/* The free-space floor: below it every append is refused with a message a
 * person can act on, and nothing is stored. */
static void
test_free_space_floor(Fixture *f, gconstpointer data)
{
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  g_autoptr(GPtrArray) events = NULL;
  Result r = {0};

  rx_journal_set_min_free(f->journal, G_MAXINT64);
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  append_wait(f, changes, NOW, &r);
  g_assert_error(r.error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_FULL);
  g_assert_nonnull(strstr(r.error->message, "free on the disk"));
  result_clear(&r);
  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 0);

  rx_journal_set_min_free(f->journal, 1);
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
}

static void
test_ack(Fixture *f, gconstpointer data)
{
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GPtrArray) left = NULL;
  g_autoptr(GPtrArray) none = NULL;
  g_autoptr(GPtrArray) others = NULL;
  Result appended = {0};
  Result acked = {0};
  gint64 seqs[3];

  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.2"));
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.3"));
  append_wait(f, changes, NOW, &appended);
  g_assert_cmpuint(appended.stored, ==, 3);
  result_clear(&appended);
  append_one(f, messages_change(f, OTHER, "wamid.1"), NOW, 1, 0);

  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    seqs[i] = ((RxEvent *) g_ptr_array_index(events, i))->seq;

  ack(f, ACCOUNT, seqs[1]);
  left = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(left->len, ==, 1);
  g_assert_cmpint(((RxEvent *) g_ptr_array_index(left, 0))->seq, ==, seqs[2]);
  others = fetch(f, OTHER, 0, 100); /* another account's events stay */
  g_assert_cmpuint(others->len, ==, 1);

  /* an ack queued right behind an append sees it */
  rx_journal_append(f->journal, g_ptr_array_new_full(1, (GDestroyNotify) rx_change_free), NOW, on_append, &appended);
  test_wait_count_in(f->context, appended.calls, 1, DEADLINE_S);
  result_clear(&appended);
  changes = g_ptr_array_new(); /* no free function: the journal frees the changes anyway */
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.4"));
  rx_journal_append(f->journal, changes, NOW, on_append, &appended);
  rx_journal_ack(f->journal, ACCOUNT, G_MAXINT64, on_done, &acked);
  test_wait_count_in(f->context, acked.calls, 1, DEADLINE_S);
  g_assert_cmpuint(appended.calls, ==, 1); /* answered in order */
  g_assert_no_error(appended.error);
  g_assert_cmpuint(appended.stored, ==, 1);
  g_assert_no_error(acked.error);
  none = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(none->len, ==, 0);
  result_clear(&appended);
  result_clear(&acked);
}

static gint64
last_seq(Fixture *f, const char *account)
{
  g_autoptr(GPtrArray) events = fetch(f, account, 0, 1000);

  g_assert_cmpuint(events->len, >, 0);
  return ((RxEvent *) g_ptr_array_index(events, events->len - 1))->seq;
}

static void
test_seq_never_reused(Fixture *f, gconstpointer data)
{
  gint64 a, b, c;

  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  a = last_seq(f, ACCOUNT);
  ack(f, ACCOUNT, a);
  /* the table is empty now: a plain rowid would hand out a again */
  append_one(f, messages_change(f, ACCOUNT, "wamid.2"), NOW, 1, 0);
  b = last_seq(f, ACCOUNT);
  g_assert_cmpint(b, >, a);
  ack(f, ACCOUNT, b);
  reopen(f, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.3"), NOW, 1, 0);
  c = last_seq(f, ACCOUNT);
  g_assert_cmpint(c, >, b);
}

static void
save_account(Fixture *f, const char *account, const char *json)
{
  Result r = {0};

  rx_journal_save_account(f->journal, account, json, on_done, &r);
  test_wait_count_in(f->context, r.calls, 1, DEADLINE_S);
  g_assert_no_error(r.error);
  result_clear(&r);
}

static void
test_accounts(Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) first = NULL;
  g_autoptr(GHashTable) after_remove = NULL;
  g_autoptr(GHashTable) after_restart = NULL;
  g_autoptr(GHashTable) counts = NULL;
  g_autoptr(GPtrArray) events = NULL;
  Result r = {0};

  first = load_accounts(f);
  g_assert_cmpuint(g_hash_table_size(first), ==, 0);
  g_clear_pointer(&first, g_hash_table_unref);

  save_account(f, ACCOUNT, "{\"account\":\"" ACCOUNT "\",\"port\":8090}");
  save_account(f, OTHER, "{\"account\":\"" OTHER "\"}");
  save_account(f, ACCOUNT, "{\"account\":\"" ACCOUNT "\",\"port\":8091}"); /* replaces */
  first = load_accounts(f);
  g_assert_cmpuint(g_hash_table_size(first), ==, 2);
  g_assert_cmpstr(g_hash_table_lookup(first, ACCOUNT), ==, "{\"account\":\"" ACCOUNT "\",\"port\":8091}");
  g_assert_cmpstr(g_hash_table_lookup(first, OTHER), ==, "{\"account\":\"" OTHER "\"}");

  append_one(f, messages_change(f, ACCOUNT, "wamid.1,wamid.2"), NOW, 1, 0);
  append_one(f, messages_change(f, OTHER, "wamid.3"), NOW, 1, 0);

  rx_journal_remove_account(f->journal, ACCOUNT, on_done, &r);
  test_wait_count_in(f->context, r.calls, 1, DEADLINE_S);
  g_assert_no_error(r.error);
  result_clear(&r);

  after_remove = load_accounts(f);
  g_assert_cmpuint(g_hash_table_size(after_remove), ==, 1);
  g_assert_true(g_hash_table_contains(after_remove, OTHER));
  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 0); /* its events went with it */
  counts = pending(f);
  g_assert_cmpuint(g_hash_table_size(counts), ==, 1);
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, OTHER)), ==, 1);

  reopen(f, 0);
  after_restart = load_accounts(f);
  g_assert_cmpuint(g_hash_table_size(after_restart), ==, 1);
  g_assert_cmpstr(g_hash_table_lookup(after_restart, OTHER), ==, "{\"account\":\"" OTHER "\"}");
}

/* TRUE when @needle occurs in any file of the journal directory. */
static gboolean
dir_contains(Fixture *f, const char *needle)
{
  g_autoptr(GDir) dir = g_dir_open(f->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
    g_autofree char *path = g_build_filename(f->dir, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;

    if (g_file_get_contents(path, &data, &len, NULL) && memmem(data, len, needle, strlen(needle)) != NULL)
      return TRUE;
  }
  return FALSE;
}

/* A registration of @size bytes ending in @secret (large ones spill into
 * overflow pages, which a delete would otherwise leave readable). */
static char *
registration_with(const char *account, const char *secret, gsize size)
{
  g_autofree char *padding = g_strnfill(size, 'p');

  return g_strdup_printf("{\"account\":\"%s\",\"padding\":\"%s\",\"app_secret\":\"%s\"}", account, padding, secret);
}

/* Registrations hold app secrets: they are sealed on disk (never in plain),
 * read back intact, and a row written before sealing is still read and is
 * sealed (and its plain text zeroed, secure_delete) when it is saved again. */
static void
test_registrations_sealed(Fixture *f, gconstpointer data)
{
  g_autofree char *reg = registration_with(ACCOUNT, "the-secret-0123456789", 100);
  g_autofree char *legacy = registration_with(OTHER, "legacy-secret-555555555", 10000);
  g_autofree char *legacy_again = registration_with(OTHER, "legacy-secret-555555555", 100);
  g_autofree char *path = g_build_filename(f->dir, "journal.db", NULL);
  g_autofree char *insert = NULL;
  g_autoptr(GHashTable) accounts = NULL;
  sqlite3 *db = NULL;

  save_account(f, ACCOUNT, reg);
  reopen(f, 0); /* checkpointed into the database file */
  g_assert_false(dir_contains(f, "the-secret-0123456789"));
  accounts = load_accounts(f);
  g_assert_cmpstr(g_hash_table_lookup(accounts, ACCOUNT), ==, reg);
  g_clear_pointer(&accounts, g_hash_table_unref);

  /* a row from before sealing, in plain JSON */
  g_clear_pointer(&f->journal, rx_journal_close);
  insert = g_strdup_printf("INSERT INTO accounts (account, json) VALUES ('%s', '%s')", OTHER, legacy);
  g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_exec(db, insert, NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
  reopen(f, 0);
  g_assert_true(dir_contains(f, "legacy-secret-555555555"));
  accounts = load_accounts(f);
  g_assert_cmpstr(g_hash_table_lookup(accounts, OTHER), ==, legacy);
  g_assert_cmpstr(g_hash_table_lookup(accounts, ACCOUNT), ==, reg);
  /* the plugin registers again: sealed, the plain text gone */
  save_account(f, OTHER, legacy_again);
  reopen(f, 0);
  g_assert_false(dir_contains(f, "legacy-secret-555555555"));
  g_clear_pointer(&accounts, g_hash_table_unref);
  accounts = load_accounts(f);
  g_assert_cmpstr(g_hash_table_lookup(accounts, OTHER), ==, legacy_again);
}

static void
test_pending(Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) empty = pending(f);
  g_autoptr(GHashTable) counts = NULL;
  g_autoptr(GHashTable) after_ack = NULL;
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  Result r = {0};

  g_assert_cmpuint(g_hash_table_size(empty), ==, 0);
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  g_ptr_array_add(changes, messages_change(f, OTHER, "wamid.2"));
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.3"));
  append_wait(f, changes, NOW, &r);
  g_assert_cmpuint(r.stored, ==, 3);
  result_clear(&r);

  counts = pending(f);
  g_assert_cmpuint(g_hash_table_size(counts), ==, 2);
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, ACCOUNT)), ==, 2);
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, OTHER)), ==, 1);

  ack(f, ACCOUNT, G_MAXINT64);
  after_ack = pending(f);
  g_assert_false(g_hash_table_contains(after_ack, ACCOUNT));
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(after_ack, OTHER)), ==, 1);
}

static void
expire(Fixture *f, gint64 now, gint64 horizon)
{
  Result r = {0};

  rx_journal_expire(f->journal, now, horizon, on_done, &r);
  test_wait_count_in(f->context, r.calls, 1, DEADLINE_S);
  g_assert_no_error(r.error);
  result_clear(&r);
}

static void
test_expire(Fixture *f, gconstpointer data)
{
  const gint64 day = 86400;

  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.2"), NOW + 20 * day, 1, 0);
  /* 29 days later: both still known */
  expire(f, NOW + 29 * day, 30 * day);
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW + 29 * day, 0, 1);
  /* 31 days later: the first is forgotten and accepted again; the second is not */
  expire(f, NOW + 31 * day, 30 * day);
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW + 31 * day, 1, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.2"), NOW + 31 * day, 0, 1);
}

/* A change too big for a journal of 16 pages. */
static RxChange *
big_change(Fixture *f, const char *id)
{
  g_autofree char *body = g_strnfill(256 * 1024, 'x');
  g_autofree char *json =
    g_strdup_printf("{" METADATA ",\"messages\":[{\"id\":\"%s\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]}", id,
                    body);

  return change_new(f, ACCOUNT, WABA, ENTRY_TIME, "messages", json);
}

static void
test_storage_full(Fixture *f, gconstpointer data)
{
  GPtrArray *changes;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GHashTable) counts = NULL;
  g_autoptr(GPtrArray) stored = NULL;
  Result big = {0};
  Result small = {0};

  f->journal = open_journal(f, 16);

  changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.small"));
  g_ptr_array_add(changes, big_change(f, "wamid.big"));
  append_wait(f, changes, NOW, &big);
  g_assert_error(big.error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE);
  g_assert_cmpuint(big.stored, ==, 0);
  result_clear(&big);

  /* several appends in one failing transaction all fail */
  rx_journal_test_hold(f->journal, TRUE);
  changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  g_ptr_array_add(changes, big_change(f, "wamid.big"));
  rx_journal_append(f->journal, changes, NOW, on_append, &big);
  changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.other"));
  rx_journal_append(f->journal, changes, NOW, on_append, &small);
  rx_journal_test_hold(f->journal, FALSE);
  test_wait_count_in(f->context, small.calls, 1, DEADLINE_S);
  g_assert_cmpuint(big.calls, ==, 1);
  g_assert_error(big.error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE);
  g_assert_error(small.error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE);
  g_assert_cmpuint(small.stored, ==, 0);
  result_clear(&big);
  result_clear(&small);

  /* nothing was stored and no hash recorded: the small ones go in now */
  events = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(events->len, ==, 0);
  counts = pending(f);
  g_assert_cmpuint(g_hash_table_size(counts), ==, 0);
  settle(f);
  g_assert_cmpuint(f->news->len, ==, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.small"), NOW, 1, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.other"), NOW, 1, 0);

  /* with room, Meta's retry of the big one is stored */
  reopen(f, 0);
  append_one(f, big_change(f, "wamid.big"), NOW, 1, 0);
  stored = fetch(f, ACCOUNT, 0, 100);
  g_assert_cmpuint(stored->len, ==, 3);
}

static void
test_schema_newer(Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename(f->dir, "journal.db", NULL);
  g_autoptr(GError) error = NULL;
  sqlite3 *db = NULL;
  RxJournal *journal;

  g_clear_pointer(&f->journal, rx_journal_close);
  g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);

  journal = rx_journal_open(f->dir, f->context, 0, &error);
  g_assert_null(journal);
  g_assert_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_SCHEMA);
  g_assert_nonnull(strstr(error->message, "newer"));
}

/* The directory test_second_open() locks: known to its subprocess through
 * the parent's pid (setenv() is unsafe once threads ran). */
static char *
lock_test_tmp(pid_t owner)
{
  return g_strdup_printf("%s/test-journal-lock-%d", g_get_tmp_dir(), (int) owner);
}

static void
test_second_open(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  RxJournal *second;

  if (g_test_subprocess()) {
    /* another process: the journal the parent holds open is refused */
    g_autofree char *tmp = lock_test_tmp(getppid());
    g_autofree char *dir = g_build_filename(tmp, "state", NULL);
    RxJournal *other = rx_journal_open(dir, f->context, 0, &error);

    g_assert_null(other);
    g_assert_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN);
    g_print("%s\n", error->message);
    return;
  }

  test_remove_tree(f->tmp);
  g_free(f->tmp);
  g_free(f->dir);
  f->tmp = lock_test_tmp(getpid());
  f->dir = g_build_filename(f->tmp, "state", NULL);
  test_remove_tree(f->tmp); /* left over by a crashed run */
  g_assert_cmpint(g_mkdir(f->tmp, 0700), ==, 0);
  f->journal = open_journal(f, 0);

  /* in this process */
  second = rx_journal_open(f->dir, f->context, 0, &error);
  g_assert_null(second);
  g_assert_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN);
  g_assert_cmpstr(error->message, ==, "the journal is in use by another receiver");
  g_clear_error(&error);

  /* in another process, after that attempt and while this one writes */
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 1, 0);
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed();
  g_test_trap_assert_stdout("the journal is in use by another receiver*");

  /* still ours and working; free again once closed */
  append_one(f, messages_change(f, ACCOUNT, "wamid.2"), NOW, 1, 0);
  reopen(f, 0);
  append_one(f, messages_change(f, ACCOUNT, "wamid.2"), NOW, 0, 1);
}

static void
test_group_commit(Fixture *f, gconstpointer data)
{
  const char *const accounts[] = {ACCOUNT, ACCOUNT, OTHER, ACCOUNT, ACCOUNT, ACCOUNT};
  const char *const ids[] = {"wamid.1", "wamid.2", "wamid.3", "wamid.4", "wamid.1", "wamid.5"};
  Result results[G_N_ELEMENTS(ids)] = {{0}};
  g_autofree char *expected_account = NULL;
  g_autofree char *expected_other = NULL;
  guint all = 0;

  rx_journal_test_hold(f->journal, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
    GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);

    g_ptr_array_add(changes, messages_change(f, accounts[i], ids[i]));
    rx_journal_append(f->journal, changes, NOW, on_append, &results[i]);
  }
  rx_journal_test_hold(f->journal, FALSE);
  test_wait_count_in(f->context, results[G_N_ELEMENTS(ids) - 1].calls, 1, DEADLINE_S);

  for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
    g_assert_cmpuint(results[i].calls, ==, 1);
    g_assert_no_error(results[i].error);
    /* the fifth repeats the first, in the same transaction */
    g_assert_cmpuint(results[i].stored, ==, i == 4 ? 0 : 1);
    g_assert_cmpuint(results[i].duplicates, ==, i == 4 ? 1 : 0);
    all += results[i].stored;
    result_clear(&results[i]);
  }
  g_assert_cmpuint(all, ==, 5);

  /* one commit: one notification per account, with its highest seq */
  settle(f);
  g_assert_cmpuint(f->news->len, ==, 2);
  expected_account = g_strdup_printf(ACCOUNT ":%" G_GINT64_FORMAT, last_seq(f, ACCOUNT));
  expected_other = g_strdup_printf(OTHER ":%" G_GINT64_FORMAT, last_seq(f, OTHER));
  g_assert_true(g_ptr_array_find_with_equal_func(f->news, expected_account, g_str_equal, NULL));
  g_assert_true(g_ptr_array_find_with_equal_func(f->news, expected_other, g_str_equal, NULL));
}

static void
test_close_delivers(Fixture *f, gconstpointer data)
{
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  Result appended = {0};
  Result fetched = {0};
  Result counted = {0};

  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  rx_journal_append(f->journal, changes, NOW, on_append, &appended);
  rx_journal_fetch(f->journal, ACCOUNT, 0, 10, on_fetch, &fetched);
  rx_journal_pending(f->journal, on_counts, &counted);
  g_clear_pointer(&f->journal, rx_journal_close);

  /* processed before the worker stopped; answered when the context runs */
  g_assert_cmpuint(appended.calls, ==, 0);
  test_wait_count_in(f->context, counted.calls, 1, DEADLINE_S);
  g_assert_cmpuint(appended.calls, ==, 1);
  g_assert_cmpuint(appended.stored, ==, 1);
  g_assert_cmpuint(fetched.calls, ==, 1);
  g_assert_no_error(fetched.error);
  g_assert_cmpuint(fetched.events->len, ==, 1);
  g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counted.counts, ACCOUNT)), ==, 1);
  /* a closed journal announces nothing: no one could fetch the event */
  while (g_main_context_iteration(f->context, FALSE))
    ;
  g_assert_cmpuint(f->news->len, ==, 0);
  result_clear(&appended);
  result_clear(&fetched);
  result_clear(&counted);

  /* and it was committed */
  f->journal = open_journal(f, 0);
  g_ptr_array_unref(fetch(f, ACCOUNT, 0, 10));
  append_one(f, messages_change(f, ACCOUNT, "wamid.1"), NOW, 0, 1);
}

static void
test_default_context(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
  RxJournal *journal;
  Result r = {0};

  /* with the global default context, no one iterating it, the answer must
   * still wait for this thread (g_main_context_invoke would run it on the
   * worker) */
  journal = rx_journal_open(f->dir, NULL, 0, &error);
  g_assert_no_error(error);
  current_context = g_main_context_default();
  g_ptr_array_add(changes, messages_change(f, ACCOUNT, "wamid.1"));
  rx_journal_append(journal, changes, NOW, on_append, &r);
  /* synchronous, behind the append: the worker has answered it once this returns */
  g_hash_table_unref(rx_journal_load_accounts(journal, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(r.calls, ==, 0);
  test_wait_count_in(g_main_context_default(), r.calls, 1, DEADLINE_S);
  g_assert_cmpuint(r.stored, ==, 1);
  result_clear(&r);
  rx_journal_close(journal);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  current_context = f->context;
}

static void
test_checkpoint(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) events = NULL;

  for (guint i = 1; i < CHECKPOINT_COMMITS; i++) {
    g_autofree char *id = g_strdup_printf("wamid.%u", i);

    append_one(f, messages_change(f, ACCOUNT, id), NOW, 1, 0);
  }
  g_assert_cmpint(file_size(f->dir, "journal.db-wal"), >, 0);
  /* the commit that reaches the count checkpoints and truncates the WAL */
  append_one(f, messages_change(f, ACCOUNT, "wamid.last"), NOW, 1, 0);
  g_assert_cmpint(file_size(f->dir, "journal.db-wal"), ==, 0);
  /* and the database holds them all */
  reopen(f, 0);
  events = fetch(f, ACCOUNT, 0, 1000);
  g_assert_cmpuint(events->len, ==, CHECKPOINT_COMMITS);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  main_thread = g_thread_self();

#define ADD(path, func, opens_itself) \
  g_test_add("/journal/" path, Fixture, (opens_itself) ? "" : NULL, fixture_set_up, func, fixture_tear_down)
  ADD("modes", test_modes, TRUE);
  ADD("key-file", test_key_file, FALSE);
  ADD("append-fetch-sealed", test_append_fetch_sealed, FALSE);
  ADD("dedupe-messages", test_dedupe_messages, FALSE);
  ADD("dedupe-statuses", test_dedupe_statuses, FALSE);
  ADD("partial-duplicate", test_partial_duplicate, FALSE);
  ADD("shared-subtree", test_shared_subtree, FALSE);
  ADD("duplicates-with-errors", test_duplicates_with_errors, FALSE);
  ADD("replay-any-field", test_replay_any_field, FALSE);
  ADD("keys-of-older-journals", test_keys_of_older_journals, FALSE);
  ADD("keys-per-event", test_keys_per_event, FALSE);
  ADD("pending-cap", test_pending_cap, FALSE);
  ADD("free-space-floor", test_free_space_floor, FALSE);
  ADD("ack", test_ack, FALSE);
  ADD("seq-never-reused", test_seq_never_reused, FALSE);
  ADD("accounts", test_accounts, FALSE);
  ADD("registrations-sealed", test_registrations_sealed, FALSE);
  ADD("pending", test_pending, FALSE);
  ADD("expire", test_expire, FALSE);
  ADD("storage-full", test_storage_full, TRUE);
  ADD("schema-newer", test_schema_newer, FALSE);
  ADD("second-open", test_second_open, TRUE);
  ADD("group-commit", test_group_commit, FALSE);
  ADD("close-delivers", test_close_delivers, FALSE);
  ADD("default-context", test_default_context, TRUE);
  ADD("checkpoint", test_checkpoint, FALSE);
#undef ADD
  return g_test_run();
}
