/* wa-crypt.c: encryption at rest for the store (libsodium).
 *
 * Keys in sodium_malloc'd memory, fields sealed with XChaCha20-Poly1305 and
 * bound to table/column/row, keyed index hashes, the key header (a data key
 * wrapped by a passphrase or key-file KEK and by a recovery key), key files,
 * and wa_work_run() for slow work (Argon2id) on a thread that reports back
 * through the injected loop.
 *
 * Formats (they are on disk: changing one makes existing stores unreadable):
 *   sealed field  = 0x01 || nonce[24] || ciphertext || tag[16]
 *   field AD      = "wabiz-field-v1" 0x00 || lp(table) || lp(column) || lp(row_id)
 *   wrapped key   = nonce[24] || ciphertext[32] || tag[16]   (base64 in the header)
 *   wrap AD       = "wabiz-wrap-v1" 0x00 || lp("kek") || lp(mode)   or
 *                   "wabiz-wrap-v1" 0x00 || lp("recovery")
 *   lp(s)         = strlen(s) as 8 bytes little-endian || s
 *   subkey        = crypto_kdf_derive_from_key(id = WaSubkey, ctx = "wabizkey")
 *   index hash    = BLAKE2b-256 keyed with the index key over domain 0x00 value
 *   recovery code = the 32-byte recovery key in RFC 4648 base32 (no padding),
 *                   52 characters in groups of four joined by '-'
 *
 * Must not: copy key bytes, passphrases or recovery codes into memory that
 * outlives a call without wiping it, put any of them in errors or logs,
 * include libpurple, or touch the event loop from a worker thread. */
#include "wa-crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <sodium.h>

#include "wa-file.h"
#include "wa-json.h"
#include "wa-seal.h"

G_DEFINE_QUARK(wa - crypt - error - quark, wa_crypt_error)

#define SEAL_VERSION 1
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_OVERHEAD (1 + NONCE_BYTES + TAG_BYTES)
#define WRAPPED_BYTES (NONCE_BYTES + WA_CRYPT_KEY_BYTES + TAG_BYTES)
#define SALT_BYTES crypto_pwhash_argon2id_SALTBYTES

#define FIELD_AD_DOMAIN "wabiz-field-v1"
#define WRAP_AD_DOMAIN "wabiz-wrap-v1"
#define KDF_CONTEXT "wabizkey"

#define HEADER_VERSION 1
#define KDF_ALG_NAME "argon2id13"
/* Parsing refuses limits above these: a header asking for more would only
 * make unlocking hang or fail (MODERATE is 3 passes over 256 MiB). */
#define OPSLIMIT_CAP 64u
#define MEMLIMIT_CAP MIN((guint64) 4 << 30, (guint64) crypto_pwhash_argon2id_MEMLIMIT_MAX)

#define RECOVERY_CHARS 52 /* ceil(256 / 5) */
#define RECOVERY_GROUP 4

G_STATIC_ASSERT(WA_CRYPT_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
G_STATIC_ASSERT(WA_CRYPT_KEY_BYTES == crypto_kdf_KEYBYTES);
G_STATIC_ASSERT(WA_CRYPT_KEY_BYTES >= crypto_kdf_BYTES_MIN && WA_CRYPT_KEY_BYTES <= crypto_kdf_BYTES_MAX);
G_STATIC_ASSERT(sizeof KDF_CONTEXT - 1 == crypto_kdf_CONTEXTBYTES);
G_STATIC_ASSERT(WA_CRYPT_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN);
G_STATIC_ASSERT(WA_CRYPT_HASH_BYTES >= crypto_generichash_BYTES_MIN &&
                WA_CRYPT_HASH_BYTES <= crypto_generichash_BYTES_MAX);
G_STATIC_ASSERT(RECOVERY_CHARS * 5 >= WA_CRYPT_KEY_BYTES * 8 && (RECOVERY_CHARS - 1) * 5 < WA_CRYPT_KEY_BYTES * 8);

static gboolean
crypt_init(GError **error)
{
  if (!wa_sodium_init(NULL)) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "libsodium could not start");
    return FALSE;
  }
  return TRUE;
}

/* ---- keys ------------------------------------------------------------------ */

struct _WaKey {
  guint8 bytes[WA_CRYPT_KEY_BYTES];
};

/* Secure memory for one key; writable until key_finish(). */
static WaKey *
key_alloc(GError **error)
{
  WaKey *key;

  if (!crypt_init(error))
    return NULL;
  key = sodium_malloc(sizeof *key);
  if (key == NULL) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "no secure memory for a key");
    return NULL;
  }
  return key;
}

/* Makes a filled key read-only, so a stray write faults instead of changing it. */
static WaKey *
key_finish(WaKey *key, GError **error)
{
  if (sodium_mprotect_readonly(key) != 0) {
    sodium_free(key);
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "could not protect a key's memory");
    return NULL;
  }
  return key;
}

WaKey *
wa_key_new_random(GError **error)
{
  WaKey *key = key_alloc(error);

  if (key == NULL)
    return NULL;
  randombytes_buf(key->bytes, sizeof key->bytes);
  return key_finish(key, error);
}

WaKey *
wa_key_from_bytes(const guint8 *bytes, gsize len, GError **error)
{
  WaKey *key;

  if (bytes == NULL || len != WA_CRYPT_KEY_BYTES) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY, "a key has %d bytes, not %" G_GSIZE_FORMAT,
                WA_CRYPT_KEY_BYTES, bytes == NULL ? 0 : len);
    return NULL;
  }
  key = key_alloc(error);
  if (key == NULL)
    return NULL;
  memcpy(key->bytes, bytes, len);
  return key_finish(key, error);
}

WaKey *
wa_key_copy(const WaKey *key)
{
  g_autoptr(GError) error = NULL;
  WaKey *copy;

  if (key == NULL)
    return NULL;
  copy = wa_key_from_bytes(key->bytes, sizeof key->bytes, &error);
  if (copy == NULL)
    g_warning("cannot copy a key: %s", error->message);
  return copy;
}

void
wa_key_free(WaKey *key)
{
  sodium_free(key); /* wipes; NULL is allowed */
}

const guint8 *
wa_key_bytes(const WaKey *key)
{
  g_return_val_if_fail(key != NULL, NULL);
  return key->bytes;
}

WaKey *
wa_key_derive(const WaKey *data_key, WaSubkey purpose)
{
  g_autoptr(GError) error = NULL;
  WaKey *sub;

  g_return_val_if_fail(data_key != NULL, NULL);
  sub = key_alloc(&error);
  if (sub == NULL) {
    g_warning("cannot derive a subkey: %s", error->message);
    return NULL;
  }
  if (crypto_kdf_derive_from_key(sub->bytes, sizeof sub->bytes, (uint64_t) purpose, KDF_CONTEXT, data_key->bytes) !=
      0) {
    sodium_free(sub);
    g_warning("cannot derive subkey %d", (int) purpose);
    return NULL;
  }
  sub = key_finish(sub, &error);
  if (sub == NULL)
    g_warning("cannot derive a subkey: %s", error->message);
  return sub;
}

/* ---- associated data --------------------------------------------------------- */

/* @domain with its NUL, then each part as an 8-byte little-endian length and
 * its bytes: no two different lists of parts give the same bytes. */
static GByteArray *
ad_new(const char *domain, const char *const *parts, guint n_parts)
{
  GByteArray *ad = g_byte_array_new();

  g_byte_array_append(ad, (const guint8 *) domain, (guint) strlen(domain) + 1);
  for (guint i = 0; i < n_parts; i++) {
    gsize len = strlen(parts[i]);
    guint8 prefix[8];

    for (guint b = 0; b < sizeof prefix; b++)
      prefix[b] = (guint8) ((guint64) len >> (8 * b));
    g_byte_array_append(ad, prefix, sizeof prefix);
    /* names and ids are short; a part past G_MAXUINT is a caller bug */
    g_assert(len <= G_MAXUINT);
    g_byte_array_append(ad, (const guint8 *) parts[i], (guint) len);
  }
  return ad;
}

static GByteArray *
field_ad(const char *table, const char *column, const char *row_id)
{
  const char *parts[] = {table, column, row_id};

  return ad_new(FIELD_AD_DOMAIN, parts, G_N_ELEMENTS(parts));
}

/* @mode is NULL for the recovery wrapping. */
static GByteArray *
wrap_ad(const char *purpose, const char *mode)
{
  const char *parts[] = {purpose, mode};

  return ad_new(WRAP_AD_DOMAIN, parts, mode != NULL ? 2 : 1);
}

/* ---- sealing fields ---------------------------------------------------------- */

GBytes *
wa_crypt_seal(const WaKey *key, const char *table, const char *column, const char *row_id, const void *plain, gsize len)
{
  static const guint8 empty[1];
  g_autoptr(GByteArray) ad = NULL;
  unsigned long long clen = 0;
  gsize out_len;
  guint8 *out;

  g_return_val_if_fail(key != NULL && table != NULL && column != NULL && row_id != NULL, NULL);
  g_return_val_if_fail(plain != NULL || len == 0, NULL);
  if (len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX || len > G_MAXSIZE - SEAL_OVERHEAD)
    return NULL;
  if (!crypt_init(NULL))
    return NULL;
  ad = field_ad(table, column, row_id);
  out_len = SEAL_OVERHEAD + len;
  out = g_malloc(out_len);
  out[0] = SEAL_VERSION;
  randombytes_buf(out + 1, NONCE_BYTES);
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + NONCE_BYTES, &clen, len > 0 ? plain : empty, len, ad->data,
                                                 ad->len, NULL, out + 1, key->bytes) != 0 ||
      clen != len + TAG_BYTES) {
    g_free(out);
    return NULL;
  }
  return g_bytes_new_take(out, out_len);
}

GBytes *
wa_crypt_open(const WaKey *key, const char *table, const char *column, const char *row_id, const guint8 *sealed,
              gsize len, GError **error)
{
  g_autoptr(GByteArray) ad = NULL;
  unsigned long long plain_len = 0;
  guint8 *plain;

  g_return_val_if_fail(key != NULL && table != NULL && column != NULL && row_id != NULL, NULL);
  if (sealed == NULL || len < SEAL_OVERHEAD) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                "a sealed %s.%s field is too short (%" G_GSIZE_FORMAT " bytes)", table, column,
                sealed == NULL ? 0 : len);
    return NULL;
  }
  if (sealed[0] != SEAL_VERSION) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                "a sealed %s.%s field has format version %u, which this plugin does not know", table, column,
                sealed[0]);
    return NULL;
  }
  ad = field_ad(table, column, row_id);
  plain = g_malloc(len - SEAL_OVERHEAD + 1);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plain_len, NULL, sealed + 1 + NONCE_BYTES,
                                                 len - 1 - NONCE_BYTES, ad->data, ad->len, sealed + 1,
                                                 key->bytes) != 0 ||
      plain_len != len - SEAL_OVERHEAD) {
    g_free(plain);
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED,
                "a sealed %s.%s field does not open: it was altered, moved from another row or column, "
                "or sealed with another key",
                table, column);
    return NULL;
  }
  plain[plain_len] = '\0';
  return g_bytes_new_take(plain, (gsize) plain_len);
}

void
wa_crypt_index(const WaKey *index_key, const char *domain, const char *value, guint8 out[WA_CRYPT_HASH_BYTES])
{
  static const guint8 separator = 0;
  crypto_generichash_state state;

  g_return_if_fail(index_key != NULL && domain != NULL && value != NULL && out != NULL);
  if (crypto_generichash_init(&state, index_key->bytes, sizeof index_key->bytes, WA_CRYPT_HASH_BYTES) != 0 ||
      crypto_generichash_update(&state, (const guint8 *) domain, strlen(domain)) != 0 ||
      crypto_generichash_update(&state, &separator, 1) != 0 ||
      crypto_generichash_update(&state, (const guint8 *) value, strlen(value)) != 0 ||
      crypto_generichash_final(&state, out, WA_CRYPT_HASH_BYTES) != 0)
    /* only wrong lengths make BLAKE2b fail, and ours are fixed: an index
     * filled with anything else would silently mismatch rows */
    g_error("BLAKE2b failed with valid lengths");
  sodium_memzero(&state, sizeof state);
}

/* ---- the key header ---------------------------------------------------------- */

struct _WaKeyHeader {
  WaKeyMode mode;
  WaKdfLimits limits;             /* passphrase mode only */
  guint8 salt[SALT_BYTES];        /* passphrase mode only */
  guint8 wrapped[WRAPPED_BYTES];  /* the data key under the KEK */
  guint8 recovery[WRAPPED_BYTES]; /* the data key under the recovery key */
};

WaKdfLimits
wa_kdf_limits_moderate(void)
{
  return (WaKdfLimits){
    .opslimit = crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
    .memlimit = crypto_pwhash_argon2id_MEMLIMIT_MODERATE,
  };
}

WaKdfLimits
wa_kdf_limits_minimum(void)
{
  return (WaKdfLimits){
    .opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN,
    .memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN,
  };
}

static const char *
mode_name(WaKeyMode mode)
{
  return mode == WA_KEY_MODE_PASSPHRASE ? "passphrase" : "keyfile";
}

static gboolean
limits_check(guint64 opslimit, guint64 memlimit, GError **error)
{
  if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || opslimit > OPSLIMIT_CAP) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                "Argon2id opslimit %" G_GUINT64_FORMAT " is outside %u to %u", opslimit,
                crypto_pwhash_argon2id_OPSLIMIT_MIN, OPSLIMIT_CAP);
    return FALSE;
  }
  if (memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN || memlimit > MEMLIMIT_CAP) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                "Argon2id memlimit %" G_GUINT64_FORMAT " is outside %u to %" G_GUINT64_FORMAT " bytes", memlimit,
                crypto_pwhash_argon2id_MEMLIMIT_MIN, (guint64) MEMLIMIT_CAP);
    return FALSE;
  }
  return TRUE;
}

static gboolean
passphrase_check(const char *passphrase, GError **error)
{
  if (passphrase == NULL || *passphrase == '\0') {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY,
                        "the passphrase is empty: an empty passphrase does not protect anything");
    return FALSE;
  }
  return TRUE;
}

static WaKey *
kek_from_passphrase(const char *passphrase, WaKdfLimits limits, const guint8 salt[SALT_BYTES], GError **error)
{
  WaKey *kek = key_alloc(error);

  if (kek == NULL)
    return NULL;
  /* fails only when the memory for Argon2id cannot be had (limits are checked) */
  if (crypto_pwhash(kek->bytes, sizeof kek->bytes, passphrase, strlen(passphrase), salt, limits.opslimit,
                    limits.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    sodium_free(kek);
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT,
                "not enough memory to derive the key from the passphrase (Argon2id needs %" G_GSIZE_FORMAT " KiB)",
                limits.memlimit / 1024);
    return NULL;
  }
  return key_finish(kek, error);
}

/* @out = nonce || @data_key sealed under @wrapping, AD from @purpose and @mode. */
static gboolean
wrap_key(const WaKey *wrapping, const WaKey *data_key, const char *purpose, const char *mode, guint8 out[WRAPPED_BYTES],
         GError **error)
{
  g_autoptr(GByteArray) ad = wrap_ad(purpose, mode);
  unsigned long long clen = 0;

  randombytes_buf(out, NONCE_BYTES);
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE_BYTES, &clen, data_key->bytes, sizeof data_key->bytes,
                                                 ad->data, ad->len, NULL, out, wrapping->bytes) != 0 ||
      clen != WA_CRYPT_KEY_BYTES + TAG_BYTES) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "could not wrap the data key");
    return FALSE;
  }
  return TRUE;
}

/* The data key, or NULL with PASSPHRASE (@refusal) when @wrapping does not open it. */
static WaKey *
unwrap_key(const WaKey *wrapping, const guint8 wrapped[WRAPPED_BYTES], const char *purpose, const char *mode,
           const char *refusal, GError **error)
{
  g_autoptr(GByteArray) ad = wrap_ad(purpose, mode);
  unsigned long long len = 0;
  WaKey *key = key_alloc(error);

  if (key == NULL)
    return NULL;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(key->bytes, &len, NULL, wrapped + NONCE_BYTES,
                                                 WRAPPED_BYTES - NONCE_BYTES, ad->data, ad->len, wrapped,
                                                 wrapping->bytes) != 0 ||
      len != WA_CRYPT_KEY_BYTES) {
    sodium_free(key);
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE, refusal);
    return NULL;
  }
  return key_finish(key, error);
}

/* ---- recovery codes ---------------------------------------------------------- */

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static char *
recovery_encode(const WaKey *key)
{
  /* 52 characters, a dash after every group but the last, NUL */
  char *code = g_malloc(RECOVERY_CHARS + RECOVERY_CHARS / RECOVERY_GROUP);
  guint32 acc = 0;
  guint bits = 0;
  gsize n = 0, pos = 0;

  for (gsize i = 0; i <= sizeof key->bytes; i++) {
    if (i < sizeof key->bytes) {
      acc = (acc << 8) | key->bytes[i];
      bits += 8;
    } else if (bits > 0) {
      acc <<= 5 - bits; /* the last character, padded with zero bits */
      bits = 5;
    }
    while (bits >= 5) {
      if (n > 0 && n % RECOVERY_GROUP == 0)
        code[pos++] = '-';
      code[pos++] = base32_alphabet[(acc >> (bits - 5)) & 31];
      n++;
      bits -= 5;
      acc &= (1u << bits) - 1;
    }
  }
  code[pos] = '\0';
  g_assert(n == RECOVERY_CHARS);
  sodium_memzero(&acc, sizeof acc);
  return code;
}

/* The recovery key in @code (case, spaces and dashes ignored), or NULL with
 * PASSPHRASE when it is not a well-formed code. */
static WaKey *
recovery_decode(const char *code, GError **error)
{
  WaKey *key;
  guint32 acc = 0;
  guint bits = 0;
  gsize chars = 0, bytes = 0;
  gboolean ok = code != NULL;

  key = key_alloc(error);
  if (key == NULL)
    return NULL;
  for (const char *p = code; ok && *p != '\0'; p++) {
    char c = g_ascii_toupper(*p);
    guint32 v;

    if (c == '-' || g_ascii_isspace(c))
      continue;
    if (c >= 'A' && c <= 'Z')
      v = (guint32) (c - 'A');
    else if (c >= '2' && c <= '7')
      v = (guint32) (c - '2') + 26;
    else {
      ok = FALSE;
      break;
    }
    if (++chars > RECOVERY_CHARS) {
      ok = FALSE;
      break;
    }
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      key->bytes[bytes++] = (guint8) (acc >> (bits - 8));
      bits -= 8;
      acc &= (1u << bits) - 1;
    }
  }
  /* 52 characters carry 260 bits: the 4 after the key must be zero */
  ok = ok && chars == RECOVERY_CHARS && bytes == WA_CRYPT_KEY_BYTES && acc == 0;
  sodium_memzero(&acc, sizeof acc);
  if (!ok) {
    sodium_free(key);
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE,
                "this is not a recovery code: a recovery code has %d letters and digits (A to Z, 2 to 7) "
                "in groups of %d",
                RECOVERY_CHARS, RECOVERY_GROUP);
    return NULL;
  }
  return key_finish(key, error);
}

/* ---- creating and unlocking headers ------------------------------------------ */

static WaKeyHeader *
header_create(WaKeyMode mode, const WaKey *kek, const guint8 *salt, WaKdfLimits limits, WaKey **data_key,
              char **recovery_code, GError **error)
{
  g_autoptr(WaKey) key = wa_key_new_random(error);
  g_autoptr(WaKey) recovery_key = NULL;
  g_autoptr(WaKeyHeader) header = NULL;

  if (key == NULL)
    return NULL;
  recovery_key = wa_key_new_random(error);
  if (recovery_key == NULL)
    return NULL;
  header = g_new0(WaKeyHeader, 1);
  header->mode = mode;
  if (mode == WA_KEY_MODE_PASSPHRASE) {
    header->limits = limits;
    memcpy(header->salt, salt, SALT_BYTES);
  }
  if (!wrap_key(kek, key, "kek", mode_name(mode), header->wrapped, error) ||
      !wrap_key(recovery_key, key, "recovery", NULL, header->recovery, error))
    return NULL;
  *recovery_code = recovery_encode(recovery_key);
  *data_key = g_steal_pointer(&key);
  return g_steal_pointer(&header);
}

WaKeyHeader *
wa_key_header_create_passphrase(const char *passphrase, WaKdfLimits limits, WaKey **data_key, char **recovery_code,
                                GError **error)
{
  g_autoptr(WaKey) kek = NULL;
  guint8 salt[SALT_BYTES];

  g_return_val_if_fail(data_key != NULL && recovery_code != NULL, NULL);
  if (!passphrase_check(passphrase, error) || !limits_check(limits.opslimit, limits.memlimit, error) ||
      !crypt_init(error))
    return NULL;
  randombytes_buf(salt, sizeof salt);
  kek = kek_from_passphrase(passphrase, limits, salt, error);
  if (kek == NULL)
    return NULL;
  return header_create(WA_KEY_MODE_PASSPHRASE, kek, salt, limits, data_key, recovery_code, error);
}

WaKeyHeader *
wa_key_header_create_keyfile(const WaKey *file_key, WaKey **data_key, char **recovery_code, GError **error)
{
  g_return_val_if_fail(file_key != NULL && data_key != NULL && recovery_code != NULL, NULL);
  return header_create(WA_KEY_MODE_KEYFILE, file_key, NULL, (WaKdfLimits){0}, data_key, recovery_code, error);
}

WaKeyMode
wa_key_header_mode(const WaKeyHeader *header)
{
  g_return_val_if_fail(header != NULL, WA_KEY_MODE_PASSPHRASE);
  return header->mode;
}

WaKey *
wa_key_header_unlock_passphrase(const WaKeyHeader *header, const char *passphrase, GError **error)
{
  g_autoptr(WaKey) kek = NULL;

  g_return_val_if_fail(header != NULL, NULL);
  if (!passphrase_check(passphrase, error))
    return NULL;
  if (header->mode != WA_KEY_MODE_PASSPHRASE) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE,
                        "this account's data is locked with a key file, not a passphrase");
    return NULL;
  }
  kek = kek_from_passphrase(passphrase, header->limits, header->salt, error);
  if (kek == NULL)
    return NULL;
  return unwrap_key(kek, header->wrapped, "kek", mode_name(header->mode),
                    "the passphrase does not unlock this account's data", error);
}

WaKey *
wa_key_header_unlock_keyfile(const WaKeyHeader *header, const WaKey *file_key, GError **error)
{
  g_return_val_if_fail(header != NULL && file_key != NULL, NULL);
  if (header->mode != WA_KEY_MODE_KEYFILE) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE,
                        "this account's data is locked with a passphrase, not a key file");
    return NULL;
  }
  return unwrap_key(file_key, header->wrapped, "kek", mode_name(header->mode),
                    "the key file does not unlock this account's data", error);
}

WaKey *
wa_key_header_unlock_recovery(const WaKeyHeader *header, const char *recovery_code, GError **error)
{
  g_autoptr(WaKey) recovery_key = NULL;

  g_return_val_if_fail(header != NULL, NULL);
  recovery_key = recovery_decode(recovery_code, error);
  if (recovery_key == NULL)
    return NULL;
  return unwrap_key(recovery_key, header->recovery, "recovery", NULL,
                    "the recovery code does not unlock this account's data", error);
}

WaKeyHeader *
wa_key_header_rotate_passphrase(const WaKeyHeader *header, const char *passphrase, WaKey **old_key, WaKey **new_key,
                                char **recovery_code, GError **error)
{
  g_autoptr(WaKey) current = NULL;
  WaKeyHeader *rotated;

  g_return_val_if_fail(header != NULL && old_key != NULL && new_key != NULL && recovery_code != NULL, NULL);
  /* the passphrase must open the current header: a typing mistake here
   * would otherwise lock the new key away for good */
  current = wa_key_header_unlock_passphrase(header, passphrase, error);
  if (current == NULL)
    return NULL;
  rotated = wa_key_header_create_passphrase(passphrase, header->limits, new_key, recovery_code, error);
  if (rotated != NULL)
    *old_key = g_steal_pointer(&current);
  return rotated;
}

WaKeyHeader *
wa_key_header_rotate_keyfile(const WaKeyHeader *header, const WaKey *file_key, WaKey **old_key, WaKey **new_key,
                             char **recovery_code, GError **error)
{
  g_autoptr(WaKey) current = NULL;
  WaKeyHeader *rotated;

  g_return_val_if_fail(header != NULL && file_key != NULL && old_key != NULL && new_key != NULL &&
                         recovery_code != NULL,
                       NULL);
  current = wa_key_header_unlock_keyfile(header, file_key, error);
  if (current == NULL)
    return NULL;
  rotated = wa_key_header_create_keyfile(file_key, new_key, recovery_code, error);
  if (rotated != NULL)
    *old_key = g_steal_pointer(&current);
  return rotated;
}

gboolean
wa_key_header_rewrap_passphrase_with_limits(WaKeyHeader *header, const WaKey *data_key, const char *passphrase,
                                            WaKdfLimits limits, GError **error)
{
  g_autoptr(WaKey) kek = NULL;
  guint8 salt[SALT_BYTES];
  guint8 wrapped[WRAPPED_BYTES];

  g_return_val_if_fail(header != NULL && data_key != NULL, FALSE);
  if (!passphrase_check(passphrase, error) || !limits_check(limits.opslimit, limits.memlimit, error) ||
      !crypt_init(error))
    return FALSE;
  randombytes_buf(salt, sizeof salt);
  kek = kek_from_passphrase(passphrase, limits, salt, error);
  if (kek == NULL || !wrap_key(kek, data_key, "kek", mode_name(WA_KEY_MODE_PASSPHRASE), wrapped, error))
    return FALSE;
  /* only now, so a failure leaves the header as it was */
  header->mode = WA_KEY_MODE_PASSPHRASE;
  header->limits = limits;
  memcpy(header->salt, salt, sizeof salt);
  memcpy(header->wrapped, wrapped, sizeof wrapped);
  return TRUE;
}

gboolean
wa_key_header_rewrap_passphrase(WaKeyHeader *header, const WaKey *data_key, const char *passphrase, GError **error)
{
  g_return_val_if_fail(header != NULL, FALSE);
  return wa_key_header_rewrap_passphrase_with_limits(header, data_key, passphrase,
                                                     header->mode == WA_KEY_MODE_PASSPHRASE ? header->limits
                                                                                            : wa_kdf_limits_moderate(),
                                                     error);
}

gboolean
wa_key_header_rewrap_keyfile(WaKeyHeader *header, const WaKey *data_key, const WaKey *file_key, GError **error)
{
  guint8 wrapped[WRAPPED_BYTES];

  g_return_val_if_fail(header != NULL && data_key != NULL && file_key != NULL, FALSE);
  if (!crypt_init(error) || !wrap_key(file_key, data_key, "kek", mode_name(WA_KEY_MODE_KEYFILE), wrapped, error))
    return FALSE;
  header->mode = WA_KEY_MODE_KEYFILE;
  header->limits = (WaKdfLimits){0};
  memset(header->salt, 0, sizeof header->salt);
  memcpy(header->wrapped, wrapped, sizeof wrapped);
  return TRUE;
}

/* ---- the header as JSON ------------------------------------------------------- */

static void
add_base64(JsonBuilder *builder, const char *name, const guint8 *data, gsize len)
{
  g_autofree char *text = g_base64_encode(data, len);

  json_builder_set_member_name(builder, name);
  json_builder_add_string_value(builder, text);
}

char *
wa_key_header_to_json(const WaKeyHeader *header)
{
  g_autoptr(JsonBuilder) builder = json_builder_new();
  g_autoptr(JsonNode) root = NULL;

  g_return_val_if_fail(header != NULL, NULL);
  json_builder_begin_object(builder);
  json_builder_set_member_name(builder, "version");
  json_builder_add_int_value(builder, HEADER_VERSION);
  json_builder_set_member_name(builder, "mode");
  json_builder_add_string_value(builder, mode_name(header->mode));
  if (header->mode == WA_KEY_MODE_PASSPHRASE) {
    json_builder_set_member_name(builder, "kdf");
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "alg");
    json_builder_add_string_value(builder, KDF_ALG_NAME);
    json_builder_set_member_name(builder, "opslimit");
    json_builder_add_int_value(builder, (gint64) header->limits.opslimit);
    json_builder_set_member_name(builder, "memlimit");
    json_builder_add_int_value(builder, (gint64) header->limits.memlimit);
    add_base64(builder, "salt", header->salt, sizeof header->salt);
    json_builder_end_object(builder);
  }
  add_base64(builder, "wrapped", header->wrapped, sizeof header->wrapped);
  add_base64(builder, "recovery", header->recovery, sizeof header->recovery);
  json_builder_end_object(builder);
  root = json_builder_get_root(builder);
  return wa_json_to_string(root);
}

/* A JSON integer (not a string, not a fraction) in *@out. */
static gboolean
get_integer(JsonObject *obj, const char *name, gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT, "the key header has no integer \"%s\"", name);
    return FALSE;
  }
  *out = json_node_get_int(node);
  return TRUE;
}

/* Exactly @len bytes of standard base64 from member @name into @out. */
static gboolean
get_base64(JsonObject *obj, const char *name, guint8 *out, gsize len, GError **error)
{
  const char *text = wa_json_get_string(obj, name);
  gsize got = 0;

  if (text == NULL) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT, "the key header has no \"%s\"", name);
    return FALSE;
  }
  if (sodium_base642bin(out, len, text, strlen(text), NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      got != len) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                "the key header's \"%s\" is not %" G_GSIZE_FORMAT " bytes in base64", name, len);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse_kdf(JsonObject *kdf, WaKeyHeader *header, GError **error)
{
  const char *alg = wa_json_get_string(kdf, "alg");
  gint64 opslimit = 0, memlimit = 0;

  if (alg == NULL || strcmp(alg, KDF_ALG_NAME) != 0) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                        "the key header names a key derivation other than " KDF_ALG_NAME);
    return FALSE;
  }
  if (!get_integer(kdf, "opslimit", &opslimit, error) || !get_integer(kdf, "memlimit", &memlimit, error))
    return FALSE;
  if (opslimit < 0 || memlimit < 0) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT, "the key header has negative Argon2id limits");
    return FALSE;
  }
  if (!limits_check((guint64) opslimit, (guint64) memlimit, error)) {
    g_prefix_error(error, "the key header's limits: ");
    return FALSE;
  }
  header->limits.opslimit = (guint64) opslimit;
  header->limits.memlimit = (gsize) memlimit;
  return get_base64(kdf, "salt", header->salt, sizeof header->salt, error);
}

WaKeyHeader *
wa_key_header_from_json(const char *json, GError **error)
{
  g_autoptr(WaKeyHeader) header = g_new0(WaKeyHeader, 1);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  JsonObject *obj;
  JsonNode *kdf;
  const char *mode;
  gint64 version = 0;

  if (json == NULL) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT, "there is no key header");
    return NULL;
  }
  root = wa_json_parse_object(json, strlen(json), &local);
  if (root == NULL) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT, "the key header is unreadable: %s", local->message);
    return NULL;
  }
  obj = json_node_get_object(root);
  if (!get_integer(obj, "version", &version, error))
    return NULL;
  if (version != HEADER_VERSION) {
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                "the key header has version %" G_GINT64_FORMAT ", which this plugin does not know", version);
    return NULL;
  }
  mode = wa_json_get_string(obj, "mode");
  if (g_strcmp0(mode, "passphrase") == 0)
    header->mode = WA_KEY_MODE_PASSPHRASE;
  else if (g_strcmp0(mode, "keyfile") == 0)
    header->mode = WA_KEY_MODE_KEYFILE;
  else {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                        "the key header's mode is neither \"passphrase\" nor \"keyfile\"");
    return NULL;
  }
  kdf = json_object_get_member(obj, "kdf");
  if (header->mode == WA_KEY_MODE_PASSPHRASE) {
    if (kdf == NULL || !JSON_NODE_HOLDS_OBJECT(kdf)) {
      g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                          "the key header is in passphrase mode but has no \"kdf\" object");
      return NULL;
    }
    if (!parse_kdf(json_node_get_object(kdf), header, error))
      return NULL;
  } else if (kdf != NULL) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                        "the key header is in key-file mode but has a \"kdf\" member");
    return NULL;
  }
  if (!get_base64(obj, "wrapped", header->wrapped, sizeof header->wrapped, error) ||
      !get_base64(obj, "recovery", header->recovery, sizeof header->recovery, error))
    return NULL;
  return g_steal_pointer(&header);
}

void
wa_key_header_free(WaKeyHeader *header)
{
  if (header == NULL)
    return;
  sodium_memzero(header, sizeof *header);
  g_free(header);
}

/* ---- key files ------------------------------------------------------------------ */

static void
set_io_error(GError **error, int errsv, const char *doing, const char *path)
{
  g_autofree char *shown = g_filename_display_name(path);

  g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "could not %s the key file %s: %s", doing, shown,
              g_strerror(errsv));
}

/* Reads the key from @fd (closed here) after checking type, mode and size. */
static WaKey *
keyfile_load(int fd, const char *path, GError **error)
{
  g_autofree char *shown = g_filename_display_name(path);
  g_autoptr(WaKey) key = NULL;
  struct stat st;

  if (fstat(fd, &st) != 0) {
    int errsv = errno;

    close(fd);
    set_io_error(error, errsv, "examine", path);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY,
                "the key file %s is not a regular file; point the account at the %d-byte key file", shown,
                WA_CRYPT_KEY_BYTES);
    return NULL;
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY,
                "the key file %s is open to other users (mode %04o); make it private with \"chmod 600 %s\", "
                "and if others may have copied it, switch the account to a new key file",
                shown, (unsigned) (st.st_mode & 07777), shown);
    return NULL;
  }
  if (st.st_size != WA_CRYPT_KEY_BYTES) {
    close(fd);
    g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY,
                "the key file %s has %lld bytes, not %d: it is not a key file of this plugin; put the original "
                "key file back (a new key would not open the existing data)",
                shown, (long long) st.st_size, WA_CRYPT_KEY_BYTES);
    return NULL;
  }
  key = key_alloc(error);
  if (key == NULL) {
    close(fd);
    return NULL;
  }
  /* errno, worded here: EIO when the file shrank after fstat */
  if (!wa_file_read_exact(fd, path, key->bytes, sizeof key->bytes, NULL)) {
    int errsv = errno;

    close(fd);
    set_io_error(error, errsv, "read", path);
    return NULL;
  }
  close(fd);
  return key_finish(g_steal_pointer(&key), error);
}

/* A new key in a new file at @path; NULL without @error and *@exists set when
 * the file appeared meanwhile. On failure no file is left behind. */
static WaKey *
keyfile_create(const char *path, gboolean *exists, GError **error)
{
  g_autoptr(WaKey) key = NULL;
  int fd;

  *exists = FALSE;
  /* 0600 through open's mode: the process umask is never changed */
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      *exists = TRUE;
      return NULL;
    }
    set_io_error(error, errno, "create", path);
    return NULL;
  }
  key = wa_key_new_random(error);
  if (key == NULL) {
    close(fd);
    unlink(path);
    return NULL;
  }
  /* errors worded here, from errno */
  if (!wa_file_write_all(fd, path, key->bytes, sizeof key->bytes, NULL) || fsync(fd) != 0) {
    int errsv = errno;

    close(fd);
    unlink(path);
    set_io_error(error, errsv, "write", path);
    return NULL;
  }
  if (close(fd) != 0 || !wa_file_sync_dir_of(path, NULL)) {
    int errsv = errno;

    unlink(path);
    set_io_error(error, errsv, "save", path);
    return NULL;
  }
  return g_steal_pointer(&key);
}

WaKey *
wa_keyfile_load_or_create(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  if (!crypt_init(error))
    return NULL;
  /* twice at most: a file created by someone else between our two opens is loaded */
  for (int attempt = 0; attempt < 2; attempt++) {
    gboolean exists = FALSE;
    WaKey *key;
    int fd;

    /* O_NONBLOCK: a FIFO in its place must not block the open */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0)
      return keyfile_load(fd, path, error);
    if (errno == ELOOP) {
      g_autofree char *shown = g_filename_display_name(path);

      g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY,
                  "the key file %s is a symbolic link; point the account at the file itself", shown);
      return NULL;
    }
    if (errno != ENOENT) {
      set_io_error(error, errno, "open", path);
      return NULL;
    }
    key = keyfile_create(path, &exists, error);
    if (key != NULL || !exists)
      return key;
  }
  set_io_error(error, EEXIST, "create", path);
  return NULL;
}

/* ---- work off the event loop --------------------------------------------------- */

typedef struct {
  WaLoop *loop;
  WaWorkFunc work;
  WaWorkDone done;
  gpointer data;
  gpointer result;
  GError *error;
  GThread *thread;
  int fds[2]; /* read end watched on the loop, write end for the thread */
  guint watch;
} WaWork;

static void
work_finish(WaWork *work)
{
  WaWorkDone done = work->done;
  gpointer result = work->result;
  GError *error = work->error;
  gpointer data = work->data;

  g_free(work);
  done(result, error, data); /* @done owns result and error */
}

static gpointer
work_thread(gpointer user_data)
{
  WaWork *work = user_data;
  const guint8 byte = 1;
  ssize_t n;

  work->result = work->work(work->data, &work->error);
  do
    n = write(work->fds[1], &byte, 1);
  while (n < 0 && errno == EINTR);
  /* a fresh pipe whose read end stays open until this byte arrives has room
   * for it; if it somehow did not, the loop would wait forever */
  if (n != 1)
    g_error("wa_work_run: cannot wake the event loop: %s", g_strerror(errno));
  return NULL;
}

/* On @loop's thread: the worker has written its byte. */
static void
work_ready(gpointer data, int fd, WaIoCondition cond)
{
  WaWork *work = data;
  guint8 byte;
  ssize_t n = read(fd, &byte, 1);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;                    /* woken without the byte: keep waiting */
  g_thread_join(work->thread); /* the byte is written last: this returns at once */
  wa_loop_input_clear(work->loop, &work->watch);
  close(work->fds[0]);
  close(work->fds[1]);
  work_finish(work);
}

static gboolean
work_failed(gpointer data)
{
  work_finish(data);
  return G_SOURCE_REMOVE;
}

void
wa_work_run(WaLoop *loop, WaWorkFunc work_func, WaWorkDone done, gpointer data)
{
  WaWork *work;
  GError *local = NULL;

  g_return_if_fail(loop != NULL && work_func != NULL && done != NULL);
  work = g_new0(WaWork, 1);
  work->loop = loop;
  work->work = work_func;
  work->done = done;
  work->data = data;
  if (pipe2(work->fds, O_CLOEXEC) != 0) {
    int errsv = errno;

    g_set_error(&work->error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "could not start background work: %s",
                g_strerror(errsv));
    goto fail;
  }
  if (!g_unix_set_fd_nonblocking(work->fds[0], TRUE, &local)) {
    g_set_error(&work->error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "could not start background work: %s",
                local->message);
    g_error_free(local);
    goto fail_pipe;
  }
  work->watch = wa_loop_input_add(loop, work->fds[0], WA_IO_READ, work_ready, work);
  work->thread = g_thread_try_new("wa-work", work_thread, work, &local);
  if (work->thread == NULL) {
    g_set_error(&work->error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, "could not start background work: %s",
                local->message);
    g_error_free(local);
    wa_loop_input_clear(loop, &work->watch);
    goto fail_pipe;
  }
  return;

fail_pipe:
  close(work->fds[0]);
  close(work->fds[1]);
fail:
  /* still reported later, from the loop, as on success */
  wa_loop_timeout_add(loop, 0, work_failed, work);
}

void
wa_crypt_wipe_free(char *text)
{
  if (text == NULL)
    return;
  sodium_memzero(text, strlen(text));
  g_free(text);
}
