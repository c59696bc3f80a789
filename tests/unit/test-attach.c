/* test-media.c: plugin/core wa-media: encrypted media files (round trip in
 * chunks, a cut file, altered bytes, a wrong key, nothing readable at rest),
 * digest decoding (base64 and hex), the download token policy, safe file
 * names and sizes. */
#include "test-util.h"
#include "wa-attach.h"

#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
  char *tmp;
  WaKey *key;
} Fixture;

static void
set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->tmp = g_dir_make_tmp("test-media-XXXXXX", &error);
  g_assert_no_error(error);
  f->key = wa_key_new_random(&error);
  g_assert_no_error(error);
}

static void
tear_down(Fixture *f, gconstpointer data)
{
  test_remove_tree(f->tmp);
  g_free(f->tmp);
  wa_key_free(f->key);
}

/* Deterministic bytes with a recognisable text inside. */
static GBytes *
sample(gsize len)
{
  guint8 *buf = g_malloc(len);

  for (gsize i = 0; i < len; i++)
    buf[i] = (guint8) ((i * 131 + (i >> 9)) & 0xff);
  if (len > 64)
    memcpy(buf + 10, "PLAINTEXT-MARKER", 16);
  return g_bytes_new_take(buf, len);
}

/* Writes @plain in odd-sized pieces; returns the file's path. */
static char *
write_file(Fixture *f, const char *name, GBytes *plain, guint8 digest[WA_ATTACH_DIGEST_BYTES])
{
  g_autofree char *path = g_build_filename(f->tmp, name, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(WaAttachWriter) w = wa_attach_writer_new(path, f->key, &error);
  gsize len;
  const guint8 *p = g_bytes_get_data(plain, &len);
  gsize off = 0, step = 1;

  g_assert_no_error(error);
  while (off < len) {
    gsize n = MIN(step, len - off);

    g_assert_true(wa_attach_writer_write(w, p + off, n, &error));
    off += n;
    step = step * 7 + 3;
  }
  g_assert_cmpuint(wa_attach_writer_size(w), ==, len);
  g_assert_true(wa_attach_writer_finish(w, digest, &error));
  g_assert_no_error(error);
  return g_steal_pointer(&path);
}

static GBytes *
read_all(const char *path, const WaKey *key, GError **error)
{
  g_autoptr(WaAttachReader) r = wa_attach_reader_open(path, key, error);
  g_autoptr(GByteArray) out = g_byte_array_new();
  guint8 *buf = g_malloc(WA_ATTACH_CHUNK);

  if (r == NULL) {
    g_free(buf);
    return NULL;
  }
  for (;;) {
    gsize len = 0;

    if (!wa_attach_reader_read(r, buf, &len, error)) {
      g_free(buf);
      return NULL;
    }
    if (len == 0)
      break;
    g_byte_array_append(out, buf, (guint) len);
  }
  g_free(buf);
  return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

static gboolean
file_has(const char *path, const char *needle)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  return memmem(data, len, needle, strlen(needle)) != NULL;
}

static void
test_round_trip(Fixture *f, gconstpointer data)
{
  /* empty, one byte, exactly a chunk, a chunk and one, several chunks */
  static const gsize sizes[] = {0, 1, WA_ATTACH_CHUNK, WA_ATTACH_CHUNK + 1, 3 * WA_ATTACH_CHUNK + 777};

  for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
    g_autoptr(GBytes) plain = sample(sizes[i]);
    g_autofree char *name = g_strdup_printf("f%zu", i);
    guint8 digest[WA_ATTACH_DIGEST_BYTES], want[WA_ATTACH_DIGEST_BYTES];
    g_autofree char *path = write_file(f, name, plain, digest);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) back = read_all(path, f->key, &error);
    g_autofree char *copy = g_build_filename(f->tmp, "copy", NULL);
    g_autofree char *copied = NULL;
    gsize copied_len = 0;
    struct stat st;

    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(back, plain));
    crypto_hash_sha256(want, g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
    g_assert_cmpmem(digest, sizeof digest, want, sizeof want);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    if (sizes[i] > 64)
      g_assert_false(file_has(path, "PLAINTEXT-MARKER"));
    g_assert_true(wa_attach_decrypt_to_file(path, f->key, copy, &error));
    g_assert_no_error(error);
    g_assert_true(g_file_get_contents(copy, &copied, &copied_len, NULL));
    g_assert_cmpmem(copied, copied_len, g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
    /* never over an existing file */
    g_assert_false(wa_attach_decrypt_to_file(path, f->key, copy, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
    g_remove(copy);
  }
}

static void
test_cut_altered_wrong_key(Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) plain = sample(2 * WA_ATTACH_CHUNK + 100);
  guint8 digest[WA_ATTACH_DIGEST_BYTES];
  g_autofree char *path = write_file(f, "m", plain, digest);
  g_autofree char *bytes = NULL;
  g_autofree char *cut_path = g_build_filename(f->tmp, "cut", NULL);
  g_autofree char *bad_path = g_build_filename(f->tmp, "bad", NULL);
  g_autofree char *dest = g_build_filename(f->tmp, "out", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) other = wa_key_new_random(NULL);
  GBytes *back;
  gsize len = 0;

  g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
  /* cut at a chunk boundary: every chunk left opens, but the FINAL one is missing */
  {
    gsize header = len - (2 * (WA_ATTACH_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)) -
                   (100 + crypto_secretstream_xchacha20poly1305_ABYTES);
    gsize cuts[] = {len - 1, header + WA_ATTACH_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES, header, 5};

    for (gsize i = 0; i < G_N_ELEMENTS(cuts); i++) {
      g_assert_true(g_file_set_contents(cut_path, bytes, (gssize) cuts[i], NULL));
      back = read_all(cut_path, f->key, &error);
      g_assert_null(back);
      g_assert_true(g_error_matches(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED) ||
                    g_error_matches(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT));
      g_clear_error(&error);
    }
    /* and a decryption to a file leaves no partial file behind */
    g_assert_false(wa_attach_decrypt_to_file(cut_path, f->key, dest, &error));
    g_clear_error(&error);
    g_assert_false(g_file_test(dest, G_FILE_TEST_EXISTS));
  }
  /* one flipped bit anywhere after the magic */
  {
    gsize positions[] = {20, len / 2, len - 1};

    for (gsize i = 0; i < G_N_ELEMENTS(positions); i++) {
      g_autofree char *bad = g_memdup2(bytes, len);

      bad[positions[i]] ^= 0x01;
      g_assert_true(g_file_set_contents(bad_path, bad, (gssize) len, NULL));
      back = read_all(bad_path, f->key, &error);
      g_assert_null(back);
      g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
      g_clear_error(&error);
    }
  }
  /* bytes appended after the end */
  {
    g_autofree char *longer = g_malloc(len + 1);

    memcpy(longer, bytes, len);
    longer[len] = 'x';
    g_assert_true(g_file_set_contents(bad_path, longer, (gssize) len + 1, NULL));
    back = read_all(bad_path, f->key, &error);
    g_assert_null(back);
    g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
    g_clear_error(&error);
  }
  /* another key */
  back = read_all(path, other, &error);
  g_assert_null(back);
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED);
}

static void
test_writer_removes_unfinished(Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename(f->tmp, "part", NULL);
  g_autoptr(GError) error = NULL;
  WaAttachWriter *w = wa_attach_writer_new(path, f->key, &error);

  g_assert_no_error(error);
  g_assert_true(wa_attach_writer_write(w, "abc", 3, &error));
  wa_attach_writer_free(w);
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  /* an existing file is never overwritten */
  g_assert_true(g_file_set_contents(path, "x", 1, NULL));
  w = wa_attach_writer_new(path, f->key, &error);
  g_assert_null(w);
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
}

static void
test_digest_decode(void)
{
  guint8 want[WA_ATTACH_DIGEST_BYTES], got[WA_ATTACH_DIGEST_BYTES];
  char hex[2 * WA_ATTACH_DIGEST_BYTES + 1];
  char b64[sodium_base64_ENCODED_LEN(WA_ATTACH_DIGEST_BYTES, sodium_base64_VARIANT_ORIGINAL)];
  char b64url[sodium_base64_ENCODED_LEN(WA_ATTACH_DIGEST_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

  /* a digest with + and / in its base64 form */
  for (guint i = 0; i < sizeof want; i++)
    want[i] = (guint8) (0xfb + i * 37);
  sodium_bin2hex(hex, sizeof hex, want, sizeof want);
  sodium_bin2base64(b64, sizeof b64, want, sizeof want, sodium_base64_VARIANT_ORIGINAL);
  sodium_bin2base64(b64url, sizeof b64url, want, sizeof want, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

  memset(got, 0, sizeof got);
  g_assert_true(wa_attach_digest_decode(hex, got));
  g_assert_cmpmem(got, sizeof got, want, sizeof want);
  {
    g_autofree char *upper = g_ascii_strup(hex, -1);

    memset(got, 0, sizeof got);
    g_assert_true(wa_attach_digest_decode(upper, got));
    g_assert_cmpmem(got, sizeof got, want, sizeof want);
  }
  memset(got, 0, sizeof got);
  g_assert_true(wa_attach_digest_decode(b64, got));
  g_assert_cmpmem(got, sizeof got, want, sizeof want);
  memset(got, 0, sizeof got);
  g_assert_true(wa_attach_digest_decode(b64url, got));
  g_assert_cmpmem(got, sizeof got, want, sizeof want);

  g_assert_false(wa_attach_digest_decode(NULL, got));
  g_assert_false(wa_attach_digest_decode("", got));
  g_assert_false(wa_attach_digest_decode("abc", got));
  hex[10] = 'g';
  g_assert_false(wa_attach_digest_decode(hex, got));
  b64[5] = '*';
  g_assert_false(wa_attach_digest_decode(b64, got));
  /* a base64 text of another length (a SHA-1) */
  g_assert_false(wa_attach_digest_decode("2jmj7l5rSw0yVb/vlWAYkK/YBwk=", got));
}

static void
test_url_policy(void)
{
  static const struct {
    const char *url;
    const char *base;
    gboolean allowed;
  } cases[] = {
    {"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2&hash=x",
     "https://graph.facebook.com/v25.0", TRUE},
    {"https://scontent.xx.fbcdn.net/v/t1/abc", "https://graph.facebook.com/v25.0", TRUE},
    {"https://mmg.whatsapp.net/d/f/abc.enc", "https://graph.facebook.com/v25.0", TRUE},
    /* not https */
    {"http://lookaside.fbsbx.com/x", "https://graph.facebook.com/v25.0", FALSE},
    /* look-alikes */
    {"https://lookaside.fbsbx.com.evil.example/x", "https://graph.facebook.com/v25.0", FALSE},
    {"https://evilfbsbx.com/x", "https://graph.facebook.com/v25.0", FALSE},
    {"https://fbsbx.com@evil.example/x", "https://graph.facebook.com/v25.0", FALSE},
    {"https://lookaside.fbsbx.com:8443/x", "https://graph.facebook.com/v25.0", FALSE},
    /* any other host */
    {"https://example.com/media/1", "https://graph.facebook.com/v25.0", FALSE},
    /* the API host itself: a BSP or simulator */
    {"https://waba.360dialog.io/media/1?x=y", "https://waba.360dialog.io/v1", TRUE},
    {"http://127.0.0.1:8123/_media/1?sig=x", "http://127.0.0.1:8123/v25.0", TRUE},
    /* the same host on another port, or scheme, is another server */
    {"http://127.0.0.1:9999/_media/1", "http://127.0.0.1:8123/v25.0", FALSE},
    {"http://waba.360dialog.io/media/1", "https://waba.360dialog.io/v1", FALSE},
    {"not a url", "https://graph.facebook.com/v25.0", FALSE},
    {NULL, "https://graph.facebook.com/v25.0", FALSE},
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    gboolean allowed = wa_attach_url_allowed(cases[i].url, cases[i].base, &error);

    if (allowed != cases[i].allowed)
      g_error("%s: expected %s", cases[i].url != NULL ? cases[i].url : "(null)",
              cases[i].allowed ? "allowed" : "refused");
    g_assert_true(allowed == (error == NULL));
  }
}

static void
test_safe_name(void)
{
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {
    {"invoice.pdf", "invoice.pdf"},
    {"../../etc/passwd", "passwd"},
    {"C:\\Users\\x\\report.docx", "report.docx"},
    {".bashrc", "bashrc"},
    {"a\nb\tc\x1b[31m.txt", "abc[31m.txt"},
    {"x\xe2\x80\xae"
     "fdp.exe",
     "xfdp.exe"},
    {"dir/", "attachment"},
    {"...", "attachment"},
    {"", "attachment"},
    {"Résumé 2026.pdf", "Résumé 2026.pdf"},
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *got = wa_attach_safe_name(cases[i].in, "attachment");

    g_assert_cmpstr(got, ==, cases[i].out);
  }
  {
    g_autofree char *longer = g_strnfill(500, 'a');
    g_autofree char *got = wa_attach_safe_name(longer, "x");

    g_assert_cmpuint(strlen(got), <=, 120);
  }
}

static void
test_extensions(void)
{
  g_assert_cmpstr(wa_attach_extension("image/jpeg"), ==, "jpg");
  g_assert_cmpstr(wa_attach_extension("audio/ogg; codecs=opus"), ==, "ogg");
  g_assert_cmpstr(wa_attach_extension("application/x-unknown"), ==, "bin");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_assert_cmpint(sodium_init(), >=, 0);
  g_test_add("/attach/round-trip", Fixture, NULL, set_up, test_round_trip, tear_down);
  g_test_add("/attach/cut-altered-wrong-key", Fixture, NULL, set_up, test_cut_altered_wrong_key, tear_down);
  g_test_add("/attach/writer-removes-unfinished", Fixture, NULL, set_up, test_writer_removes_unfinished, tear_down);
  g_test_add_func("/attach/digest-decode", test_digest_decode);
  g_test_add_func("/attach/url-policy", test_url_policy);
  g_test_add_func("/attach/safe-name", test_safe_name);
  g_test_add_func("/attach/extensions", test_extensions);
  return g_test_run();
}
