/* wa-seal.c: crypto_box_seal of journalled events, and the account key pair.
 *
 * The receiver seals with the public key only; the plugin opens with the key
 * pair. Must not: put key bytes in errors or logs, or keep a secret key outside
 * sodium_malloc'd memory. */
#include "wa-seal.h"

#include <string.h>

G_DEFINE_QUARK(wa - seal - error - quark, wa_seal_error)

gboolean
wa_sodium_init(GError **error)
{
  /* sodium_init() is idempotent and thread-safe; 1 means "already done" */
  if (sodium_init() < 0) {
    g_set_error_literal(error, WA_SEAL_ERROR, WA_SEAL_ERROR_INIT, "libsodium could not start");
    return FALSE;
  }
  return TRUE;
}

static WaKeyPair *
keypair_alloc(GError **error)
{
  WaKeyPair *pair;

  if (!wa_sodium_init(error))
    return NULL;
  pair = g_new0(WaKeyPair, 1);
  pair->secret_key = sodium_malloc(WA_SEAL_SECRET_KEY_BYTES);
  if (pair->secret_key == NULL) {
    g_free(pair);
    g_set_error_literal(error, WA_SEAL_ERROR, WA_SEAL_ERROR_INIT, "no secure memory for a key");
    return NULL;
  }
  return pair;
}

WaKeyPair *
wa_keypair_new(GError **error)
{
  WaKeyPair *pair = keypair_alloc(error);

  if (pair != NULL)
    crypto_box_keypair(pair->public_key, pair->secret_key);
  return pair;
}

WaKeyPair *
wa_keypair_from_secret(const guint8 *secret_key, gsize len, GError **error)
{
  WaKeyPair *pair;

  if (len != WA_SEAL_SECRET_KEY_BYTES) {
    g_set_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_KEY, "a secret key has %d bytes, not %" G_GSIZE_FORMAT,
                WA_SEAL_SECRET_KEY_BYTES, len);
    return NULL;
  }
  pair = keypair_alloc(error);
  if (pair == NULL)
    return NULL;
  memcpy(pair->secret_key, secret_key, len);
  crypto_scalarmult_base(pair->public_key, pair->secret_key);
  return pair;
}

void
wa_keypair_free(WaKeyPair *pair)
{
  if (pair == NULL)
    return;
  sodium_free(pair->secret_key); /* wipes before freeing */
  g_free(pair);
}

char *
wa_keypair_public_base64(const WaKeyPair *pair)
{
  return g_base64_encode(pair->public_key, sizeof pair->public_key);
}

gboolean
wa_seal_public_key_decode(const char *base64, guint8 out[WA_SEAL_PUBLIC_KEY_BYTES], GError **error)
{
  gsize len = 0;

  if (base64 == NULL || *base64 == '\0' ||
      sodium_base642bin(out, WA_SEAL_PUBLIC_KEY_BYTES, base64, strlen(base64), NULL, &len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != WA_SEAL_PUBLIC_KEY_BYTES) {
    g_set_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_KEY, "a public key must be %d bytes in standard base64",
                WA_SEAL_PUBLIC_KEY_BYTES);
    return FALSE;
  }
  return TRUE;
}

GBytes *
wa_seal(const guint8 *public_key, const void *plain, gsize len)
{
  gsize sealed_len = len + crypto_box_SEALBYTES;
  guint8 *sealed;

  if (sodium_init() < 0)
    return NULL;
  sealed = g_malloc(sealed_len);
  /* fails for a low-order public key (all zeros, say): nothing to seal to */
  if (crypto_box_seal(sealed, plain, len, public_key) != 0) {
    g_free(sealed);
    return NULL;
  }
  return g_bytes_new_take(sealed, sealed_len);
}

struct _WaSealer {
  guint8 public_key[crypto_box_PUBLICKEYBYTES];
  guint8 ephemeral[crypto_box_PUBLICKEYBYTES]; /* the batch's public key */
  guint8 *shared;                              /* crypto_box_BEFORENMBYTES, then room for the ephemeral secret (wiped at
                   * once): one sodium_malloc'd area, one allocation per batch */
};

WaSealer *
wa_sealer_new(const guint8 *public_key)
{
  WaSealer *sealer;
  guint8 *secret;
  int rc;

  if (sodium_init() < 0)
    return NULL;
  sealer = g_new0(WaSealer, 1);
  sealer->shared = sodium_malloc(crypto_box_BEFORENMBYTES + crypto_box_SECRETKEYBYTES);
  if (sealer->shared == NULL) {
    wa_sealer_free(sealer);
    return NULL;
  }
  secret = sealer->shared + crypto_box_BEFORENMBYTES;
  memcpy(sealer->public_key, public_key, sizeof sealer->public_key);
  crypto_box_keypair(sealer->ephemeral, secret);
  /* fails for a low-order public key: nothing to seal to */
  rc = crypto_box_beforenm(sealer->shared, public_key, secret);
  sodium_memzero(secret, crypto_box_SECRETKEYBYTES); /* nothing here opens what is sealed */
  if (rc != 0) {
    wa_sealer_free(sealer);
    return NULL;
  }
  return sealer;
}

const guint8 *
wa_sealer_public_key(const WaSealer *sealer)
{
  return sealer->public_key;
}

GBytes *
wa_sealer_seal(WaSealer *sealer, const void *plain, gsize len)
{
  gsize sealed_len = len + WA_SEAL_BATCH_OVERHEAD;
  guint8 *sealed = g_malloc(sealed_len);
  guint8 *ephemeral = sealed + 8;
  guint8 *nonce = ephemeral + crypto_box_PUBLICKEYBYTES;

  memcpy(sealed, WA_SEAL_BATCH_MAGIC, 8); /* with its NUL */
  memcpy(ephemeral, sealer->ephemeral, crypto_box_PUBLICKEYBYTES);
  randombytes_buf(nonce, crypto_box_NONCEBYTES);
  crypto_box_easy_afternm(nonce + crypto_box_NONCEBYTES, plain, len, nonce, sealer->shared);
  return g_bytes_new_take(sealed, sealed_len);
}

void
wa_sealer_free(WaSealer *sealer)
{
  if (sealer == NULL)
    return;
  sodium_free(sealer->shared); /* wipes before freeing */
  g_free(sealer);
}

struct _WaSealOpener {
  const WaKeyPair *pair;
  guint8 ephemeral[crypto_box_PUBLICKEYBYTES]; /* the batch whose shared key is kept */
  guint8 *shared;                              /* crypto_box_BEFORENMBYTES, sodium_malloc'd */
  gboolean have;                               /* shared holds the key of ephemeral */
};

/* A batch-sealed event (wa_sealer_seal) opened into @plain, which has room
 * for its plain text; FALSE when it is not one or does not open. With
 * @opener, its batch's shared key is made once and kept. */
static gboolean
open_batch(const WaKeyPair *pair, WaSealOpener *opener, const guint8 *sealed, gsize len, guint8 *plain)
{
  const guint8 *ephemeral = sealed + 8;
  const guint8 *nonce = ephemeral + crypto_box_PUBLICKEYBYTES;
  const guint8 *cipher = nonce + crypto_box_NONCEBYTES;
  gsize cipher_len = len - (WA_SEAL_BATCH_OVERHEAD - crypto_box_MACBYTES);

  if (len < WA_SEAL_BATCH_OVERHEAD || memcmp(sealed, WA_SEAL_BATCH_MAGIC, 8) != 0)
    return FALSE;
  if (opener == NULL)
    return crypto_box_open_easy(plain, cipher, cipher_len, nonce, ephemeral, pair->secret_key) == 0;
  if (!opener->have || memcmp(opener->ephemeral, ephemeral, crypto_box_PUBLICKEYBYTES) != 0) {
    opener->have = FALSE;
    if (crypto_box_beforenm(opener->shared, ephemeral, pair->secret_key) != 0)
      return FALSE; /* a low-order point: nothing opens */
    memcpy(opener->ephemeral, ephemeral, crypto_box_PUBLICKEYBYTES);
    opener->have = TRUE;
  }
  return crypto_box_open_easy_afternm(plain, cipher, cipher_len, nonce, opener->shared) == 0;
}

static GBytes *
open_any(const WaKeyPair *pair, WaSealOpener *opener, const guint8 *sealed, gsize len, GError **error)
{
  gsize plain_len;
  guint8 *plain;

  if (len >= WA_SEAL_BATCH_OVERHEAD) {
    plain_len = len - WA_SEAL_BATCH_OVERHEAD;
    plain = g_malloc(plain_len + 1);
    if (open_batch(pair, opener, sealed, len, plain)) {
      plain[plain_len] = '\0';
      return g_bytes_new_take(plain, plain_len);
    }
    /* an event sealed before batches (its first bytes are a random public
     * key: one that starts with the magic and opens as a batch is 2^-64 x a
     * forgery away) */
    g_free(plain);
  }

  if (len < crypto_box_SEALBYTES) {
    g_set_error_literal(error, WA_SEAL_ERROR, WA_SEAL_ERROR_FORMAT, "sealed data is too short");
    return NULL;
  }
  plain_len = len - crypto_box_SEALBYTES;
  plain = g_malloc(plain_len + 1);
  if (crypto_box_seal_open(plain, sealed, len, pair->public_key, pair->secret_key) != 0) {
    g_free(plain);
    g_set_error_literal(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN,
                        "sealed data was not made for this key, or was altered");
    return NULL;
  }
  plain[plain_len] = '\0';
  return g_bytes_new_take(plain, plain_len);
}

GBytes *
wa_seal_open(const WaKeyPair *pair, const guint8 *sealed, gsize len, GError **error)
{
  return open_any(pair, NULL, sealed, len, error);
}

WaSealOpener *
wa_seal_opener_new(const WaKeyPair *pair)
{
  WaSealOpener *opener;

  if (sodium_init() < 0)
    return NULL;
  opener = g_new0(WaSealOpener, 1);
  opener->pair = pair;
  opener->shared = sodium_malloc(crypto_box_BEFORENMBYTES);
  if (opener->shared == NULL) {
    g_free(opener);
    return NULL;
  }
  return opener;
}

GBytes *
wa_seal_opener_open(WaSealOpener *opener, const guint8 *sealed, gsize len, GError **error)
{
  return open_any(opener->pair, opener, sealed, len, error);
}

void
wa_seal_opener_free(WaSealOpener *opener)
{
  if (opener == NULL)
    return;
  sodium_free(opener->shared); /* wipes before freeing */
  g_free(opener);
}
