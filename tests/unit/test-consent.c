/* test-consent.c: the consent decision table (category x ledger rows x
 * suppression x utility policy x service window), the refusal sentences,
 * opt-out keyword matching (case, accents, whitespace, punctuation, whole
 * message only) and the words of /optin and /optout. */
#include <locale.h>
#include <string.h>

#include "wa-consent.h"

#define IN WA_STORE_CONSENT_OPT_IN
#define OUT WA_STORE_CONSENT_OPT_OUT
#define NONE 0

static void
test_decision_table(void)
{
  static const struct {
    WaConsentCategory category;
    int marketing, utility;
    gboolean suppressed;
    WaStoreSuppressReason reason;
    gboolean window_open;
    WaConsentUtilityPolicy policy;
    WaConsentVerdict expected;
  } table[] = {
    /* marketing: only an opt-in lets it go; a window is no consent to marketing */
    {WA_CONSENT_CATEGORY_MARKETING, NONE, NONE, FALSE, 0, FALSE, 0, WA_CONSENT_NO_MARKETING_OPT_IN},
    {WA_CONSENT_CATEGORY_MARKETING, NONE, NONE, FALSE, 0, TRUE, 0, WA_CONSENT_NO_MARKETING_OPT_IN},
    {WA_CONSENT_CATEGORY_MARKETING, NONE, IN, FALSE, 0, TRUE, 1, WA_CONSENT_NO_MARKETING_OPT_IN},
    {WA_CONSENT_CATEGORY_MARKETING, IN, NONE, FALSE, 0, FALSE, 0, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_MARKETING, IN, OUT, FALSE, 0, FALSE, 0, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_MARKETING, OUT, IN, FALSE, 0, TRUE, 1, WA_CONSENT_OPTED_OUT_MARKETING},
    {WA_CONSENT_CATEGORY_MARKETING, IN, IN, TRUE, WA_STORE_SUPPRESS_ERASURE, TRUE, 1, WA_CONSENT_SUPPRESSED_ERASURE},
    {WA_CONSENT_CATEGORY_MARKETING, IN, IN, TRUE, WA_STORE_SUPPRESS_OPT_OUT, TRUE, 1, WA_CONSENT_SUPPRESSED_OPT_OUT},
    /* utility, opt-in required (the default) */
    {WA_CONSENT_CATEGORY_UTILITY, NONE, NONE, FALSE, 0, FALSE, 0, WA_CONSENT_NO_UTILITY_OPT_IN},
    {WA_CONSENT_CATEGORY_UTILITY, IN, NONE, FALSE, 0, FALSE, 0, WA_CONSENT_NO_UTILITY_OPT_IN},
    {WA_CONSENT_CATEGORY_UTILITY, NONE, NONE, FALSE, 0, TRUE, 0, WA_CONSENT_ALLOWED}, /* a service reply */
    {WA_CONSENT_CATEGORY_UTILITY, OUT, IN, FALSE, 0, FALSE, 0, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_UTILITY, NONE, OUT, FALSE, 0, TRUE, 0, WA_CONSENT_OPTED_OUT_UTILITY},
    {WA_CONSENT_CATEGORY_UTILITY, IN, IN, TRUE, WA_STORE_SUPPRESS_ERASURE, TRUE, 0, WA_CONSENT_SUPPRESSED_ERASURE},
    /* utility, not required unless opted out */
    {WA_CONSENT_CATEGORY_UTILITY, NONE, NONE, FALSE, 0, FALSE, 1, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_UTILITY, OUT, NONE, FALSE, 0, FALSE, 1, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_UTILITY, NONE, OUT, FALSE, 0, FALSE, 1, WA_CONSENT_OPTED_OUT_UTILITY},
    {WA_CONSENT_CATEGORY_UTILITY, NONE, NONE, TRUE, WA_STORE_SUPPRESS_OPT_OUT, FALSE, 1, WA_CONSENT_SUPPRESSED_OPT_OUT},
    /* authentication: unless opted out of everything, or suppressed */
    {WA_CONSENT_CATEGORY_AUTHENTICATION, NONE, NONE, FALSE, 0, FALSE, 0, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_AUTHENTICATION, OUT, NONE, FALSE, 0, FALSE, 0, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_AUTHENTICATION, NONE, OUT, FALSE, 0, FALSE, 0, WA_CONSENT_ALLOWED},
    {WA_CONSENT_CATEGORY_AUTHENTICATION, OUT, OUT, FALSE, 0, TRUE, 1, WA_CONSENT_OPTED_OUT_EVERYTHING},
    {WA_CONSENT_CATEGORY_AUTHENTICATION, IN, IN, TRUE, WA_STORE_SUPPRESS_ERASURE, TRUE, 1,
     WA_CONSENT_SUPPRESSED_ERASURE},
  };

  for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
    WaConsentFacts facts = {
      .marketing = {.state = table[i].marketing, .source = "agent", .at = 1751247548},
      .utility = {.state = table[i].utility, .source = "keyword", .at = 1751247548},
      .suppressed = table[i].suppressed,
      .suppress_reason = table[i].reason,
      .window_open = table[i].window_open,
    };
    WaConsentVerdict verdict = wa_consent_decide(table[i].category, &facts, table[i].policy);
    g_autofree char *text = wa_consent_verdict_text(verdict, &facts, '/');

    g_test_message("row %u", i);
    g_assert_cmpint(verdict, ==, table[i].expected);
    /* a refusal always says why; an allowed send has nothing to say */
    if (verdict == WA_CONSENT_ALLOWED)
      g_assert_null(text);
    else
      g_assert_true(g_str_has_prefix(text, "Not sent: "));
  }
}

static void
test_refusal_texts(void)
{
  WaConsentFacts facts = {
    .marketing = {.state = OUT, .source = WA_CONSENT_SOURCE_KEYWORD, .at = 1751247548},
  };
  g_autofree char *out = wa_consent_verdict_text(WA_CONSENT_OPTED_OUT_MARKETING, &facts, '!');
  g_autofree char *none = wa_consent_verdict_text(WA_CONSENT_NO_MARKETING_OPT_IN, &facts, '/');
  g_autofree char *utility = wa_consent_verdict_text(WA_CONSENT_NO_UTILITY_OPT_IN, &facts, '/');
  g_autofree char *erased = wa_consent_verdict_text(WA_CONSENT_SUPPRESSED_ERASURE, &facts, '/');
  g_autofree char *row = wa_consent_row_text(&facts.marketing);
  g_autofree char *unknown = wa_consent_row_text(&facts.utility);

  /* the source, its time, and the command as the agent types it (BitlBee: !) */
  g_assert_nonnull(strstr(out, "opted out of marketing messages: opted out (the customer's keyword, 2025-06-30 "));
  g_assert_nonnull(strstr(out, "!optin marketing"));
  g_assert_nonnull(strstr(none, "/optin marketing"));
  g_assert_nonnull(strstr(none, "no consent to marketing"));
  g_assert_nonnull(strstr(utility, "utility_consent"));
  g_assert_nonnull(strstr(erased, "suppression list"));
  g_assert_cmpstr(row, ==, "opted out (the customer's keyword, 2025-06-30 01:39)");
  g_assert_cmpstr(unknown, ==, "no record");
}

static void
test_category_and_policy_words(void)
{
  gboolean known = FALSE;

  g_assert_cmpint(wa_consent_category_parse("MARKETING", &known), ==, WA_CONSENT_CATEGORY_MARKETING);
  g_assert_true(known);
  g_assert_cmpint(wa_consent_category_parse("marketing_lite", &known), ==, WA_CONSENT_CATEGORY_MARKETING);
  g_assert_true(known);
  g_assert_cmpint(wa_consent_category_parse("Utility", &known), ==, WA_CONSENT_CATEGORY_UTILITY);
  g_assert_true(known);
  g_assert_cmpint(wa_consent_category_parse("AUTHENTICATION", &known), ==, WA_CONSENT_CATEGORY_AUTHENTICATION);
  g_assert_true(known);
  /* unknown: the strictest */
  g_assert_cmpint(wa_consent_category_parse("SERVICE", &known), ==, WA_CONSENT_CATEGORY_MARKETING);
  g_assert_false(known);
  g_assert_cmpint(wa_consent_category_parse(NULL, &known), ==, WA_CONSENT_CATEGORY_MARKETING);
  g_assert_false(known);

  g_assert_cmpint(wa_consent_utility_policy_parse(NULL), ==, WA_CONSENT_UTILITY_REQUIRED);
  g_assert_cmpint(wa_consent_utility_policy_parse("required"), ==, WA_CONSENT_UTILITY_REQUIRED);
  g_assert_cmpint(wa_consent_utility_policy_parse("not_required"), ==, WA_CONSENT_UTILITY_NOT_REQUIRED);
  g_assert_cmpint(wa_consent_utility_policy_parse("maybe"), ==, WA_CONSENT_UTILITY_REQUIRED);
}

static void
test_scope_words(void)
{
  /* /optin: marketing by default, no "all" */
  g_assert_cmpint(wa_consent_scopes_parse(NULL, FALSE, WA_CONSENT_MARKETING), ==, WA_CONSENT_MARKETING);
  g_assert_cmpint(wa_consent_scopes_parse("", FALSE, WA_CONSENT_MARKETING), ==, WA_CONSENT_MARKETING);
  g_assert_cmpint(wa_consent_scopes_parse("utility", FALSE, WA_CONSENT_MARKETING), ==, WA_CONSENT_UTILITY);
  g_assert_cmpint(wa_consent_scopes_parse("Marketing", FALSE, WA_CONSENT_MARKETING), ==, WA_CONSENT_MARKETING);
  g_assert_cmpint(wa_consent_scopes_parse("all", FALSE, WA_CONSENT_MARKETING), ==, 0);
  g_assert_cmpint(wa_consent_scopes_parse("promotions", FALSE, WA_CONSENT_MARKETING), ==, 0);
  /* /optout: all by default */
  g_assert_cmpint(wa_consent_scopes_parse(NULL, TRUE, WA_CONSENT_ALL), ==, WA_CONSENT_ALL);
  g_assert_cmpint(wa_consent_scopes_parse("ALL", TRUE, WA_CONSENT_ALL), ==, WA_CONSENT_ALL);
  g_assert_cmpint(wa_consent_scopes_parse("utility", TRUE, WA_CONSENT_ALL), ==, WA_CONSENT_UTILITY);
  g_assert_cmpstr(wa_consent_scope_name(WA_CONSENT_MARKETING), ==, "marketing");
  g_assert_cmpstr(wa_consent_scope_name(WA_CONSENT_UTILITY), ==, "utility");
}

static void
test_keywords(void)
{
  const char *words = "STOP, STOPP, UNSUBSCRIBE, ABMELDEN";
  static const char *const match[] = {
    "STOP",   "stop",  "Stop",     " stop\n",      "Stop!",        "stop.",    "¡STOP!",
    "(stop)", "StOpP", "Stopp!!",  "abmelden",     "Abmelden.",    "ＳＴＯＰ", /* fullwidth */
    "STÖP",   "stöpp", "ÀBMELDEN", "unsubscribe ", "s\xcc\x81top",             /* a combining accent */
  };
  static const char *const no_match[] = {
    "please stop", "STOP it", "stopping",  "sto p",         "", "   ", "!!!",
    "halt",        "s-t-o-p", "STOP STOP", "\xff\xfe stop", /* not UTF-8 */
  };

  for (guint i = 0; i < G_N_ELEMENTS(match); i++) {
    g_test_message("match: %s", match[i]);
    g_assert_true(wa_consent_keyword_match(match[i], words));
  }
  for (guint i = 0; i < G_N_ELEMENTS(no_match); i++) {
    g_test_message("no match: %s", no_match[i]);
    g_assert_false(wa_consent_keyword_match(no_match[i], words));
  }
  /* words in the list are folded too; empty entries and lists match nothing */
  g_assert_true(wa_consent_keyword_match("arret", "Arrêt,,"));
  g_assert_true(wa_consent_keyword_match("stop promotions", " Stop  Promotions ;STOP_PROMOS"));
  g_assert_true(wa_consent_keyword_match("STOP_PROMOS", "STOP_PROMOS"));
  g_assert_false(wa_consent_keyword_match("stop", ""));
  g_assert_false(wa_consent_keyword_match("stop", " , ;"));
  g_assert_false(wa_consent_keyword_match(NULL, words));
  g_assert_false(wa_consent_keyword_match("stop", NULL));
}

static void
test_fold(void)
{
  g_autofree char *a = wa_consent_fold("  Grüße,   Straße!  ");
  g_autofree char *b = wa_consent_fold("...");

  g_assert_cmpstr(a, ==, "grusse, strasse");
  g_assert_cmpstr(b, ==, "");
}

int
main(int argc, char **argv)
{
  setlocale(LC_ALL, "C.UTF-8");
  g_setenv("TZ", "UTC", TRUE);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/consent/decision-table", test_decision_table);
  g_test_add_func("/consent/refusal-texts", test_refusal_texts);
  g_test_add_func("/consent/category-and-policy-words", test_category_and_policy_words);
  g_test_add_func("/consent/scope-words", test_scope_words);
  g_test_add_func("/consent/keywords", test_keywords);
  g_test_add_func("/consent/fold", test_fold);
  return g_test_run();
}
