/* fuzz-phone.c: libFuzzer target for plugin/core/wa-phone.h: phone numbers
 * as typed, BSUIDs, country codes.
 *
 * Input: one byte choosing the default country code (none, valid ones and
 * invalid ones), then the identifier as typed (a C string). Checked: a
 * normalised number is 8 to 15 digits without a leading 0, and normalising
 * "+" and it gives it back; failures come with a WA_PHONE_ERROR; a BSUID
 * passes through wa_customer_id_normalize unchanged (trimmed) and anything
 * else is normalised as a phone number; wa_country_code_is_valid accepts only
 * 1 to 3 digits not starting with 0.
 * Must not: print the input (numbers are personal data even here). */
#include "fuzz-common.h"

#include "wa-phone.h"

static const char *const default_ccs[] = {NULL, "1", "49", "44", "358", "0", "", "12a", "1234"};

static gboolean
all_digits(const char *s)
{
  for (; *s != '\0'; s++)
    if (!g_ascii_isdigit(*s))
      return FALSE;
  return TRUE;
}

FUZZ_DEFAULT_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *input = NULL;
  g_autofree char *digits = NULL;
  g_autofree char *customer = NULL;
  g_autofree char *trimmed = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) customer_error = NULL;
  const char *cc;
  gsize n;

  if (size == 0)
    return 0;
  cc = default_ccs[data[0] % G_N_ELEMENTS(default_ccs)];
  input = fuzz_strndup(data + 1, size - 1);

  digits = wa_phone_normalize(input, cc, &error);
  fuzz_check((digits == NULL) == (error != NULL));
  if (digits != NULL) {
    g_autofree char *plus = wa_phone_to_e164(digits);
    g_autofree char *again = wa_phone_normalize(plus, cc, NULL);

    n = strlen(digits);
    fuzz_check(n >= 8 && n <= 15 && all_digits(digits) && digits[0] != '0');
    fuzz_check(plus[0] == '+' && g_str_equal(plus + 1, digits));
    fuzz_check(again != NULL && g_str_equal(again, digits));
  } else {
    fuzz_check(error->domain == WA_PHONE_ERROR);
  }

  customer = wa_customer_id_normalize(input, cc, &customer_error);
  trimmed = g_strstrip(g_strdup(input));
  if (wa_id_is_bsuid(trimmed)) {
    fuzz_check(customer != NULL && g_str_equal(customer, trimmed));
    fuzz_check(g_ascii_isupper(trimmed[0]) && g_ascii_isupper(trimmed[1]) && trimmed[2] == '.');
  } else {
    fuzz_check(g_strcmp0(customer, digits) == 0);
  }

  if (wa_country_code_is_valid(input)) {
    n = strlen(input);
    fuzz_check(n >= 1 && n <= 3 && all_digits(input) && input[0] != '0');
  }
  return 0;
}
