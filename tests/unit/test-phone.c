/* test-phone.c: phone number normalisation and BSUID recognition. */
#include "wa-phone.h"

#include <string.h>

static void
expect(const char *input, const char *cc, const char *want)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *got = wa_phone_normalize(input, cc, &error);

  g_assert_no_error(error);
  g_assert_cmpstr(got, ==, want);
}

static void
expect_error(const char *input, const char *cc, int code)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *got = wa_phone_normalize(input, cc, &error);

  g_assert_null(got);
  g_assert_error(error, WA_PHONE_ERROR, code);
  /* the refusal quotes what was typed so the agent sees what to fix */
  if (code != WA_PHONE_ERROR_EMPTY)
    g_assert_nonnull(strstr(error->message, input));
}

static void
test_same_buddy(void)
{
  expect("+49 170 1234567", NULL, "491701234567");
  expect("0049 170 1234567", NULL, "491701234567");
  expect("491701234567", NULL, "491701234567");
  expect("+49 (170) 123-45-67", NULL, "491701234567");
  expect("  +1 650.555.1234 ", NULL, "16505551234");
}

static void
test_national(void)
{
  expect("0170 1234567", "49", "491701234567");
  expect("(650) 555-1234", "1", "16505551234");
  /* a full international number is not touched by the default country code */
  expect("491701234567", "1", "491701234567");
  expect("16505551234", "1", "16505551234");
  expect_error("0170 1234567", NULL, WA_PHONE_ERROR_NEEDS_COUNTRY);
  expect_error("0170 1234567", "abc", WA_PHONE_ERROR_NEEDS_COUNTRY);
}

static void
test_refused(void)
{
  expect_error("", NULL, WA_PHONE_ERROR_EMPTY);
  expect_error("   ", NULL, WA_PHONE_ERROR_EMPTY);
  expect_error("+49 170 CALLME", NULL, WA_PHONE_ERROR_CHARACTERS);
  expect_error("<b>1</b>", NULL, WA_PHONE_ERROR_CHARACTERS);
  expect_error("+1234567", NULL, WA_PHONE_ERROR_LENGTH);          /* 7 digits */
  expect_error("+1234567890123456", NULL, WA_PHONE_ERROR_LENGTH); /* 16 digits */
  expect("+12345678", NULL, "12345678");                          /* 8 digits */
  expect("+123456789012345", NULL, "123456789012345");            /* 15 digits */
}

static void
test_bsuid(void)
{
  g_autofree char *id = wa_customer_id_normalize(" US.13491208655302741918 ", NULL, NULL);

  g_assert_true(wa_id_is_bsuid("US.13491208655302741918"));
  g_assert_true(wa_id_is_bsuid("US.ENT.11815799212886844830"));
  g_assert_true(wa_id_is_bsuid("DE.abcXYZ123"));
  g_assert_false(wa_id_is_bsuid("us.1349"));
  g_assert_false(wa_id_is_bsuid("US."));
  g_assert_false(wa_id_is_bsuid("US.ENT.abc"));
  g_assert_false(wa_id_is_bsuid("US.12-34"));
  g_assert_false(wa_id_is_bsuid("491701234567"));
  g_assert_false(wa_id_is_bsuid(NULL));
  g_assert_cmpstr(id, ==, "US.13491208655302741918");
}

/* Ids from webhooks: only real ones may name a buddy. */
static void
test_webhook_ids(void)
{
  g_assert_true(wa_id_is_phone("491701234567"));
  g_assert_true(wa_id_is_phone("1"));
  g_assert_true(wa_id_is_phone("12345678901234567890"));
  g_assert_false(wa_id_is_phone("123456789012345678901"));
  g_assert_false(wa_id_is_phone(""));
  g_assert_false(wa_id_is_phone("+491701234567"));
  g_assert_false(wa_id_is_phone("4917<b>0</b>"));
  g_assert_false(wa_id_is_phone("49170\n1"));
  g_assert_false(wa_id_is_phone(NULL));
  g_assert_cmpstr(wa_id_phone_or_null("4917"), ==, "4917");
  g_assert_null(wa_id_phone_or_null("<img>"));
  g_assert_cmpstr(wa_id_bsuid_or_null("US.1349"), ==, "US.1349");
  g_assert_null(wa_id_bsuid_or_null("US.<b>"));
}

static void
test_country_code(void)
{
  g_assert_true(wa_country_code_is_valid("1"));
  g_assert_true(wa_country_code_is_valid("49"));
  g_assert_true(wa_country_code_is_valid("880"));
  g_assert_false(wa_country_code_is_valid("0"));
  g_assert_false(wa_country_code_is_valid("4912"));
  g_assert_false(wa_country_code_is_valid("+49"));
  g_assert_false(wa_country_code_is_valid(""));
  g_assert_false(wa_country_code_is_valid(NULL));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/phone/same-buddy", test_same_buddy);
  g_test_add_func("/phone/national", test_national);
  g_test_add_func("/phone/refused", test_refused);
  g_test_add_func("/phone/webhook-ids", test_webhook_ids);
  g_test_add_func("/phone/bsuid", test_bsuid);
  g_test_add_func("/phone/country-code", test_country_code);
  return g_test_run();
}
