/* fuzz-signature.c: libFuzzer target for wa_signature_check() and
 * wa_token_equal() (plugin/core/wa-signature.h).
 *
 * Input: one byte N, then N bytes of app secret (a C string: a NUL ends it),
 * then the X-Hub-Signature-256 header value up to the first '\n', then the
 * body (any bytes). The fuzzer cannot forge an HMAC, so besides checking the
 * header it was given, the target signs the body itself and checks that the
 * right signature is accepted in every spelling Meta's format allows (prefix
 * and hex digits in any case, blanks around) and that one wrong digit is not;
 * a header the check accepts must be that signature.
 * Must not: print the input, the secret or a signature. */
#include "fuzz-common.h"

#include "wa-signature.h"

/* @value with "sha256=" and the hex digits upper-cased, blanks around. */
static char *
respelled(const char *value)
{
  g_autofree char *upper = g_ascii_strup(value, -1);

  return g_strconcat(" \t", upper, "\t ", NULL);
}

FUZZ_DEFAULT_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *secret = NULL;
  g_autofree char *header = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(GError) error = NULL;
  const uint8_t *nl, *body;
  size_t n, header_len, body_len;
  gboolean ok;

  if (size == 0)
    return 0;
  n = MIN((size_t) data[0], size - 1);
  secret = fuzz_strndup(data + 1, n);
  data += 1 + n;
  size -= 1 + n;
  nl = memchr(data, '\n', size);
  header_len = nl != NULL ? (size_t) (nl - data) : size;
  header = fuzz_strndup(data, header_len);
  body = nl != NULL ? nl + 1 : data + size;
  body_len = size - header_len - (nl != NULL ? 1 : 0);
  if (body_len == 0)
    body = NULL; /* allowed for an empty body */

  ok = wa_signature_check(header, body, body_len, secret, &error);
  fuzz_check(ok == (error == NULL));
  if (!ok)
    fuzz_check(error->domain == WA_SIGNATURE_ERROR);
  g_clear_error(&error);
  fuzz_check(!wa_signature_check(NULL, body, body_len, secret, NULL));

  expected = wa_signature_compute(body, body_len, secret);
  fuzz_check((expected == NULL) == (*secret == '\0'));
  if (expected == NULL) {
    fuzz_check(!ok);
  } else {
    g_autofree char *trimmed = g_strstrip(g_strdup(header));
    g_autofree char *other = respelled(expected);
    g_autofree char *wrong = g_strdup(expected);
    char *digit = wrong + 7 + body_len % 64;

    fuzz_check(strlen(expected) == 7 + 64 && g_str_has_prefix(expected, "sha256="));
    /* accepted: only the right signature, however it is spelled */
    if (ok)
      fuzz_check(g_ascii_strcasecmp(trimmed, expected) == 0);
    fuzz_check(wa_signature_check(expected, body, body_len, secret, NULL));
    fuzz_check(wa_signature_check(other, body, body_len, secret, NULL));
    *digit = *digit == '0' ? '1' : '0';
    fuzz_check(!wa_signature_check(wrong, body, body_len, secret, &error));
    fuzz_check(g_error_matches(error, WA_SIGNATURE_ERROR, WA_SIGNATURE_ERROR_MISMATCH));
  }

  /* verify tokens: equal exactly when they are the same non-empty string */
  fuzz_check(wa_token_equal(header, secret) == (*header != '\0' && strcmp(header, secret) == 0));
  return 0;
}
