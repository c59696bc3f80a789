/* test-crypt.c: the store's crypto layer (wa-crypt). Sealed fields open only
 * with their key, table, column and row; subkeys and index hashes are stable
 * and separated; the key header unlocks with the passphrase, key file or
 * recovery code and nothing else, and holds no secret; key files are private;
 * wa_work_run reports back on the loop's thread through the loop.
 *
 * The on-disk formats are pinned by decoding them here with libsodium
 * directly, so a change in wa-crypt.c cannot cancel itself out. Argon2id
 * always runs with the minimum limits. */
#include "wa-crypt.h"

#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "test-util.h"

#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

/* ---- helpers ----------------------------------------------------------------- */

static GBytes *
open_field(const WaKey *key, const char *table, const char *column, const char *row, GBytes *sealed, GError **error)
{
  return wa_crypt_open(key, table, column, row, g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed), error);
}

/* The test's own copy of the documented field AD (wa-crypt.c's header comment). */
static GByteArray *
expected_ad(const char *domain, const char *const *parts, guint n)
{
  GByteArray *ad = g_byte_array_new();

  g_byte_array_append(ad, (const guint8 *) domain, (guint) strlen(domain) + 1);
  for (guint i = 0; i < n; i++) {
    guint64 len = strlen(parts[i]);
    guint8 le[8];

    for (guint b = 0; b < 8; b++)
      le[b] = (guint8) (len >> (8 * b));
    g_byte_array_append(ad, le, 8);
    g_byte_array_append(ad, (const guint8 *) parts[i], (guint) len);
  }
  return ad;
}

/* RFC 4648 base32 without padding, written independently of wa-crypt.c. */
static gboolean
base32_decode(const char *text, guint8 *out, gsize out_len)
{
  const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  guint64 acc = 0;
  guint bits = 0;
  gsize n = 0;

  for (const char *p = text; *p; p++) {
    const char *hit;

    if (*p == '-')
      continue;
    hit = strchr(alphabet, *p);
    if (hit == NULL)
      return FALSE;
    acc = (acc << 5) | (guint64) (hit - alphabet);
    bits += 5;
    if (bits >= 8) {
      if (n == out_len)
        return FALSE;
      out[n++] = (guint8) (acc >> (bits - 8));
      bits -= 8;
    }
  }
  return n == out_len;
}

static char *
strip_dashes(const char *code)
{
  GString *s = g_string_new(NULL);

  for (const char *p = code; *p; p++)
    if (*p != '-')
      g_string_append_c(s, *p);
  return g_string_free(s, FALSE);
}

static WaKeyHeader *
create_passphrase_header(const char *passphrase, WaKey **data_key, char **code)
{
  g_autoptr(GError) error = NULL;
  WaKeyHeader *header = wa_key_header_create_passphrase(passphrase, wa_kdf_limits_minimum(), data_key, code, &error);

  g_assert_no_error(error);
  g_assert_nonnull(header);
  g_assert_nonnull(*data_key);
  g_assert_nonnull(*code);
  return header;
}

static void
assert_same_key(const WaKey *a, const WaKey *b)
{
  g_assert_nonnull(a);
  g_assert_nonnull(b);
  g_assert_cmpmem(wa_key_bytes(a), WA_CRYPT_KEY_BYTES, wa_key_bytes(b), WA_CRYPT_KEY_BYTES);
}

static void
assert_different(const guint8 *a, const guint8 *b, gsize len)
{
  g_assert_true(memcmp(a, b, len) != 0);
}

static WaKeyHeader *
reparse(const WaKeyHeader *header)
{
  g_autofree char *json = wa_key_header_to_json(header);
  g_autoptr(GError) error = NULL;
  WaKeyHeader *again = wa_key_header_from_json(json, &error);

  g_assert_no_error(error);
  g_assert_nonnull(again);
  return again;
}

static JsonObject *
json_root(const char *json, JsonNode **node)
{
  g_autoptr(JsonParser) parser = json_parser_new();

  g_assert_true(json_parser_load_from_data(parser, json, -1, NULL));
  *node = json_node_copy(json_parser_get_root(parser));
  return json_node_get_object(*node);
}

static char *
json_text(JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();

  json_generator_set_root(gen, node);
  return json_generator_to_data(gen, NULL);
}

/* ---- keys and sealing ---------------------------------------------------------- */

static void
test_round_trip(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) key = wa_key_new_random(&error);
  const char *plain = "Hello, this is the customer's message";
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) opened = NULL;
  g_autoptr(GBytes) empty = NULL;
  g_autoptr(GBytes) empty_opened = NULL;
  const guint8 *data;
  gsize len;

  g_assert_no_error(error);
  sealed = wa_crypt_seal(key, "messages", "body", "42", plain, strlen(plain));
  g_assert_nonnull(sealed);
  data = g_bytes_get_data(sealed, &len);
  g_assert_cmpuint(len, ==, 1 + NONCE + strlen(plain) + TAG);
  g_assert_cmpuint(data[0], ==, 1);
  /* the plaintext, or any recognisable word of it, is not in the sealed bytes */
  g_assert_null(memmem(data, len, plain, strlen(plain)));
  g_assert_null(memmem(data, len, "customer", 8));
  opened = open_field(key, "messages", "body", "42", sealed, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(opened), ==, strlen(plain));
  /* NUL-terminated beyond its size */
  g_assert_cmpstr(g_bytes_get_data(opened, NULL), ==, plain);

  empty = wa_crypt_seal(key, "messages", "body", "43", NULL, 0);
  g_assert_cmpuint(g_bytes_get_size(empty), ==, 1 + NONCE + TAG);
  empty_opened = open_field(key, "messages", "body", "43", empty, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_bytes_get_size(empty_opened), ==, 0);
  g_assert_cmpint(((const char *) g_bytes_get_data(empty_opened, NULL))[0], ==, '\0');
}

/* The documented format, opened with libsodium directly. */
static void
test_seal_format_pinned(void)
{
  g_autoptr(WaKey) key = wa_key_new_random(NULL);
  const char *parts[] = {"messages", "body", "row-7"};
  g_autoptr(GByteArray) ad = expected_ad("wabiz-field-v1", parts, 3);
  g_autoptr(GBytes) sealed = wa_crypt_seal(key, "messages", "body", "row-7", "pinned", 6);
  gsize len;
  const guint8 *data = g_bytes_get_data(sealed, &len);
  guint8 plain[6];
  unsigned long long plain_len = 0;

  g_assert_cmpuint(len, ==, 1 + NONCE + 6 + TAG);
  g_assert_cmpuint(data[0], ==, 1);
  g_assert_cmpint(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plain_len, NULL, data + 1 + NONCE, len - 1 - NONCE,
                                                             ad->data, ad->len, data + 1, wa_key_bytes(key)),
                  ==, 0);
  g_assert_cmpmem(plain, plain_len, "pinned", 6);
}

static void
test_ad_binding(void)
{
  g_autoptr(WaKey) key = wa_key_new_random(NULL);
  g_autoptr(GBytes) sealed = wa_crypt_seal(key, "messages", "body", "42", "secret", 6);
  g_autoptr(GBytes) joined = wa_crypt_seal(key, "ab", "c", "1", "x", 1);
  const char *others[][3] = {
    {"contacts", "body", "42"},    /* another table */
    {"messages", "caption", "42"}, /* another column */
    {"messages", "body", "43"},    /* another row */
    {"messages", "body", "42 "},   {"messages", "body", ""},
  };

  for (guint i = 0; i < G_N_ELEMENTS(others); i++) {
    g_autoptr(GError) error = NULL;
    GBytes *opened = open_field(key, others[i][0], others[i][1], others[i][2], sealed, &error);

    g_assert_null(opened);
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
    /* the message names table and column, never the row id */
    g_assert_nonnull(strstr(error->message, others[i][0]));
  }
  /* the parts are joined unambiguously: ("ab","c") is not ("a","bc") */
  {
    g_autoptr(GError) error = NULL;
    GBytes *opened = open_field(key, "a", "bc", "1", joined, &error);

    g_assert_null(opened);
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) opened = open_field(key, "ab", "c", "1", joined, &error);

    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(opened, NULL), g_bytes_get_size(opened), "x", 1);
  }
}

static void
test_tamper(void)
{
  g_autoptr(WaKey) key = wa_key_new_random(NULL);
  g_autoptr(GBytes) sealed = wa_crypt_seal(key, "t", "c", "r", "some text to protect", 20);
  gsize len = g_bytes_get_size(sealed);
  /* the nonce, the body and the tag */
  gsize positions[] = {1, 1 + NONCE - 1, 1 + NONCE, 1 + NONCE + 10, len - TAG, len - 1};

  for (guint i = 0; i < G_N_ELEMENTS(positions); i++) {
    g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(sealed, NULL), len);
    g_autoptr(GError) error = NULL;

    copy[positions[i]] ^= 0x01;
    g_assert_null(wa_crypt_open(key, "t", "c", "r", copy, len, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
  }
}

static void
test_format_errors(void)
{
  g_autoptr(WaKey) key = wa_key_new_random(NULL);
  g_autoptr(GBytes) sealed = wa_crypt_seal(key, "t", "c", "r", "abc", 3);
  gsize len = g_bytes_get_size(sealed);
  g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(sealed, NULL), len);
  gsize short_lens[] = {0, 1, 1 + NONCE, 1 + NONCE + TAG - 1};

  for (guint i = 0; i < G_N_ELEMENTS(short_lens); i++) {
    g_autoptr(GError) error = NULL;

    g_assert_null(wa_crypt_open(key, "t", "c", "r", copy, short_lens[i], &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT);
  }
  {
    g_autoptr(GError) error = NULL;

    g_assert_null(wa_crypt_open(key, "t", "c", "r", NULL, 0, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT);
  }
  /* a truncation long enough to parse fails authentication instead */
  {
    g_autoptr(GError) error = NULL;

    g_assert_null(wa_crypt_open(key, "t", "c", "r", copy, len - 1, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
  }
  for (guint v = 0; v < 256; v += 2) { /* 0, 2, ...: never 1 */
    g_autoptr(GError) error = NULL;

    copy[0] = (guint8) v;
    g_assert_null(wa_crypt_open(key, "t", "c", "r", copy, len, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) opened = NULL;

    copy[0] = 1;
    opened = wa_crypt_open(key, "t", "c", "r", copy, len, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(g_bytes_get_data(opened, NULL), ==, "abc");
  }
}

static void
test_wrong_key_and_nonces(void)
{
  g_autoptr(WaKey) key = wa_key_new_random(NULL);
  g_autoptr(WaKey) other = wa_key_new_random(NULL);
  g_autoptr(WaKey) copy = wa_key_copy(key);
  g_autoptr(GBytes) a = wa_crypt_seal(key, "t", "c", "r", "same text", 9);
  g_autoptr(GBytes) b = wa_crypt_seal(key, "t", "c", "r", "same text", 9);
  g_autoptr(GBytes) opened = NULL;
  g_autoptr(GError) error = NULL;

  assert_different(wa_key_bytes(key), wa_key_bytes(other), WA_CRYPT_KEY_BYTES);
  g_assert_null(open_field(other, "t", "c", "r", a, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
  g_clear_error(&error);

  /* two seals of the same text: different nonces, different bytes */
  assert_different((const guint8 *) g_bytes_get_data(a, NULL) + 1, (const guint8 *) g_bytes_get_data(b, NULL) + 1,
                   NONCE);
  g_assert_false(g_bytes_equal(a, b));

  /* a copy is the same key in other memory */
  assert_same_key(key, copy);
  g_assert_true(wa_key_bytes(key) != wa_key_bytes(copy));
  opened = open_field(copy, "t", "c", "r", b, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(g_bytes_get_data(opened, NULL), ==, "same text");
}

static void
test_key_from_bytes(void)
{
  guint8 raw[WA_CRYPT_KEY_BYTES + 1];
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) key = NULL;

  randombytes_buf(raw, sizeof raw);
  key = wa_key_from_bytes(raw, WA_CRYPT_KEY_BYTES, &error);
  g_assert_no_error(error);
  g_assert_cmpmem(wa_key_bytes(key), WA_CRYPT_KEY_BYTES, raw, WA_CRYPT_KEY_BYTES);
  g_assert_null(wa_key_from_bytes(raw, WA_CRYPT_KEY_BYTES - 1, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
  g_clear_error(&error);
  g_assert_null(wa_key_from_bytes(raw, WA_CRYPT_KEY_BYTES + 1, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
  wa_key_free(NULL);
}

static void
test_derive(void)
{
  g_autoptr(WaKey) data_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) other_data_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) index = wa_key_derive(data_key, WA_SUBKEY_INDEX);
  g_autoptr(WaKey) index_again = wa_key_derive(data_key, WA_SUBKEY_INDEX);
  g_autoptr(WaKey) audit = wa_key_derive(data_key, WA_SUBKEY_AUDIT);
  g_autoptr(WaKey) store = wa_key_derive(data_key, WA_SUBKEY_STORE);
  g_autoptr(WaKey) other_index = wa_key_derive(other_data_key, WA_SUBKEY_INDEX);
  guint8 expected[WA_CRYPT_KEY_BYTES];

  assert_same_key(index, index_again);
  assert_different(wa_key_bytes(index), wa_key_bytes(audit), WA_CRYPT_KEY_BYTES);
  assert_different(wa_key_bytes(index), wa_key_bytes(store), WA_CRYPT_KEY_BYTES);
  assert_different(wa_key_bytes(audit), wa_key_bytes(store), WA_CRYPT_KEY_BYTES);
  assert_different(wa_key_bytes(index), wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  assert_different(wa_key_bytes(index), wa_key_bytes(other_index), WA_CRYPT_KEY_BYTES);
  /* pinned: the context and ids are on disk in every store */
  g_assert_cmpint(crypto_kdf_derive_from_key(expected, sizeof expected, WA_SUBKEY_AUDIT, "wabizkey",
                                             wa_key_bytes(data_key)),
                  ==, 0);
  g_assert_cmpmem(wa_key_bytes(audit), WA_CRYPT_KEY_BYTES, expected, sizeof expected);
}

static void
test_index(void)
{
  g_autoptr(WaKey) data_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) key = wa_key_derive(data_key, WA_SUBKEY_INDEX);
  g_autoptr(WaKey) other = wa_key_new_random(NULL);
  guint8 a[WA_CRYPT_HASH_BYTES], b[WA_CRYPT_HASH_BYTES], c[WA_CRYPT_HASH_BYTES];
  guint8 d[WA_CRYPT_HASH_BYTES], e[WA_CRYPT_HASH_BYTES], f[WA_CRYPT_HASH_BYTES];
  guint8 g[WA_CRYPT_HASH_BYTES], h[WA_CRYPT_HASH_BYTES], expected[WA_CRYPT_HASH_BYTES];
  static const char input[] = "wa_id\0"
                              "491701234567";

  wa_crypt_index(key, "wa_id", "491701234567", a);
  wa_crypt_index(key, "wa_id", "491701234567", b);
  wa_crypt_index(key, "phone", "491701234567", c);
  wa_crypt_index(other, "wa_id", "491701234567", d);
  wa_crypt_index(key, "wa_id", "491701234568", e);
  wa_crypt_index(key, "ab", "c", f);
  wa_crypt_index(key, "a", "bc", g);
  wa_crypt_index(key, "", "", h);
  g_assert_cmpmem(a, sizeof a, b, sizeof b);
  assert_different(a, c, sizeof a);
  assert_different(a, d, sizeof a);
  assert_different(a, e, sizeof a);
  assert_different(f, g, sizeof f);
  assert_different(h, a, sizeof h);
  /* the number is not visible in the hash */
  g_assert_null(memmem(a, sizeof a, "4917", 4));
  /* pinned: BLAKE2b-256 keyed with the index key over domain, 0, value */
  g_assert_cmpint(crypto_generichash(expected, sizeof expected, (const guint8 *) input, sizeof input - 1,
                                     wa_key_bytes(key), WA_CRYPT_KEY_BYTES),
                  ==, 0);
  g_assert_cmpmem(a, sizeof a, expected, sizeof expected);
}

/* ---- the key header ------------------------------------------------------------ */

static void
test_header_passphrase(void)
{
  const char *passphrase = "correct horse battery staple";
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header(passphrase, &data_key, &code);
  g_autoptr(WaKeyHeader) parsed = reparse(header);
  g_autoptr(WaKey) unlocked = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = wa_key_header_to_json(header);
  g_autofree char *json_again = wa_key_header_to_json(parsed);

  g_assert_cmpint(wa_key_header_mode(parsed), ==, WA_KEY_MODE_PASSPHRASE);
  g_assert_cmpstr(json, ==, json_again);
  unlocked = wa_key_header_unlock_passphrase(parsed, passphrase, &error);
  g_assert_no_error(error);
  assert_same_key(unlocked, data_key);

  /* wrong passphrases: PASSPHRASE, and the message reveals neither */
  {
    const char *wrong[] = {"correct horse battery stapl", "Correct horse battery staple", "x"};

    for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
      g_autoptr(GError) wrong_error = NULL;

      g_assert_null(wa_key_header_unlock_passphrase(parsed, wrong[i], &wrong_error));
      g_assert_error(wrong_error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
      g_assert_cmpstr(wrong_error->message, ==, "the passphrase does not unlock this account's data");
    }
  }
  /* empty passphrases: KEY, for creating and for unlocking */
  {
    g_autoptr(WaKey) k = NULL;
    g_autofree char *c = NULL;

    g_assert_null(wa_key_header_unlock_passphrase(parsed, "", &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
    g_assert_nonnull(strstr(error->message, "empty"));
    g_clear_error(&error);
    g_assert_null(wa_key_header_create_passphrase("", wa_kdf_limits_minimum(), &k, &c, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
    g_assert_null(k);
    g_assert_null(c);
    g_clear_error(&error);
    g_assert_null(wa_key_header_create_passphrase(NULL, wa_kdf_limits_minimum(), &k, &c, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
    g_clear_error(&error);
  }
  /* a key file does not open a passphrase header */
  {
    g_autoptr(WaKey) file_key = wa_key_new_random(NULL);

    g_assert_null(wa_key_header_unlock_keyfile(parsed, file_key, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
    g_clear_error(&error);
  }
  /* two headers for the same passphrase: different salts and data keys */
  {
    g_autoptr(WaKey) k2 = NULL;
    g_autofree char *c2 = NULL;
    g_autoptr(WaKeyHeader) h2 = create_passphrase_header(passphrase, &k2, &c2);
    g_autoptr(WaKey) wrong_key = NULL;

    assert_different(wa_key_bytes(k2), wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
    g_assert_cmpstr(c2, !=, code);
    wrong_key = wa_key_header_unlock_recovery(h2, code, &error);
    g_assert_null(wrong_key);
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  }
}

static void
test_header_limits_in_json(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("pass", &data_key, &code);
  g_autofree char *json = wa_key_header_to_json(header);
  g_autoptr(JsonNode) node = NULL;
  JsonObject *root = json_root(json, &node);
  JsonObject *kdf = json_object_get_object_member(root, "kdf");
  g_autofree guchar *salt = NULL;
  gsize salt_len = 0;
  WaKdfLimits min = wa_kdf_limits_minimum();
  WaKdfLimits moderate = wa_kdf_limits_moderate();

  g_assert_cmpint(json_object_get_int_member(root, "version"), ==, 1);
  g_assert_cmpstr(json_object_get_string_member(root, "mode"), ==, "passphrase");
  g_assert_nonnull(kdf);
  g_assert_cmpstr(json_object_get_string_member(kdf, "alg"), ==, "argon2id13");
  g_assert_cmpint(json_object_get_int_member(kdf, "opslimit"), ==, (gint64) min.opslimit);
  g_assert_cmpint(json_object_get_int_member(kdf, "memlimit"), ==, (gint64) min.memlimit);
  salt = g_base64_decode(json_object_get_string_member(kdf, "salt"), &salt_len);
  g_assert_cmpuint(salt_len, ==, crypto_pwhash_SALTBYTES);
  g_assert_cmpuint(min.opslimit, ==, crypto_pwhash_argon2id_OPSLIMIT_MIN);
  g_assert_cmpuint(min.memlimit, ==, crypto_pwhash_argon2id_MEMLIMIT_MIN);
  g_assert_cmpuint(moderate.opslimit, ==, crypto_pwhash_argon2id_OPSLIMIT_MODERATE);
  g_assert_cmpuint(moderate.memlimit, ==, crypto_pwhash_argon2id_MEMLIMIT_MODERATE);
}

static void
test_recovery(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) created = create_passphrase_header("pass phrase", &data_key, &code);
  g_autoptr(WaKeyHeader) header = reparse(created);
  g_autoptr(GRegex) shape = g_regex_new("^[A-Z2-7]{4}(-[A-Z2-7]{4}){12}$", 0, 0, NULL);
  g_autofree char *lower = g_ascii_strdown(code, -1);
  g_autofree char *compact = strip_dashes(code);
  g_auto(GStrv) groups = g_strsplit(code, "-", -1);
  g_autofree char *joined = g_strjoinv(" ", groups);
  g_autofree char *spaced = g_strdup_printf("  %s \n", joined);
  const char *forms[] = {code, lower, compact, spaced};

  g_assert_true(g_regex_match(shape, code, 0, NULL));
  for (guint i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(header, forms[i], &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }
}

static void
test_recovery_refused(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("pass phrase", &data_key, &code);
  g_autofree char *one_off = g_strdup(code);
  g_autofree char *shorter = g_strndup(code, strlen(code) - 1);
  g_autofree char *longer = g_strconcat(code, "A", NULL);
  g_autofree char *digit = g_strdup(code);
  g_autofree char *padding = g_strdup(code);
  g_autofree char *first_group = g_strndup(code, 4);
  char *last = padding + strlen(padding) - 1;
  const char *bad[] = {one_off, shorter, longer, digit, "", "not a code", padding, NULL};

  /* one character changed: well-formed, but not this account's code */
  one_off[0] = one_off[0] == 'A' ? 'B' : 'A';
  /* 0, 1, 8 and 9 are outside RFC 4648's alphabet */
  digit[5] = '0';
  /* the last character carries one key bit and four zero bits: A/Q valid, B/R not */
  g_assert_true(*last == 'A' || *last == 'Q');
  *last = *last == 'A' ? 'B' : 'R';
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autoptr(GError) error = NULL;

    g_assert_null(wa_key_header_unlock_recovery(header, bad[i], &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
    /* no part of the real or the given code in the message */
    g_assert_null(strstr(error->message, code));
    g_assert_null(strstr(error->message, first_group));
  }
}

/* The recovery and key-file wrappings, opened with libsodium directly. */
static gboolean
unwrap_pinned(const char *b64, const guint8 *wrapping_key, const char *const *parts, guint n, guint8 *out)
{
  g_autoptr(GByteArray) ad = expected_ad("wabiz-wrap-v1", parts, n);
  gsize len = 0;
  g_autofree guchar *wrapped = g_base64_decode(b64, &len);
  unsigned long long out_len = 0;

  g_assert_cmpuint(len, ==, NONCE + WA_CRYPT_KEY_BYTES + TAG);
  return crypto_aead_xchacha20poly1305_ietf_decrypt(out, &out_len, NULL, wrapped + NONCE, len - NONCE, ad->data,
                                                    ad->len, wrapped, wrapping_key) == 0 &&
         out_len == WA_CRYPT_KEY_BYTES;
}

static void
test_header_format_pinned(void)
{
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKeyHeader) header = wa_key_header_create_keyfile(file_key, &data_key, &code, &error);
  g_autofree char *json = wa_key_header_to_json(header);
  g_autoptr(JsonNode) node = NULL;
  JsonObject *root = json_root(json, &node);
  guint8 recovery_key[WA_CRYPT_KEY_BYTES], out[WA_CRYPT_KEY_BYTES];
  const char *recovery_parts[] = {"recovery"};
  const char *kek_parts[] = {"kek", "keyfile"};
  const char *wrong_parts[] = {"kek", "passphrase"};

  g_assert_no_error(error);
  g_assert_cmpint(wa_key_header_mode(header), ==, WA_KEY_MODE_KEYFILE);
  g_assert_cmpstr(json_object_get_string_member(root, "mode"), ==, "keyfile");
  g_assert_false(json_object_has_member(root, "kdf"));
  /* the code is the recovery key in base32 */
  g_assert_true(base32_decode(code, recovery_key, sizeof recovery_key));
  g_assert_true(unwrap_pinned(json_object_get_string_member(root, "recovery"), recovery_key, recovery_parts, 1, out));
  g_assert_cmpmem(out, sizeof out, wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  g_assert_true(
    unwrap_pinned(json_object_get_string_member(root, "wrapped"), wa_key_bytes(file_key), kek_parts, 2, out));
  g_assert_cmpmem(out, sizeof out, wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  /* the AD names the mode */
  g_assert_false(
    unwrap_pinned(json_object_get_string_member(root, "wrapped"), wa_key_bytes(file_key), wrong_parts, 2, out));
}

static void
assert_absent(const char *json, const char *what, const guint8 *bytes, gsize len)
{
  g_autofree char *b64 = g_base64_encode(bytes, len);
  char url[128], hex[2 * 64 + 1];

  g_assert_nonnull(sodium_bin2base64(url, sizeof url, bytes, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
  g_assert_nonnull(sodium_bin2hex(hex, sizeof hex, bytes, len));
  if (strstr(json, b64) != NULL || strstr(json, url) != NULL || strstr(json, hex) != NULL)
    g_error("the header JSON contains the %s", what);
  /* a run of the first 12 bytes in base64 (16 characters) is not there either */
  b64[16] = '\0';
  if (strstr(json, b64) != NULL)
    g_error("the header JSON contains part of the %s", what);
}

static void
test_header_holds_no_secret(void)
{
  const char *passphrase = "Hunter2-is-a-better-passphrase";
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header(passphrase, &data_key, &code);
  g_autofree char *json = wa_key_header_to_json(header);
  g_autofree char *compact = strip_dashes(code);
  g_autofree char *lower = g_ascii_strdown(compact, -1);
  g_autoptr(WaKey) index = wa_key_derive(data_key, WA_SUBKEY_INDEX);
  guint8 recovery_key[WA_CRYPT_KEY_BYTES];
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *keyfile_json = NULL;

  g_assert_true(base32_decode(code, recovery_key, sizeof recovery_key));
  assert_absent(json, "data key", wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  assert_absent(json, "index key", wa_key_bytes(index), WA_CRYPT_KEY_BYTES);
  assert_absent(json, "recovery key", recovery_key, sizeof recovery_key);
  g_assert_null(strstr(json, passphrase));
  g_assert_null(strstr(json, "Hunter2"));
  g_assert_null(strstr(json, code));
  g_assert_null(strstr(json, compact));
  g_assert_null(g_strstr_len(json, -1, lower));

  g_assert_true(wa_key_header_rewrap_keyfile(header, data_key, file_key, &error));
  g_assert_no_error(error);
  keyfile_json = wa_key_header_to_json(header);
  assert_absent(keyfile_json, "data key", wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  assert_absent(keyfile_json, "file key", wa_key_bytes(file_key), WA_CRYPT_KEY_BYTES);
  assert_absent(keyfile_json, "recovery key", recovery_key, sizeof recovery_key);
}

static void
test_rewrap_passphrase(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("old passphrase", &data_key, &code);
  g_autofree char *before = wa_key_header_to_json(header);
  g_autofree char *after = NULL;
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) before_node = NULL;
  g_autoptr(JsonNode) after_node = NULL;
  JsonObject *b, *a;

  /* a refused rewrap leaves the header as it was */
  g_assert_false(wa_key_header_rewrap_passphrase(header, data_key, "", &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
  g_clear_error(&error);
  after = wa_key_header_to_json(header);
  g_assert_cmpstr(after, ==, before);
  g_clear_pointer(&after, g_free);

  g_assert_true(wa_key_header_rewrap_passphrase(header, data_key, "new passphrase", &error));
  g_assert_no_error(error);
  after = wa_key_header_to_json(header);
  b = json_root(before, &before_node);
  a = json_root(after, &after_node);
  /* new salt and wrapping, same limits, same recovery wrapping */
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(a, "kdf"), "salt"), !=,
                  json_object_get_string_member(json_object_get_object_member(b, "kdf"), "salt"));
  g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(a, "kdf"), "memlimit"), ==,
                  (gint64) wa_kdf_limits_minimum().memlimit);
  g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(a, "kdf"), "opslimit"), ==,
                  (gint64) wa_kdf_limits_minimum().opslimit);
  g_assert_cmpstr(json_object_get_string_member(a, "wrapped"), !=, json_object_get_string_member(b, "wrapped"));
  g_assert_cmpstr(json_object_get_string_member(a, "recovery"), ==, json_object_get_string_member(b, "recovery"));

  parsed = reparse(header);
  g_assert_null(wa_key_header_unlock_passphrase(parsed, "old passphrase", &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_passphrase(parsed, "new passphrase", &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(parsed, code, &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }
}

/* Rotation: a new data key and a new recovery code under the same passphrase
 * (checked first) or key file; the old recovery code stops opening the new
 * header, while a copy of the old header (a backup) still opens the old key
 * only. */
static void
test_rotate_header(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("the passphrase", &data_key, &code);
  g_autoptr(WaKeyHeader) rotated = NULL;
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(WaKey) old_key = NULL;
  g_autoptr(WaKey) new_key = NULL;
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autofree char *new_code = NULL;
  g_autofree char *before = wa_key_header_to_json(header);
  g_autoptr(GError) error = NULL;

  /* a wrong passphrase gives nothing (it would lock the new key away) */
  g_assert_null(wa_key_header_rotate_passphrase(header, "not the passphrase", &old_key, &new_key, &new_code, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  g_assert_null(old_key);
  g_assert_null(new_key);
  g_assert_null(new_code);

  rotated = wa_key_header_rotate_passphrase(header, "the passphrase", &old_key, &new_key, &new_code, &error);
  g_assert_no_error(error);
  g_assert_nonnull(rotated);
  assert_same_key(old_key, data_key);
  assert_different(wa_key_bytes(new_key), wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  g_assert_cmpstr(new_code, !=, code);
  parsed = reparse(rotated);
  g_assert_cmpint(wa_key_header_mode(parsed), ==, WA_KEY_MODE_PASSPHRASE);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_passphrase(parsed, "the passphrase", &error);

    g_assert_no_error(error);
    assert_same_key(key, new_key);
  }
  /* the old recovery code is refused, the new one accepted */
  g_assert_null(wa_key_header_unlock_recovery(parsed, code, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(parsed, new_code, &error);

    g_assert_no_error(error);
    assert_same_key(key, new_key);
  }
  /* the old header is untouched: a backup's copy still opens the old key */
  {
    g_autofree char *after = wa_key_header_to_json(header);
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(header, code, &error);

    g_assert_cmpstr(after, ==, before);
    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }

  /* key-file mode: the same file, a new key and code */
  g_clear_pointer(&header, wa_key_header_free);
  g_clear_pointer(&rotated, wa_key_header_free);
  g_clear_pointer(&data_key, wa_key_free);
  g_clear_pointer(&old_key, wa_key_free);
  g_clear_pointer(&new_key, wa_key_free);
  g_clear_pointer(&code, g_free);
  g_clear_pointer(&new_code, g_free);
  header = wa_key_header_create_keyfile(file_key, &data_key, &code, &error);
  g_assert_no_error(error);
  {
    g_autoptr(WaKey) other_file = wa_key_new_random(NULL);

    g_assert_null(wa_key_header_rotate_keyfile(header, other_file, &old_key, &new_key, &new_code, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
    g_clear_error(&error);
  }
  rotated = wa_key_header_rotate_keyfile(header, file_key, &old_key, &new_key, &new_code, &error);
  g_assert_no_error(error);
  assert_same_key(old_key, data_key);
  assert_different(wa_key_bytes(new_key), wa_key_bytes(data_key), WA_CRYPT_KEY_BYTES);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_keyfile(rotated, file_key, &error);

    g_assert_no_error(error);
    assert_same_key(key, new_key);
  }
  g_assert_null(wa_key_header_unlock_recovery(rotated, code, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(rotated, new_code, &error);

    g_assert_no_error(error);
    assert_same_key(key, new_key);
  }
}

static void
test_rewrap_keyfile_and_back(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("passphrase one", &data_key, &code);
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) other_file_key = wa_key_new_random(NULL);
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autoptr(JsonNode) node = NULL;
  JsonObject *root;

  g_assert_true(wa_key_header_rewrap_keyfile(header, data_key, file_key, &error));
  g_assert_no_error(error);
  json = wa_key_header_to_json(header);
  root = json_root(json, &node);
  g_assert_cmpstr(json_object_get_string_member(root, "mode"), ==, "keyfile");
  g_assert_false(json_object_has_member(root, "kdf"));
  parsed = reparse(header);
  g_assert_cmpint(wa_key_header_mode(parsed), ==, WA_KEY_MODE_KEYFILE);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_keyfile(parsed, file_key, &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }
  g_assert_null(wa_key_header_unlock_keyfile(parsed, other_file_key, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  g_assert_null(wa_key_header_unlock_passphrase(parsed, "passphrase one", &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(parsed, code, &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }

  /* and back to a passphrase, from the parsed header (no limits left in it) */
  g_assert_true(
    wa_key_header_rewrap_passphrase_with_limits(parsed, data_key, "passphrase two", wa_kdf_limits_minimum(), &error));
  g_assert_no_error(error);
  g_clear_pointer(&json, g_free);
  g_clear_pointer(&node, json_node_unref);
  json = wa_key_header_to_json(parsed);
  root = json_root(json, &node);
  g_assert_cmpstr(json_object_get_string_member(root, "mode"), ==, "passphrase");
  g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(root, "kdf"), "memlimit"), ==,
                  (gint64) wa_kdf_limits_minimum().memlimit);
  g_clear_pointer(&header, wa_key_header_free);
  header = reparse(parsed);
  g_assert_cmpint(wa_key_header_mode(header), ==, WA_KEY_MODE_PASSPHRASE);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_passphrase(header, "passphrase two", &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }
  g_assert_null(wa_key_header_unlock_keyfile(header, file_key, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  {
    g_autoptr(WaKey) key = wa_key_header_unlock_recovery(header, code, &error);

    g_assert_no_error(error);
    assert_same_key(key, data_key);
  }
  /* limits outside libsodium's range are refused when creating too */
  g_assert_false(wa_key_header_rewrap_passphrase_with_limits(header, data_key, "p", (WaKdfLimits){0, 8192}, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT);
}

/* ---- parsing the header ------------------------------------------------------------ */

static void
assert_refused(const char *json, const char *why)
{
  g_autoptr(GError) error = NULL;
  WaKeyHeader *header = wa_key_header_from_json(json, &error);

  if (header != NULL)
    g_error("a header with %s was accepted", why);
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT);
  g_assert_cmpuint(strlen(error->message), >, 10);
}

/* @json with @member of the root (or of its "kdf" when @in_kdf) replaced by
 * the JSON literal @value, or removed when @value is NULL. */
static char *
mutate(const char *json, gboolean in_kdf, const char *member, const char *value)
{
  g_autoptr(JsonNode) node = NULL;
  JsonObject *obj = json_root(json, &node);

  if (in_kdf)
    obj = json_object_get_object_member(obj, "kdf");
  if (value == NULL)
    json_object_remove_member(obj, member);
  else {
    g_autoptr(JsonParser) parser = json_parser_new();

    g_assert_true(json_parser_load_from_data(parser, value, -1, NULL));
    json_object_set_member(obj, member, json_node_copy(json_parser_get_root(parser)));
  }
  return json_text(node);
}

static void
test_from_json_refuses(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("p", &data_key, &code);
  g_autofree char *json = wa_key_header_to_json(header);
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) data_key2 = NULL;
  g_autofree char *code2 = NULL;
  g_autoptr(WaKeyHeader) keyfile_header = wa_key_header_create_keyfile(file_key, &data_key2, &code2, NULL);
  g_autofree char *keyfile_json = wa_key_header_to_json(keyfile_header);
  guint8 bytes[NONCE + WA_CRYPT_KEY_BYTES + TAG + 1] = {0};
  g_autofree char *b64_long = g_base64_encode(bytes, sizeof bytes);
  g_autofree char *b64_short = g_base64_encode(bytes, sizeof bytes - 2);
  g_autofree char *long_value = g_strdup_printf("\"%s\"", b64_long);
  g_autofree char *short_value = g_strdup_printf("\"%s\"", b64_short);
  g_autofree char *half = g_strndup(json, strlen(json) / 2);
  g_autofree char *deep = g_strnfill(1000, '[');
  const struct {
    gboolean in_kdf;
    const char *member;
    const char *value;
  } cases[] = {
    {FALSE, "version", "2"},
    {FALSE, "version", "0"},
    {FALSE, "version", "\"1\""},
    {FALSE, "version", "1.0"},
    {FALSE, "version", NULL},
    {FALSE, "mode", "\"pin\""},
    {FALSE, "mode", "\"keyfile\""}, /* with a kdf member */
    {FALSE, "mode", "1"},
    {FALSE, "mode", NULL},
    {FALSE, "kdf", NULL},
    {FALSE, "kdf", "\"argon2id13\""},
    {TRUE, "alg", "\"argon2i13\""},
    {TRUE, "alg", "\"scrypt\""},
    {TRUE, "alg", NULL},
    {TRUE, "opslimit", "0"},
    {TRUE, "opslimit", "-1"},
    {TRUE, "opslimit", "65"},
    {TRUE, "opslimit", "4294967295"},
    {TRUE, "opslimit", NULL},
    {TRUE, "memlimit", "8191"},
    {TRUE, "memlimit", "-8192"},
    {TRUE, "memlimit", "4294967297"},    /* just above 4 GiB */
    {TRUE, "memlimit", "1099511627776"}, /* 1 TiB */
    {TRUE, "memlimit", "9223372036854775807"},
    {TRUE, "memlimit", "\"8192\""},
    {TRUE, "memlimit", "8192.5"},
    {TRUE, "memlimit", NULL},
    {TRUE, "salt", "\"AAAA\""},
    {TRUE, "salt", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""},
    {TRUE, "salt", "\"not base64!\""},
    {TRUE, "salt", "16"},
    {TRUE, "salt", NULL},
    {FALSE, "wrapped", NULL},
    {FALSE, "wrapped", "\"\""},
    {FALSE, "wrapped", long_value},
    {FALSE, "wrapped", short_value},
    {FALSE, "wrapped", "[]"},
    {FALSE, "recovery", NULL},
    {FALSE, "recovery", "42"},
    {FALSE, "recovery", long_value},
  };
  const char *texts[] = {NULL, "", "garbage", "[]", "null", "{}", "\"version\"", half, deep};

  /* the unchanged header, and the limits at the edge, are accepted: the
   * refusals below come from the mutation, not the machinery */
  {
    g_autofree char *same = mutate(json, FALSE, "version", "1");
    g_autofree char *edge = mutate(json, TRUE, "memlimit", "4294967296");
    g_autofree char *edge_ops = mutate(edge, TRUE, "opslimit", "64");
    g_autoptr(WaKeyHeader) a = wa_key_header_from_json(same, NULL);
    g_autoptr(WaKeyHeader) b = wa_key_header_from_json(edge_ops, NULL);
    g_autoptr(WaKeyHeader) c = wa_key_header_from_json(keyfile_json, NULL);

    g_assert_nonnull(a);
    g_assert_nonnull(b);
    g_assert_nonnull(c);
  }
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *bad = mutate(json, cases[i].in_kdf, cases[i].member, cases[i].value);
    g_autofree char *why = g_strdup_printf("%s%s = %s", cases[i].in_kdf ? "kdf." : "", cases[i].member,
                                           cases[i].value ? cases[i].value : "(missing)");

    assert_refused(bad, why);
  }
  for (guint i = 0; i < G_N_ELEMENTS(texts); i++)
    assert_refused(texts[i], "unparsable text");
  {
    g_autofree char *with_kdf = mutate(keyfile_json, FALSE, "kdf", "{\"alg\":\"argon2id13\"}");
    g_autofree char *as_passphrase = mutate(keyfile_json, FALSE, "mode", "\"passphrase\"");

    assert_refused(with_kdf, "a kdf in key-file mode");
    assert_refused(as_passphrase, "passphrase mode without kdf");
  }
}

/* ---- key files ------------------------------------------------------------------------ */

typedef struct {
  char *dir;
  char *path;
  mode_t old_umask;
} KeyfileFixture;

static void
keyfile_setup(KeyfileFixture *f, gconstpointer unused)
{
  f->dir = g_dir_make_tmp("test-crypt-XXXXXX", NULL);
  g_assert_nonnull(f->dir);
  f->path = g_build_filename(f->dir, "account.key", NULL);
  f->old_umask = umask(022);
}

static void
remove_tree(const char *dir)
{
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name(d)) != NULL) {
    g_autofree char *child = g_build_filename(dir, name, NULL);

    if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
      remove_tree(child);
    else
      g_unlink(child);
  }
  g_rmdir(dir);
}

static void
keyfile_teardown(KeyfileFixture *f, gconstpointer unused)
{
  umask(f->old_umask);
  remove_tree(f->dir);
  g_free(f->dir);
  g_free(f->path);
}

static mode_t
current_umask(void)
{
  mode_t mask = umask(0);

  umask(mask);
  return mask;
}

static void
test_keyfile_create_and_load(KeyfileFixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) key = wa_keyfile_load_or_create(f->path, &error);
  g_autoptr(WaKey) again = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;
  struct stat st;

  g_assert_no_error(error);
  g_assert_nonnull(key);
  g_assert_cmpint(current_umask(), ==, 022);
  g_assert_cmpint(lstat(f->path, &st), ==, 0);
  g_assert_true(S_ISREG(st.st_mode));
  g_assert_cmpint(st.st_mode & 07777, ==, 0600);
  g_assert_cmpint(st.st_size, ==, WA_CRYPT_KEY_BYTES);
  g_assert_true(g_file_get_contents(f->path, &contents, &len, NULL));
  g_assert_cmpmem(contents, len, wa_key_bytes(key), WA_CRYPT_KEY_BYTES);

  again = wa_keyfile_load_or_create(f->path, &error);
  g_assert_no_error(error);
  assert_same_key(again, key);

  /* a header made with it unlocks with the loaded key */
  {
    g_autoptr(WaKey) data_key = NULL;
    g_autofree char *code = NULL;
    g_autoptr(WaKeyHeader) header = wa_key_header_create_keyfile(key, &data_key, &code, &error);
    g_autoptr(WaKeyHeader) parsed = NULL;
    g_autoptr(WaKey) unlocked = NULL;

    g_assert_no_error(error);
    parsed = reparse(header);
    unlocked = wa_key_header_unlock_keyfile(parsed, again, &error);
    g_assert_no_error(error);
    assert_same_key(unlocked, data_key);
  }
  /* under a stricter umask the file is still 0600 and the umask unchanged */
  {
    g_autofree char *other = g_build_filename(f->dir, "other.key", NULL);
    g_autoptr(WaKey) k = NULL;

    umask(077);
    k = wa_keyfile_load_or_create(other, &error);
    g_assert_no_error(error);
    g_assert_cmpint(current_umask(), ==, 077);
    g_assert_cmpint(stat(other, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    assert_different(wa_key_bytes(k), wa_key_bytes(key), WA_CRYPT_KEY_BYTES);
  }
}

static void
write_file(const char *path, const char *data, gsize len, mode_t mode)
{
  g_assert_true(g_file_set_contents(path, data, (gssize) len, NULL));
  g_assert_cmpint(chmod(path, mode), ==, 0);
}

static void
test_keyfile_wrong_size(KeyfileFixture *f, gconstpointer unused)
{
  const gsize sizes[] = {0, WA_CRYPT_KEY_BYTES - 1, WA_CRYPT_KEY_BYTES + 1, 64};
  char data[64];

  memset(data, 'k', sizeof data);
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *contents = NULL;
    gsize len = 0;

    write_file(f->path, data, sizes[i], 0600);
    g_assert_null(wa_keyfile_load_or_create(f->path, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
    g_assert_nonnull(strstr(error->message, f->path));
    /* left as it was: the right file may be put back */
    g_assert_true(g_file_get_contents(f->path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, sizes[i]);
  }
}

static void
test_keyfile_open_to_others(KeyfileFixture *f, gconstpointer unused)
{
  const mode_t modes[] = {0640, 0604, 0620, 0602, 0610, 0601, 0644, 0666};
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) key = wa_keyfile_load_or_create(f->path, &error);
  g_autoptr(WaKey) again = NULL;

  g_assert_no_error(error);
  for (guint i = 0; i < G_N_ELEMENTS(modes); i++) {
    struct stat st;

    g_assert_cmpint(chmod(f->path, modes[i]), ==, 0);
    g_assert_null(wa_keyfile_load_or_create(f->path, &error));
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
    g_assert_nonnull(strstr(error->message, f->path));
    g_assert_nonnull(strstr(error->message, "chmod 600"));
    g_clear_error(&error);
    /* refused, not silently repaired */
    g_assert_cmpint(stat(f->path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, modes[i]);
  }
  g_assert_cmpint(chmod(f->path, 0600), ==, 0);
  again = wa_keyfile_load_or_create(f->path, &error);
  g_assert_no_error(error);
  assert_same_key(again, key);
}

static void
test_keyfile_not_a_file(KeyfileFixture *f, gconstpointer unused)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *target = g_build_filename(f->dir, "real.key", NULL);
  g_autofree char *dangling = g_build_filename(f->dir, "dangling.key", NULL);
  g_autofree char *nowhere = g_build_filename(f->dir, "nowhere.key", NULL);
  g_autofree char *subdir = g_build_filename(f->dir, "sub.key", NULL);
  g_autofree char *missing = g_build_filename(f->dir, "missing", "account.key", NULL);
  g_autoptr(WaKey) real = wa_keyfile_load_or_create(target, &error);

  g_assert_no_error(error);
  g_assert_nonnull(real);
  /* a symbolic link, to a key file or to nothing, is not followed */
  g_assert_cmpint(symlink(target, f->path), ==, 0);
  g_assert_null(wa_keyfile_load_or_create(f->path, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
  g_assert_nonnull(strstr(error->message, "symbolic link"));
  g_clear_error(&error);
  g_assert_cmpint(symlink(nowhere, dangling), ==, 0);
  g_assert_null(wa_keyfile_load_or_create(dangling, &error));
  g_assert_nonnull(error);
  g_clear_error(&error);
  g_assert_false(g_file_test(nowhere, G_FILE_TEST_EXISTS));
  /* a directory */
  g_assert_cmpint(g_mkdir(subdir, 0700), ==, 0);
  g_assert_null(wa_keyfile_load_or_create(subdir, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_KEY);
  g_clear_error(&error);
  /* a missing directory is not created */
  g_assert_null(wa_keyfile_load_or_create(missing, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull(strstr(error->message, missing));
  g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
}

/* ---- wa_work_run ---------------------------------------------------------------------- */

typedef struct {
  WaLoop parent;
  guint inputs_added;
  guint inputs_removed;
} CountingLoop;

static guint
counting_timeout_add(WaLoop *loop, guint ms, GSourceFunc func, gpointer data)
{
  return wa_loop_glib()->timeout_add(wa_loop_glib(), ms, func, data);
}

static void
counting_timeout_remove(WaLoop *loop, guint id)
{
  wa_loop_glib()->timeout_remove(wa_loop_glib(), id);
}

static guint
counting_input_add(WaLoop *loop, int fd, WaIoCondition cond, WaIoFunc func, gpointer data)
{
  ((CountingLoop *) loop)->inputs_added++;
  return wa_loop_glib()->input_add(wa_loop_glib(), fd, cond, func, data);
}

static void
counting_input_remove(WaLoop *loop, guint id)
{
  ((CountingLoop *) loop)->inputs_removed++;
  wa_loop_glib()->input_remove(wa_loop_glib(), id);
}

static CountingLoop *
counting_loop_new(void)
{
  CountingLoop *loop = g_new0(CountingLoop, 1);

  loop->parent.timeout_add = counting_timeout_add;
  loop->parent.timeout_remove = counting_timeout_remove;
  loop->parent.input_add = counting_input_add;
  loop->parent.input_remove = counting_input_remove;
  return loop;
}

typedef struct {
  guint index;
  GThread *work_thread;
  GThread *done_thread;
  char *result;
  GError *error;
  guint done_calls;
  guint *done_total;
  gint *arrived; /* for the concurrency test */
  guint expect_peers;
} Job;

/* Drives the default main context until *@count reaches @target (and not
 * beyond); fails (instead of hanging) after 20 s. */
static void
run_until(const guint *count, guint target)
{
  test_wait_count(*count, target, 20);
  g_assert_cmpuint(*count, ==, target);
}

/* Open descriptors, counted after the main context has made its own wakeup
 * descriptor. */
static guint
open_fds(void)
{
  g_autoptr(GDir) dir = NULL;
  guint n = 0;

  while (g_main_context_iteration(NULL, FALSE))
    ;
  dir = g_dir_open("/proc/self/fd", 0, NULL);
  g_assert_nonnull(dir);
  while (g_dir_read_name(dir) != NULL)
    n++;
  return n;
}

static gpointer
work_ok(gpointer data, GError **error)
{
  Job *job = data;

  job->work_thread = g_thread_self();
  return g_strdup_printf("result %u", job->index);
}

static gpointer
work_fails(gpointer data, GError **error)
{
  Job *job = data;

  job->work_thread = g_thread_self();
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "job %u failed", job->index);
  return NULL;
}

/* Waits until all peers are inside their work function: only concurrent runs
 * get past this (serialised ones give up after 10 s with an error). */
static gpointer
work_together(gpointer data, GError **error)
{
  Job *job = data;
  gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

  job->work_thread = g_thread_self();
  g_atomic_int_inc(job->arrived);
  while ((guint) g_atomic_int_get(job->arrived) < job->expect_peers) {
    if (g_get_monotonic_time() > deadline) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the runs were not concurrent");
      return NULL;
    }
    g_usleep(1000);
  }
  return g_strdup_printf("result %u", job->index);
}

static void
job_done(gpointer result, GError *error, gpointer data)
{
  Job *job = data;

  job->done_thread = g_thread_self();
  job->result = result;
  job->error = error;
  job->done_calls++;
  (*job->done_total)++;
}

static void
job_clear(Job *job)
{
  g_free(job->result);
  g_clear_error(&job->error);
}

static void
test_work_result(void)
{
  g_autofree CountingLoop *loop = counting_loop_new();
  guint total = 0;
  Job job = {.index = 7, .done_total = &total};
  guint fds_before = open_fds();

  wa_work_run(&loop->parent, work_ok, job_done, &job);
  g_assert_cmpuint(loop->inputs_added, ==, 1);
  /* the worker finishes meanwhile, but @done waits for the loop */
  g_usleep(100 * 1000);
  g_assert_cmpuint(total, ==, 0);
  run_until(&total, 1);
  g_assert_cmpuint(job.done_calls, ==, 1);
  g_assert_true(job.done_thread == g_thread_self());
  g_assert_nonnull(job.work_thread);
  g_assert_true(job.work_thread != g_thread_self());
  g_assert_no_error(job.error);
  g_assert_cmpstr(job.result, ==, "result 7");
  /* the watch is removed and the pipe closed */
  g_assert_cmpuint(loop->inputs_removed, ==, 1);
  g_assert_cmpuint(open_fds(), ==, fds_before);
  /* and nothing calls @done again */
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpuint(job.done_calls, ==, 1);
  job_clear(&job);
}

static void
test_work_error(void)
{
  g_autofree CountingLoop *loop = counting_loop_new();
  guint total = 0;
  Job job = {.index = 3, .done_total = &total};

  wa_work_run(&loop->parent, work_fails, job_done, &job);
  run_until(&total, 1);
  g_assert_true(job.done_thread == g_thread_self());
  g_assert_true(job.work_thread != g_thread_self());
  g_assert_null(job.result);
  g_assert_error(job.error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr(job.error->message, ==, "job 3 failed");
  g_assert_cmpuint(loop->inputs_removed, ==, 1);
  job_clear(&job);
}

static void
test_work_concurrent(void)
{
  g_autofree CountingLoop *loop = counting_loop_new();
  guint total = 0;
  gint arrived = 0;
  Job jobs[3];
  guint fds_before = open_fds();

  for (guint i = 0; i < G_N_ELEMENTS(jobs); i++) {
    jobs[i] = (Job){.index = i, .done_total = &total, .arrived = &arrived, .expect_peers = G_N_ELEMENTS(jobs)};
    wa_work_run(&loop->parent, work_together, job_done, &jobs[i]);
  }
  run_until(&total, G_N_ELEMENTS(jobs));
  for (guint i = 0; i < G_N_ELEMENTS(jobs); i++) {
    g_autofree char *expected = g_strdup_printf("result %u", i);

    g_assert_no_error(jobs[i].error);
    g_assert_cmpstr(jobs[i].result, ==, expected);
    g_assert_cmpuint(jobs[i].done_calls, ==, 1);
    g_assert_true(jobs[i].done_thread == g_thread_self());
    g_assert_true(jobs[i].work_thread != g_thread_self());
    for (guint j = 0; j < i; j++)
      g_assert_true(jobs[i].work_thread != jobs[j].work_thread);
    job_clear(&jobs[i]);
  }
  g_assert_cmpuint(loop->inputs_added, ==, 3);
  g_assert_cmpuint(loop->inputs_removed, ==, 3);
  g_assert_cmpuint(open_fds(), ==, fds_before);
}

/* With no descriptor left for the pipe, the error still arrives through the
 * loop, after wa_work_run has returned, and nothing is left behind. */
static void
test_work_cannot_start(void)
{
  g_autofree CountingLoop *loop = counting_loop_new();
  guint total = 0;
  Job job = {.index = 1, .done_total = &total};
  guint fds_before = open_fds();
  struct rlimit saved, tight;

  for (int fd = 0; fd < 3; fd++)
    if (fcntl(fd, F_GETFD) < 0) {
      g_test_skip("a standard descriptor is closed");
      return;
    }
  g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
  tight = saved;
  tight.rlim_cur = 3; /* 0, 1 and 2 are open: no new descriptor */
  if (setrlimit(RLIMIT_NOFILE, &tight) != 0) {
    g_test_skip("cannot lower RLIMIT_NOFILE here");
    return;
  }
  wa_work_run(&loop->parent, work_ok, job_done, &job);
  g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
  g_assert_cmpuint(total, ==, 0);
  run_until(&total, 1);
  g_assert_null(job.work_thread); /* never ran */
  g_assert_true(job.done_thread == g_thread_self());
  g_assert_null(job.result);
  g_assert_error(job.error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT);
  g_assert_cmpuint(loop->inputs_added, ==, loop->inputs_removed);
  g_assert_cmpuint(open_fds(), ==, fds_before);
  job_clear(&job);
}

typedef struct {
  WaKeyHeader *header;
  const char *passphrase;
  WaKey *unlocked;
  GError *error;
  GThread *done_thread;
  guint done;
} UnlockJob;

static gpointer
work_unlock(gpointer data, GError **error)
{
  UnlockJob *job = data;

  return wa_key_header_unlock_passphrase(job->header, job->passphrase, error);
}

static void
unlock_done(gpointer result, GError *error, gpointer data)
{
  UnlockJob *job = data;

  job->unlocked = result;
  job->error = error;
  job->done_thread = g_thread_self();
  job->done++;
}

/* How the store is meant to run Argon2id: off the loop, result back on it. */
static void
test_work_unlock(void)
{
  g_autoptr(WaKey) data_key = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKeyHeader) header = create_passphrase_header("through a thread", &data_key, &code);
  UnlockJob right = {.header = header, .passphrase = "through a thread"};
  UnlockJob wrong = {.header = header, .passphrase = "not it"};

  wa_work_run(wa_loop_glib(), work_unlock, unlock_done, &right);
  wa_work_run(wa_loop_glib(), work_unlock, unlock_done, &wrong);
  run_until(&right.done, 1);
  run_until(&wrong.done, 1);
  g_assert_no_error(right.error);
  assert_same_key(right.unlocked, data_key);
  g_assert_true(right.done_thread == g_thread_self());
  g_assert_null(wrong.unlocked);
  g_assert_error(wrong.error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  wa_key_free(right.unlocked);
  g_clear_error(&wrong.error);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/crypt/seal/round-trip", test_round_trip);
  g_test_add_func("/crypt/seal/format-pinned", test_seal_format_pinned);
  g_test_add_func("/crypt/seal/ad-binding", test_ad_binding);
  g_test_add_func("/crypt/seal/tamper", test_tamper);
  g_test_add_func("/crypt/seal/format-errors", test_format_errors);
  g_test_add_func("/crypt/seal/wrong-key-and-nonces", test_wrong_key_and_nonces);
  g_test_add_func("/crypt/key/from-bytes", test_key_from_bytes);
  g_test_add_func("/crypt/key/derive", test_derive);
  g_test_add_func("/crypt/index", test_index);
  g_test_add_func("/crypt/header/passphrase", test_header_passphrase);
  g_test_add_func("/crypt/header/limits-in-json", test_header_limits_in_json);
  g_test_add_func("/crypt/header/recovery", test_recovery);
  g_test_add_func("/crypt/header/recovery-refused", test_recovery_refused);
  g_test_add_func("/crypt/header/format-pinned", test_header_format_pinned);
  g_test_add_func("/crypt/header/holds-no-secret", test_header_holds_no_secret);
  g_test_add_func("/crypt/header/rewrap-passphrase", test_rewrap_passphrase);
  g_test_add_func("/crypt/header/rewrap-keyfile-and-back", test_rewrap_keyfile_and_back);
  g_test_add_func("/crypt/header/rotate", test_rotate_header);
  g_test_add_func("/crypt/header/from-json-refuses", test_from_json_refuses);
  g_test_add("/crypt/keyfile/create-and-load", KeyfileFixture, NULL, keyfile_setup, test_keyfile_create_and_load,
             keyfile_teardown);
  g_test_add("/crypt/keyfile/wrong-size", KeyfileFixture, NULL, keyfile_setup, test_keyfile_wrong_size,
             keyfile_teardown);
  g_test_add("/crypt/keyfile/open-to-others", KeyfileFixture, NULL, keyfile_setup, test_keyfile_open_to_others,
             keyfile_teardown);
  g_test_add("/crypt/keyfile/not-a-file", KeyfileFixture, NULL, keyfile_setup, test_keyfile_not_a_file,
             keyfile_teardown);
  g_test_add_func("/crypt/work/result", test_work_result);
  g_test_add_func("/crypt/work/error", test_work_error);
  g_test_add_func("/crypt/work/concurrent", test_work_concurrent);
  g_test_add_func("/crypt/work/cannot-start", test_work_cannot_start);
  g_test_add_func("/crypt/work/unlock", test_work_unlock);
  return g_test_run();
}
