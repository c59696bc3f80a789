/* rx-journal.h: wabiz-receiver's durable journal (SQLite).
 *
 * One database file per receiver, <dir>/journal.db, created 0600 inside the
 * 0700 state directory before SQLite opens it. A single worker thread owns the
 * only connection (WAL, synchronous=FULL, locking_mode=EXCLUSIVE, auto-checkpoint
 * off, checkpoints from the worker): every request below is queued to it (in
 * order, through a second thread that prepares appends) and its answer comes
 * back as a callback on the GMainContext given at open.
 * Appends queued while a transaction is open join the next one (group commit).
 *
 * The journal holds: registrations (JSON text per account), sealed events per
 * account with a strictly growing seq, and keyed hashes of whole changes, of
 * message ids and of (status id, status) seen in the last 30 days, for
 * deduplication. The hash key is a random 32-byte secret kept in
 * <dir>/journal.key (0600).
 *
 * Bounds: a change whose account has max_pending bytes of sealed events
 * waiting (and at least one) is refused, and so is every append while the
 * journal's file system has less than the floor free (rx_journal_set_min_free):
 * both fail with RX_JOURNAL_ERROR_FULL, whose message says what to do.
 *
 * Must not: call back on the worker thread, log message content, ids or keys,
 * or keep anything it could open (it only ever holds sealed events). */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "wa-seal.h"

G_BEGIN_DECLS

#define RX_JOURNAL_ERROR (rx_journal_error_quark())
GQuark rx_journal_error_quark(void);

typedef enum {
  RX_JOURNAL_ERROR_OPEN,    /* cannot create, open or lock the database */
  RX_JOURNAL_ERROR_SCHEMA,  /* written by a newer receiver */
  RX_JOURNAL_ERROR_STORAGE, /* a write failed (disk full, I/O error): nothing was stored */
  RX_JOURNAL_ERROR_FULL,    /* refused: the account's cap or the free-space floor (message for a person) */
} RxJournalError;

typedef struct _RxJournal RxJournal;
typedef struct _RxPrepared RxPrepared;

/* One accepted webhook change, routed to one account. */
typedef struct {
  char *account;                               /* phone number ID */
  guint8 public_key[WA_SEAL_PUBLIC_KEY_BYTES]; /* the account's key at routing time */
  char *waba_id;                               /* entry[].id; may be NULL */
  gint64 entry_time;                           /* entry[].time; 0 when absent */
  char *field;                                 /* changes[].field */
  JsonNode *value;                             /* changes[].value (an object); owned */
  gint64 max_pending;                          /* the account's cap on pending sealed bytes; 0 = none */
  RxPrepared *prepared;                        /* private: its dedupe keys and envelope (rx-journal.c) */
} RxChange;

RxChange *rx_change_new(const char *account, const guint8 *public_key, const char *waba_id, gint64 entry_time,
                        const char *field, JsonNode *value /* taken */);
void rx_change_free(RxChange *change);

typedef struct {
  gint64 seq;
  gint64 received; /* Unix seconds */
  GBytes *sealed;
} RxEvent;

void rx_event_free(RxEvent *event);

/* Opens (creating when missing) <dir>/journal.db. @max_page_count > 0 caps the
 * database size (tests inject SQLITE_FULL with it). Callbacks run on @context. */
RxJournal *rx_journal_open(const char *dir, GMainContext *context, gint64 max_page_count, GError **error);
/* Finishes queued requests (their callbacks still run if the context is
 * iterated), joins the worker and closes the database. */
void rx_journal_close(RxJournal *journal);

/* Appends are refused (RX_JOURNAL_ERROR_FULL) while the file system holding
 * the journal has less than @bytes free (0 = no floor); for appends queued
 * after the call. */
void rx_journal_set_min_free(RxJournal *journal, gint64 bytes);

/* Called on the context after each commit that stored events for @account,
 * with the highest seq stored. */
typedef void (*RxJournalNewFunc)(const char *account, gint64 last_seq, gpointer data);
void rx_journal_set_new_func(RxJournal *journal, RxJournalNewFunc func, gpointer data);

/* Deduplicates, seals and stores @changes (RxChange*, taken) at Unix time @now,
 * in one transaction shared with other queued appends. The changes' dedupe
 * keys and envelopes are made on the journal's preparer thread (each value
 * serialised once), not on the caller's nor on the worker, which only
 * records, seals and inserts. A change whose bytes
 * (entry id and time, field, value) were journalled before is dropped as a
 * duplicate (a replayed delivery). A message or status
 * already seen (or seen earlier in the same batch) is removed from the value's
 * "messages" / "statuses" arrays, and so are elements of them that are not
 * objects, and "messages" / "statuses" members that are not arrays (nothing
 * could read them; objects without an id are kept). A change whose arrays all
 * became empty, and that has nothing else ("errors" or any other member besides
 * messaging_product, metadata and contacts), is dropped; it counts as a
 * duplicate only when a duplicate was removed from it. @done gets the
 * numbers stored and dropped, or a STORAGE error when the commit failed (then
 * nothing of this batch is stored and no hash is recorded), or a FULL error
 * when a bound refused it (then nothing of @changes is stored). */
typedef void (*RxAppendFunc)(guint stored, guint duplicates, const GError *error, gpointer data);
void rx_journal_append(RxJournal *journal, GPtrArray *changes, gint64 now, RxAppendFunc done, gpointer data);

/* Up to @limit events of @account with seq > @after_seq, oldest first.
 * @events (RxEvent*) belongs to the callback's caller: ref it to keep it. */
typedef void (*RxFetchFunc)(GPtrArray *events, const GError *error, gpointer data);
void rx_journal_fetch(RxJournal *journal, const char *account, gint64 after_seq, guint limit, RxFetchFunc done,
                      gpointer data);

typedef void (*RxDoneFunc)(const GError *error, gpointer data);
/* Deletes the events of @account with seq <= @upto_seq. */
void rx_journal_ack(RxJournal *journal, const char *account, gint64 upto_seq, RxDoneFunc done, gpointer data);

/* Registrations: @json is the REGISTER payload as the receiver keeps it. */
void rx_journal_save_account(RxJournal *journal, const char *account, const char *json, RxDoneFunc done, gpointer data);
/* Forgets the registration and deletes the account's events. */
void rx_journal_remove_account(RxJournal *journal, const char *account, RxDoneFunc done, gpointer data);
/* Every saved registration, (account -> json), read synchronously: only at start-up,
 * before any other request. */
GHashTable *rx_journal_load_accounts(RxJournal *journal, GError **error);

/* Pending (unacknowledged) events per account, account -> GINT_TO_POINTER(count). */
typedef void (*RxCountsFunc)(GHashTable *counts, const GError *error, gpointer data);
void rx_journal_pending(RxJournal *journal, RxCountsFunc done, gpointer data);

/* Deletes dedupe hashes older than @horizon_s seconds before @now (30 days in
 * production; the receiver runs this at start-up and daily). */
void rx_journal_expire(RxJournal *journal, gint64 now, gint64 horizon_s, RxDoneFunc done, gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(RxChange, rx_change_free)

G_END_DECLS
