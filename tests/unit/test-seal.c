/* test-seal.c: events sealed to an account's public key open only with its
 * key pair; keys round-trip through base64 and a stored secret key. */
#include "wa-seal.h"

#include <string.h>

static void
test_round_trip(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKeyPair) pair = wa_keypair_new(&error);
  const char *plain = "{\"object\":\"whatsapp_business_account\"}";
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) opened = NULL;
  gsize len;
  const guint8 *data;

  g_assert_no_error(error);
  sealed = wa_seal(pair->public_key, plain, strlen(plain));
  data = g_bytes_get_data(sealed, &len);
  g_assert_cmpuint(len, ==, strlen(plain) + crypto_box_SEALBYTES);
  /* the plaintext is not visible in the sealed bytes */
  g_assert_null(memmem(data, len, "whatsapp", 8));
  opened = wa_seal_open(pair, data, len, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(g_bytes_get_data(opened, NULL), ==, plain);
}

static void
test_other_key_and_tamper(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaKeyPair) other = wa_keypair_new(NULL);
  g_autoptr(GBytes) sealed = wa_seal(pair->public_key, "secret", 6);
  gsize len;
  g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(sealed, &len), g_bytes_get_size(sealed));
  g_autoptr(GError) error = NULL;
  GBytes *opened;

  opened = wa_seal_open(other, copy, len, &error);
  g_assert_null(opened);
  g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
  g_clear_error(&error);

  copy[len - 1] ^= 1;
  opened = wa_seal_open(pair, copy, len, &error);
  g_assert_null(opened);
  g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
  g_clear_error(&error);

  opened = wa_seal_open(pair, copy, crypto_box_SEALBYTES - 1, &error);
  g_assert_null(opened);
  g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_FORMAT);
}

/* The receiver's batches: events sealed by one sealer open one by one with
 * the account's key pair, each under its own nonce; tampering, another key
 * and a cut event are refused; events sealed before batches (wa_seal, still
 * in journals written by earlier receivers) open beside them. */
static void
test_batch(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaKeyPair) other = wa_keypair_new(NULL);
  g_autoptr(WaSealer) sealer = wa_sealer_new(pair->public_key);
  const char *plain[] = {"{\"first\":\"whatsapp\"}", "{\"second\":\"whatsapp\"}", ""};
  g_autoptr(GBytes) sealed0 = wa_sealer_seal(sealer, plain[0], strlen(plain[0]));
  g_autoptr(GBytes) sealed1 = wa_sealer_seal(sealer, plain[1], strlen(plain[1]));
  g_autoptr(GBytes) sealed2 = wa_sealer_seal(sealer, plain[2], 0);
  g_autoptr(GBytes) old = wa_seal(pair->public_key, "{\"old\":1}", 9);
  GBytes *sealed[] = {sealed0, sealed1, sealed2};
  const guint8 *a = g_bytes_get_data(sealed0, NULL);
  const guint8 *b = g_bytes_get_data(sealed1, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) opened_old = NULL;
  gsize len;
  g_autofree guint8 *copy = NULL;
  GBytes *opened;

  g_assert_nonnull(sealer);
  g_assert_cmpmem(wa_sealer_public_key(sealer), WA_SEAL_PUBLIC_KEY_BYTES, pair->public_key, WA_SEAL_PUBLIC_KEY_BYTES);
  for (guint i = 0; i < G_N_ELEMENTS(sealed); i++) {
    const guint8 *data = g_bytes_get_data(sealed[i], &len);

    g_assert_cmpuint(len, ==, strlen(plain[i]) + WA_SEAL_BATCH_OVERHEAD);
    g_assert_cmpmem(data, 8, WA_SEAL_BATCH_MAGIC, 8);
    g_assert_null(memmem(data, len, "whatsapp", 8));
    opened = wa_seal_open(pair, data, len, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(g_bytes_get_data(opened, NULL), ==, plain[i]);
    g_bytes_unref(opened);
  }
  /* one key agreement (the same ephemeral key), a nonce of each event's own */
  g_assert_cmpmem(a + 8, crypto_box_PUBLICKEYBYTES, b + 8, crypto_box_PUBLICKEYBYTES);
  g_assert_true(memcmp(a + 8 + crypto_box_PUBLICKEYBYTES, b + 8 + crypto_box_PUBLICKEYBYTES, crypto_box_NONCEBYTES) !=
                0);

  /* the upgrade path: an event of the old format still opens */
  opened_old = wa_seal_open(pair, g_bytes_get_data(old, NULL), g_bytes_get_size(old), &error);
  g_assert_no_error(error);
  g_assert_cmpstr(g_bytes_get_data(opened_old, NULL), ==, "{\"old\":1}");

  opened = wa_seal_open(other, a, g_bytes_get_size(sealed0), &error);
  g_assert_null(opened);
  g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
  g_clear_error(&error);

  copy = g_memdup2(a, g_bytes_get_size(sealed0));
  len = g_bytes_get_size(sealed0);
  for (gsize at = 8; at < len; at += 7) {
    copy[at] ^= 1;
    opened = wa_seal_open(pair, copy, len, &error);
    g_assert_null(opened);
    g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
    g_clear_error(&error);
    copy[at] ^= 1;
  }
  opened = wa_seal_open(pair, copy, len - 1, &error);
  g_assert_null(opened);
  g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
  g_clear_error(&error);

  /* a low-order point: nothing can be sealed to it */
  {
    guint8 zero[WA_SEAL_PUBLIC_KEY_BYTES] = {0};

    g_assert_null(wa_sealer_new(zero));
  }
}

static void
test_keys_round_trip(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaKeyPair) again = wa_keypair_from_secret(pair->secret_key, WA_SEAL_SECRET_KEY_BYTES, NULL);
  g_autofree char *b64 = wa_keypair_public_base64(pair);
  guint8 decoded[WA_SEAL_PUBLIC_KEY_BYTES];
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) opened = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull(again);
  g_assert_cmpmem(again->public_key, sizeof again->public_key, pair->public_key, sizeof pair->public_key);
  g_assert_true(wa_seal_public_key_decode(b64, decoded, &error));
  g_assert_cmpmem(decoded, sizeof decoded, pair->public_key, sizeof pair->public_key);
  /* sealed to the decoded key, opened by the re-derived pair */
  sealed = wa_seal(decoded, "x", 1);
  opened = wa_seal_open(again, g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed), &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(opened), ==, 1);
}

static void
test_bad_keys(void)
{
  guint8 out[WA_SEAL_PUBLIC_KEY_BYTES];
  g_autofree char *short_key = g_base64_encode((const guchar *) "0123456789", 10);
  const char *bad[] = {NULL, "", "not base64!", short_key,
                       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="};

  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;
    g_assert_false(wa_seal_public_key_decode(bad[i], out, &error));
    g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_KEY);
  }
  {
    guint8 zero[WA_SEAL_PUBLIC_KEY_BYTES] = {0};
    g_autoptr(GError) error = NULL;
    /* a low-order point: nothing can be sealed to it */
    g_assert_null(wa_seal(zero, "x", 1));
    g_assert_null(wa_keypair_from_secret(out, 16, &error));
    g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_KEY);
  }
}

/* The opener keeps the last batch's shared key: events of several batches,
 * interleaved, of the old format and altered ones, open (or not) exactly as
 * wa_seal_open has them. */
static void
test_opener(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaKeyPair) other = wa_keypair_new(NULL);
  g_autoptr(WaSealer) first = wa_sealer_new(pair->public_key);
  g_autoptr(WaSealer) second = wa_sealer_new(pair->public_key);
  g_autoptr(WaSealOpener) opener = wa_seal_opener_new(pair);
  g_autoptr(WaSealOpener) stranger = wa_seal_opener_new(other);
  GBytes *sealed[] = {
    wa_sealer_seal(first, "a1", 2),     wa_sealer_seal(second, "b1", 2), wa_sealer_seal(first, "a2", 2),
    wa_seal(pair->public_key, "o1", 2), wa_sealer_seal(second, "b2", 2), wa_sealer_seal(second, "b3", 2),
  };
  const char *plain[] = {"a1", "b1", "a2", "o1", "b2", "b3"};
  g_autoptr(GError) error = NULL;
  GBytes *opened;

  g_assert_nonnull(opener);
  for (guint round = 0; round < 2; round++) {
    for (guint i = 0; i < G_N_ELEMENTS(sealed); i++) {
      gsize len;
      const guint8 *data = g_bytes_get_data(sealed[i], &len);
      g_autofree guint8 *copy = g_memdup2(data, len);

      opened = wa_seal_opener_open(opener, data, len, &error);
      g_assert_no_error(error);
      g_assert_cmpstr(g_bytes_get_data(opened, NULL), ==, plain[i]);
      g_bytes_unref(opened);

      /* altered (the ephemeral key, the nonce, the text): refused, and the
       * next event still opens */
      for (gsize at = 9; at < len; at += 13) {
        copy[at] ^= 0x20;
        opened = wa_seal_opener_open(opener, copy, len, &error);
        g_assert_null(opened);
        g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
        g_clear_error(&error);
        copy[at] ^= 0x20;
      }
      opened = wa_seal_opener_open(stranger, data, len, &error);
      g_assert_null(opened);
      g_assert_error(error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
      g_clear_error(&error);
    }
  }
  for (guint i = 0; i < G_N_ELEMENTS(sealed); i++)
    g_bytes_unref(sealed[i]);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/seal/round-trip", test_round_trip);
  g_test_add_func("/seal/other-key-and-tamper", test_other_key_and_tamper);
  g_test_add_func("/seal/keys-round-trip", test_keys_round_trip);
  g_test_add_func("/seal/batch", test_batch);
  g_test_add_func("/seal/opener", test_opener);
  g_test_add_func("/seal/bad-keys", test_bad_keys);
  return g_test_run();
}
