/* test-rxline.c: framing of the plugin <-> receiver line protocol: lines split
 * at any chunk boundary, verbs and payloads parsed strictly, length limits. */
#include "wa-rxline.h"

#include <string.h>

#include "wa-json.h"

static void
test_format_parse_round_trip(void)
{
  g_autoptr(JsonObject) obj = json_object_new();
  g_autofree char *line = NULL;
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(GError) error = NULL;

  json_object_set_string_member(obj, "account", "106540352242922");
  json_object_set_string_member(obj, "text", "two\nlines and \"quotes\"");
  json_object_set_int_member(obj, "seq", 41);
  line = wa_rxline_format("EVENT", obj);
  g_assert_true(g_str_has_prefix(line, "EVENT {"));
  g_assert_true(g_str_has_suffix(line, "}\n"));
  /* exactly one newline: the terminator */
  g_assert_true(strchr(line, '\n') == line + strlen(line) - 1);

  g_assert_true(wa_rxline_parse(line, strlen(line) - 1, &verb, &payload, &error));
  g_assert_no_error(error);
  g_assert_cmpstr(verb, ==, "EVENT");
  g_assert_nonnull(payload);
  g_assert_cmpstr(wa_json_get_string(json_node_get_object(payload), "text"), ==, "two\nlines and \"quotes\"");
  g_assert_cmpint(wa_json_get_int(json_node_get_object(payload), "seq", 0), ==, 41);
}

static void
test_verb_only(void)
{
  g_autofree char *line = wa_rxline_format("STATUS", NULL);
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) payload = NULL;

  g_assert_cmpstr(line, ==, "STATUS\n");
  g_assert_true(wa_rxline_parse("STATUS", 6, &verb, &payload, NULL));
  g_assert_cmpstr(verb, ==, "STATUS");
  g_assert_null(payload);
}

static void
assert_syntax_error(const char *line)
{
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false(wa_rxline_parse(line, strlen(line), &verb, &payload, &error));
  g_assert_error(error, WA_RXLINE_ERROR, WA_RXLINE_ERROR_SYNTAX);
  g_assert_null(verb);
  g_assert_null(payload);
}

static void
test_syntax_errors(void)
{
  assert_syntax_error("");
  assert_syntax_error("hello {}");
  assert_syntax_error("HELLO{}");
  assert_syntax_error("HELLO ");
  assert_syntax_error("HELLO [1,2]");
  assert_syntax_error("HELLO \"x\"");
  assert_syntax_error("HELLO {\"a\":");
  assert_syntax_error("HELLO {}\r");
  assert_syntax_error("ABCDEFGHIJKLMNOPQ {}");
  /* nesting past the JSON depth limit is refused, not parsed */
  {
    GString *deep = g_string_new("EVENT {\"a\":");
    for (int i = 0; i < 100000; i++)
      g_string_append_c(deep, '[');
    assert_syntax_error(deep->str);
    g_string_free(deep, TRUE);
  }
}

static void
test_embedded_nul(void)
{
  const char line[] = "HELLO {\"a\":\"b\0c\"}";
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false(wa_rxline_parse(line, sizeof line - 1, &verb, &payload, &error));
  g_assert_nonnull(error);
}

/* Every way of cutting a stream of three lines into two chunks yields the same lines. */
static void
test_buffer_split_anywhere(void)
{
  const char *stream = "HELLO {\"proto\":1}\nSTATUS\nACK {\"seq\":7}\n";
  gsize total = strlen(stream);

  for (gsize cut = 0; cut <= total; cut++) {
    g_autoptr(WaRxlineBuf) buf = wa_rxline_buf_new();
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    char *line;
    gsize len = 0;

    g_assert_true(wa_rxline_buf_append(buf, stream, cut, NULL));
    while ((line = wa_rxline_buf_pop(buf, &len)) != NULL) {
      g_assert_cmpuint(len, ==, strlen(line));
      g_ptr_array_add(lines, line);
    }
    g_assert_true(wa_rxline_buf_append(buf, stream + cut, total - cut, NULL));
    while ((line = wa_rxline_buf_pop(buf, NULL)) != NULL)
      g_ptr_array_add(lines, line);
    g_assert_cmpuint(lines->len, ==, 3);
    g_assert_cmpstr(lines->pdata[0], ==, "HELLO {\"proto\":1}");
    g_assert_cmpstr(lines->pdata[1], ==, "STATUS");
    g_assert_cmpstr(lines->pdata[2], ==, "ACK {\"seq\":7}");
    g_ptr_array_unref(lines);
  }
}

static void
test_buffer_binary_safe_and_empty_lines(void)
{
  g_autoptr(WaRxlineBuf) buf = wa_rxline_buf_new();
  const char data[] = "A\0B\n\nC";
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  gsize len = 99;

  g_assert_true(wa_rxline_buf_append(buf, data, sizeof data - 1, NULL));
  first = wa_rxline_buf_pop(buf, &len);
  g_assert_cmpuint(len, ==, 3);
  g_assert_cmpmem(first, 3, "A\0B", 3);
  second = wa_rxline_buf_pop(buf, &len);
  g_assert_cmpstr(second, ==, "");
  g_assert_cmpuint(len, ==, 0);
  g_assert_null(wa_rxline_buf_pop(buf, &len));
}

static void
test_buffer_limit(void)
{
  g_autoptr(WaRxlineBuf) buf = wa_rxline_buf_new();
  g_autoptr(GError) error = NULL;
  gsize chunk = 1024 * 1024;
  g_autofree char *data = g_malloc(chunk);
  gboolean ok = TRUE;
  guint i;

  memset(data, 'x', chunk);
  /* a complete line just under the limit is fine */
  for (i = 0; i < WA_RXLINE_MAX / chunk - 1; i++)
    g_assert_true(wa_rxline_buf_append(buf, data, chunk, NULL));
  g_assert_true(wa_rxline_buf_append(buf, data, chunk - 2, NULL));
  g_assert_true(wa_rxline_buf_append(buf, "\n", 1, NULL));
  {
    gsize len = 0;
    g_autofree char *line = wa_rxline_buf_pop(buf, &len);
    g_assert_nonnull(line);
    g_assert_cmpuint(len, ==, WA_RXLINE_MAX - 2);
  }
  /* an unterminated tail reaching the limit is refused */
  for (i = 0; ok && i <= WA_RXLINE_MAX / chunk; i++)
    ok = wa_rxline_buf_append(buf, data, chunk, &error);
  g_assert_false(ok);
  g_assert_error(error, WA_RXLINE_ERROR, WA_RXLINE_ERROR_TOO_LONG);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/rxline/round-trip", test_format_parse_round_trip);
  g_test_add_func("/rxline/verb-only", test_verb_only);
  g_test_add_func("/rxline/syntax-errors", test_syntax_errors);
  g_test_add_func("/rxline/embedded-nul", test_embedded_nul);
  g_test_add_func("/rxline/buffer-split-anywhere", test_buffer_split_anywhere);
  g_test_add_func("/rxline/buffer-binary-safe", test_buffer_binary_safe_and_empty_lines);
  g_test_add_func("/rxline/buffer-limit", test_buffer_limit);
  return g_test_run();
}
