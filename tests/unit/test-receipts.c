/* test-receipts.c: the read-receipt policy (which moment lets a receipt go,
 * overrides, BitlBee without "seen", one receipt per newest message, the
 * typing indicator at most every 20 s), tick coalescing, and the last
 * message's status for the tooltip. */
#include <locale.h>

#include "wa-receipts.h"

#define T0 1751247548

static void
test_policy_strings(void)
{
  gboolean known = TRUE;

  g_assert_cmpint(wa_receipt_policy_from_string("seen", &known), ==, WA_RECEIPTS_SEEN);
  g_assert_true(known);
  g_assert_cmpint(wa_receipt_policy_from_string("Reply", &known), ==, WA_RECEIPTS_REPLY);
  g_assert_cmpint(wa_receipt_policy_from_string("default", &known), ==, WA_RECEIPTS_DEFAULT);
  g_assert_true(known);
  g_assert_cmpint(wa_receipt_policy_from_string("sometimes", &known), ==, WA_RECEIPTS_DEFAULT);
  g_assert_false(known);
  g_assert_cmpint(wa_receipt_policy_from_string(NULL, NULL), ==, WA_RECEIPTS_DEFAULT);
  for (int p = WA_RECEIPTS_DEFAULT; p <= WA_RECEIPTS_NEVER; p++)
    g_assert_cmpint(wa_receipt_policy_from_string(wa_receipt_policy_to_string(p), NULL), ==, p);
}

static void
test_policy_moments(void)
{
  /* policy x moment: seen, typing, reply */
  static const struct {
    WaReceiptPolicy policy;
    gboolean allows[3];
  } table[] = {
    {WA_RECEIPTS_SEEN, {TRUE, TRUE, TRUE}},     {WA_RECEIPTS_TYPING, {FALSE, TRUE, TRUE}},
    {WA_RECEIPTS_REPLY, {FALSE, FALSE, TRUE}},  {WA_RECEIPTS_NEVER, {FALSE, FALSE, FALSE}},
    {WA_RECEIPTS_DEFAULT, {FALSE, TRUE, TRUE}},
  };

  for (guint i = 0; i < G_N_ELEMENTS(table); i++)
    for (int m = WA_RECEIPT_SEEN; m <= WA_RECEIPT_REPLY; m++)
      g_assert_cmpint(wa_receipt_policy_allows(table[i].policy, m), ==, table[i].allows[m]);
}

static void
test_policy_effective(void)
{
  /* the account's default is "typing" */
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_DEFAULT, WA_RECEIPTS_DEFAULT, TRUE), ==, WA_RECEIPTS_TYPING);
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_NEVER, WA_RECEIPTS_DEFAULT, TRUE), ==, WA_RECEIPTS_NEVER);
  /* a customer's override wins, either way */
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_NEVER, WA_RECEIPTS_SEEN, TRUE), ==, WA_RECEIPTS_SEEN);
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_SEEN, WA_RECEIPTS_NEVER, TRUE), ==, WA_RECEIPTS_NEVER);
  /* BitlBee has no "seen": on reply */
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_SEEN, WA_RECEIPTS_DEFAULT, FALSE), ==, WA_RECEIPTS_REPLY);
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_TYPING, WA_RECEIPTS_SEEN, FALSE), ==, WA_RECEIPTS_REPLY);
  g_assert_cmpint(wa_receipt_policy_effective(WA_RECEIPTS_TYPING, WA_RECEIPTS_DEFAULT, FALSE), ==, WA_RECEIPTS_TYPING);
}

static void
test_one_receipt_per_message(void)
{
  WaReceiptState st = {0};

  /* nothing received: nothing to mark */
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_SEEN, WA_RECEIPT_REPLY, T0), ==, WA_RECEIPT_NONE);
  wa_receipt_state_inbound(&st, "wamid.1", T0 + 1);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_REPLY, WA_RECEIPT_SEEN, T0), ==, WA_RECEIPT_NONE);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_NEVER, WA_RECEIPT_REPLY, T0), ==, WA_RECEIPT_NONE);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_REPLY, WA_RECEIPT_REPLY, T0), ==, WA_RECEIPT_READ);
  wa_receipt_state_sent(&st, WA_RECEIPT_READ, T0);
  /* the second reply to the same message sends nothing */
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_REPLY, WA_RECEIPT_REPLY, T0 + 5), ==, WA_RECEIPT_NONE);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_SEEN, WA_RECEIPT_SEEN, T0 + 5), ==, WA_RECEIPT_NONE);
  /* the same id again is not new */
  wa_receipt_state_inbound(&st, "wamid.1", T0 + 1);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_SEEN, WA_RECEIPT_SEEN, T0 + 5), ==, WA_RECEIPT_NONE);
  wa_receipt_state_inbound(&st, "wamid.2", T0 + 2);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_SEEN, WA_RECEIPT_SEEN, T0 + 6), ==, WA_RECEIPT_READ);
  wa_receipt_state_sent(&st, WA_RECEIPT_READ, T0 + 6);
  g_assert_cmpstr(st.sent, ==, "wamid.2");
  /* an older message delivered late is not the newest */
  wa_receipt_state_inbound(&st, "wamid.0", T0);
  g_assert_cmpstr(st.newest, ==, "wamid.2");
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_SEEN, WA_RECEIPT_SEEN, T0 + 7), ==, WA_RECEIPT_NONE);
  wa_receipt_state_clear(&st);
  g_assert_null(st.newest);
}

static void
test_typing_interval(void)
{
  WaReceiptState st = {0};

  wa_receipt_state_inbound(&st, "wamid.1", T0 + 1);
  /* "reply only" allows no typing indicator, "typing" does */
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_REPLY, WA_RECEIPT_TYPING, T0), ==, WA_RECEIPT_NONE);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_TYPING, WA_RECEIPT_TYPING, T0), ==, WA_RECEIPT_TYPING_INDICATOR);
  wa_receipt_state_sent(&st, WA_RECEIPT_TYPING_INDICATOR, T0);
  g_assert_cmpstr(st.sent, ==, "wamid.1");
  /* within 20 s: nothing; a reply then needs no receipt either */
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_TYPING, WA_RECEIPT_TYPING, T0 + 19), ==, WA_RECEIPT_NONE);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_TYPING, WA_RECEIPT_REPLY, T0 + 19), ==, WA_RECEIPT_NONE);
  /* a newer message within the 20 s: a plain receipt */
  wa_receipt_state_inbound(&st, "wamid.2", T0 + 2);
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_TYPING, WA_RECEIPT_TYPING, T0 + 19), ==, WA_RECEIPT_READ);
  wa_receipt_state_sent(&st, WA_RECEIPT_READ, T0 + 19);
  g_assert_cmpint(st.typing_at, ==, T0);
  /* after 20 s the indicator goes again (the read of the same message rides along) */
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_TYPING, WA_RECEIPT_TYPING, T0 + 20), ==,
                  WA_RECEIPT_TYPING_INDICATOR);
  /* a clock that went back does not silence it for long */
  g_assert_cmpint(wa_receipt_decide(&st, WA_RECEIPTS_TYPING, WA_RECEIPT_TYPING, T0 - 3600), ==,
                  WA_RECEIPT_TYPING_INDICATOR);
  wa_receipt_state_clear(&st);
}

static void
test_ticks_policy(void)
{
  g_assert_cmpint(wa_ticks_policy_from_string("none"), ==, WA_TICKS_NONE);
  g_assert_cmpint(wa_ticks_policy_from_string("all"), ==, WA_TICKS_ALL);
  g_assert_cmpint(wa_ticks_policy_from_string("failures"), ==, WA_TICKS_FAILURES);
  g_assert_cmpint(wa_ticks_policy_from_string(NULL), ==, WA_TICKS_FAILURES);
  g_assert_cmpint(wa_ticks_policy_from_string("bogus"), ==, WA_TICKS_FAILURES);
}

static void
test_ticks_coalesced(void)
{
  WaTicks *ticks = wa_ticks_new();
  char *line;

  g_assert_false(wa_ticks_pending(ticks));
  g_assert_null(wa_ticks_take_line(ticks));
  /* sent and failed are not ticks here */
  wa_ticks_add(ticks, "w1", WA_STORE_STATUS_SENT);
  wa_ticks_add(ticks, "w1", WA_STORE_STATUS_FAILED);
  g_assert_false(wa_ticks_pending(ticks));
  for (int i = 1; i <= 3; i++) {
    g_autofree char *w = g_strdup_printf("w%d", i);
    wa_ticks_add(ticks, w, WA_STORE_STATUS_DELIVERED);
    wa_ticks_add(ticks, w, WA_STORE_STATUS_DELIVERED); /* a duplicate webhook */
  }
  g_assert_true(wa_ticks_pending(ticks));
  line = wa_ticks_take_line(ticks);
  g_assert_cmpstr(line, ==, "delivered: 3 messages");
  g_free(line);
  g_assert_false(wa_ticks_pending(ticks));
  /* one message delivered and read meanwhile counts once, as read */
  wa_ticks_add(ticks, "w4", WA_STORE_STATUS_DELIVERED);
  wa_ticks_add(ticks, "w4", WA_STORE_STATUS_READ);
  wa_ticks_add(ticks, "w4", WA_STORE_STATUS_DELIVERED); /* late, out of order */
  line = wa_ticks_take_line(ticks);
  g_assert_cmpstr(line, ==, "read");
  g_free(line);
  wa_ticks_add(ticks, "w5", WA_STORE_STATUS_DELIVERED);
  wa_ticks_add(ticks, "w6", WA_STORE_STATUS_PLAYED);
  wa_ticks_add(ticks, "w7", WA_STORE_STATUS_READ);
  line = wa_ticks_take_line(ticks);
  g_assert_cmpstr(line, ==, "delivered; read: 2 messages");
  g_free(line);
  wa_ticks_free(ticks);
}

static void
test_last_status(void)
{
  WaLastStatus last = {0};
  g_autofree char *nothing = wa_last_status_describe(&last);
  char *text;

  g_assert_null(nothing);
  /* unpinned (after a restart): the first status seen is adopted */
  g_assert_true(wa_last_status_apply(&last, "wA", WA_STORE_STATUS_SENT, T0, "service"));
  g_assert_true(wa_last_status_apply(&last, "wA", WA_STORE_STATUS_DELIVERED, T0 + 1, NULL));
  g_assert_cmpstr(last.category, ==, "service"); /* kept: pricing comes once */
  /* out of order: a late "sent" does not move it back */
  g_assert_false(wa_last_status_apply(&last, "wA", WA_STORE_STATUS_SENT, T0 + 2, NULL));
  g_assert_cmpint(last.status, ==, WA_STORE_STATUS_DELIVERED);
  /* an older message's status is older news */
  g_assert_false(wa_last_status_apply(&last, "wOld", WA_STORE_STATUS_READ, T0 - 10, NULL));
  /* our newer send pins it */
  wa_last_status_sent(&last, "wB", T0 + 5);
  g_assert_cmpint(last.status, ==, WA_STORE_STATUS_NONE);
  g_assert_null(last.category);
  g_assert_false(wa_last_status_apply(&last, "wA", WA_STORE_STATUS_READ, T0 + 6, NULL));
  /* an unknown pricing category is taken as given */
  g_assert_true(wa_last_status_apply(&last, "wB", WA_STORE_STATUS_SENT, T0 + 6, "galactic_promo"));
  g_assert_cmpstr(last.category, ==, "galactic_promo");
  g_assert_true(wa_last_status_apply(&last, "wB", WA_STORE_STATUS_READ, T0 + 7, NULL));
  text = wa_last_status_describe(&last);
  g_assert_true(g_str_has_prefix(text, "read, "));
  g_free(text);
  /* failed wins over anything, and stays */
  g_assert_true(wa_last_status_apply(&last, "wB", WA_STORE_STATUS_FAILED, T0 + 8, NULL));
  g_assert_false(wa_last_status_apply(&last, "wB", WA_STORE_STATUS_READ, T0 + 9, NULL));
  text = wa_last_status_describe(&last);
  g_assert_true(g_str_has_prefix(text, "failed, "));
  g_free(text);
  wa_last_status_clear(&last);
  g_assert_null(last.wamid);
}

int
main(int argc, char **argv)
{
  setlocale(LC_ALL, "C");
  g_setenv("LANGUAGE", "C", TRUE);
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/receipts/policy-strings", test_policy_strings);
  g_test_add_func("/receipts/policy-moments", test_policy_moments);
  g_test_add_func("/receipts/policy-effective", test_policy_effective);
  g_test_add_func("/receipts/one-per-message", test_one_receipt_per_message);
  g_test_add_func("/receipts/typing-interval", test_typing_interval);
  g_test_add_func("/ticks/policy", test_ticks_policy);
  g_test_add_func("/ticks/coalesced", test_ticks_coalesced);
  g_test_add_func("/ticks/last-status", test_last_status);
  return g_test_run();
}
