/* wa-crypt.h: encryption at rest for the plugin's store (libsodium).
 *
 * Key hierarchy:
 *   key-encryption key (KEK): from the agent's passphrase (Argon2id) or from a
 *     0600 key file, per account option;
 *   data key: random, wrapped by the KEK (and separately by a recovery key shown
 *     once at creation) in a key header kept in the store; it never touches disk
 *     unwrapped;
 *   subkeys: derived from the data key for fixed purposes (the store key;
 *     stores before key rotation also derived the index key for keyed hashes
 *     and the audit-chain key, which the store now keeps sealed instead, so
 *     they survive a rotation), and random per-customer keys wrapped by the
 *     data key, so erasing a customer's wrapped key makes their rows
 *     unreadable. Rotation replaces the data key, the customer keys and the
 *     recovery code (wa_key_header_rotate_*, wa_store_rotate_*).
 * Fields are sealed with XChaCha20-Poly1305 (IETF); the associated data names
 * table, column and a stable row id, so a ciphertext moved to another row or
 * column does not open. Ids that reveal phone numbers are indexed by keyed
 * hashes (crypto_generichash with the index key).
 *
 * Must not: keep key bytes outside sodium_malloc'd memory, put key material or
 * passphrases in errors or logs, include libpurple, or run Argon2id on the
 * calling thread of an event loop (use wa_work_run()).
 *
 * Ownership: returned WaKey, WaKeyHeader, GBytes and strings belong to the
 * caller. */
#pragma once

#include <glib.h>

#include "wa-loop.h"

G_BEGIN_DECLS

#define WA_CRYPT_KEY_BYTES 32
#define WA_CRYPT_HASH_BYTES 32

#define WA_CRYPT_ERROR (wa_crypt_error_quark())
GQuark wa_crypt_error_quark(void);

typedef enum {
  WA_CRYPT_ERROR_INIT,       /* libsodium could not start, or no secure memory */
  WA_CRYPT_ERROR_KEY,        /* a key of the wrong length or encoding */
  WA_CRYPT_ERROR_TAMPERED,   /* authentication failed: wrong key, wrong row/column, or altered */
  WA_CRYPT_ERROR_FORMAT,     /* too short, unknown version, unparsable header */
  WA_CRYPT_ERROR_PASSPHRASE, /* the passphrase (or recovery code, or key file) does not unlock */
} WaCryptError;

/* ---- keys ------------------------------------------------------------------ */

typedef struct _WaKey WaKey; /* WA_CRYPT_KEY_BYTES in sodium_malloc'd memory */

WaKey *wa_key_new_random(GError **error);
WaKey *wa_key_from_bytes(const guint8 *bytes, gsize len, GError **error);
WaKey *wa_key_copy(const WaKey *key);
void wa_key_free(WaKey *key);
/* Zeroes the string @text, then frees it; NULL is ignored. */
void wa_crypt_wipe_free(char *text);
/* The raw bytes (WA_CRYPT_KEY_BYTES); valid while @key lives. */
const guint8 *wa_key_bytes(const WaKey *key);

/* Fixed-purpose subkeys of @data_key (crypto_kdf_derive_from_key). */
typedef enum {
  WA_SUBKEY_INDEX = 1, /* keyed hashes of wa_id, BSUID, wamid, phone numbers (stores of
                        * schema 2 and older; then kept sealed in the store) */
  WA_SUBKEY_AUDIT = 2, /* the audit log's hash chain (likewise) */
  WA_SUBKEY_STORE = 3, /* fields not owned by one customer (settings, outbox meta) */
} WaSubkey;
WaKey *wa_key_derive(const WaKey *data_key, WaSubkey purpose);

/* ---- sealing fields ---------------------------------------------------------- */

/* Seals @len bytes with @key; associated data = @table, @column and @row_id
 * (each non-NULL, joined unambiguously). Result: version byte, 24-byte nonce,
 * ciphertext and tag. */
GBytes *wa_crypt_seal(const WaKey *key, const char *table, const char *column, const char *row_id, const void *plain,
                      gsize len);
/* Opens what wa_crypt_seal() made for the same table, column and row id.
 * The result is NUL-terminated beyond its size. NULL with TAMPERED or FORMAT. */
GBytes *wa_crypt_open(const WaKey *key, const char *table, const char *column, const char *row_id, const guint8 *sealed,
                      gsize len, GError **error);

/* Keyed hash for an index: BLAKE2b-256 keyed with @index_key over @domain,
 * a separator, and @value. Same inputs, same hash; without the key nothing
 * can be learnt from it. */
void wa_crypt_index(const WaKey *index_key, const char *domain, const char *value, guint8 out[WA_CRYPT_HASH_BYTES]);

/* ---- the key header ---------------------------------------------------------- */

typedef enum {
  WA_KEY_MODE_PASSPHRASE,
  WA_KEY_MODE_KEYFILE,
} WaKeyMode;

/* Argon2id limits; production uses MODERATE, tests the minimum. */
typedef struct {
  guint64 opslimit;
  gsize memlimit;
} WaKdfLimits;

WaKdfLimits wa_kdf_limits_moderate(void);
WaKdfLimits wa_kdf_limits_minimum(void);

/* How the data key is wrapped: mode, algorithm, limits, salt, the data key
 * under the KEK and under the recovery key. Serialised as one JSON object. */
typedef struct _WaKeyHeader WaKeyHeader;

/* A new data key, wrapped by a KEK derived from @passphrase (Argon2id13 with
 * @limits and a random salt) and by a new recovery key. *@recovery_code gets
 * the recovery key for a person to write down (groups of letters and digits,
 * shown once, never stored). Slow: run through wa_work_run(). */
WaKeyHeader *wa_key_header_create_passphrase(const char *passphrase, WaKdfLimits limits, WaKey **data_key,
                                             char **recovery_code, GError **error);
/* The same with the KEK read from a key file (see wa_keyfile_load_or_create). */
WaKeyHeader *wa_key_header_create_keyfile(const WaKey *file_key, WaKey **data_key, char **recovery_code,
                                          GError **error);

WaKeyMode wa_key_header_mode(const WaKeyHeader *header);
/* The data key, or NULL with PASSPHRASE (wrong passphrase / key file / code)
 * or FORMAT. The passphrase variant is slow: run through wa_work_run(). */
WaKey *wa_key_header_unlock_passphrase(const WaKeyHeader *header, const char *passphrase, GError **error);
WaKey *wa_key_header_unlock_keyfile(const WaKeyHeader *header, const WaKey *file_key, GError **error);
WaKey *wa_key_header_unlock_recovery(const WaKeyHeader *header, const char *recovery_code, GError **error);

/* Re-wraps @data_key under a new passphrase (new salt, same limits) or a key
 * file, switching the mode; the recovery wrapping is kept. Slow for a
 * passphrase. A header in key-file mode has no limits to keep: switching it
 * to a passphrase uses MODERATE, or @limits with the _with_limits variant
 * (tests use the minimum). */
gboolean wa_key_header_rewrap_passphrase(WaKeyHeader *header, const WaKey *data_key, const char *passphrase,
                                         GError **error);
gboolean wa_key_header_rewrap_passphrase_with_limits(WaKeyHeader *header, const WaKey *data_key, const char *passphrase,
                                                     WaKdfLimits limits, GError **error);
gboolean wa_key_header_rewrap_keyfile(WaKeyHeader *header, const WaKey *data_key, const WaKey *file_key,
                                      GError **error);

/* Key rotation: a new header around a new random data key (*@new_key) and a
 * new recovery key (*@recovery_code), in @header's mode and under the same
 * secret: the passphrase, checked first against @header (Argon2id twice: its
 * own salt, then a new one with the same limits), or the key file. *@old_key
 * gets the data key @header wraps. The recovery code of @header does not
 * open the new header. Re-encrypting what the old key sealed is the store's
 * work (wa_store_rotate_begin). Slow for a passphrase: run through
 * wa_work_run(). */
WaKeyHeader *wa_key_header_rotate_passphrase(const WaKeyHeader *header, const char *passphrase, WaKey **old_key,
                                             WaKey **new_key, char **recovery_code, GError **error);
WaKeyHeader *wa_key_header_rotate_keyfile(const WaKeyHeader *header, const WaKey *file_key, WaKey **old_key,
                                          WaKey **new_key, char **recovery_code, GError **error);

char *wa_key_header_to_json(const WaKeyHeader *header);
WaKeyHeader *wa_key_header_from_json(const char *json, GError **error);
void wa_key_header_free(WaKeyHeader *header);

/* Reads the 32-byte key file at @path, or creates it (0600, O_EXCL, fsync,
 * in an existing directory) when missing. A file of another size or with
 * group/other access is refused with a clear error. */
WaKey *wa_keyfile_load_or_create(const char *path, GError **error);

/* ---- work off the event loop ------------------------------------------------- */

/* Runs @work(@data) on a new thread and then @done on @loop's thread (through
 * a pipe watched with the loop's input_add), with @work's result or error. For
 * Argon2id and other slow work. @done must free the result. */
typedef gpointer (*WaWorkFunc)(gpointer data, GError **error);
typedef void (*WaWorkDone)(gpointer result, GError *error, gpointer data);
void wa_work_run(WaLoop *loop, WaWorkFunc work, WaWorkDone done, gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaKey, wa_key_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaKeyHeader, wa_key_header_free)

G_END_DECLS
