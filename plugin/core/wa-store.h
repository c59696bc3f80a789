/* wa-store.h: the plugin's durable, encrypted per-account store (SQLite).
 *
 * One database file per account (the plugin uses
 * <purple user dir>/wabiz/store/<phone number id>.db), created 0600 in a 0700
 * directory before SQLite opens it, held with an exclusive lock (a second
 * open, in this or another process, fails with WA_STORE_ERROR_IN_USE).
 * One worker thread owns the only connection: every request below is queued
 * to it, runs in order, and its callback runs later on the WaLoop's thread
 * (the worker reports through a pipe watched with the loop's input_add).
 * Writes found queued together share one transaction (group commit); a write
 * that fails for a reason of its own (invalid, not found, tampered) is rolled
 * back alone, a storage failure (disk full, I/O) fails every request of that
 * transaction and nothing of it is stored. A write's callback runs only after
 * its commit, so the plugin may acknowledge an event when it is told "stored".
 *
 * Opening: wa_store_open() answers with the key header (the JSON of
 * wa_key_header_to_json, kept in plaintext; NULL for a new store). The caller
 * unlocks it off the main loop with wa-crypt and hands the data key to
 * wa_store_unlock() (with a new header for a new store). A wrong data key is
 * refused (WA_STORE_ERROR_WRONG_KEY) before anything is written. Requests
 * queued before the unlock has run fail with WA_STORE_ERROR_LOCKED; requests
 * queued right after wa_store_unlock() run after it (no need to wait).
 * Unlocking turns outbox rows left "sending" by a previous run into
 * "uncertain": they may have gone out.
 *
 * What is sealed (wa-crypt, XChaCha20-Poly1305, associated data = table,
 * column and the row's id): bodies, captions, raw events, error texts, profile
 * names, consent notes, outbox payloads, campaign recipients' params, a
 * customer's settings and wa_id / BSUID / wamid values with the customer's own random key (wrapped by the
 * WA_SUBKEY_STORE key, AD naming the customer; erasing the customer deletes
 * it); account settings with the WA_SUBKEY_STORE key. wa_id, BSUID and wamid
 * are found through keyed hashes (the index key, and the audit chain has a key
 * of its own: both were derived from the first data key, WA_SUBKEY_INDEX and
 * WA_SUBKEY_AUDIT, and are kept sealed in meta so that a key rotation keeps
 * them). Every row with sealed columns records its key generation (key_gen).
 * Plaintext: ids we made
 * up (random), timestamps, states, status ranks, directions, message types,
 * counts, consent scopes and sources, audit actions and details, the key
 * header, setting names, campaign names, templates, languages, categories and
 * skip reasons (so none of these may contain personal data).
 *
 * Memory: everything a callback receives is borrowed for the duration of the
 * callback. Ref a GPtrArray / GHashTable to keep it (its elements stay valid
 * with it), or copy a record with its _copy function. Free functions wipe
 * decrypted strings. Requests copy their arguments; callers keep theirs.
 *
 * Times are Unix seconds; "now" comes from the WaClock in the options, read
 * on the caller's thread when a request is queued.
 *
 * Must not: call back on the worker thread, log content, ids, hashes or keys,
 * include libpurple, block the calling thread except in wa_store_close(), or
 * change the process umask. */
#pragma once

#include <glib.h>

#include "wa-clock.h"
#include "wa-crypt.h"
#include "wa-loop.h"

G_BEGIN_DECLS

#define WA_STORE_ERROR (wa_store_error_quark())
GQuark wa_store_error_quark(void);

typedef enum {
  WA_STORE_ERROR_OPEN,       /* cannot create, open or configure the file */
  WA_STORE_ERROR_IN_USE,     /* another connection (process or account) holds the store */
  WA_STORE_ERROR_SCHEMA,     /* written by a newer plugin, or a migration failed */
  WA_STORE_ERROR_LOCKED,     /* not (successfully) unlocked, or closed */
  WA_STORE_ERROR_WRONG_KEY,  /* the data key does not belong to this store */
  WA_STORE_ERROR_STORAGE,    /* a read or write failed (disk full, I/O): nothing of its transaction stored */
  WA_STORE_ERROR_TAMPERED,   /* a sealed value did not open: altered, moved, or another customer's */
  WA_STORE_ERROR_NOT_FOUND,  /* no such customer / outbox entry */
  WA_STORE_ERROR_INVALID,    /* bad arguments, or an outbox transition that is not allowed */
  WA_STORE_ERROR_SUPPRESSED, /* refused: the number or BSUID is suppressed (opt-out, erasure) */
} WaStoreError;

typedef struct _WaStore WaStore;

typedef struct {
  WaClock *clock;        /* NULL: the system clock; must outlive the store */
  gint64 max_page_count; /* > 0: caps the file (tests inject SQLITE_FULL with it) */
} WaStoreOptions;

/* ---- records ------------------------------------------------------------------ */

typedef enum {
  WA_STORE_IN = 0,        /* from the customer */
  WA_STORE_OUT = 1,       /* sent by this plugin (through the outbox) */
  WA_STORE_ELSEWHERE = 2, /* sent by the business from elsewhere (another agent, the app) */
} WaStoreDirection;

/* Ranks: a status moves only upwards (a late "sent" never overwrites "read");
 * FAILED is final and replaces only NONE, SENT and DELIVERED. */
typedef enum {
  WA_STORE_STATUS_NONE = 0, /* inbound, or ours not yet confirmed */
  WA_STORE_STATUS_SENT = 1,
  WA_STORE_STATUS_DELIVERED = 2,
  WA_STORE_STATUS_READ = 3,
  WA_STORE_STATUS_PLAYED = 4,
  WA_STORE_STATUS_FAILED = 5,
} WaStoreStatus;

/* "sent", "delivered", ... (the Cloud API's words); NONE for anything else. */
WaStoreStatus wa_store_status_from_string(const char *status);
const char *wa_store_status_to_string(WaStoreStatus status);

typedef struct {
  char *id;              /* internal id: 32 hex digits, random, never reused */
  char *wa_id;           /* digits, or NULL */
  char *bsuid;           /* or NULL */
  char *name;            /* profile name, or NULL */
  gint64 newest_inbound; /* timestamp of the newest customer message (the window); 0 = none */
  gint64 created;
  gboolean tampered; /* a sealed field did not open: it is NULL here */
} WaStoreCustomer;

WaStoreCustomer *wa_store_customer_copy(const WaStoreCustomer *customer);
void wa_store_customer_free(WaStoreCustomer *customer);

typedef struct {
  char *id; /* 32 hex digits */
  char *customer_id;
  WaStoreDirection direction;
  char *type;    /* "text", "image", ... */
  char *body;    /* or NULL */
  char *caption; /* or NULL */
  char *wamid;   /* or NULL (ours before the API answered) */
  char *error;   /* failure reason, or NULL */
  gint64 timestamp;
  WaStoreStatus status;
  gint64 status_time; /* the latest status's timestamp, or 0 */
  guint64 outbox_id;  /* ours: the outbox entry; else 0 */
  gboolean expired;   /* body and caption deleted by retention */
  gboolean shown;     /* shown to the agent (wa_store_message_mark_shown); ours always */
  gboolean tampered;  /* a sealed field did not open: it is NULL here */
} WaStoreMessage;

WaStoreMessage *wa_store_message_copy(const WaStoreMessage *message);
void wa_store_message_free(WaStoreMessage *message);

typedef enum {
  WA_STORE_OUTBOX_QUEUED = 0,
  WA_STORE_OUTBOX_SENDING = 1,
  WA_STORE_OUTBOX_SENT = 2,
  WA_STORE_OUTBOX_UNCERTAIN = 3, /* the answer was lost: it may have gone out */
  WA_STORE_OUTBOX_FAILED = 4,
} WaStoreOutboxState;

#define WA_STORE_OUTBOX_MASK(state) (1u << (state))

typedef struct {
  guint64 id;       /* > 0, < 2^53; carried as "wabiz:<id>" (wa_sender_callback_data) */
  char *message_id; /* the conversation's record of it (direction OUT) */
  char *customer_id;
  WaStoreOutboxState state;
  char *body;    /* or NULL */
  char *payload; /* request details for non-text sends (JSON), or NULL */
  gboolean preview_url;
  guint attempts;      /* times it went to "sending" */
  gint64 next_attempt; /* not before (Unix s), 0 = now */
  char *wamid;         /* once sent, or NULL */
  char *error;         /* why it failed / is uncertain, or NULL */
  gint64 created;
  gint64 updated;
  gboolean tampered;
  gboolean campaign; /* a campaign recipient's send (wa_store_campaign_begin_sends): its runner paces it */
} WaStoreOutbox;

WaStoreOutbox *wa_store_outbox_copy(const WaStoreOutbox *entry);
void wa_store_outbox_free(WaStoreOutbox *entry);

typedef enum {
  WA_STORE_CONSENT_OPT_IN = 1,
  WA_STORE_CONSENT_OPT_OUT = 2,
} WaStoreConsentState;

typedef struct {
  char *id;
  char *customer_id;
  WaStoreConsentState state;
  char *scope;  /* e.g. "marketing", "utility" */
  char *source; /* e.g. "keyword", "agent", "import" */
  char *note;   /* or NULL */
  gint64 at;
  gboolean tampered;
} WaStoreConsent;

WaStoreConsent *wa_store_consent_copy(const WaStoreConsent *consent);
void wa_store_consent_free(WaStoreConsent *consent);

typedef enum {
  WA_STORE_SUPPRESS_OPT_OUT = 1,
  WA_STORE_SUPPRESS_ERASURE = 2,
} WaStoreSuppressReason;

typedef struct {
  gboolean ok;         /* every row and the head match */
  guint64 rows;        /* rows checked */
  gint64 first_broken; /* seq of the first row that does not verify, or 0 */
} WaStoreAuditReport;

/* ---- callbacks (all on the loop thread; arguments borrowed, see above) -------- */

typedef void (*WaStoreDoneFunc)(const GError *error, gpointer data);
/* @header_json: the stored key header, or NULL for a new store. */
typedef void (*WaStoreOpenFunc)(const char *header_json, const GError *error, gpointer data);
/* @customer: NULL when not found. */
typedef void (*WaStoreCustomerFunc)(const WaStoreCustomer *customer, const GError *error, gpointer data);
/* WaStoreCustomer* elements. */
typedef void (*WaStoreCustomersFunc)(GPtrArray *customers, const GError *error, gpointer data);
typedef void (*WaStoreMessageFunc)(const WaStoreMessage *message, const GError *error, gpointer data);
/* WaStoreMessage* elements, oldest first. */
typedef void (*WaStoreMessagesFunc)(GPtrArray *messages, const GError *error, gpointer data);
typedef void (*WaStoreOutboxFunc)(const WaStoreOutbox *entry, const GError *error, gpointer data);
/* WaStoreOutbox* elements, in the order they were queued. */
typedef void (*WaStoreOutboxListFunc)(GPtrArray *entries, const GError *error, gpointer data);
typedef void (*WaStoreConsentFunc)(const WaStoreConsent *latest, const GError *error, gpointer data);
typedef void (*WaStoreStringFunc)(const char *value, const GError *error, gpointer data);
/* name -> value, both strings. */
typedef void (*WaStoreSettingsFunc)(GHashTable *settings, const GError *error, gpointer data);
typedef void (*WaStoreCountFunc)(guint count, const GError *error, gpointer data);
typedef void (*WaStoreAuditFunc)(const WaStoreAuditReport *report, const GError *error, gpointer data);
/* @reason and @at are meaningful when @suppressed. */
typedef void (*WaStoreSuppressedFunc)(gboolean suppressed, WaStoreSuppressReason reason, gint64 at, const GError *error,
                                      gpointer data);

/* ---- life cycle ------------------------------------------------------------------ */

/* Starts the worker and queues the opening of @path: the directory is created
 * 0700 (and fixed), the file 0600 (O_CREAT|O_EXCL; looser modes fixed), the
 * lock taken, the schema created or migrated (a newer one: SCHEMA, nothing
 * touched), and @done gets the key header. Returns NULL only when the thread
 * or its pipe cannot be created. @options may be NULL. */
WaStore *wa_store_open(WaLoop *loop, const char *path, const WaStoreOptions *options, WaStoreOpenFunc done,
                       gpointer data);

/* Checks @data_key (copied) against the store and keeps it for the requests
 * that follow. A new store needs @new_header_json (stored with a key check,
 * in one transaction); for an existing one, a non-NULL @new_header_json
 * replaces the stored header (the passphrase was changed: re-wrapped), after
 * the key check. WRONG_KEY before anything is written. */
void wa_store_unlock(WaStore *store, const WaKey *data_key, const char *new_header_json, WaStoreDoneFunc done,
                     gpointer data);

/* Completes when everything queued before it has run (and is committed). */
void wa_store_flush(WaStore *store, WaStoreDoneFunc done, gpointer data);

/* Runs what is queued (so nothing accepted is lost), checkpoints, closes the
 * database, wipes every key, and frees @store. Blocks until the worker is
 * done. No callback of this store runs after it returns, including those of
 * requests that completed meanwhile. May be called from inside a callback. */
void wa_store_close(WaStore *store);

/* ---- customers -------------------------------------------------------------------- */

typedef enum {
  WA_STORE_ENSURE_DEFAULT = 0,
  /* do not create a customer whose wa_id or BSUID is suppressed (imports,
   * campaigns): SUPPRESSED instead */
  WA_STORE_ENSURE_REFUSE_SUPPRESSED = 1 << 0,
} WaStoreEnsureFlags;

typedef struct {
  const WaStoreCustomer *customer; /* after the change */
  gboolean created;
  gboolean linked; /* a wa_id or BSUID was added to an existing customer, or (found by
                          * BSUID) their wa_id replaced: a changed phone number */
  gboolean name_changed;
  gboolean window_moved; /* newest_inbound moved forward */
  gboolean conflict;     /* wa_id and BSUID name two different customers: the wa_id's is given, nothing linked */
} WaStoreCustomerUpdate;

typedef void (*WaStoreCustomerUpdateFunc)(const WaStoreCustomerUpdate *update, const GError *error, gpointer data);

/* Finds the customer by @wa_id and/or @bsuid (at least one), creating it when
 * neither is known; a known customer missing one of them gets it linked (one
 * customer, not two), and one found by BSUID with another wa_id gets the new
 * number. When the two name different customers, the wa_id's is used and
 * nothing is linked (conflict; merging is left to the agent). A non-NULL
 * @name different from the stored one replaces it. */
void wa_store_customer_ensure(WaStore *store, const char *wa_id, const char *bsuid, const char *name,
                              WaStoreEnsureFlags flags, WaStoreCustomerUpdateFunc done, gpointer data);
/* NULL @name clears it. */
void wa_store_customer_set_name(WaStore *store, const char *customer_id, const char *name,
                                WaStoreCustomerUpdateFunc done, gpointer data);
/* Moves newest_inbound to @timestamp if that is later (never back). */
void wa_store_customer_set_newest_inbound(WaStore *store, const char *customer_id, gint64 timestamp,
                                          WaStoreCustomerUpdateFunc done, gpointer data);
/* WhatsApp gave the customer a new BSUID (system message
 * user_changed_user_id): it replaces the old one, so that their messages
 * from the new one find the same customer and history. When another
 * customer already has it, nothing changes and the update says conflict;
 * the same BSUID again changes nothing (linked FALSE). */
void wa_store_customer_set_bsuid(WaStore *store, const char *customer_id, const char *bsuid,
                                 WaStoreCustomerUpdateFunc done, gpointer data);
/* By internal id. */
void wa_store_customer_get(WaStore *store, const char *customer_id, WaStoreCustomerFunc done, gpointer data);
/* By wa_id, else by BSUID (either may be NULL). */
void wa_store_customer_lookup(WaStore *store, const char *wa_id, const char *bsuid, WaStoreCustomerFunc done,
                              gpointer data);
/* Every customer (for buddies and windows at sign-on), oldest first. */
void wa_store_customers_list(WaStore *store, WaStoreCustomersFunc done, gpointer data);
/* Every customer who wrote (for the service windows at sign-on), oldest
 * first, with only id and newest_inbound set (nothing is decrypted). */
void wa_store_customers_windows(WaStore *store, WaStoreCustomersFunc done, gpointer data);

/* ---- messages ---------------------------------------------------------------------- */

/* A message from the customer (IN) or sent by the business elsewhere
 * (ELSEWHERE), as one receiver event gives it. */
typedef struct {
  const char *wa_id;          /* digits, or NULL */
  const char *bsuid;          /* or NULL; at least one of the two */
  const char *profile_name;   /* or NULL: unchanged */
  WaStoreDirection direction; /* IN or ELSEWHERE */
  const char *wamid;          /* required */
  const char *type;           /* required: "text", "image", ... */
  const char *body;           /* or NULL */
  const char *caption;        /* or NULL */
  const char *raw;            /* the event's JSON (for export), or NULL */
  gint64 timestamp;           /* the message's own timestamp */
  /* an attachment to fetch (image, sticker, audio, video, document), or
   * NULL: recorded as a pending download in the same transaction */
  const struct _WaStoreInboundMedia *media;
} WaStoreInbound;

/* ---- media (inbound attachments) --------------------------------------------------- */

typedef struct _WaStoreInboundMedia {
  const char *media_id;  /* required: the Cloud API's media id */
  const char *mime_type; /* or NULL */
  const char *sha256;    /* the webhook's digest (base64), or NULL */
  const char *filename;  /* a document's file name, or NULL */
  gboolean voice;        /* a voice note */
} WaStoreInboundMedia;

typedef enum {
  WA_STORE_MEDIA_PENDING = 0, /* to be downloaded (next_attempt says when) */
  WA_STORE_MEDIA_DONE = 1,    /* downloaded: the encrypted file is at path */
  WA_STORE_MEDIA_FAILED = 2,  /* could not be downloaded: error says why (final) */
  WA_STORE_MEDIA_EXPIRED = 3, /* its file was deleted by retention */
} WaStoreMediaState;

#define WA_STORE_MEDIA_MASK(state) (1u << (state))

/* One inbound attachment. Its file lives in the store's media directory
 * (wa_store_media_dir) under a random name, encrypted (wa-media.h) with
 * file_key, which the store keeps sealed with the customer's key. media_id,
 * sha256, filename, error and the file key are sealed; type, MIME type,
 * size, state, attempts and times are plaintext. */
typedef struct {
  char *id; /* 32 hex digits */
  char *message_id;
  char *customer_id;
  guint number; /* 1, 2, ... per customer: "/save N" */
  char *type;   /* "image", "document", ... */
  char *mime_type;
  char *media_id;
  char *sha256; /* as the webhook gave it, or NULL */
  char *filename;
  gboolean voice;
  gint64 size; /* bytes once known (the media endpoint, then the file), else 0 */
  WaStoreMediaState state;
  guint attempts;
  gint64 next_attempt;
  char *error;
  char *path;       /* the encrypted file's full path (it exists once DONE) */
  WaKey *file_key;  /* NULL when tampered */
  gint64 timestamp; /* the message's */
  gint64 created;
  gboolean tampered;
} WaStoreMedia;

WaStoreMedia *wa_store_media_copy(const WaStoreMedia *media);
void wa_store_media_free(WaStoreMedia *media);

/* The directory that holds the store's media files ("media/<name>" beside
 * the database file); the caller creates it 0700 before writing. */
char *wa_store_media_dir(WaStore *store);

/* @media NULL when not found. */
typedef void (*WaStoreMediaFunc)(const WaStoreMedia *media, const GError *error, gpointer data);
/* WaStoreMedia* elements, oldest first. */
typedef void (*WaStoreMediaListFunc)(GPtrArray *media, const GError *error, gpointer data);

/* Every attachment in a state of @state_mask (WA_STORE_MEDIA_MASK()), oldest first. */
void wa_store_media_list(WaStore *store, guint state_mask, WaStoreMediaListFunc done, gpointer data);
/* The attachments of @customer_id in a state of @state_mask, by number. */
void wa_store_media_of_customer(WaStore *store, const char *customer_id, guint state_mask, WaStoreMediaListFunc done,
                                gpointer data);
/* Attachment @number of @customer_id, or NULL. */
void wa_store_media_get(WaStore *store, const char *customer_id, guint number, WaStoreMediaFunc done, gpointer data);

typedef struct {
  WaStoreMediaState state;
  gint64 size;            /* > 0: the size now known */
  const char *mime_type;  /* or NULL: unchanged */
  gboolean count_attempt; /* one more attempt was made */
  gint64 next_attempt;    /* PENDING: not before (Unix s) */
  const char *error_text; /* FAILED (or a PENDING retry's reason), or NULL */
} WaStoreMediaChange;

/* Records a download's outcome; @done gets the row after the change
 * (NOT_FOUND when it was erased meanwhile). */
void wa_store_media_update(WaStore *store, const char *media_row_id, const WaStoreMediaChange *change,
                           WaStoreMediaFunc done, gpointer data);

typedef struct {
  gboolean duplicate;             /* the wamid was stored before: nothing changed */
  gboolean shown;                 /* a duplicate already marked shown (never for a new message) */
  const char *message_id;         /* the new (or, for a duplicate, the existing) message */
  WaStoreCustomerUpdate customer; /* customer finding / linking / naming / window (IN only) */
  const WaStoreMedia *media;      /* the message's attachment (new or, for a duplicate, stored), or NULL */
} WaStoreInboundResult;

typedef void (*WaStoreInboundFunc)(const WaStoreInboundResult *result, const GError *error, gpointer data);

/* In one transaction: finds or creates the customer, links ids, updates the
 * profile name, stores the message and moves the window (IN only). A wamid
 * already stored gives duplicate and changes nothing, so an event applied
 * twice is harmless. */
void wa_store_inbound(WaStore *store, const WaStoreInbound *message, WaStoreInboundFunc done, gpointer data);
/* Records that message @message_id was shown to the agent. Inbound messages
 * are stored unshown; the plugin shows one, marks it, and only then
 * acknowledges its event, so an event applied again after a crash shows the
 * message only if it was not shown before. */
void wa_store_message_mark_shown(WaStore *store, const char *message_id, WaStoreDoneFunc done, gpointer data);

typedef struct {
  const char *wamid;      /* the status's message id */
  guint64 outbox_id;      /* from biz_opaque_callback_data, or 0 */
  WaStoreStatus status;   /* SENT .. FAILED */
  const char *error_text; /* FAILED: a plain-language reason, or NULL */
  gint64 timestamp;
} WaStoreStatusUpdate;

typedef struct {
  gboolean found;
  gboolean changed;       /* the message's status moved */
  WaStoreStatus status;   /* the message's status now */
  const char *message_id; /* when found */
  const char *customer_id;
  WaStoreDirection direction;       /* when found */
  guint64 outbox_id;                /* 0 when not ours */
  gboolean outbox_resolved;         /* the outbox entry moved to SENT or FAILED because of it */
  WaStoreOutboxState outbox_state;  /* the entry's state now */
  WaStoreOutboxState outbox_before; /* and before this status */
} WaStoreStatusResult;

typedef void (*WaStoreStatusFunc)(const WaStoreStatusResult *result, const GError *error, gpointer data);

/* Applies a status webhook: finds the message by wamid, else by @outbox_id
 * (then records the wamid: the status came before the send's answer), moves
 * its status by rank, and resolves an outbox entry still queued, sending or
 * uncertain (to SENT, or FAILED), or one the agent dropped (FAILED here)
 * when the status says it went after all (to SENT, the message's status
 * with it). Not found is not an error. */
void wa_store_message_status(WaStore *store, const WaStoreStatusUpdate *update, WaStoreStatusFunc done, gpointer data);
/* By wamid; NULL when not found. */
void wa_store_message_find(WaStore *store, const char *wamid, WaStoreMessageFunc done, gpointer data);
/* The last @limit messages of @customer_id, oldest first, decrypted (with
 * those not yet marked shown: see WaStoreMessage.shown). */
void wa_store_history(WaStore *store, const char *customer_id, guint limit, WaStoreMessagesFunc done, gpointer data);

/* ---- outbox -------------------------------------------------------------------------- */

/* Queues a message to @customer_id: an outbox entry (QUEUED) and its OUT
 * message, committed before @done runs, so before any HTTP. @type "text"
 * with @body, or another type with @payload (JSON the sender understands). */
void wa_store_outbox_enqueue(WaStore *store, const char *customer_id, const char *type, const char *body,
                             const char *payload, gboolean preview_url, WaStoreOutboxFunc done, gpointer data);

typedef struct {
  WaStoreOutboxState state; /* the new state */
  const char *wamid;        /* SENT: required */
  const char *error_text;   /* FAILED / UNCERTAIN: why, or NULL */
  gint64 next_attempt;      /* QUEUED: not before (0 = now) */
} WaStoreOutboxChange;

/* Moves entry @outbox_id: QUEUED -> SENDING (counts an attempt);
 * SENDING -> SENT | UNCERTAIN | FAILED | QUEUED (provably not sent: retry);
 * UNCERTAIN -> SENT | FAILED | QUEUED (the agent resends);
 * FAILED -> QUEUED (the agent resends); SENT -> SENT with the same wamid
 * changes nothing and succeeds (its status webhook resolved it first).
 * Anything else: INVALID, nothing changed. SENT records the wamid on the message, FAILED its status and
 * error. @done gets the entry after the change. */
void wa_store_outbox_update(WaStore *store, guint64 outbox_id, const WaStoreOutboxChange *change,
                            WaStoreOutboxFunc done, gpointer data);
/* Entries in any state of @state_mask (WA_STORE_OUTBOX_MASK() or'ed), in queue order. */
void wa_store_outbox_list(WaStore *store, guint state_mask, WaStoreOutboxListFunc done, gpointer data);
/* NULL when not found. */
void wa_store_outbox_get(WaStore *store, guint64 outbox_id, WaStoreOutboxFunc done, gpointer data);
void wa_store_outbox_find_wamid(WaStore *store, const char *wamid, WaStoreOutboxFunc done, gpointer data);

/* ---- settings ---------------------------------------------------------------------- */

/* What the plugin kept in account settings (@customer_id NULL) or in a
 * buddy's node settings (@customer_id: that customer; exported and erased
 * with them). @name is stored in plaintext (no personal data in it); @value
 * sealed. NULL @value deletes. */
void wa_store_setting_set(WaStore *store, const char *customer_id, const char *name, const char *value,
                          WaStoreDoneFunc done, gpointer data);
/* @value NULL when not set. */
void wa_store_setting_get(WaStore *store, const char *customer_id, const char *name, WaStoreStringFunc done,
                          gpointer data);
/* Every setting of @customer_id (NULL: the account's). */
void wa_store_settings_all(WaStore *store, const char *customer_id, WaStoreSettingsFunc done, gpointer data);

/* ---- consent ledger (append-only) ---------------------------------------------------- */

/* Appends a row; @note (may be NULL) is sealed. @at 0 = now. */
void wa_store_consent_record(WaStore *store, const char *customer_id, WaStoreConsentState state, const char *scope,
                             const char *source, const char *note, gint64 at, WaStoreDoneFunc done, gpointer data);
/* The latest row for @customer_id and @scope, or NULL. */
void wa_store_consent_latest(WaStore *store, const char *customer_id, const char *scope, WaStoreConsentFunc done,
                             gpointer data);

/* ---- audit log (append-only, hash-chained, pseudonymous) ----------------------------- */

/* Appends "@action" (e.g. "campaign.sent") for @customer_id (internal id, or
 * NULL) with @detail (or NULL). Neither may hold content, phone numbers or
 * names: the log is kept in plaintext. The store itself logs its creation,
 * key changes, customer creation, consent, export, erasure, suppression and
 * retention. */
void wa_store_audit_append(WaStore *store, const char *action, const char *customer_id, const char *detail,
                           WaStoreDoneFunc done, gpointer data);
/* Recomputes the chain (keyed BLAKE2b over the previous hash and each row's
 * fields) and compares the head kept in meta. */
void wa_store_audit_verify(WaStore *store, WaStoreAuditFunc done, gpointer data);

/* ---- campaigns (wa-store-campaigns.c) -------------------------------------------------
 *
 * A campaign sends one template to many customers. Its recipients are rows
 * of their own; "never twice" rests on three rules the store enforces:
 *  - a recipient leaves PENDING only through wa_store_campaign_begin_sends(),
 *    which in the same transaction creates its outbox entry (QUEUED, with the
 *    message row) and records the template send, so a committed SENDING
 *    recipient always has exactly one outbox entry and no recipient ever gets
 *    a second one from the store;
 *  - from then on the outbox entry drives the recipient (a trigger): queued
 *    or sending keeps it SENDING, then SENT, UNCERTAIN, FAILED as the entry
 *    goes. After a crash, unlocking turns entries left sending into
 *    uncertain, and their recipients with them: never resent automatically
 *    (the agent resends through the outbox, or a status resolves them);
 *  - a template already sent to a customer within the last 24 hours (by any
 *    campaign of this store) is not begun again unless the send is marked
 *    confirmed (the agent agreed); a begun send counts even when it failed
 *    later (a retry is the agent's choice too).
 * Writes are batched: one begin_sends or add_recipients request handles many
 * recipients in one savepoint, and the worker group-commits requests queued
 * together. */

typedef enum {
  WA_STORE_CAMPAIGN_DRAFT = 0,     /* recipients being added; nothing sent */
  WA_STORE_CAMPAIGN_SCHEDULED = 1, /* waits for start_at */
  WA_STORE_CAMPAIGN_RUNNING = 2,
  WA_STORE_CAMPAIGN_PAUSED = 3,
  WA_STORE_CAMPAIGN_CANCELLED = 4, /* final: pending recipients became SKIPPED "cancelled" */
  WA_STORE_CAMPAIGN_DONE = 5,      /* final */
} WaStoreCampaignState;

#define WA_STORE_CAMPAIGN_MASK(state) (1u << (state))

const char *wa_store_campaign_state_to_string(WaStoreCampaignState state);

typedef enum {
  WA_STORE_RECIPIENT_PENDING = 0,
  WA_STORE_RECIPIENT_SKIPPED = 1,   /* with a reason code; never sent */
  WA_STORE_RECIPIENT_SENDING = 2,   /* has an outbox entry, not yet answered */
  WA_STORE_RECIPIENT_SENT = 3,      /* the API accepted it (statuses follow on the message) */
  WA_STORE_RECIPIENT_UNCERTAIN = 4, /* may have gone out: never resent automatically */
  WA_STORE_RECIPIENT_FAILED = 5,    /* with the error code when known */
  WA_STORE_RECIPIENT_N_STATES = 6,
} WaStoreRecipientState;

#define WA_STORE_RECIPIENT_MASK(state) (1u << (state))

const char *wa_store_recipient_state_to_string(WaStoreRecipientState state);

typedef struct {
  char *id; /* 32 hex digits */
  char *name;
  char *template_name;
  char *language;
  char *category; /* "MARKETING", "UTILITY", "AUTHENTICATION" */
  WaStoreCampaignState state;
  gint64 start_at; /* Unix s, 0 = at once */
  gint64 created;
  gint64 updated;
  guint counts[WA_STORE_RECIPIENT_N_STATES]; /* recipients per state */
  guint total;
} WaStoreCampaign;

WaStoreCampaign *wa_store_campaign_copy(const WaStoreCampaign *campaign);
void wa_store_campaign_free(WaStoreCampaign *campaign);

typedef struct {
  char *id; /* 32 hex digits */
  char *campaign_id;
  char *customer_id;
  guint seq;    /* 1, 2, ... in the order added (the CSV's order) */
  char *params; /* what the runner stored (e.g. JSON of the placeholders), decrypted; NULL after retention */
  WaStoreRecipientState state;
  char *reason;         /* SKIPPED: a plaintext code ("no-consent", "opted-out", "cancelled", ...), else NULL */
  gint error_code;      /* FAILED: the Cloud API's code when known, else 0 */
  guint64 outbox_id;    /* 0 before SENDING */
  char *pricing;        /* the pricing category the status gave, or NULL */
  char *message_id;     /* the conversation's record of the send, or NULL */
  char *wamid;          /* once sent, or NULL */
  WaStoreStatus status; /* the message's status (delivered, read, failed, ...) */
  gint64 created;
  gint64 updated;
  gboolean tampered;
} WaStoreRecipient;

WaStoreRecipient *wa_store_recipient_copy(const WaStoreRecipient *recipient);
void wa_store_recipient_free(WaStoreRecipient *recipient);

/* @campaign NULL when not found. */
typedef void (*WaStoreCampaignFunc)(const WaStoreCampaign *campaign, const GError *error, gpointer data);
/* WaStoreCampaign* elements, oldest first. */
typedef void (*WaStoreCampaignListFunc)(GPtrArray *campaigns, const GError *error, gpointer data);
/* WaStoreRecipient* elements, by seq. */
typedef void (*WaStoreRecipientListFunc)(GPtrArray *recipients, const GError *error, gpointer data);

/* A new campaign (DRAFT). @name, @template_name, @language and @category are
 * kept in plaintext (no personal data in them); all are required. */
void wa_store_campaign_create(WaStore *store, const char *name, const char *template_name, const char *language,
                              const char *category, gint64 start_at, WaStoreCampaignFunc done, gpointer data);
/* Moves campaign @campaign_id to @state: DRAFT -> SCHEDULED | RUNNING | CANCELLED;
 * SCHEDULED -> RUNNING | PAUSED | CANCELLED | DRAFT; RUNNING -> PAUSED | CANCELLED | DONE;
 * PAUSED -> RUNNING | CANCELLED; the same state again changes nothing. CANCELLED
 * turns its pending recipients into SKIPPED "cancelled" (those already
 * sending go on as their outbox entries do). Anything else: INVALID. @start_at
 * >= 0 replaces the start time (< 0 keeps it). Audited ("campaign.<state>"). */
void wa_store_campaign_set_state(WaStore *store, const char *campaign_id, WaStoreCampaignState state, gint64 start_at,
                                 WaStoreCampaignFunc done, gpointer data);
/* With its counts; NULL when not found. */
void wa_store_campaign_get(WaStore *store, const char *campaign_id, WaStoreCampaignFunc done, gpointer data);
/* Every campaign in a state of @state_mask, oldest first (after a restart:
 * SCHEDULED, RUNNING and PAUSED ones resume). */
void wa_store_campaign_list(WaStore *store, guint state_mask, WaStoreCampaignListFunc done, gpointer data);

typedef struct {
  const char *customer_id;
  const char *params;      /* sealed with the customer's key; may be NULL */
  const char *skip_reason; /* NULL: PENDING; else SKIPPED with this code (plaintext, no personal data) */
} WaStoreRecipientNew;

/* Adds @n recipients to a DRAFT or SCHEDULED campaign in one savepoint
 * (seq continues after the last). A customer already a recipient of this
 * campaign is not added again; @done gets how many were added. INVALID when
 * the campaign is in another state, NOT_FOUND for an unknown customer
 * (nothing added). */
void wa_store_campaign_add_recipients(WaStore *store, const char *campaign_id, const WaStoreRecipientNew *recipients,
                                      guint n, WaStoreCountFunc done, gpointer data);
/* Up to @limit (0: all) recipients in a state of @state_mask with seq >
 * @after_seq, by seq, decrypted, with their message's wamid and status (the
 * report). */
void wa_store_campaign_recipients(WaStore *store, const char *campaign_id, guint state_mask, guint after_seq,
                                  guint limit, WaStoreRecipientListFunc done, gpointer data);

typedef struct {
  const char *recipient_id;
  const char *type;     /* the message type recorded (e.g. "template") */
  const char *body;     /* the rendered text shown in the conversation, or NULL */
  const char *payload;  /* what the sender sends (JSON), or NULL (one of body and payload) */
  gboolean confirmed;   /* the agent confirmed sending this template again within 24 hours */
  gboolean count_reach; /* a template outside an open window: counts for the portfolio's daily limit */
  /* the caller starts the request as soon as the answer comes
   * (wa_sender_submit): the entry is recorded SENDING, its first attempt, in
   * this same transaction instead of QUEUED and SENDING in two */
  gboolean start;
} WaStoreCampaignSend;

typedef enum {
  WA_STORE_SEND_BEGUN = 0,       /* SENDING, with its outbox entry (QUEUED, or SENDING with start): send it */
  WA_STORE_SEND_REPEAT = 1,      /* this template went to this customer within 24 h: not begun (ask the agent) */
  WA_STORE_SEND_NOT_PENDING = 2, /* the recipient is not PENDING (already begun, skipped, erased) */
  WA_STORE_SEND_NOT_RUNNING = 3, /* the campaign is not RUNNING: nothing begun */
} WaStoreSendOutcome;

typedef struct {
  const char *recipient_id;
  WaStoreSendOutcome outcome;
  const WaStoreOutbox *entry; /* BEGUN: the new outbox entry */
  gint64 last_sent;           /* REPEAT: when the template last went to them */
} WaStoreSendResult;

/* @results: @n results in the order of the sends (NULL on error). */
typedef void (*WaStoreSendsFunc)(const WaStoreSendResult *results, guint n, const GError *error, gpointer data);

/* Begins @n sends of RUNNING campaign @campaign_id in one savepoint: each
 * PENDING recipient becomes SENDING with a new outbox entry (QUEUED) for
 * its customer, the template send is recorded (and the portfolio reach when
 * count_reach); see the rules above. The caller then sends each entry
 * through the outbox (QUEUED -> SENDING -> ...; with start, SENDING -> ...:
 * the synced commit of this request is the SENDING that must be on disk
 * before the request starts). */
void wa_store_campaign_begin_sends(WaStore *store, const char *campaign_id, const WaStoreCampaignSend *sends, guint n,
                                   WaStoreSendsFunc done, gpointer data);
/* PENDING -> SKIPPED with @reason (e.g. consent checked again right before
 * the send was missing); INVALID from any other state. */
void wa_store_campaign_recipient_skip(WaStore *store, const char *recipient_id, const char *reason,
                                      WaStoreDoneFunc done, gpointer data);
/* Records the error code of a failed send (0: unchanged) and the pricing
 * category a status gave (NULL: unchanged). */
void wa_store_campaign_recipient_note(WaStore *store, const char *recipient_id, gint error_code, const char *pricing,
                                      WaStoreDoneFunc done, gpointer data);
/* The same for the recipient whose send is outbox entry @outbox_id (a status
 * webhook's pricing, a send's error); an entry that is not a campaign's
 * changes nothing and is not an error, so every status may be passed on. */
void wa_store_campaign_outbox_note(WaStore *store, guint64 outbox_id, gint error_code, const char *pricing,
                                   WaStoreDoneFunc done, gpointer data);

/* One customer reached with a template outside an open window. @key is the
 * customer's wa_id or BSUID, or "erased:<n>" for an erased customer (still
 * counted, no longer named). */
typedef struct {
  const char *key;
  gint64 at;
} WaStoreReach;

/* WaStoreReach elements (borrowed), every reach at or after @since. */
typedef void (*WaStoreReachFunc)(const WaStoreReach *reach, guint n, const GError *error, gpointer data);
/* The reach records kept (24 hours): the plugin loads them into its shared
 * portfolio counter (wa-pace.h) at sign-on. */
void wa_store_portfolio_reach(WaStore *store, gint64 since, WaStoreReachFunc done, gpointer data);

/* ---- data protection ------------------------------------------------------------------ */

/* Everything held about @customer_id as one JSON document, decrypted: the
 * customer, messages (with raw events), attachments (what is known of them;
 * the files are the caller's to copy), outbox entries, campaign recipient
 * rows, consent rows, their settings and the audit rows naming them. Audited. */
void wa_store_customer_export(WaStore *store, const char *customer_id, WaStoreStringFunc done, gpointer data);
/* In one transaction: deletes the customer's messages, attachments (rows
 * and files), outbox entries, campaign recipient rows and template send
 * records, consent rows, settings and wrapped key (their portfolio reach
 * stays counted, no longer naming them), keeps a suppression entry (ERASURE) for their
 * wa_id and BSUID and an audit row without content; then checkpoints, so that
 * (with secure_delete) nothing of them is left in the files. */
void wa_store_customer_erase(WaStore *store, const char *customer_id, WaStoreDoneFunc done, gpointer data);
/* Suppresses @id (a wa_id as wa_customer_id_normalize() gives it, or a
 * BSUID) for @reason; only its keyed hash is kept. */
void wa_store_suppress(WaStore *store, const char *id, WaStoreSuppressReason reason, WaStoreDoneFunc done,
                       gpointer data);
/* Whether @id (normalised the same way) is suppressed. */
void wa_store_is_suppressed(WaStore *store, const char *id, WaStoreSuppressedFunc done, gpointer data);
/* Deletes bodies, captions and raw events of messages older than @max_age_s,
 * and their attachments' files (EXPIRED) (their rows and metadata stay;
 * outbox entries still to be sent are kept), the params of campaign
 * recipients no longer pending or sending, and template send and portfolio
 * reach records older than 24 hours.
 * @done gets the number of messages trimmed. */
void wa_store_apply_retention(WaStore *store, gint64 max_age_s, WaStoreCountFunc done, gpointer data);

/* ---- key header of an unlocked store ---------------------------------------------- */

/* Replaces the stored key header with @new_header_json (the data key
 * re-wrapped: a new passphrase, or another mode) while the store is in use:
 * @data_key (copied) must be the store's key (else WRONG_KEY) and the header
 * must parse (else INVALID), both checked before anything is written; audited
 * as "key.rewrapped". Unlike calling wa_store_unlock() again, the store's keys
 * and its outbox are left as they are. LOCKED before a successful unlock. */
void wa_store_replace_header(WaStore *store, const WaKey *data_key, const char *new_header_json, WaStoreDoneFunc done,
                             gpointer data);

/* ---- key rotation --------------------------------------------------------------------- */

/* Starts replacing the data key with @new_key (and every customer key with a
 * new one): @new_header_json wraps @new_key (wa_key_header_rotate_*) and
 * @recovery_code is its recovery code, kept sealed in the store until the
 * rotation ends and handed out then. In one transaction, after checking that
 * @data_key is the store's key (else WRONG_KEY): the header, the key check,
 * the index and audit keys and account settings under the new key, and the
 * old data key sealed under the new one, so that everything stays readable
 * until the end; audited as "key.rotation.started". From its commit on, only
 * @new_key unlocks the store, and only the new recovery code opens the
 * header. INVALID while a rotation is already under way. */
void wa_store_rotate_begin(WaStore *store, const WaKey *data_key, const WaKey *new_key, const char *new_header_json,
                           const char *recovery_code, WaStoreDoneFunc done, gpointer data);

typedef struct {
  gboolean active;           /* a rotation was under way when this step ran */
  gboolean finished;         /* this step committed its end (audited as "key.rotated") */
  guint64 done;              /* customers and messages under the new key */
  guint64 total;             /* customers and messages */
  const char *recovery_code; /* finished: the new recovery code (show it once), else NULL */
} WaStoreRotateProgress;

/* @progress NULL on error. */
typedef void (*WaStoreRotateFunc)(const WaStoreRotateProgress *progress, const GError *error, gpointer data);

/* One slice of a rotation under way, in one transaction on the worker:
 * whole customers are re-keyed until about @max_rows rows were sealed again;
 * the slice that finds none left ends the rotation. Not active (and nothing
 * done) when no rotation is under way, e.g. right after unlocking: an
 * interrupted rotation resumes by calling this until finished. */
void wa_store_rotate_step(WaStore *store, guint max_rows, WaStoreRotateFunc done, gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreCustomer, wa_store_customer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreMessage, wa_store_message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreOutbox, wa_store_outbox_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreConsent, wa_store_consent_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreMedia, wa_store_media_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreCampaign, wa_store_campaign_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStoreRecipient, wa_store_recipient_free)

G_END_DECLS
