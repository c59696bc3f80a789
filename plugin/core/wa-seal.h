/* wa-seal.h: sealing journalled events to an account's public key.
 *
 * The receiver holds only an account's X25519 public key and seals each
 * accepted webhook change with crypto_box_seal; only the plugin, which holds
 * the secret key, can open it. Keys travel between the two as standard
 * base64. The secret key lives in sodium_malloc'd memory and is wiped on free.
 *
 * Must not: log or return key material in error messages, or include
 * libpurple. */
#pragma once

#include <glib.h>
#include <sodium.h>

G_BEGIN_DECLS

#define WA_SEAL_PUBLIC_KEY_BYTES crypto_box_PUBLICKEYBYTES
#define WA_SEAL_SECRET_KEY_BYTES crypto_box_SECRETKEYBYTES

#define WA_SEAL_ERROR (wa_seal_error_quark())
GQuark wa_seal_error_quark(void);

typedef enum {
  WA_SEAL_ERROR_INIT,   /* sodium_init() failed */
  WA_SEAL_ERROR_KEY,    /* a key of the wrong length or encoding */
  WA_SEAL_ERROR_OPEN,   /* not sealed to this key pair, or tampered with */
  WA_SEAL_ERROR_FORMAT, /* not valid base64, or too short to be sealed */
} WaSealError;

/* Calls sodium_init() once per process; FALSE with @error if it fails. */
gboolean wa_sodium_init(GError **error);

typedef struct {
  guint8 public_key[WA_SEAL_PUBLIC_KEY_BYTES];
  guint8 *secret_key; /* WA_SEAL_SECRET_KEY_BYTES, sodium_malloc'd */
} WaKeyPair;

/* A fresh key pair; NULL with @error only if libsodium cannot start. */
WaKeyPair *wa_keypair_new(GError **error);
/* A key pair from a secret key of WA_SEAL_SECRET_KEY_BYTES (its public key
 * is derived). */
WaKeyPair *wa_keypair_from_secret(const guint8 *secret_key, gsize len, GError **error);
void wa_keypair_free(WaKeyPair *pair);

/* The public key as base64 (newly allocated). */
char *wa_keypair_public_base64(const WaKeyPair *pair);
/* Decodes a base64 public key into @out; FALSE with @error (KEY) otherwise. */
gboolean wa_seal_public_key_decode(const char *base64, guint8 out[WA_SEAL_PUBLIC_KEY_BYTES], GError **error);

/* Seals @len bytes of @plain to @public_key; returns the sealed bytes, or
 * NULL when libsodium cannot start or the key is unusable (a low-order point
 * such as all zeros). */
GBytes *wa_seal(const guint8 *public_key, const void *plain, gsize len);
/* Sealing many events to one key at once (the receiver's group commit): one
 * ephemeral X25519 key pair and one key agreement per batch, each event then
 * encrypted with crypto_box_easy_afternm under the batch's shared key with a
 * random nonce of its own. What it protects is what crypto_box_seal
 * protects: only the holder of the account's secret key can open an event,
 * and the sealer keeps nothing that opens one once freed (the ephemeral
 * secret is wiped as soon as the shared key is made, the shared key on free).
 * Format: "wabizB1\0", the ephemeral public key (32 bytes), the nonce (24),
 * the ciphertext with its tag (16 bytes more than the plain text). */
typedef struct _WaSealer WaSealer;

#define WA_SEAL_BATCH_MAGIC "wabizB1"
#define WA_SEAL_BATCH_OVERHEAD (8 + crypto_box_PUBLICKEYBYTES + crypto_box_NONCEBYTES + crypto_box_MACBYTES)

/* A sealer for @public_key, or NULL when libsodium cannot start or the key is
 * unusable (a low-order point). */
WaSealer *wa_sealer_new(const guint8 *public_key);
/* The public key @sealer seals to. */
const guint8 *wa_sealer_public_key(const WaSealer *sealer);
/* Seals @len bytes of @plain (never NULL). */
GBytes *wa_sealer_seal(WaSealer *sealer, const void *plain, gsize len);
void wa_sealer_free(WaSealer *sealer);

/* Opens sealed bytes with @pair: a batch-sealed event (above) or one sealed
 * with crypto_box_seal (wa_seal, and every event journalled before batches).
 * Returns the plain bytes (NUL-terminated
 * beyond their size, so JSON text can be used as a string) or NULL with
 * @error (OPEN or FORMAT). */
GBytes *wa_seal_open(const WaKeyPair *pair, const guint8 *sealed, gsize len, GError **error);

/* Opening a stream of events sealed to one key pair (the plugin's inbound
 * queue): the shared key of the last batch seen is kept (sodium_malloc'd,
 * wiped on free), so that the events of one batch cost one key agreement
 * between them instead of one each. It opens what wa_seal_open() opens and
 * answers the same. @pair is borrowed and must outlive the opener. */
typedef struct _WaSealOpener WaSealOpener;
WaSealOpener *wa_seal_opener_new(const WaKeyPair *pair);
GBytes *wa_seal_opener_open(WaSealOpener *opener, const guint8 *sealed, gsize len, GError **error);
void wa_seal_opener_free(WaSealOpener *opener);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaKeyPair, wa_keypair_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaSealer, wa_sealer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaSealOpener, wa_seal_opener_free)

G_END_DECLS
