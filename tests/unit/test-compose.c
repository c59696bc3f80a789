/* test-compose.c: the agent's commands (wa-compose.c): argument parsing,
 * the Cloud API's limits checked before anything is queued, the JSON each
 * composes, and the message wa-graph.c builds from it (groups included). */
#include "wa-compose.h"
#include "wa-graph.h"
#include "wa-json.h"
#include "wa-phone.h"

#include <string.h>

#define WAMID "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEwQTA3NjQ2NzA2MQA="

/* The composed payload, parsed. */
static JsonObject *
payload_of(const WaComposed *c, JsonNode **root)
{
  g_autoptr(GError) error = NULL;

  *root = wa_json_parse_object(c->payload, strlen(c->payload), &error);
  g_assert_no_error(error);
  return json_node_get_object(*root);
}

/* Composing fails with @code, and the message names @fragment. */
static void
assert_refused(WaComposed *c, GError *error, int code, const char *fragment)
{
  g_assert_null(c);
  g_assert_error(error, WA_COMPOSE_ERROR, code);
  if (strstr(error->message, fragment) == NULL)
    g_error("\"%s\" does not say \"%s\"", error->message, fragment);
}

/* Evaluates @call before looking at `error` (arguments have no order). */
#define REFUSED(call, code, fragment)                \
  do {                                               \
    WaComposed *refused_ = (call);                   \
    assert_refused(refused_, error, code, fragment); \
    g_clear_error(&error);                           \
  } while (0)

static void
test_reply_parse(void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  guint nth = 0;

  g_assert_true(wa_compose_reply_parse("  hello there ", &nth, &text, &error));
  g_assert_cmpuint(nth, ==, 1);
  g_assert_cmpstr(text, ==, "hello there");
  g_clear_pointer(&text, g_free);
  g_assert_true(wa_compose_reply_parse("3 yes, that one", &nth, &text, &error));
  g_assert_cmpuint(nth, ==, 3);
  g_assert_cmpstr(text, ==, "yes, that one");
  g_clear_pointer(&text, g_free);
  /* a number that is the text, not N */
  g_assert_true(wa_compose_reply_parse("42", &nth, &text, NULL) == FALSE);
  g_assert_true(wa_compose_reply_parse("2nd thing", &nth, &text, &error));
  g_assert_cmpuint(nth, ==, 1);
  g_assert_cmpstr(text, ==, "2nd thing");
  g_clear_pointer(&text, g_free);

  g_assert_false(wa_compose_reply_parse("0 hi", &nth, &text, &error));
  g_assert_error(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_LIMIT);
  g_clear_error(&error);
  g_assert_false(wa_compose_reply_parse("51 hi", &nth, &text, &error));
  g_assert_error(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_LIMIT);
  g_clear_error(&error);
  g_assert_false(wa_compose_reply_parse("   ", &nth, &text, &error));
  g_assert_error(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX);
  g_assert_null(text);
}

static void
test_reply(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c = wa_compose_reply("Yes, tomorrow", WAMID, "Can you deliver\non Monday?", &error);
  g_autoptr(JsonNode) root = NULL;
  JsonObject *obj;
  g_autofree char *long_text = g_strnfill(4097, 'x');

  g_assert_no_error(error);
  obj = payload_of(c, &root);
  g_assert_cmpstr(c->type, ==, "text");
  g_assert_cmpstr(wa_json_get_string(obj, "type"), ==, "text");
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(obj, "text"), "body"), ==, "Yes, tomorrow");
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(obj, "context"), "message_id"), ==, WAMID);
  g_assert_cmpstr(c->line, ==, "[Reply to: Can you deliver on Monday?] Yes, tomorrow");

  REFUSED(wa_compose_reply(long_text, WAMID, NULL, &error), WA_COMPOSE_ERROR_LIMIT, "4096");
  REFUSED(wa_compose_reply("hi", "123", NULL, &error), WA_COMPOSE_ERROR_LIMIT, "message id");
}

static void
test_wamid(void)
{
  g_assert_true(wa_compose_wamid_is_valid(WAMID));
  g_assert_true(wa_compose_wamid_is_valid("wamid.sim-1"));
  g_assert_false(wa_compose_wamid_is_valid("wamid."));
  g_assert_false(wa_compose_wamid_is_valid("HBgL"));
  g_assert_false(wa_compose_wamid_is_valid("wamid.a b"));
  g_assert_false(wa_compose_wamid_is_valid(NULL));
}

static void
test_emoji(void)
{
  static const char *const good[] = {
    "👍",                            /* U+1F44D */
    "👍🏽",                     /* with a skin tone */
    "❤️",                       /* U+2764 U+FE0F */
    "👨‍👩‍👧‍👦",    /* a family: ZWJ sequence */
    "🏳️‍🌈",               /* flag + VS16 + ZWJ + rainbow */
    "🇩🇪",                           /* regional indicators */
    "1️⃣",                      /* keycap */
    "#⃣",                            /* keycap without VS16 */
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿", /* tag sequence (Scotland) */
    "☺",                            /* U+263A */
  };
  static const char *const bad[] = {
    "", "a", "ok", "1", ":)", "👍👍", "👍 ", " 👍", "🇩", "🇩🇪🇫🇷", "👍\u200d", "\u200d👍", "é", "👍a", "\xff",
  };

  for (guint i = 0; i < G_N_ELEMENTS(good); i++)
    if (!wa_compose_emoji_is_valid(good[i]))
      g_error("refused: %s", good[i]);
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
    if (wa_compose_emoji_is_valid(bad[i]))
      g_error("accepted: %s", bad[i]);
  /* bounded length: 17 code points of joined emoji */
  {
    GString *s = g_string_new("👍");
    for (guint i = 0; i < 8; i++)
      g_string_append(s, "\u200d👍");
    g_assert_false(wa_compose_emoji_is_valid(s->str));
    g_string_free(s, TRUE);
  }
}

static void
test_reaction(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c = wa_compose_reaction("👍", WAMID, "Your parcel left the warehouse today", &error);
  g_autoptr(WaComposed) removed = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) root2 = NULL;
  JsonObject *reaction;

  g_assert_no_error(error);
  reaction = wa_json_get_object(payload_of(c, &root), "reaction");
  g_assert_cmpstr(c->type, ==, "reaction");
  g_assert_cmpstr(wa_json_get_string(reaction, "message_id"), ==, WAMID);
  g_assert_cmpstr(wa_json_get_string(reaction, "emoji"), ==, "👍");
  g_assert_cmpstr(c->line, ==, "reacted 👍 to: Your parcel left the warehouse today");

  removed = wa_compose_reaction("", WAMID, "A message that is longer than forty characters in all", &error);
  g_assert_no_error(error);
  reaction = wa_json_get_object(payload_of(removed, &root2), "reaction");
  g_assert_cmpstr(wa_json_get_string(reaction, "emoji"), ==, "");
  g_assert_cmpstr(removed->line, ==, "removed the reaction from: A message that is longer than forty char…");

  REFUSED(wa_compose_reaction("great", WAMID, NULL, &error), WA_COMPOSE_ERROR_LIMIT, "one emoji");
  REFUSED(wa_compose_reaction("👍", NULL, NULL, &error), WA_COMPOSE_ERROR_LIMIT, "message id");
}

static void
test_location(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c = wa_compose_location("52.520008, 13.404954 Alexanderplatz, Berlin", &error);
  g_autoptr(WaComposed) bare = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) root2 = NULL;
  JsonObject *loc;

  g_assert_no_error(error);
  loc = wa_json_get_object(payload_of(c, &root), "location");
  g_assert_cmpfloat_with_epsilon(json_object_get_double_member(loc, "latitude"), 52.520008, 1e-9);
  g_assert_cmpfloat_with_epsilon(json_object_get_double_member(loc, "longitude"), 13.404954, 1e-9);
  g_assert_cmpstr(wa_json_get_string(loc, "name"), ==, "Alexanderplatz, Berlin");
  g_assert_cmpstr(c->line, ==, "[Location] Alexanderplatz, Berlin (52.520008, 13.404954)");

  bare = wa_compose_location("-90 180", &error);
  g_assert_no_error(error);
  loc = wa_json_get_object(payload_of(bare, &root2), "location");
  g_assert_false(json_object_has_member(loc, "name"));
  g_assert_cmpstr(bare->line, ==, "[Location] -90.000000, 180.000000");

  REFUSED(wa_compose_location("90.5 10", &error), WA_COMPOSE_ERROR_LIMIT, "latitude");
  REFUSED(wa_compose_location("10 -180.01", &error), WA_COMPOSE_ERROR_LIMIT, "longitude");
  REFUSED(wa_compose_location("north 10", &error), WA_COMPOSE_ERROR_SYNTAX, "not a number");
  REFUSED(wa_compose_location("10", &error), WA_COMPOSE_ERROR_SYNTAX, "longitude");
  REFUSED(wa_compose_location("nan 10", &error), WA_COMPOSE_ERROR_SYNTAX, "not a number");
  REFUSED(wa_compose_location("", &error), WA_COMPOSE_ERROR_SYNTAX, "latitude");
}

static void
test_buttons(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c = wa_compose_buttons("Shall we deliver tomorrow? | Yes | No | Call me", &error);
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *body = g_strnfill(1025, 'b');
  g_autofree char *args = NULL;
  JsonObject *inter;
  JsonArray *buttons;

  g_assert_no_error(error);
  g_assert_cmpstr(c->type, ==, "interactive");
  inter = wa_json_get_object(payload_of(c, &root), "interactive");
  g_assert_cmpstr(wa_json_get_string(inter, "type"), ==, "button");
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(inter, "body"), "text"), ==, "Shall we deliver tomorrow?");
  buttons = wa_json_get_array(wa_json_get_object(inter, "action"), "buttons");
  g_assert_cmpuint(json_array_get_length(buttons), ==, 3);
  for (guint i = 0; i < 3; i++) {
    JsonObject *b = json_array_get_object_element(buttons, i);
    JsonObject *reply = wa_json_get_object(b, "reply");
    g_autofree char *id = g_strdup_printf("b%u", i + 1);

    g_assert_cmpstr(wa_json_get_string(b, "type"), ==, "reply");
    g_assert_cmpstr(wa_json_get_string(reply, "id"), ==, id);
  }
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(json_array_get_object_element(buttons, 2), "reply"), "title"),
                  ==, "Call me");
  g_assert_cmpstr(c->line, ==, "[Buttons] Shall we deliver tomorrow? | Yes | No | Call me");

  REFUSED(wa_compose_buttons("Body only", &error), WA_COMPOSE_ERROR_SYNTAX, "|");
  REFUSED(wa_compose_buttons("Q | A | B | C | D", &error), WA_COMPOSE_ERROR_LIMIT, "at most 3");
  /* 21 characters (20 allowed; "ü" counts once) */
  REFUSED(wa_compose_buttons("Q | Yes | üüüüüüüüüüüüüüüüüüüüü", &error), WA_COMPOSE_ERROR_LIMIT, "at most 20");
  REFUSED(wa_compose_buttons("Q | Yes | Yes", &error), WA_COMPOSE_ERROR_LIMIT, "twice");
  REFUSED(wa_compose_buttons("Q | Yes | ", &error), WA_COMPOSE_ERROR_LIMIT, "empty");
  args = g_strdup_printf("%s | Yes", body);
  REFUSED(wa_compose_buttons(args, &error), WA_COMPOSE_ERROR_LIMIT, "1024");
  {
    g_autoptr(WaComposed) ok = wa_compose_buttons("Q | üüüüüüüüüüüüüüüüüüüü", &error);
    g_assert_no_error(error);
    g_assert_nonnull(ok);
  }
}

static void
test_list(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c =
    wa_compose_list("Shipping | How fast do you need it? | Express - Next day; Standard - 2 to 3 days; Pick-up;",
                    &error);
  g_autoptr(JsonNode) root = NULL;
  JsonObject *inter, *action;
  JsonArray *sections, *rows;
  GString *many = g_string_new("Menu | Pick one | ");

  g_assert_no_error(error);
  inter = wa_json_get_object(payload_of(c, &root), "interactive");
  g_assert_cmpstr(wa_json_get_string(inter, "type"), ==, "list");
  action = wa_json_get_object(inter, "action");
  g_assert_cmpstr(wa_json_get_string(action, "button"), ==, "Shipping");
  sections = wa_json_get_array(action, "sections");
  g_assert_cmpuint(json_array_get_length(sections), ==, 1);
  rows = wa_json_get_array(json_array_get_object_element(sections, 0), "rows");
  g_assert_cmpuint(json_array_get_length(rows), ==, 3);
  g_assert_cmpstr(wa_json_get_string(json_array_get_object_element(rows, 0), "id"), ==, "r1");
  g_assert_cmpstr(wa_json_get_string(json_array_get_object_element(rows, 0), "title"), ==, "Express");
  g_assert_cmpstr(wa_json_get_string(json_array_get_object_element(rows, 1), "description"), ==, "2 to 3 days");
  g_assert_false(json_object_has_member(json_array_get_object_element(rows, 2), "description"));
  g_assert_cmpstr(c->line, ==, "[List: Shipping] How fast do you need it? | Express; Standard; Pick-up");

  for (guint i = 0; i < 11; i++)
    g_string_append_printf(many, "%sRow %u", i > 0 ? "; " : "", i);
  REFUSED(wa_compose_list(many->str, &error), WA_COMPOSE_ERROR_LIMIT, "at most 10 rows");
  g_string_free(many, TRUE);
  g_clear_error(&error);
  REFUSED(wa_compose_list("A button text that is too long | Body | Row", &error), WA_COMPOSE_ERROR_LIMIT,
          "menu button");
  REFUSED(wa_compose_list("Menu | Body | A row title longer than 24 chars", &error), WA_COMPOSE_ERROR_LIMIT, "Row 1");
  {
    g_autofree char *d = g_strnfill(73, 'd');
    g_autofree char *args = g_strdup_printf("Menu | Body | Row - %s", d);

    REFUSED(wa_compose_list(args, &error), WA_COMPOSE_ERROR_LIMIT, "description of row 1");
  }
  REFUSED(wa_compose_list("Menu | Body", &error), WA_COMPOSE_ERROR_SYNTAX, "|");
  REFUSED(wa_compose_list("Menu | Body | ", &error), WA_COMPOSE_ERROR_SYNTAX, "no rows");
  REFUSED(wa_compose_list("Menu | Body | a;;b", &error), WA_COMPOSE_ERROR_LIMIT, "Row 2");
}

static void
test_askphone(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c = wa_compose_askphone(NULL, &error);
  g_autoptr(WaComposed) own = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *inter;

  g_assert_no_error(error);
  inter = wa_json_get_object(payload_of(c, &root), "interactive");
  g_assert_cmpstr(wa_json_get_string(inter, "type"), ==, "request_contact_info");
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(inter, "action"), "name"), ==, "request_contact_info");
  g_assert_nonnull(wa_json_get_string(wa_json_get_object(inter, "body"), "text"));
  own = wa_compose_askphone("May we call you?", &error);
  g_assert_cmpstr(own->line, ==, "[Phone number request] May we call you?");
}

/* The message the sender builds from a stored payload. */
static void
test_payload_message(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaComposed) c = wa_compose_reply("ok", WAMID, NULL, &error);
  g_autoptr(JsonNode) msg = wa_message_payload_new("491701234567", c->payload, "wabiz:7", &error);
  g_autoptr(JsonNode) bsuid = NULL;
  g_autoptr(JsonNode) bad = NULL;
  JsonObject *obj = json_node_get_object(msg);

  g_assert_no_error(error);
  g_assert_cmpstr(wa_json_get_string(obj, "messaging_product"), ==, "whatsapp");
  g_assert_cmpstr(wa_json_get_string(obj, "recipient_type"), ==, "individual");
  g_assert_cmpstr(wa_json_get_string(obj, "to"), ==, "+491701234567");
  g_assert_cmpstr(wa_json_get_string(obj, "type"), ==, "text");
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(obj, "context"), "message_id"), ==, WAMID);
  g_assert_cmpstr(wa_json_get_string(obj, "biz_opaque_callback_data"), ==, "wabiz:7");

  bsuid = wa_message_payload_new("US.13491208655302741918", c->payload, NULL, &error);
  g_assert_cmpstr(wa_json_get_string(json_node_get_object(bsuid), "recipient"), ==, "US.13491208655302741918");
  g_assert_false(json_object_has_member(json_node_get_object(bsuid), "to"));

  bad = wa_message_payload_new("491701234567", "{\"type\":\"reaction\"}", NULL, &error);
  g_assert_null(bad);
  g_assert_nonnull(error);
}

static void
test_group_address(void)
{
  g_autofree char *address = wa_group_address("Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MTo=");
  g_autoptr(JsonNode) text = NULL;
  JsonObject *obj;

  g_assert_cmpstr(address, ==, "group:Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MTo=");
  g_assert_cmpstr(wa_group_address_id(address), ==, "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MTo=");
  g_assert_null(wa_group_address_id("491701234567"));
  g_assert_null(wa_group_address_id("group:"));
  g_assert_null(wa_group_address_id("group:a b"));
  g_assert_null(wa_group_address("<b>"));

  text = wa_message_text_new(address, "Hello all", FALSE, "wabiz:9");
  obj = json_node_get_object(text);
  g_assert_cmpstr(wa_json_get_string(obj, "recipient_type"), ==, "group");
  g_assert_cmpstr(wa_json_get_string(obj, "to"), ==, "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MTo=");
  g_assert_false(json_object_has_member(obj, "recipient"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/compose/reply-parse", test_reply_parse);
  g_test_add_func("/compose/reply", test_reply);
  g_test_add_func("/compose/wamid", test_wamid);
  g_test_add_func("/compose/emoji", test_emoji);
  g_test_add_func("/compose/reaction", test_reaction);
  g_test_add_func("/compose/location", test_location);
  g_test_add_func("/compose/buttons", test_buttons);
  g_test_add_func("/compose/list", test_list);
  g_test_add_func("/compose/askphone", test_askphone);
  g_test_add_func("/compose/payload-message", test_payload_message);
  g_test_add_func("/compose/group-address", test_group_address);
  return g_test_run();
}
