/* test-template.c: message templates (wa-template.c): catalogue pages and
 * template objects, slots (positional, named, header media, buttons,
 * carousel, offer, one-time codes), the /template arguments, the checks
 * (missing, extra, too long, unknown, not approved), the rendered line and
 * the payload wa-graph.c sends.
 *   test-template [--tap]             the cases above
 *   test-template --meta DIR          our payloads have the shape of Meta's
 *                                     published template sends (DIR/send); a
 *                                     missing DIR is a skip with its reason */
#include "wa-graph.h"
#include "wa-json.h"
#include "wa-template.h"

#include <string.h>

/* the wall clock the payloads are built at: 2025-12-06 (an offer ending
 * 1767225600000, 2026-01-01, is still on) */
#define NOW_MS G_GINT64_CONSTANT(1765000000000)

static const char *meta_dir;

#define ORDER_UPDATE                                                                                    \
  "{\"name\":\"order_update\",\"language\":\"en_US\",\"status\":\"APPROVED\",\"category\":\"UTILITY\"," \
  "\"id\":\"1001\",\"parameter_format\":\"POSITIONAL\",\"quality_score\":{\"score\":\"GREEN\"},"        \
  "\"components\":[{\"type\":\"HEADER\",\"format\":\"TEXT\",\"text\":\"Order {{1}}\","                  \
  "\"example\":{\"header_text\":[\"#42\"]}},"                                                           \
  "{\"type\":\"BODY\",\"text\":\"Hi {{1}}, order {{2}} ships {{3}}. {{1}}!\","                          \
  "\"example\":{\"body_text\":[[\"Ann\",\"A-7\",\"today\"]]}},"                                         \
  "{\"type\":\"FOOTER\",\"text\":\"Shop Ltd\"},"                                                        \
  "{\"type\":\"BUTTONS\",\"buttons\":[{\"type\":\"URL\",\"text\":\"Track\","                            \
  "\"url\":\"https://shop.example/t/{{1}}\",\"example\":[\"https://shop.example/t/A-7\"]},"             \
  "{\"type\":\"QUICK_REPLY\",\"text\":\"Stop\"},{\"type\":\"PHONE_NUMBER\",\"text\":\"Call\","          \
  "\"phone_number\":\"+15550001\"}]}]}"

#define WELCOME_NAMED                                                                                   \
  "{\"name\":\"welcome\",\"language\":\"de\",\"status\":\"APPROVED\",\"category\":\"MARKETING\","       \
  "\"parameter_format\":\"NAMED\",\"components\":[{\"type\":\"BODY\",\"text\":\"Hallo {{first_name}}, " \
  "Tisch fuer {{guests}}.\",\"example\":{\"body_text_named_params\":[{\"param_name\":\"first_name\","   \
  "\"example\":\"Pablo\"},{\"param_name\":\"guests\",\"example\":\"4\"}]}}]}"

#define WELCOME_EN                                                                              \
  "{\"name\":\"welcome\",\"language\":\"en\",\"status\":\"PAUSED\",\"category\":\"MARKETING\"," \
  "\"parameter_format\":\"NAMED\",\"components\":[{\"type\":\"BODY\",\"text\":\"Hello {{first_name}}\"}]}"

#define INVOICE_MEDIA                                                                            \
  "{\"name\":\"invoice\",\"language\":\"en\",\"status\":\"APPROVED\",\"category\":\"UTILITY\","  \
  "\"components\":[{\"type\":\"HEADER\",\"format\":\"DOCUMENT\"},{\"type\":\"BODY\","            \
  "\"text\":\"Your invoice {{1}}\"},{\"type\":\"BUTTONS\",\"buttons\":[{\"type\":\"COPY_CODE\"," \
  "\"example\":\"SAVE10\"}]},{\"type\":\"LIMITED_TIME_OFFER\",\"limited_time_offer\":{\"text\":" \
  "\"Ends soon\",\"has_expiration\":true}}]}"

#define CAROUSEL                                                                                                    \
  "{\"name\":\"summer\",\"language\":\"en\",\"status\":\"APPROVED\",\"category\":\"MARKETING\","                    \
  "\"components\":[{\"type\":\"BODY\",\"text\":\"Deals for {{1}}\"},{\"type\":\"CAROUSEL\",\"cards\":["             \
  "{\"components\":[{\"type\":\"HEADER\",\"format\":\"IMAGE\"},{\"type\":\"BODY\",\"text\":\"Hat {{1}}\"},"         \
  "{\"type\":\"BUTTONS\",\"buttons\":[{\"type\":\"URL\",\"text\":\"Buy\",\"url\":\"https://s.example/{{1}}\"}]}]}," \
  "{\"components\":[{\"type\":\"HEADER\",\"format\":\"IMAGE\"},{\"type\":\"BODY\",\"text\":\"Cap\"},"               \
  "{\"type\":\"BUTTONS\",\"buttons\":[{\"type\":\"QUICK_REPLY\",\"text\":\"More\"}]}]}]}]}"

#define OTP                                                                                               \
  "{\"name\":\"login_code\",\"language\":\"en\",\"status\":\"APPROVED\",\"category\":\"AUTHENTICATION\"," \
  "\"components\":[{\"type\":\"BODY\",\"text\":\"*{{1}}* is your code.\"},{\"type\":\"BUTTONS\","         \
  "\"buttons\":[{\"type\":\"OTP\",\"otp_type\":\"COPY_CODE\",\"text\":\"Copy code\"}]}]}"

static WaTemplate *
load(const char *json)
{
  g_autoptr(GError) error = NULL;
  WaTemplate *tpl = wa_template_from_json(json, &error);

  g_assert_no_error(error);
  g_assert_nonnull(tpl);
  return tpl;
}

static GPtrArray *
catalogue_of(const char *const *jsons)
{
  GPtrArray *c = g_ptr_array_new_with_free_func((GDestroyNotify) wa_template_free);

  for (guint i = 0; jsons[i] != NULL; i++)
    g_ptr_array_add(c, load(jsons[i]));
  return c;
}

static GPtrArray *
catalogue(void)
{
  static const char *const all[] = {ORDER_UPDATE, WELCOME_NAMED, WELCOME_EN, INVOICE_MEDIA, CAROUSEL, OTP, NULL};

  return catalogue_of(all);
}

/* The values for "/template @line" against @tpl, which must be accepted. */
static GPtrArray *
fill_ok(const WaTemplate *tpl, GPtrArray *cat, const char *line)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaTemplateArgs) args = wa_template_args_parse(line, cat, &error);
  GPtrArray *values;

  g_assert_no_error(error);
  values = wa_template_fill(tpl, args, &error);
  g_assert_no_error(error);
  g_assert_nonnull(values);
  return values;
}

/* "/template @line" is refused with @code, and the message says @fragment. */
static void
fill_refused(const WaTemplate *tpl, GPtrArray *cat, const char *line, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaTemplateArgs) args = wa_template_args_parse(line, cat, &error);
  GPtrArray *values;

  g_assert_no_error(error);
  values = wa_template_fill(tpl, args, &error);
  g_assert_null(values);
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS);
  if (strstr(error->message, fragment) == NULL)
    g_error("\"%s\" does not say \"%s\"", error->message, fragment);
}

static JsonNode *
parse(const char *json)
{
  g_autoptr(GError) error = NULL;
  JsonNode *root = wa_json_parse_object(json, strlen(json), &error);

  g_assert_no_error(error);
  return root;
}

/* The payload's template.components as a compact string. */
static char *
components_of(const char *payload)
{
  g_autoptr(JsonNode) root = parse(payload);
  JsonObject *t = wa_json_get_object(json_node_get_object(root), "template");
  JsonNode *c = json_object_get_member(t, "components");

  return json_to_string(c, FALSE);
}

static void
test_parse_positional(void)
{
  g_autoptr(WaTemplate) tpl = load(ORDER_UPDATE);
  g_autofree char *slots = wa_template_describe_slots(tpl);

  g_assert_cmpstr(tpl->id, ==, "1001");
  g_assert_cmpstr(tpl->quality, ==, "GREEN");
  g_assert_cmpstr(tpl->category, ==, "UTILITY");
  g_assert_false(tpl->named);
  /* header {{1}}, body {{1}} {{2}} {{3}} ({{1}} twice is one slot), URL suffix, quick reply payload */
  g_assert_cmpuint(tpl->slots->len, ==, 6);
  g_assert_cmpstr(slots, ==,
                  "header {{1}} (e.g. #42), {{1}} (e.g. Ann), {{2}} (e.g. A-7), {{3}} (e.g. today), "
                  "button1=URL_SUFFIX (e.g. https://shop.example/t/A-7), [button2=PAYLOAD]");
  g_assert_cmpuint(((WaTemplateSlot *) g_ptr_array_index(tpl->slots, 0))->max, ==, 60);
  g_assert_cmpuint(((WaTemplateSlot *) g_ptr_array_index(tpl->slots, 1))->max, ==, 1024);
  g_assert_true(wa_template_sendable(tpl, NULL));
}

static void
test_send_positional(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(GError) error = NULL;
  g_autoptr(WaTemplateArgs) args =
    wa_template_args_parse("order_update en_US #42 | Ann | A-7 | today | button1=A-7", cat, &error);
  g_autoptr(WaTemplate) tpl = NULL;
  g_autoptr(GPtrArray) values = NULL;
  g_autofree char *line = NULL;
  g_autofree char *payload = NULL;
  g_autofree char *components = NULL;

  g_assert_no_error(error);
  g_assert_cmpstr(args->name, ==, "order_update");
  g_assert_cmpstr(args->language, ==, "en_US");
  g_assert_cmpuint(args->positional->len, ==, 4);
  tpl = wa_template_pick(cat, args->name, args->language, NULL, &error);
  g_assert_no_error(error);
  values = wa_template_fill(tpl, args, &error);
  g_assert_no_error(error);
  line = wa_template_render(tpl, values);
  g_assert_cmpstr(line, ==,
                  "[Template order_update, UTILITY]\nOrder #42\nHi Ann, order A-7 ships today. Ann!\nShop Ltd\n"
                  "[Track] [Stop] [Call]");
  payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_assert_no_error(error);
  components = components_of(payload);
  g_assert_cmpstr(components, ==,
                  "[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\",\"text\":\"#42\"}]},"
                  "{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Ann\"},{\"type\":\"text\","
                  "\"text\":\"A-7\"},{\"type\":\"text\",\"text\":\"today\"}]},{\"type\":\"button\",\"sub_type\":"
                  "\"url\",\"index\":\"0\",\"parameters\":[{\"type\":\"text\",\"text\":\"A-7\"}]}]");
  {
    /* what wa-graph sends: the template member as composed, on /messages */
    g_autoptr(JsonNode) message = wa_message_payload_new("4915112345678", payload, "ob:1", &error);
    g_autofree char *sent = json_to_string(message, FALSE);

    g_assert_no_error(error);
    g_assert_nonnull(strstr(sent, "\"type\":\"template\",\"template\":{\"name\":\"order_update\","
                                  "\"language\":{\"code\":\"en_US\"}"));
    g_assert_cmpstr(wa_message_payload_endpoint(payload), ==, "messages");
  }
  /* a quick reply's payload may be given; a bar in a value is "\|" */
  {
    g_autoptr(GPtrArray) v2 =
      fill_ok(tpl, cat, "order_update #42 | A \\| B | A-7 | today | button1=A-7 | button2=STOP_ME");
    g_autofree char *p2 = wa_template_payload(tpl, v2, FALSE, NOW_MS, &error);

    g_assert_cmpstr(g_ptr_array_index(v2, 1), ==, "A | B");
    g_assert_nonnull(strstr(p2, "{\"type\":\"button\",\"sub_type\":\"quick_reply\",\"index\":\"1\",\"parameters\":"
                                "[{\"type\":\"payload\",\"payload\":\"STOP_ME\"}]}"));
  }
}

static void
test_named(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(GError) error = NULL;
  g_autoptr(WaTemplate) tpl = wa_template_pick(cat, "welcome", "de", NULL, &error);
  g_autoptr(GPtrArray) values = NULL;
  g_autofree char *payload = NULL;
  g_autofree char *components = NULL;
  g_autofree char *line = NULL;

  g_assert_no_error(error);
  g_assert_true(tpl->named);
  values = fill_ok(tpl, cat, "welcome de guests=4 | first_name=Ann Smith");
  line = wa_template_render(tpl, values);
  g_assert_cmpstr(line, ==, "[Template welcome, MARKETING]\nHallo Ann Smith, Tisch fuer 4.");
  payload = wa_template_payload(tpl, values, TRUE, NOW_MS, &error);
  g_assert_no_error(error);
  components = components_of(payload);
  g_assert_cmpstr(components, ==,
                  "[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"parameter_name\":\"first_name\","
                  "\"text\":\"Ann Smith\"},{\"type\":\"text\",\"parameter_name\":\"guests\",\"text\":\"4\"}]}]");
  /* the marketing endpoint is marked for the sender, and never sent */
  g_assert_cmpstr(wa_message_payload_endpoint(payload), ==, "marketing_messages");
  {
    g_autoptr(JsonNode) message = wa_message_payload_new("4915112345678", payload, NULL, &error);
    g_autofree char *sent = json_to_string(message, FALSE);

    g_assert_null(strstr(sent, "endpoint"));
  }
  /* named values in order work too */
  {
    g_autoptr(GPtrArray) v2 = fill_ok(tpl, cat, "welcome Ann | 4");

    g_assert_cmpstr(g_ptr_array_index(v2, 1), ==, "4");
  }
  fill_refused(tpl, cat, "welcome first_name=Ann", "Missing: guests= (e.g. 4).");
  fill_refused(tpl, cat, "welcome first_name=Ann | guests=4 | last_name=S", "has no \"last_name\"");
  /* an equals sign in a value: "\=" (a bar is "\|") */
  fill_refused(tpl, cat, "welcome first_name=Ann | guests=4 | a=b", "is written a\\=b");
  {
    g_autoptr(GPtrArray) escaped = fill_ok(tpl, cat, "welcome first_name=Ann\\=B\\|C | guests=4");

    g_assert_cmpstr(g_ptr_array_index(escaped, 0), ==, "Ann=B|C");
  }
  {
    g_autoptr(WaTemplate) order = wa_template_pick(cat, "order_update", "en_US", NULL, NULL);
    g_autoptr(GPtrArray) escaped = fill_ok(order, cat, "order_update en_US #42 | x\\=1 | A-7 | today | button1=A-7");

    g_assert_cmpstr(g_ptr_array_index(escaped, 1), ==, "x=1");
  }
}

static void
test_media_coupon_offer(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(WaTemplate) tpl = load(INVOICE_MEDIA);
  g_autoptr(GError) error = NULL;
  g_autofree char *slots = wa_template_describe_slots(tpl);
  g_autoptr(GPtrArray) values =
    fill_ok(tpl, cat, "invoice header=/tmp/inv 7.pdf | 7 | code=SAVE10 | expires=1767225600000");
  g_autofree char *payload = NULL;
  g_autofree char *line = wa_template_render(tpl, values);

  g_assert_cmpstr(slots, ==,
                  "header=FILE_OR_MEDIA_ID (DOCUMENT), {{1}}, code=COUPON (e.g. SAVE10), expires=YYYY-MM-DDTHH:MM");
  g_assert_cmpstr(line, ==,
                  "[Template invoice, UTILITY]\n[document: inv 7.pdf]\nYour invoice 7\nEnds soon\n"
                  "[COPY_CODE] SAVE10");
  /* a local file must be uploaded first */
  g_assert_true(wa_template_media_is_file(g_ptr_array_index(values, 0)));
  g_assert_null(wa_template_payload(tpl, values, FALSE, NOW_MS, &error));
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS);
  g_clear_error(&error);
  g_free(values->pdata[0]);
  values->pdata[0] = g_strdup("2871834006348767");
  payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_assert_no_error(error);
  {
    g_autofree char *components = components_of(payload);

    g_assert_cmpstr(components, ==,
                    "[{\"type\":\"header\",\"parameters\":[{\"type\":\"document\",\"document\":{\"id\":"
                    "\"2871834006348767\"}}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"7\"}]},"
                    "{\"type\":\"limited_time_offer\",\"parameters\":[{\"type\":\"limited_time_offer\","
                    "\"limited_time_offer\":{\"expiration_time_ms\":1767225600000}}]},{\"type\":\"button\","
                    "\"sub_type\":\"copy_code\",\"index\":\"0\",\"parameters\":[{\"type\":\"coupon_code\","
                    "\"coupon_code\":\"SAVE10\"}]}]");
  }
  /* a link is sent as a link */
  g_free(values->pdata[0]);
  values->pdata[0] = g_strdup("https://files.example/i.pdf");
  g_free(payload);
  payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_assert_nonnull(strstr(payload, "\"document\":{\"link\":\"https://files.example/i.pdf\"}"));
  /* a coupon is at most 15 characters; an offer's end must read */
  fill_refused(tpl, cat, "invoice header=1 | 7 | code=0123456789ABCDEF | expires=1",
               "code=COUPON (e.g. SAVE10) is too long (16 characters; at most 15)");
  g_clear_pointer(&values, g_ptr_array_unref);
  values = fill_ok(tpl, cat, "invoice header=1 | 7 | code=A | expires=next week");
  g_free(payload);
  payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_assert_null(payload);
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS);
  g_clear_error(&error);
  /* an offer that has ended is not sent (Meta refuses it) */
  g_clear_pointer(&values, g_ptr_array_unref);
  values = fill_ok(tpl, cat, "invoice header=1 | 7 | code=A | expires=1765000000000");
  g_assert_null(wa_template_payload(tpl, values, FALSE, NOW_MS, &error));
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS);
  g_assert_nonnull(strstr(error->message, "has passed"));
  g_clear_error(&error);
  g_clear_pointer(&values, g_ptr_array_unref);
  /* the hint's form, without seconds, reads (local time) */
  values = fill_ok(tpl, cat, "invoice header=1 | 7 | code=A | expires=2025-12-06T00:00");
  g_assert_null(wa_template_payload(tpl, values, FALSE, NOW_MS + 2 * 24 * 3600 * 1000, &error));
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS);
  g_assert_nonnull(strstr(error->message, "has passed"));
  g_clear_error(&error);
  g_free(payload);
  payload = wa_template_payload(tpl, values, FALSE, NOW_MS - 7 * 24 * 3600 * 1000, &error);
  g_assert_no_error(error);
  g_assert_nonnull(payload);
  {
    g_autoptr(GDateTime) when = g_date_time_new_local(2025, 12, 6, 0, 0, 0);
    g_autofree char *ms = g_strdup_printf("\"expiration_time_ms\":%" G_GINT64_FORMAT, g_date_time_to_unix(when) * 1000);

    g_assert_nonnull(strstr(payload, ms));
  }
}

static void
test_carousel(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(WaTemplate) tpl = load(CAROUSEL);
  g_autoptr(GError) error = NULL;
  g_autofree char *slots = wa_template_describe_slots(tpl);
  g_autoptr(GPtrArray) values =
    fill_ok(tpl, cat, "summer Ann | card1.header=111 | card1.1=red | card1.button1=hat-red | card2.header=222");
  g_autofree char *line = wa_template_render(tpl, values);
  g_autofree char *payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_autofree char *components = components_of(payload);

  g_assert_cmpstr(slots, ==,
                  "{{1}}, card1.header=FILE_OR_MEDIA_ID (IMAGE), card1.1=, card1.button1=URL_SUFFIX, "
                  "card2.header=FILE_OR_MEDIA_ID (IMAGE), [card2.button1=PAYLOAD]");
  g_assert_cmpuint(tpl->cards->len, ==, 2);
  g_assert_cmpstr(line, ==,
                  "[Template summer, MARKETING]\nDeals for Ann\nCard 1:\n[image]\nHat red\n[Buy]\n"
                  "Card 2:\n[image]\nCap\n[More]");
  g_assert_no_error(error);
  g_assert_cmpstr(components, ==,
                  "[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"Ann\"}]},{\"type\":\"carousel\","
                  "\"cards\":[{\"card_index\":0,\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":"
                  "\"image\",\"image\":{\"id\":\"111\"}}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
                  "\"text\":\"red\"}]},{\"type\":\"button\",\"sub_type\":\"url\",\"index\":\"0\",\"parameters\":"
                  "[{\"type\":\"text\",\"text\":\"hat-red\"}]}]},{\"card_index\":1,\"components\":[{\"type\":"
                  "\"header\",\"parameters\":[{\"type\":\"image\",\"image\":{\"id\":\"222\"}}]}]}]}]");
  fill_refused(tpl, cat, "summer Ann | card1.header=111 | card1.1=red | card1.button1=x",
               "Missing: card2.header=FILE_OR_MEDIA_ID (IMAGE).");
}

/* A named header placeholder and a location header. */
static void
test_named_header_and_location(void)
{
  static const char named_json[] =
    "{\"name\":\"visit\",\"language\":\"en\",\"status\":\"APPROVED\",\"parameter_format\":\"NAMED\","
    "\"components\":[{\"type\":\"HEADER\",\"format\":\"TEXT\",\"text\":\"For {{customer}}\",\"example\":"
    "{\"header_text_named_params\":[{\"param_name\":\"customer\",\"example\":\"Ann\"}]}},"
    "{\"type\":\"BODY\",\"text\":\"See you at {{time}}\"}]}";
  static const char where_json[] =
    "{\"name\":\"where\",\"language\":\"en\",\"status\":\"APPROVED\",\"components\":[{\"type\":\"HEADER\","
    "\"format\":\"LOCATION\"},{\"type\":\"BODY\",\"text\":\"We are here.\"}]}";
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(WaTemplate) named = load(named_json);
  g_autoptr(WaTemplate) where = load(where_json);
  g_autoptr(GError) error = NULL;
  g_autofree char *slots = wa_template_describe_slots(named);
  g_autoptr(GPtrArray) v1 = fill_ok(named, cat, "visit time=10:00 | customer=Ann");
  g_autofree char *p1 = wa_template_payload(named, v1, FALSE, NOW_MS, &error);
  g_autofree char *c1 = components_of(p1);
  g_autoptr(GPtrArray) v2 = fill_ok(where, cat, "where header=52.5, 13.25, Shop, Main St 1");
  g_autofree char *p2 = wa_template_payload(where, v2, FALSE, NOW_MS, &error);
  g_autofree char *c2 = components_of(p2);
  g_autoptr(GPtrArray) v3 = fill_ok(where, cat, "where header=95, 13.40");

  g_assert_cmpstr(slots, ==, "customer= (e.g. Ann), time=");
  g_assert_cmpstr(c1, ==,
                  "[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\",\"parameter_name\":\"customer\","
                  "\"text\":\"Ann\"}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"parameter_name\":"
                  "\"time\",\"text\":\"10:00\"}]}]");
  g_assert_cmpstr(c2, ==,
                  "[{\"type\":\"header\",\"parameters\":[{\"type\":\"location\",\"location\":{\"latitude\":52.5,"
                  "\"longitude\":13.25,\"name\":\"Shop\",\"address\":\"Main St 1\"}}]}]");
  /* a latitude past 90 does not read */
  g_assert_null(wa_template_payload(where, v3, FALSE, NOW_MS, &error));
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS);
}

static void
test_otp(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(WaTemplate) tpl = load(OTP);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) values = fill_ok(tpl, cat, "login_code 123456");
  g_autofree char *payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_autofree char *components = components_of(payload);

  /* the code goes in the body and again in the button */
  g_assert_cmpstr(components, ==,
                  "[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"123456\"}]},{\"type\":"
                  "\"button\",\"sub_type\":\"url\",\"index\":\"0\",\"parameters\":[{\"type\":\"text\",\"text\":"
                  "\"123456\"}]}]");
}

static void
test_validation(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(WaTemplate) tpl = load(ORDER_UPDATE);
  g_autoptr(GError) error = NULL;
  g_autofree char *long60 = g_strnfill(60, 'x');
  g_autofree char *long61 = g_strnfill(61, 'x');
  g_autofree char *ok_line = g_strdup_printf("order_update %s | Ann | A-7 | today | button1=A", long60);
  g_autofree char *long_line = g_strdup_printf("order_update %s | Ann | A-7 | today | button1=A", long61);

  fill_refused(tpl, cat, "order_update #42 | Ann", "Missing: {{2}} (e.g. A-7), {{3}} (e.g. today), button1=URL_SUFFIX");
  fill_refused(tpl, cat, "order_update #42 | Ann", "Template \"order_update\" (en_US) takes: header {{1}} (e.g. #42)");
  fill_refused(tpl, cat, "order_update #42 | Ann | A-7 | today | extra | more | button1=A", "2 values too many.");
  g_ptr_array_unref(fill_ok(tpl, cat, ok_line));
  fill_refused(tpl, cat, long_line, "header {{1}} (e.g. #42) is too long (61 characters; at most 60)");
  /* a body value: 1024 with other components, 32768 in a body-only template */
  {
    g_autofree char *big = g_strnfill(1025, 'y');
    g_autofree char *line = g_strdup_printf("order_update #1 | %s | A-7 | today | button1=A", big);
    g_autoptr(WaTemplate) otp = load(OTP);
    static const char body_only[] = "{\"name\":\"note\",\"language\":\"en\",\"status\":\"APPROVED\",\"components\":"
                                    "[{\"type\":\"BODY\",\"text\":\"{{1}}\"}]}";
    g_autoptr(WaTemplate) note = load(body_only);
    g_autofree char *huge = g_strnfill(32769, 'z');
    g_autofree char *note_ok = g_strdup_printf("note %s", big);
    g_autofree char *note_long = g_strdup_printf("note %s", huge);

    fill_refused(tpl, cat, line, "is too long (1025 characters; at most 1024)");
    g_ptr_array_unref(fill_ok(note, cat, note_ok));
    fill_refused(note, cat, note_long, "at most 32768");
    g_assert_nonnull(otp);
  }
  /* new lines, tabs, five spaces: Meta refuses them in text values */
  fill_refused(tpl, cat, "order_update #42 | An\tn | A-7 | today | button1=A",
               "{{1}} (e.g. Ann) may not hold new lines");
  fill_refused(tpl, cat, "order_update #42 | Ann | A     7 | today | button1=A", "{{2}} (e.g. A-7) may not hold");
  g_ptr_array_unref(fill_ok(tpl, cat, "order_update #42 | Ann | A    7 | today | button1=A"));
  /* a template needs its name */
  g_assert_null(wa_template_args_parse("  ", cat, &error));
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_SYNTAX);
}

static void
test_pick(void)
{
  g_autoptr(GPtrArray) cat = catalogue();
  g_autoptr(GError) error = NULL;
  g_autoptr(WaTemplate) only = NULL;
  g_autoptr(WaTemplate) tpl = NULL;
  g_autoptr(WaTemplateArgs) args = NULL;

  tpl = wa_template_pick(cat, "nope", NULL, NULL, &error);
  g_assert_null(tpl);
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_UNKNOWN);
  g_assert_nonnull(strstr(error->message, "no template named \"nope\" (templates: order_update, welcome, invoice"));
  g_clear_error(&error);
  /* without LANG: the only approved language (welcome de; en is paused) */
  only = wa_template_pick(cat, "welcome", NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(only->language, ==, "de");
  /* a paused one says why */
  tpl = wa_template_pick(cat, "welcome", "en", NULL, &error);
  g_assert_null(tpl);
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_NOT_SENDABLE);
  g_assert_nonnull(strstr(error->message, "template \"welcome\" (en) cannot be sent: it is paused because of low "
                                          "quality"));
  g_clear_error(&error);
  /* a template in one language that cannot be sent: why, without naming the language */
  {
    static const char *const one[] = {WELCOME_EN, NULL};
    g_autoptr(GPtrArray) only_en = catalogue_of(one);

    g_assert_null(wa_template_pick(only_en, "welcome", NULL, NULL, &error));
    g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_NOT_SENDABLE);
    g_clear_error(&error);
  }
  tpl = wa_template_pick(cat, "welcome", "fr", NULL, &error);
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_UNKNOWN);
  g_assert_nonnull(strstr(error->message, "has no language fr (it has: de (APPROVED), en (PAUSED))"));
  g_clear_error(&error);
  /* LANG is the second word only when NAME has that language */
  args = wa_template_args_parse("welcome en first_name=A", cat, &error);
  g_assert_cmpstr(args->language, ==, "en");
  g_clear_pointer(&args, wa_template_args_free);
  args = wa_template_args_parse("welcome fr | first_name=A", cat, &error);
  g_assert_null(args->language);
  g_assert_cmpstr(g_ptr_array_index(args->positional, 0), ==, "fr");
  /* every status tells why */
  {
    static const char *const statuses[][2] = {
      {"PENDING", "review"},
      {"REJECTED", "rejected"},
      {"DISABLED", "disabled"},
      {"IN_APPEAL", "appealed"},
      {"PENDING_DELETION", "deleted"},
      {"DELETED", "deleted"},
      {"ARCHIVED", "archived"},
      {"LIMIT_EXCEEDED", "limit"},
      {"LOCKED", "locked"},
      {"SOMETHING_NEW", "SOMETHING_NEW"},
    };

    for (guint i = 0; i < G_N_ELEMENTS(statuses); i++) {
      g_autofree char *json = g_strdup_printf("{\"name\":\"t\",\"language\":\"en\",\"status\":\"%s\"}", statuses[i][0]);
      g_autoptr(WaTemplate) t = load(json);
      g_autofree char *why = NULL;

      g_assert_cmpstr(t->status, ==, statuses[i][0]);
      g_assert_false(wa_template_sendable(t, &why));
      if (strstr(why, statuses[i][1]) == NULL)
        g_error("%s: \"%s\" does not say \"%s\"", statuses[i][0], why, statuses[i][1]);
    }
  }
}

static void
test_page(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *page1 = g_strdup_printf("{\"data\":[%s,%s,{\"name\":1},\"x\"],\"paging\":{\"cursors\":{\"before\":"
                                           "\"B\",\"after\":\"QVFI\"},\"next\":\"https://graph/next\"}}",
                                           ORDER_UPDATE, WELCOME_NAMED);
  static const char page2[] = "{\"data\":[" OTP "],\"paging\":{\"cursors\":{\"before\":\"C\",\"after\":\"D\"}}}";
  g_autoptr(GPtrArray) into = g_ptr_array_new_with_free_func((GDestroyNotify) wa_template_free);
  g_autoptr(JsonNode) r1 = parse(page1);
  g_autoptr(JsonNode) r2 = parse(page2);
  g_autoptr(JsonNode) bad = parse("{\"error\":{}}");
  char *after = NULL;

  g_assert_true(wa_template_page_parse(json_node_get_object(r1), into, &after, &error));
  g_assert_cmpuint(into->len, ==, 2);
  g_assert_cmpstr(after, ==, "QVFI");
  g_free(after);
  /* no paging.next: the last page */
  g_assert_true(wa_template_page_parse(json_node_get_object(r2), into, &after, &error));
  g_assert_null(after);
  g_assert_cmpuint(into->len, ==, 3);
  g_assert_false(wa_template_page_parse(json_node_get_object(bad), into, &after, &error));
  g_assert_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_INVALID);
  /* a stored template reads back the same */
  {
    const WaTemplate *t = g_ptr_array_index(into, 0);
    g_autoptr(WaTemplate) again = load(t->json);

    g_assert_cmpstr(again->name, ==, "order_update");
    g_assert_cmpuint(again->slots->len, ==, t->slots->len);
  }
}

static void
test_usage(void)
{
  g_assert_cmpint(wa_template_usage_backoff(NULL), ==, 0);
  g_assert_cmpint(wa_template_usage_backoff("not json"), ==, 0);
  g_assert_cmpint(wa_template_usage_backoff("{\"1\":[{\"type\":\"whatsapp_business_management\",\"call_count\":"
                                            "12,\"total_cputime\":3,\"total_time\":5}]}"),
                  ==, 0);
  g_assert_cmpint(wa_template_usage_backoff("{\"1\":[{\"call_count\":91,\"total_cputime\":3,\"total_time\":5}]}"), ==,
                  600);
  g_assert_cmpint(wa_template_usage_backoff("{\"1\":[{\"call_count\":100}],\"2\":[{\"total_time\":3}]}"), ==, 3600);
  g_assert_cmpint(wa_template_usage_backoff("{\"1\":[{\"call_count\":100,\"estimated_time_to_regain_access\":7}]}"), ==,
                  420);
}

/* ---- Meta's published sends ---- */

/* The shape of a JSON value: member names and types, not values. */
static void
shape(GString *s, JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObject *o = json_node_get_object(node);
    GList *members = g_list_sort(json_object_get_members(o), (GCompareFunc) g_strcmp0);

    g_string_append_c(s, '{');
    for (GList *l = members; l != NULL; l = l->next) {
      /* Meta's examples carry optional date_time details we do not send */
      g_string_append_printf(s, "%s:", (const char *) l->data);
      shape(s, json_object_get_member(o, l->data));
      g_string_append_c(s, ',');
    }
    g_list_free(members);
    g_string_append_c(s, '}');
  } else if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node);

    g_string_append_c(s, '[');
    for (guint i = 0; i < json_array_get_length(a); i++)
      shape(s, json_array_get_element(a, i));
    g_string_append_c(s, ']');
  } else {
    g_string_append(s, "v");
  }
}

static void
test_meta_media_send(void)
{
  g_autofree char *path = g_build_filename(meta_dir, "send_message_template_media.json", NULL);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) example = NULL;
  JsonObject *components_holder;
  JsonArray *components;
  static const char tpl_json[] = "{\"name\":\"template-name\",\"language\":\"en\",\"status\":\"APPROVED\","
                                 "\"components\":[{\"type\":\"HEADER\",\"format\":\"IMAGE\"},{\"type\":\"BODY\","
                                 "\"text\":\"{{1}} {{2}} {{3}}\"}]}";
  g_autoptr(WaTemplate) tpl = load(tpl_json);
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *payload = NULL;
  g_autoptr(JsonNode) ours = NULL;
  g_autoptr(GString) want = g_string_new(NULL);
  g_autoptr(GString) got = g_string_new(NULL);

  g_assert_true(g_file_get_contents(path, &contents, &len, &error));
  example = parse(contents);
  components_holder = wa_json_get_object(json_node_get_object(example), "template");
  components = wa_json_get_array(components_holder, "components");
  /* Meta's example: an image header, then a body whose first value is text */
  g_assert_cmpstr(wa_json_get_string(wa_json_array_get_object(components, 0), "type"), ==, "header");
  g_ptr_array_add(values, g_strdup("https://the-image-url"));
  g_ptr_array_add(values, g_strdup("a"));
  g_ptr_array_add(values, g_strdup("b"));
  g_ptr_array_add(values, g_strdup("c"));
  payload = wa_template_payload(tpl, values, FALSE, NOW_MS, &error);
  g_assert_no_error(error);
  ours = wa_message_payload_new("15550001", payload, NULL, &error);
  g_assert_no_error(error);
  /* the header component has the same shape as Meta's */
  shape(want, json_array_get_element(components, 0));
  shape(got, json_array_get_element(wa_json_get_array(wa_json_get_object(json_node_get_object(ours), "template"),
                                                      "components"),
                                    0));
  g_assert_cmpstr(got->str, ==, want->str);
  /* and the first body parameter */
  g_string_truncate(want, 0);
  g_string_truncate(got, 0);
  shape(want, json_array_get_element(wa_json_get_array(wa_json_array_get_object(components, 1), "parameters"), 0));
  shape(got, json_array_get_element(
               wa_json_get_array(
                 wa_json_array_get_object(
                   wa_json_get_array(wa_json_get_object(json_node_get_object(ours), "template"), "components"), 1),
                 "parameters"),
               0));
  g_assert_cmpstr(got->str, ==, want->str);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  for (int i = 1; i + 1 < argc; i++)
    if (g_str_equal(argv[i], "--meta"))
      meta_dir = argv[i + 1];
  if (meta_dir != NULL) {
    if (!g_file_test(meta_dir, G_FILE_TEST_IS_DIR)) {
      g_print("1..0 # SKIP Meta's send examples are not at '%s' (meson option meta_examples)\n", meta_dir);
      return 0;
    }
    g_test_add_func("/template/meta/media-send", test_meta_media_send);
    return g_test_run();
  }
  g_test_add_func("/template/parse-positional", test_parse_positional);
  g_test_add_func("/template/send-positional", test_send_positional);
  g_test_add_func("/template/named", test_named);
  g_test_add_func("/template/media-coupon-offer", test_media_coupon_offer);
  g_test_add_func("/template/carousel", test_carousel);
  g_test_add_func("/template/otp", test_otp);
  g_test_add_func("/template/named-header-and-location", test_named_header_and_location);
  g_test_add_func("/template/validation", test_validation);
  g_test_add_func("/template/pick", test_pick);
  g_test_add_func("/template/page", test_page);
  g_test_add_func("/template/usage", test_usage);
  return g_test_run();
}
