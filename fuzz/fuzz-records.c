/* fuzz-records.c: libFuzzer target for opening what the plugin stores and
 * receives sealed: fields sealed at rest (wa_crypt_open), the key header
 * (wa_key_header_from_json, unlocking with a key file and with a recovery
 * code, plugin/core/wa-crypt.h), and journalled webhook events sealed by the
 * receiver (wa_seal_open, then wa_webhook_parse as the plugin does).
 *
 * Keys are fixed (fuzz/make-seeds.py uses the same ones to write valid
 * records for the corpus). Input: one mode byte, then the record. Mode % 4:
 * 0 a sealed field of messages.body in one row; 1 a key header (JSON);
 * 2 a recovery code for a header made at start-up; 3 a sealed event.
 * Checked: a record opens only with its own table, column and row; what
 * opens is what was sealed (the target seals the input itself and opens it
 * again, and a respelled recovery code still unlocks); a header that parses
 * serialises back to itself, and unlocks to the one data key the seeds
 * wrapped or not at all.
 * Must not: print the input or a key. */
#include "fuzz-common.h"

#include "wa-crypt.h"
#include "wa-seal.h"
#include "wa-webhook.h"

#define TABLE "messages"
#define COLUMN "body"
#define ROW "0123456789abcdef0123456789abcdef"

static WaKey *data_key;          /* bytes 1, 2, ..., 32 */
static WaKey *file_key;          /* 32 x 0x2a */
static WaKeyPair *event_keys;    /* secret key 32 x 0x17 */
static WaKeyHeader *made_header; /* made at start-up under file_key */
static WaKey *made_data_key;
static char *made_code;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  guint8 bytes[WA_CRYPT_KEY_BYTES];

  fuzz_init(argc, argv);
  for (guint i = 0; i < sizeof bytes; i++)
    bytes[i] = (guint8) (i + 1);
  data_key = wa_key_from_bytes(bytes, sizeof bytes, NULL);
  memset(bytes, 0x2a, sizeof bytes);
  file_key = wa_key_from_bytes(bytes, sizeof bytes, NULL);
  memset(bytes, 0x17, sizeof bytes);
  event_keys = wa_keypair_from_secret(bytes, sizeof bytes, NULL);
  made_header = wa_key_header_create_keyfile(file_key, &made_data_key, &made_code, NULL);
  fuzz_check(data_key != NULL && file_key != NULL && event_keys != NULL && made_header != NULL);
  return 0;
}

static gboolean
same_key(const WaKey *a, const WaKey *b)
{
  return memcmp(wa_key_bytes(a), wa_key_bytes(b), WA_CRYPT_KEY_BYTES) == 0;
}

static void
sealed_field(const guint8 *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) plain = wa_crypt_open(data_key, TABLE, COLUMN, ROW, data, size, &error);
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) again = NULL;
  gsize len = 0;
  const guint8 *bytes;

  fuzz_check((plain == NULL) == (error != NULL));
  if (plain != NULL) {
    g_autoptr(GBytes) moved = wa_crypt_open(data_key, TABLE, COLUMN, "another row", data, size, NULL);

    fuzz_check(moved == NULL);
    bytes = g_bytes_get_data(plain, &len);
    fuzz_check(len + 1 + 24 + 16 == size && bytes[len] == '\0');
  } else {
    fuzz_check(error->domain == WA_CRYPT_ERROR);
  }

  /* what is sealed opens as it was, and only where it was sealed for */
  sealed = wa_crypt_seal(data_key, TABLE, COLUMN, ROW, data, size);
  fuzz_check(sealed != NULL);
  bytes = g_bytes_get_data(sealed, &len);
  again = wa_crypt_open(data_key, TABLE, COLUMN, ROW, bytes, len, NULL);
  fuzz_check(again != NULL && g_bytes_get_size(again) == size);
  fuzz_check(size == 0 || memcmp(g_bytes_get_data(again, NULL), data, size) == 0);
  {
    g_autoptr(GBytes) other = wa_crypt_open(data_key, TABLE, "caption", ROW, bytes, len, NULL);

    fuzz_check(other == NULL);
  }
}

static void
key_header(const guint8 *data, size_t size)
{
  g_autofree char *json = fuzz_strndup(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKeyHeader) header = wa_key_header_from_json(json, &error);
  g_autoptr(WaKeyHeader) reread = NULL;
  g_autoptr(WaKey) unlocked = NULL;
  g_autofree char *written = NULL;
  g_autofree char *rewritten = NULL;

  fuzz_check((header == NULL) == (error != NULL));
  if (header == NULL) {
    fuzz_check(error->domain == WA_CRYPT_ERROR);
    return;
  }
  written = wa_key_header_to_json(header);
  reread = wa_key_header_from_json(written, NULL);
  fuzz_check(reread != NULL);
  rewritten = wa_key_header_to_json(reread);
  fuzz_check(g_str_equal(written, rewritten));

  /* never Argon2id here: a header may ask for gigabytes */
  if (wa_key_header_mode(header) == WA_KEY_MODE_KEYFILE) {
    unlocked = wa_key_header_unlock_keyfile(header, file_key, NULL);
    fuzz_check(unlocked == NULL || same_key(unlocked, data_key));
  }
}

static void
recovery_code(const guint8 *data, size_t size)
{
  g_autofree char *code = fuzz_strndup(data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) unlocked = wa_key_header_unlock_recovery(made_header, code, &error);
  g_autofree char *lower = g_ascii_strdown(made_code, -1);
  g_auto(GStrv) groups = g_strsplit(lower, "-", -1);
  g_autofree char *spaced = g_strjoinv(size % 2 == 0 ? " " : "", groups);
  g_autoptr(WaKey) respelled = wa_key_header_unlock_recovery(made_header, spaced, NULL);

  fuzz_check((unlocked == NULL) == (error != NULL));
  fuzz_check(unlocked == NULL || same_key(unlocked, made_data_key));
  fuzz_check(respelled != NULL && same_key(respelled, made_data_key));
}

static void
sealed_event(const guint8 *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) plain = wa_seal_open(event_keys, data, size, &error);
  g_autoptr(GBytes) sealed = wa_seal(event_keys->public_key, data, size);
  g_autoptr(GBytes) again = NULL;

  fuzz_check((plain == NULL) == (error != NULL));
  if (plain != NULL) {
    gsize len = 0;
    const char *text = g_bytes_get_data(plain, &len);
    g_autoptr(WaWebhook) webhook = wa_webhook_parse(text, len, NULL);

    fuzz_check(text[len] == '\0');
    fuzz_check(webhook == NULL || webhook->changes != NULL);
  }
  fuzz_check(sealed != NULL);
  again = wa_seal_open(event_keys, g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed), NULL);
  fuzz_check(again != NULL && g_bytes_get_size(again) == size);
  fuzz_check(size == 0 || memcmp(g_bytes_get_data(again, NULL), data, size) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  switch (data[0] % 4) {
  case 0:
    sealed_field(data + 1, size - 1);
    break;
  case 1:
    key_header(data + 1, size - 1);
    break;
  case 2:
    recovery_code(data + 1, size - 1);
    break;
  default:
    sealed_event(data + 1, size - 1);
    break;
  }
  return 0;
}
