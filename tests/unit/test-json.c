/* test-json.c: the depth limit and the lenient typed getters. */
#include "wa-json.h"

static char *
nested(guint depth, char open, char close)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < depth; i++)
    g_string_append_c(s, open);
  for (guint i = 0; i < depth; i++)
    g_string_append_c(s, close);
  return g_string_free(s, FALSE);
}

static void
test_depth_limit(void)
{
  g_autofree char *ok = nested(WA_JSON_MAX_DEPTH, '[', ']');
  g_autofree char *deep = nested(WA_JSON_MAX_DEPTH + 1, '[', ']');
  g_autofree char *huge = nested(1000000, '{', '}');
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = wa_json_parse(ok, strlen(ok), &error);

  g_assert_no_error(error);
  g_assert_nonnull(node);
  g_assert_null(wa_json_parse(deep, strlen(deep), &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP);
  g_clear_error(&error);
  /* a million levels is refused before json-glib sees it (it would crash) */
  g_assert_null(wa_json_parse(huge, strlen(huge), &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP);
}

static void
test_depth_ignores_strings(void)
{
  g_autofree char *brackets = nested(200, '[', ']');
  g_autofree char *doc = g_strdup_printf("{\"a\":\"%s\\\"[[[\"}", brackets);

  g_assert_true(wa_json_check_depth(doc, strlen(doc), 2, NULL));
  g_assert_false(wa_json_check_depth("[[[\"x\"]]]", 9, 2, NULL));
}

/* Depth and acceptability are checked in one walk: a text that is both too
 * deep and not JSON is refused as too deep wherever each problem lies (the
 * receiver answers "too deep" on its own), and a text with an escape that is
 * not JSON still has its depth counted the way wa_json_check_depth() does,
 * the broken escape hiding the byte after its backslash. */
static void
test_depth_and_validity_in_one_walk(void)
{
  g_autofree char *deep = nested(WA_JSON_MAX_DEPTH + 1, '[', ']');
  g_autofree char *bad_then_deep = g_strconcat("{\"a\":\"\\q\"}", deep, NULL);
  g_autofree char *deep_then_bad = g_strconcat(deep, "/", NULL);
  /* the broken escape "\\q" hides nothing; "\\\"" hides a quote, so the
   * brackets after it are inside a string and do not count */
  g_autofree char *hidden = g_strconcat("[\"\\x\\\"", deep, "\"]", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_null(wa_json_parse(bad_then_deep, strlen(bad_then_deep), &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP);
  g_clear_error(&error);
  g_assert_null(wa_json_parse(deep_then_bad, strlen(deep_then_bad), &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP);
  g_clear_error(&error);
  g_assert_true(wa_json_check_depth(hidden, strlen(hidden), WA_JSON_MAX_DEPTH, NULL));
  g_assert_null(wa_json_parse(hidden, strlen(hidden), &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID);
}

static void
test_invalid(void)
{
  g_autoptr(GError) error = NULL;

  g_assert_null(wa_json_parse("{\"a\":", 5, &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_null(wa_json_parse_object("[1]", 3, &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_NOT_OBJECT);
  g_clear_error(&error);
  g_assert_null(wa_json_parse("", 0, &error));
  g_assert_nonnull(error);
}

/* What json-glib 1.6.6 mishandles is refused (found by fuzz/): a second
 * top-level value ("{}{}" parses, keeps the last object and leaks the first),
 * broken escapes ("\uzzzz" is taken as a character, "\304" gives a byte
 * that is not UTF-8), bytes JSON never has outside strings (comments,
 * identifiers, a backslash: '/"/"\udBu\u' leaks), and infinite numbers (its
 * generator writes "inf.0").
 * JSON's own escapes and pairs still parse. */
static void
test_not_json_refused(void)
{
  static const char *const refused[] = {
    "{}{}",
    "[][]",
    "{} []",
    "1 {}",
    "\"a\" []",
    "{\"a\":\"}\"}\n{\"b\":1}",
    "{\"object\":\"whatsapp_business_account\",\"entry\":[]}{\"object\":\"x\"}",
    "{\"a\":\"\\ud83d\\u\"}",
    "{\"a\":\"\\uzzzz\"}",
    "{\"a\":\"\\u12\"}",
    "\"\\uddu\\u",
    "{\"a\":1e400}",
    "{\"a\":[1.5,{\"b\":-1e999}]}",
    "/\"/\"\\udBu\\u",
    "{\"a\":1}\\u",
    "{a:1}",
    "[1,/* c */2]",
    "[1,// c\n2]",
    "[NaN]",
    "[Infinity]",
    "{\"a\":\"\\304\"}",
    "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\'\"}",
    "{\"a\":\"x\\",
  };
  static const char *const accepted[] = {
    " {\"a\":[{},[]]} \r\n",          "[\"{\", \"[\"]", "\t[]", "{\"a\":\"\\ud83d\\ude00 \\u00e4\\\\u \\\"\"}",
    "{\"a\":\"\\/\\b\\f\\n\\r\\t\"}",
  };
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
    g_assert_null(wa_json_parse(refused[i], strlen(refused[i]), &error));
    g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID);
    g_clear_error(&error);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(accepted); i++) {
    g_autoptr(JsonNode) node = wa_json_parse(accepted[i], strlen(accepted[i]), &error);

    g_assert_no_error(error);
    g_assert_nonnull(node);
  }
}

/* A surrogate escape not in a pair becomes U+FFFD (json-glib 1.6.6 makes
 * bytes that are not UTF-8 of it, and leaks on "\ud83d\u0041"); the rest of
 * the document is read as it is. */
static void
test_lone_surrogates_replaced(void)
{
  static const struct {
    const char *json, *value;
  } cases[] = {
    {"{\"a\":\"\\ud83d\\u0041\"}", "\xef\xbf\xbd"
                                   "A"},
    {"{\"a\":\"x\\ud83dx\"}", "x\xef\xbf\xbdx"},
    {"{\"a\":\"\\udc00\\ud83d\"}", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"{\"a\":\"\\ud83d\\ud83d\\ude00\"}", "\xef\xbf\xbd\xf0\x9f\x98\x80"},
    {"{\"a\":\"\\udbff\\udfff\\ud800\"}", "\xf4\x8f\xbf\xbf\xef\xbf\xbd"},
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = wa_json_parse(cases[i].json, strlen(cases[i].json), &error);

    g_assert_no_error(error);
    g_assert_cmpstr(wa_json_get_string(json_node_get_object(node), "a"), ==, cases[i].value);
  }
}

/* Doubles that json-glib 1.6.6 prints without a point are written as JSON
 * that parses back to the same numbers ("1e-300", not its "1e-300.0"; found
 * by fuzz/fuzz-rxline); strings that look like numbers are left alone. */
static void
test_doubles_written_back(void)
{
  const char *doc = "{\"a\":1e-300,\"b\":[1e20,-2E+30,1.5e20,52.52,0.0,-0.5,1e16],"
                    "\"s\":\"1e5.0 \\\"2e3.0\",\"1e2.0\":true}";
  g_autoptr(JsonNode) node = wa_json_parse(doc, strlen(doc), NULL);
  g_autofree char *json = NULL;
  g_autoptr(JsonNode) again = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull(node);
  json = wa_json_to_string(node);
  again = wa_json_parse(json, strlen(json), &error);
  g_assert_no_error(error);
  g_assert_true(json_node_equal(node, again));
  g_assert_nonnull(strstr(json, "\"a\":1e-300,"));
  g_assert_nonnull(strstr(json, "\"s\":\"1e5.0 \\\"2e3.0\""));
  g_assert_nonnull(strstr(json, "\"1e2.0\":true"));
}

static void
test_getters(void)
{
  const char *doc = "{\"s\":\"x\",\"ts\":\"1749416383\",\"n\":42,\"big\":1689556908129835,"
                    "\"d\":37.5,\"b\":true,\"o\":{\"k\":1},\"a\":[{\"z\":1},2],\"nul\":null,\"bad\":\"12x\"}";
  g_autoptr(JsonNode) root = wa_json_parse_object(doc, strlen(doc), NULL);
  JsonObject *obj = json_node_get_object(root);
  g_autofree char *big = wa_json_dup_id(obj, "big");
  g_autofree char *sid = wa_json_dup_id(obj, "s");

  g_assert_cmpstr(wa_json_get_string(obj, "s"), ==, "x");
  g_assert_null(wa_json_get_string(obj, "n"));
  g_assert_null(wa_json_get_string(obj, "missing"));
  g_assert_null(wa_json_get_string(NULL, "s"));
  g_assert_cmpint(wa_json_get_int(obj, "ts", -1), ==, 1749416383);
  g_assert_cmpint(wa_json_get_int(obj, "n", -1), ==, 42);
  g_assert_cmpint(wa_json_get_int(obj, "bad", -1), ==, -1);
  g_assert_cmpint(wa_json_get_int(obj, "nul", -7), ==, -7);
  g_assert_cmpint(wa_json_get_int(obj, "o", -7), ==, -7);
  g_assert_cmpstr(big, ==, "1689556908129835");
  g_assert_cmpstr(sid, ==, "x");
  g_assert_cmpfloat(wa_json_get_double(obj, "d", 0), ==, 37.5);
  g_assert_cmpfloat(wa_json_get_double(obj, "n", 0), ==, 42.0);
  g_assert_true(wa_json_get_bool(obj, "b", FALSE));
  g_assert_false(wa_json_get_bool(obj, "s", FALSE));
  g_assert_nonnull(wa_json_get_object(obj, "o"));
  g_assert_null(wa_json_get_object(obj, "a"));
  g_assert_nonnull(wa_json_array_get_object(wa_json_get_array(obj, "a"), 0));
  g_assert_null(wa_json_array_get_object(wa_json_get_array(obj, "a"), 1));
  g_assert_null(wa_json_array_get_object(wa_json_get_array(obj, "a"), 5));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/json/depth-limit", test_depth_limit);
  g_test_add_func("/json/depth-ignores-strings", test_depth_ignores_strings);
  g_test_add_func("/json/depth-and-validity-in-one-walk", test_depth_and_validity_in_one_walk);
  g_test_add_func("/json/invalid", test_invalid);
  g_test_add_func("/json/not-json-refused", test_not_json_refused);
  g_test_add_func("/json/lone-surrogates-replaced", test_lone_surrogates_replaced);
  g_test_add_func("/json/doubles-written-back", test_doubles_written_back);
  g_test_add_func("/json/getters", test_getters);
  return g_test_run();
}
