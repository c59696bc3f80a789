/* bench/scale-store.c: fills an account's encrypted store through the store
 * API, fast, for the scale bench (bench/scale.py): a number of customers,
 * each with a profile name, and a number of inbound text messages spread
 * over them, written with many requests outstanding so that they share
 * group commits. It opens the store a signed-on account left (key-file
 * mode: USER_DIR/wabiz/keys/PNID.store-key and USER_DIR/wabiz/store/PNID.db)
 * and marks every message shown, as applying it would. With --blist N it
 * also writes N buddies (the first N customers, with their store ids) into
 * a blist.xml fragment on stdout.
 *
 *   scale-store USER_DIR PNID CUSTOMERS MESSAGES [--first K] [--blist N]
 *
 * Not a test; prints what it wrote and how fast on stderr.
 * Must not: be linked into the plugin. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

#include "wa-crypt.h"
#include "wa-loop.h"
#include "wa-store.h"

#define OUTSTANDING 2048

typedef struct {
  GMainLoop *main;
  WaStore *store;
  WaKey *file_key;
  guint64 customers;
  guint64 total;
  guint64 first;
  guint64 next;
  guint64 done;
  guint outstanding;
  guint64 errors;
  guint64 blist;
  char **customer_ids; /* of the first blist customers */
  gint64 started;
  gint64 now;
} Fill;

static void pump(Fill *f);

static void
customer_number(const Fill *f, guint64 i, char out[16])
{
  g_snprintf(out, 16, "4915%09" G_GUINT64_FORMAT, 100000000 + i % f->customers);
}

static void
marked_cb(const GError *error, gpointer data)
{
  Fill *f = data;

  if (error != NULL)
    f->errors++;
  f->outstanding--;
  f->done++;
  if (f->done % 100000 == 0)
    fprintf(stderr, "%" G_GUINT64_FORMAT " messages, %.0f/s\n", f->done,
            f->done / ((g_get_monotonic_time() - f->started) / 1e6));
  pump(f);
}

typedef struct {
  Fill *f;
  guint64 i;
} Job;

static void
stored_cb(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  Job *job = data;
  Fill *f = job->f;
  guint64 c = job->i % f->customers;

  g_free(job);
  if (error != NULL || result->message_id == NULL) {
    f->errors++;
    f->outstanding--;
    f->done++;
    pump(f);
    return;
  }
  if (c < f->blist && f->customer_ids[c] == NULL && result->customer.customer != NULL)
    f->customer_ids[c] = g_strdup(result->customer.customer->id);
  wa_store_message_mark_shown(f->store, result->message_id, marked_cb, f);
}

static void
flushed_cb(const GError *error, gpointer data)
{
  Fill *f = data;

  g_main_loop_quit(f->main);
}

static void
pump(Fill *f)
{
  while (f->outstanding < OUTSTANDING && f->next < f->total) {
    guint64 i = f->first + f->next;
    char wa_id[16];
    g_autofree char *wamid = g_strdup_printf("wamid.scale-%" G_GUINT64_FORMAT, i);
    g_autofree char *body = g_strdup_printf("scale message %" G_GUINT64_FORMAT, i);
    g_autofree char *name = NULL;
    WaStoreInbound in = {0};
    Job *job = g_new0(Job, 1);

    customer_number(f, i, wa_id);
    name = g_strdup_printf("Customer %" G_GUINT64_FORMAT, i % f->customers);
    in.wa_id = wa_id;
    in.profile_name = name;
    in.direction = WA_STORE_IN;
    in.wamid = wamid;
    in.type = "text";
    in.body = body;
    /* oldest first, the newest a minute ago */
    in.timestamp = f->now - 60 - (gint64) (f->total - f->next) / 100;
    job->f = f;
    job->i = i;
    f->next++;
    f->outstanding++;
    wa_store_inbound(f->store, &in, stored_cb, job);
  }
  if (f->done == f->total && f->outstanding == 0)
    wa_store_flush(f->store, flushed_cb, f);
}

static void
unlocked_cb(const GError *error, gpointer data)
{
  Fill *f = data;

  if (error != NULL) {
    fprintf(stderr, "cannot unlock the store: %s\n", error->message);
    exit(1);
  }
  f->started = g_get_monotonic_time();
  pump(f);
}

static void
opened_cb(const char *header_json, const GError *error, gpointer data)
{
  Fill *f = data;
  g_autoptr(GError) local = NULL;
  g_autoptr(WaKeyHeader) header = NULL;
  g_autoptr(WaKey) data_key = NULL;

  if (error != NULL || header_json == NULL) {
    fprintf(stderr, "cannot open the store (sign the account on once first): %s\n",
            error != NULL ? error->message : "no key header");
    exit(1);
  }
  header = wa_key_header_from_json(header_json, &local);
  if (header != NULL)
    data_key = wa_key_header_unlock_keyfile(header, f->file_key, &local);
  if (data_key == NULL) {
    fprintf(stderr, "cannot unlock the store with its key file: %s\n", local->message);
    exit(1);
  }
  wa_store_unlock(f->store, data_key, NULL, unlocked_cb, f);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *key_name = NULL;
  g_autofree char *key_path = NULL;
  g_autofree char *db_name = NULL;
  g_autofree char *db_path = NULL;
  Fill f = {0};
  double seconds;

  if (argc < 5) {
    fprintf(stderr, "usage: %s USER_DIR PNID CUSTOMERS MESSAGES [--first K] [--blist N]\n", argv[0]);
    return 2;
  }
  f.customers = g_ascii_strtoull(argv[3], NULL, 10);
  f.total = g_ascii_strtoull(argv[4], NULL, 10);
  for (int i = 5; i + 1 < argc; i += 2) {
    if (g_str_equal(argv[i], "--first"))
      f.first = g_ascii_strtoull(argv[i + 1], NULL, 10);
    else if (g_str_equal(argv[i], "--blist"))
      f.blist = g_ascii_strtoull(argv[i + 1], NULL, 10);
  }
  if (f.customers == 0 || f.blist > f.customers || f.blist > f.total) {
    fprintf(stderr, "CUSTOMERS must be > 0, --blist at most CUSTOMERS and MESSAGES\n");
    return 2;
  }
  f.customer_ids = g_new0(char *, f.blist + 1);
  f.now = g_get_real_time() / G_USEC_PER_SEC;
  key_name = g_strconcat(argv[2], ".store-key", NULL);
  key_path = g_build_filename(argv[1], "wabiz", "keys", key_name, NULL);
  db_name = g_strconcat(argv[2], ".db", NULL);
  db_path = g_build_filename(argv[1], "wabiz", "store", db_name, NULL);
  f.file_key = wa_keyfile_load_or_create(key_path, &error);
  if (f.file_key == NULL) {
    fprintf(stderr, "%s: %s\n", key_path, error->message);
    return 1;
  }
  f.main = g_main_loop_new(NULL, FALSE);
  f.store = wa_store_open(wa_loop_glib(), db_path, NULL, opened_cb, &f);
  if (f.store == NULL) {
    fprintf(stderr, "cannot start the store\n");
    return 1;
  }
  g_main_loop_run(f.main);
  seconds = (g_get_monotonic_time() - f.started) / 1e6;
  wa_store_close(f.store);
  fprintf(stderr,
          "%" G_GUINT64_FORMAT " messages (%" G_GUINT64_FORMAT " errors) over %" G_GUINT64_FORMAT
          " customers in %.1f s: %.0f/s\n",
          f.done, f.errors, f.customers, seconds, f.done / seconds);
  for (guint64 c = 0; c < f.blist; c++) {
    char wa_id[16];
    g_autofree char *escaped = NULL;

    customer_number(&f, c, wa_id);
    escaped = g_markup_escape_text(f.customer_ids[c] != NULL ? f.customer_ids[c] : "", -1);
    printf("%s %s\n", wa_id, escaped);
  }
  g_strfreev(f.customer_ids);
  wa_key_free(f.file_key);
  g_main_loop_unref(f.main);
  return f.errors > 0 ? 1 : 0;
}
