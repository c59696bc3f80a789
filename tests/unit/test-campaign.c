/* test-campaign.c: the pure parts of campaigns (plugin/core/wa-campaign.c):
 * the /notify arguments (file, language, quoted group and fixed values),
 * consent reason codes, countries closed to marketing, pricing categories, the campaign chat id space
 * (never a WhatsApp group's), the progress line and the report's rows. */
#include "wa-campaign.h"

#include <string.h>

static void
test_args(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaCampaignArgs) a = wa_campaign_args_parse("order_update orders.csv", &error);
  g_autoptr(WaCampaignArgs) b = wa_campaign_args_parse("  order_update en_US /tmp/my orders.csv ", &error);
  g_autoptr(WaCampaignArgs) c = wa_campaign_args_parse("promo de @\"VIP customers\" Anna | 10 %", &error);
  g_autoptr(WaCampaignArgs) d = wa_campaign_args_parse("promo @vip", &error);
  g_autoptr(WaCampaignArgs) e = wa_campaign_args_parse("promo en", &error);
  WaCampaignArgs *bad;

  g_assert_no_error(error);
  g_assert_cmpstr(a->name, ==, "order_update");
  g_assert_null(a->language);
  g_assert_cmpstr(a->file, ==, "orders.csv");
  g_assert_null(a->group);
  g_assert_cmpstr(b->language, ==, "en_US");
  g_assert_cmpstr(b->file, ==, "/tmp/my orders.csv");
  g_assert_cmpstr(c->language, ==, "de");
  g_assert_cmpstr(c->group, ==, "VIP customers");
  g_assert_cmpstr(c->values, ==, "Anna | 10 %");
  g_assert_null(c->file);
  g_assert_null(d->language);
  g_assert_cmpstr(d->group, ==, "vip");
  g_assert_cmpstr(d->values, ==, "");
  /* a lone second word is the file, not a language */
  g_assert_null(e->language);
  g_assert_cmpstr(e->file, ==, "en");
  for (guint i = 0; i < 5; i++) {
    static const char *const wrong[] = {"", "promo", "promo @", "promo @\"unterminated", "promo ,,"};

    bad = wa_campaign_args_parse(wrong[i], &error);
    g_assert_null(bad);
    g_assert_error(error, WA_CAMPAIGN_ERROR, WA_CAMPAIGN_ERROR_SYNTAX);
    g_clear_error(&error);
  }
}

static void
test_selection(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaCampaignArgs) a = wa_campaign_args_parse("promo en +491701234567,+491709876543 Anna | 10 %", &error);
  g_autoptr(WaCampaignArgs) b = wa_campaign_args_parse("promo +491701234567", &error);
  g_autoptr(WaCampaignArgs) c = wa_campaign_args_parse("promo Anna,,Ben, at 09:00", &error);
  g_autoptr(WaCampaignArgs) d = wa_campaign_args_parse("promo Anna,", &error);
  g_autoptr(WaCampaignArgs) e = wa_campaign_args_parse("promo a,b.csv", &error);
  g_autoptr(WaCampaignArgs) f = wa_campaign_args_parse("promo /tmp/my orders,2024.csv", &error);
  g_autoptr(WaCampaignArgs) g = wa_campaign_args_parse("promo \"Anna Schmidt\",Ben 10 %", &error);
  g_autoptr(WaCampaignArgs) h = wa_campaign_args_parse("promo \"Anna Schmidt\"", &error);
  WaCampaignArgs *bad;

  g_assert_no_error(error);
  g_assert_cmpstr(a->language, ==, "en");
  g_assert_cmpuint(g_strv_length(a->selection), ==, 2);
  g_assert_cmpstr(a->selection[0], ==, "+491701234567");
  g_assert_cmpstr(a->selection[1], ==, "+491709876543");
  g_assert_cmpstr(a->values, ==, "Anna | 10 %");
  g_assert_null(a->file);
  g_assert_null(a->group);
  g_assert_cmpuint(g_strv_length(b->selection), ==, 1);
  g_assert_cmpstr(b->values, ==, "");
  /* empty items dropped; the start time is not a value */
  g_assert_cmpuint(g_strv_length(c->selection), ==, 2);
  g_assert_cmpstr(c->selection[1], ==, "Ben");
  g_assert_cmpstr(c->start, ==, "09:00");
  g_assert_cmpuint(g_strv_length(d->selection), ==, 1);
  g_assert_cmpstr(d->selection[0], ==, "Anna");
  /* a CSV file, even with a comma in its name */
  g_assert_null(e->selection);
  g_assert_cmpstr(e->file, ==, "a,b.csv");
  g_assert_null(f->selection);
  g_assert_cmpstr(f->file, ==, "/tmp/my orders,2024.csv");
  /* a quoted name with blanks */
  g_assert_cmpuint(g_strv_length(g->selection), ==, 2);
  g_assert_cmpstr(g->selection[0], ==, "Anna Schmidt");
  g_assert_cmpstr(g->selection[1], ==, "Ben");
  g_assert_cmpstr(g->values, ==, "10 %");
  g_assert_cmpuint(g_strv_length(h->selection), ==, 1);
  g_assert_cmpstr(h->values, ==, "");
  for (guint i = 0; i < 3; i++) {
    static const char *const wrong[] = {"promo \"Anna", "promo \"Anna\"x,Ben", "promo \"\""};

    bad = wa_campaign_args_parse(wrong[i], &error);
    g_assert_null(bad);
    g_assert_error(error, WA_CAMPAIGN_ERROR, WA_CAMPAIGN_ERROR_SYNTAX);
    g_clear_error(&error);
  }
}

static void
test_closed_country(void)
{
  static const struct {
    const char *to, *codes, *code;
  } cases[] = {
    {"989121234567", "98", "98"},        /* Iran */
    {"+79161234567", " +7 , 98", "7"},   /* leading '+', blanks */
    {"4917012345678", "7, 98", NULL},    /* none matches */
    {"4917012345678", "", NULL},         /* default: none closed */
    {"4917012345678", "49x, , +", NULL}, /* what is not a code is ignored */
    {"98", "98", NULL},                  /* the code alone is no number */
    {"US.1234567890123456", "1", NULL},  /* a BSUID has no country */
    {"12025550123", "1,1242", "1"},      /* the first listed that matches */
    {"12425550123", "1242,1", "1242"},
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autofree char *code = wa_campaign_closed_country(cases[i].to, cases[i].codes);

    g_assert_cmpstr(code, ==, cases[i].code);
  }
  g_assert_null(wa_campaign_closed_country(NULL, "98"));
  g_assert_null(wa_campaign_closed_country("989121234567", NULL));
}

static void
test_start_at(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaCampaignArgs) a = wa_campaign_args_parse("promo orders.csv at 07:30", &error);
  g_autoptr(WaCampaignArgs) b = wa_campaign_args_parse("promo de @vip Anna | 5 at 23:59", &error);
  g_autoptr(WaCampaignArgs) c = wa_campaign_args_parse("promo orders at 7.csv", &error);
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
  g_autoptr(GTimeZone) berlin = g_time_zone_new_identifier("Europe/Berlin");
  gint64 at = 0;
  /* 2026-12-07 18:00:00 UTC */
  const gint64 now = 1796666400;

  g_assert_no_error(error);
  g_assert_cmpstr(a->file, ==, "orders.csv");
  g_assert_cmpstr(a->start, ==, "07:30");
  g_assert_cmpstr(b->group, ==, "vip");
  g_assert_cmpstr(b->values, ==, "Anna | 5");
  g_assert_cmpstr(b->start, ==, "23:59");
  g_assert_cmpstr(c->file, ==, "orders at 7.csv");
  g_assert_null(c->start);
  /* later today, or tomorrow once passed */
  g_assert_true(wa_campaign_start_at("19:15", now, utc, &at));
  g_assert_cmpint(at, ==, now + 75 * 60);
  g_assert_true(wa_campaign_start_at("18:00", now, utc, &at));
  g_assert_cmpint(at, ==, now + 24 * 3600);
  g_assert_true(wa_campaign_start_at("07:30", now, utc, &at));
  g_assert_cmpint(at, ==, now + (13 * 60 + 30) * 60);
  /* local time: 19:15 in Berlin (UTC+1 in December) is 18:15 UTC */
  if (berlin != NULL && g_strcmp0(g_time_zone_get_identifier(berlin), "UTC") != 0) {
    g_assert_true(wa_campaign_start_at("19:15", now, berlin, &at));
    g_assert_cmpint(at, ==, now + 15 * 60);
  }
  g_assert_false(wa_campaign_start_at("24:00", now, utc, &at));
  g_assert_false(wa_campaign_start_at("7:30", now, utc, &at));
  g_assert_false(wa_campaign_start_at(NULL, now, utc, &at));
}

static void
test_reasons_and_pricing(void)
{
  g_assert_null(wa_campaign_consent_reason(WA_CONSENT_ALLOWED));
  g_assert_cmpstr(wa_campaign_consent_reason(WA_CONSENT_SUPPRESSED_ERASURE), ==, "suppressed");
  g_assert_cmpstr(wa_campaign_consent_reason(WA_CONSENT_SUPPRESSED_OPT_OUT), ==, "suppressed");
  g_assert_cmpstr(wa_campaign_consent_reason(WA_CONSENT_OPTED_OUT_MARKETING), ==, "opted-out");
  g_assert_cmpstr(wa_campaign_consent_reason(WA_CONSENT_OPTED_OUT_EVERYTHING), ==, "opted-out");
  g_assert_cmpstr(wa_campaign_consent_reason(WA_CONSENT_NO_MARKETING_OPT_IN), ==, "no-consent");
  g_assert_cmpstr(wa_campaign_consent_reason(WA_CONSENT_NO_UTILITY_OPT_IN), ==, "no-consent");
  g_assert_cmpstr(wa_campaign_pricing_category("MARKETING"), ==, "marketing");
  g_assert_cmpstr(wa_campaign_pricing_category("MARKETING_LITE"), ==, "marketing");
  g_assert_cmpstr(wa_campaign_pricing_category("utility"), ==, "utility");
  g_assert_cmpstr(wa_campaign_pricing_category("AUTHENTICATION"), ==, "authentication");
  g_assert_null(wa_campaign_pricing_category("SERVICE"));
  g_assert_null(wa_campaign_pricing_category(NULL));
}

static void
test_chat_ids(void)
{
  /* WhatsApp groups use (hash & 0x3fffffff) + 1: at most 2^30 */
  for (guint i = 0; i < 2000; i++) {
    g_autofree char *id = g_strdup_printf("%032x", g_random_int());
    int chat = wa_campaign_chat_id(id);

    g_assert_cmpint(chat, >, WA_CAMPAIGN_CHAT_ID_BASE);
    g_assert_true(wa_campaign_chat_id_is_campaign(chat));
    g_assert_cmpint(chat, ==, wa_campaign_chat_id(id));
  }
  g_assert_false(wa_campaign_chat_id_is_campaign(0x3fffffff + 1));
  g_assert_false(wa_campaign_chat_id_is_campaign(1));
  {
    g_autofree char *name = wa_campaign_chat_name("0123456789abcdef0123456789abcdef", "order_update");

    g_assert_cmpstr(name, ==, "Campaign 01234567: order_update");
  }
}

static void
test_progress(void)
{
  g_autofree char *a = wa_campaign_progress_text(120, 300, 2, 5, 38.4, 5);
  g_autofree char *b = wa_campaign_progress_text(0, 0, 0, 0, -1, -1);

  g_assert_cmpstr(a, ==, "Sent 120/300 (40 %), 38/s, 2 failed, 5 skipped, about 5 s left");
  g_assert_cmpstr(b, ==, "Sent 0/0 (100 %), 0 failed, 0 skipped");
}

static void
test_report(void)
{
  GString *out = g_string_new(NULL);
  WaStoreRecipient sent = {.state = WA_STORE_RECIPIENT_SENT, .wamid = "wamid.A", .status = WA_STORE_STATUS_READ};
  WaStoreRecipient delivered = {.state = WA_STORE_RECIPIENT_SENT,
                                .wamid = "wamid.B",
                                .status = WA_STORE_STATUS_DELIVERED,
                                .pricing = "utility"};
  WaStoreRecipient failed = {.state = WA_STORE_RECIPIENT_FAILED, .error_code = 131049};
  WaStoreRecipient skipped = {.state = WA_STORE_RECIPIENT_SKIPPED, .reason = "no-consent"};
  WaStoreRecipient uncertain = {.state = WA_STORE_RECIPIENT_UNCERTAIN};
  WaStoreRecipient late_fail = {.state = WA_STORE_RECIPIENT_SENT, .wamid = "wamid.C", .status = WA_STORE_STATUS_FAILED};

  wa_campaign_report_header(out);
  wa_campaign_report_row(out, "491701234567", &sent, "marketing");
  wa_campaign_report_row(out, "491701234568", &delivered, "marketing");
  wa_campaign_report_row(out, "491701234569", &failed, "marketing");
  wa_campaign_report_row(out, "491701234570", &skipped, "marketing");
  wa_campaign_report_row(out, "491701234571", &uncertain, "marketing");
  wa_campaign_report_row(out, "491701234572", &late_fail, "marketing");
  g_assert_cmpstr(out->str, ==,
                  "recipient,message_id,status,code,pricing_category\r\n"
                  "491701234567,wamid.A,read,,marketing\r\n"
                  "491701234568,wamid.B,delivered,,utility\r\n"
                  "491701234569,,failed,131049,marketing\r\n"
                  "491701234570,,skipped,no-consent,\r\n"
                  "491701234571,,uncertain,,marketing\r\n"
                  "491701234572,wamid.C,failed,,marketing\r\n");
  g_string_free(out, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/campaign/args", test_args);
  g_test_add_func("/campaign/selection", test_selection);
  g_test_add_func("/campaign/start-at", test_start_at);
  g_test_add_func("/campaign/closed-country", test_closed_country);
  g_test_add_func("/campaign/reasons-and-pricing", test_reasons_and_pricing);
  g_test_add_func("/campaign/chat-ids", test_chat_ids);
  g_test_add_func("/campaign/progress", test_progress);
  g_test_add_func("/campaign/report", test_report);
  return g_test_run();
}
