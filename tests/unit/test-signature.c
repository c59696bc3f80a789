/* test-signature.c: X-Hub-Signature-256 checks over raw bodies and the
 * constant-time verify-token comparison. Expected MACs come from GLib's own
 * HMAC (an implementation independent of libsodium) or from RFC 4231.
 * Must not: derive expected values from the code under test or from libsodium. */
#include "wa-signature.h"

#include <string.h>

/* "sha256=" + GLib's HMAC-SHA256 hex of @body under @secret. */
static char *
glib_signature(const char *secret, const void *body, gsize len)
{
  g_autofree char *hex = g_compute_hmac_for_data(G_CHECKSUM_SHA256, (const guchar *) secret, strlen(secret), body, len);
  return g_strconcat("sha256=", hex, NULL);
}

static gboolean
check(const char *header, const char *body, const char *secret, GError **error)
{
  return wa_signature_check(header, (const guint8 *) body, strlen(body), secret, error);
}

static void
test_known_vector(void)
{
  /* RFC 4231 test case 2 */
  const char *body = "what do ya want for nothing?";
  const char *rfc = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  g_autofree char *ours = wa_signature_compute((const guint8 *) body, strlen(body), "Jefe");
  g_autofree char *glib = glib_signature("Jefe", body, strlen(body));
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr(ours, ==, rfc);
  g_assert_cmpstr(glib, ==, rfc);
  g_assert_true(check(rfc, body, "Jefe", &error));
  g_assert_no_error(error);
}

static void
test_webhook_body(void)
{
  const char *body = "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[]}]}";
  const char *secret = "0123456789abcdef0123456789abcdef";
  g_autofree char *expected = glib_signature(secret, body, strlen(body));
  g_autofree char *ours = wa_signature_compute((const guint8 *) body, strlen(body), secret);
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr(ours, ==, expected);
  g_assert_true(check(expected, body, secret, &error));
  g_assert_no_error(error);
  /* one byte more or less in the body breaks it */
  g_assert_false(wa_signature_check(expected, (const guint8 *) body, strlen(body) - 1, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH);
}

static void
test_meta_escaping(void)
{
  /* what Meta sends: "\/" and lowercase \uXXXX escapes */
  const char *escaped = "{\"caption\":\"Hola quiero un caf\\u00e9\",\"mime_type\":\"image\\/jpeg\"}";
  /* the same JSON value re-serialised with raw UTF-8 and plain "/" */
  const char *reserialised = "{\"caption\":\"Hola quiero un caf\xc3\xa9\",\"mime_type\":\"image/jpeg\"}";
  const char *secret = "app-secret";
  g_autofree char *header = glib_signature(secret, escaped, strlen(escaped));
  g_autoptr(GError) error = NULL;

  g_assert_nonnull(strstr(escaped, "caf\\u00e9"));
  g_assert_true(check(header, escaped, secret, &error));
  g_assert_no_error(error);
  g_assert_false(check(header, reserialised, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH);
}

static void
test_secrets(void)
{
  const char *body = "{\"a\":1}";
  const char *utf8_secret = "s\xc3\xa9"
                            "cr\xc3\xa8t-\xe2\x82\xac";
  g_autofree char *long_secret = g_strnfill(200, 'k');
  g_autofree char *h_utf8 = glib_signature(utf8_secret, body, strlen(body));
  g_autofree char *h_long = glib_signature(long_secret, body, strlen(body));
  g_autofree char *c_utf8 = wa_signature_compute((const guint8 *) body, strlen(body), utf8_secret);
  g_autofree char *c_long = wa_signature_compute((const guint8 *) body, strlen(body), long_secret);
  g_autofree char *almost_long = g_strnfill(199, 'k');
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr(c_utf8, ==, h_utf8);
  g_assert_cmpstr(c_long, ==, h_long);
  g_assert_true(check(h_utf8, body, utf8_secret, NULL));
  g_assert_true(check(h_long, body, long_secret, NULL));
  /* a secret longer than the SHA-256 block is hashed first: a prefix differs */
  g_assert_false(check(h_long, body, almost_long, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH);
  g_clear_error(&error);
  g_assert_false(check(h_utf8, body, "wrong secret", &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH);
  g_clear_error(&error);
  g_assert_false(check(h_utf8, body, "", &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_NO_SECRET);
  g_clear_error(&error);
  g_assert_false(check(h_utf8, body, NULL, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_NO_SECRET);
  g_assert_null(wa_signature_compute((const guint8 *) body, strlen(body), ""));
}

static void
test_header_forms(void)
{
  const char *body = "{\"entry\":[]}";
  const char *secret = "secret";
  g_autofree char *good = glib_signature(secret, body, strlen(body));
  g_autofree char *upper = g_ascii_strup(good + 7, -1);
  g_autofree char *upper_header = g_strconcat("sha256=", upper, NULL);
  g_autofree char *upper_prefix = g_strconcat("SHA256=", good + 7, NULL);
  g_autofree char *padded = g_strconcat("  ", good, " ", NULL);
  g_autofree char *truncated = g_strndup(good, strlen(good) - 2);
  g_autofree char *longer = g_strconcat(good, "00", NULL);
  g_autofree char *odd = g_strconcat(good, "0", NULL);
  g_autofree char *sha1_hex = g_compute_hmac_for_data(G_CHECKSUM_SHA1, (const guchar *) secret, strlen(secret),
                                                      (const guchar *) body, strlen(body));
  g_autofree char *sha1 = g_strconcat("sha1=", sha1_hex, NULL);
  g_autofree char *no_prefix = g_strdup(good + 7);
  g_autofree char *non_hex = g_strdup(good);
  g_autoptr(GError) error = NULL;

  non_hex[10] = 'g';
  g_assert_cmpstr(upper_header, !=, good);
  g_assert_true(check(upper_header, body, secret, &error));
  g_assert_no_error(error);
  g_assert_true(check(upper_prefix, body, secret, NULL));
  g_assert_true(check(padded, body, secret, NULL));

  g_assert_false(check(NULL, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISSING);
  g_clear_error(&error);
  g_assert_false(check("", body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISSING);
  g_clear_error(&error);
  g_assert_false(check("sha256=", body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
  g_clear_error(&error);
  /* the legacy SHA-1 header value alone is not accepted, even when correct */
  g_assert_false(check(sha1, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_assert_false(check(no_prefix, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_assert_false(check(truncated, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_assert_false(check(longer, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_assert_false(check(odd, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
  g_clear_error(&error);
  g_assert_false(check(non_hex, body, secret, &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MALFORMED);
}

static void
test_nul_byte(void)
{
  static const guint8 body[] = {'{', '"', 'a', '"', ':', '"', 'x', 0, 'y', '"', '}'};
  static const guint8 cut[] = {'{', '"', 'a', '"', ':', '"', 'x', 0, 'z', '"', '}'};
  g_autofree char *header = glib_signature("k3y", body, sizeof body);
  g_autofree char *ours = wa_signature_compute(body, sizeof body, "k3y");
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr(ours, ==, header);
  g_assert_true(wa_signature_check(header, body, sizeof body, "k3y", &error));
  g_assert_no_error(error);
  /* bytes after the NUL count */
  g_assert_false(wa_signature_check(header, cut, sizeof cut, "k3y", &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH);
  g_clear_error(&error);
  g_assert_false(wa_signature_check(header, body, 7, "k3y", &error));
  g_assert_error(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH);
}

static void
test_empty_body(void)
{
  g_autofree char *header = glib_signature("k", "", 0);
  g_autofree char *ours = wa_signature_compute(NULL, 0, "k");

  g_assert_cmpstr(ours, ==, header);
  g_assert_true(wa_signature_check(header, NULL, 0, "k", NULL));
}

static void
test_token_equal(void)
{
  g_assert_true(wa_token_equal("verify-me", "verify-me"));
  g_assert_false(wa_token_equal("verify-me", "verify-mE"));
  g_assert_false(wa_token_equal("verify-me", "Verify-me"));
  g_assert_false(wa_token_equal("verify-me", "verify-m"));
  g_assert_false(wa_token_equal("verify-m", "verify-me"));
  g_assert_false(wa_token_equal("verify-me", NULL));
  g_assert_false(wa_token_equal(NULL, "verify-me"));
  g_assert_false(wa_token_equal(NULL, NULL));
  g_assert_false(wa_token_equal("", ""));
  g_assert_true(wa_token_equal("t\xc3\xb6k\xc3\xa9n", "t\xc3\xb6k\xc3\xa9n"));
  g_assert_false(wa_token_equal("t\xc3\xb6k\xc3\xa9n", "t\xc3\xb6k\xc3\xa8n"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/signature/known-vector", test_known_vector);
  g_test_add_func("/signature/webhook-body", test_webhook_body);
  g_test_add_func("/signature/meta-escaping", test_meta_escaping);
  g_test_add_func("/signature/secrets", test_secrets);
  g_test_add_func("/signature/header-forms", test_header_forms);
  g_test_add_func("/signature/nul-byte", test_nul_byte);
  g_test_add_func("/signature/empty-body", test_empty_body);
  g_test_add_func("/signature/token-equal", test_token_equal);
  return g_test_run();
}
