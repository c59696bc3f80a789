/* wa-signature.c: X-Hub-Signature-256 verification and constant-time token
 * comparison with libsodium.
 *
 * Must not: touch the body beyond hashing it, keep or log key material (the
 * HMAC state is wiped after use), or compare secrets with memcmp/strcmp. */
#include "wa-signature.h"

#include <sodium.h>
#include <string.h>

G_DEFINE_QUARK(wa - signature - error - quark, wa_signature_error)

#define PREFIX "sha256="
#define PREFIX_LEN (sizeof PREFIX - 1)
#define HEX_LEN (2 * crypto_auth_hmacsha256_BYTES)

/* sodium_init() once per process; TRUE when libsodium is usable. */
static gboolean
sodium_ready(void)
{
  static gsize once = 0;
  static gboolean ok = FALSE;

  if (g_once_init_enter(&once)) {
    ok = sodium_init() >= 0;
    g_once_init_leave(&once, 1);
  }
  return ok;
}

/* HMAC-SHA256 of @body keyed with @secret (any length) into @mac. */
static gboolean
hmac(const guint8 *body, gsize len, const char *secret, guint8 mac[crypto_auth_hmacsha256_BYTES])
{
  crypto_auth_hmacsha256_state state;
  static const guint8 empty = 0;

  if (!sodium_ready())
    return FALSE;
  crypto_auth_hmacsha256_init(&state, (const unsigned char *) secret, strlen(secret));
  crypto_auth_hmacsha256_update(&state, body != NULL ? body : &empty, len);
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof state);
  return TRUE;
}

gboolean
wa_signature_check(const char *header_value, const guint8 *body, gsize len, const char *app_secret, GError **error)
{
  guint8 expected[crypto_auth_hmacsha256_BYTES];
  guint8 given[crypto_auth_hmacsha256_BYTES];
  const char *hex;
  gsize hex_len;
  size_t bin_len = 0;
  gboolean match;

  g_return_val_if_fail(body != NULL || len == 0, FALSE);

  if (app_secret == NULL || *app_secret == '\0') {
    g_set_error_literal(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_NO_SECRET, "no app secret is configured");
    return FALSE;
  }
  if (header_value == NULL) {
    g_set_error_literal(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISSING,
                        "the X-Hub-Signature-256 header is missing");
    return FALSE;
  }
  while (*header_value == ' ' || *header_value == '\t')
    header_value++;
  hex_len = strlen(header_value);
  while (hex_len > 0 && (header_value[hex_len - 1] == ' ' || header_value[hex_len - 1] == '\t'))
    hex_len--;
  if (hex_len == 0) {
    g_set_error_literal(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISSING,
                        "the X-Hub-Signature-256 header is empty");
    return FALSE;
  }
  if (hex_len < PREFIX_LEN || g_ascii_strncasecmp(header_value, PREFIX, PREFIX_LEN) != 0) {
    g_set_error_literal(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED,
                        "the signature does not start with \"sha256=\"");
    return FALSE;
  }
  hex = header_value + PREFIX_LEN;
  hex_len -= PREFIX_LEN;
  if (hex_len != HEX_LEN || sodium_hex2bin(given, sizeof given, hex, hex_len, NULL, &bin_len, NULL) != 0 ||
      bin_len != sizeof given) {
    g_set_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED, "the signature is not %u hexadecimal digits",
                (guint) HEX_LEN);
    return FALSE;
  }
  if (!hmac(body, len, app_secret, expected)) {
    /* fail closed */
    g_set_error_literal(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH, "libsodium could not be initialised");
    return FALSE;
  }
  match = sodium_memcmp(expected, given, sizeof expected) == 0;
  sodium_memzero(expected, sizeof expected);
  if (!match) {
    g_set_error_literal(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH,
                        "the signature does not match the body");
    return FALSE;
  }
  return TRUE;
}

char *
wa_signature_compute(const guint8 *body, gsize len, const char *app_secret)
{
  guint8 mac[crypto_auth_hmacsha256_BYTES];
  char hex[HEX_LEN + 1];
  char *result;

  g_return_val_if_fail(body != NULL || len == 0, NULL);

  if (app_secret == NULL || *app_secret == '\0' || !hmac(body, len, app_secret, mac))
    return NULL;
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  result = g_strconcat(PREFIX, hex, NULL);
  sodium_memzero(mac, sizeof mac);
  sodium_memzero(hex, sizeof hex);
  return result;
}

gboolean
wa_token_equal(const char *a, const char *b)
{
  guint8 ha[crypto_generichash_BYTES], hb[crypto_generichash_BYTES];
  gboolean equal;

  if (a == NULL || b == NULL || !sodium_ready())
    return FALSE;
  /* fixed-length digests, compared in constant time: neither the content
   * nor the length of the stored token shows in the time taken (hashing
   * costs time per 128-byte block only) */
  crypto_generichash(ha, sizeof ha, (const guint8 *) a, strlen(a), NULL, 0);
  crypto_generichash(hb, sizeof hb, (const guint8 *) b, strlen(b), NULL, 0);
  equal = sodium_memcmp(ha, hb, sizeof ha) == 0 && *a != '\0' && *b != '\0';
  sodium_memzero(ha, sizeof ha);
  sodium_memzero(hb, sizeof hb);
  return equal;
}
