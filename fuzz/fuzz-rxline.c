/* fuzz-rxline.c: libFuzzer target for the plugin <-> receiver line protocol
 * (plugin/core/wa-rxline.h): framing and parsing.
 *
 * Input: the bytes a peer sends. They go into a WaRxlineBuf in chunks whose
 * sizes follow from the first byte (as a socket might split them); the lines
 * that come out must be exactly the input's lines. Each line is parsed; a
 * line that parses is formatted again and must parse to the same verb and
 * payload, on one line. The whole input is parsed as one line too.
 * Must not: print the input. */
#include "fuzz-common.h"

#include "wa-rxline.h"

static void
check_line(const char *line, gsize len)
{
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;
  g_autofree char *verb2 = NULL;
  g_autoptr(JsonNode) payload2 = NULL;
  gsize flen;

  if (!wa_rxline_parse(line, len, &verb, &payload, &error)) {
    fuzz_check(verb == NULL && payload == NULL && error != NULL && error->domain == WA_RXLINE_ERROR);
    return;
  }
  fuzz_check(error == NULL && verb != NULL);
  fuzz_check(*verb != '\0' && strlen(verb) <= WA_RXLINE_VERB_MAX);
  for (const char *p = verb; *p != '\0'; p++)
    fuzz_check(*p >= 'A' && *p <= 'Z');
  fuzz_check(payload == NULL || JSON_NODE_HOLDS_OBJECT(payload));

  formatted = wa_rxline_format(verb, payload != NULL ? json_node_get_object(payload) : NULL);
  flen = strlen(formatted);
  fuzz_check(flen > 0 && formatted[flen - 1] == '\n' && memchr(formatted, '\n', flen - 1) == NULL);
  fuzz_check(wa_rxline_parse(formatted, flen - 1, &verb2, &payload2, NULL));
  fuzz_check(g_str_equal(verb, verb2));
  fuzz_check((payload == NULL) == (payload2 == NULL));
  if (payload != NULL)
    fuzz_check(json_node_equal(payload, payload2));
}

FUZZ_DEFAULT_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(WaRxlineBuf) buf = wa_rxline_buf_new();
  const uint8_t *last_nl = size > 0 ? memrchr(data, '\n', size) : NULL;
  size_t framed = last_nl != NULL ? (size_t) (last_nl - data) + 1 : 0;
  size_t step = size > 0 ? (size_t) data[0] % 17 + 1 : 1;
  size_t at = 0, seen = 0;
  char *line;
  gsize len;

  /* framing: lines out = lines in, whatever the chunks */
  while (at < size) {
    size_t n = MIN(step, size - at);

    fuzz_check(wa_rxline_buf_append(buf, data + at, n, NULL));
    at += n;
    step = step * 3 % 29 + 1;
    while ((line = wa_rxline_buf_pop(buf, &len)) != NULL) {
      fuzz_check(seen + len < framed && data[seen + len] == '\n');
      fuzz_check(memcmp(line, data + seen, len) == 0 && line[len] == '\0');
      seen += len + 1;
      check_line(line, len);
      g_free(line);
    }
  }
  fuzz_check(seen == framed);

  /* the whole input as one line, '\n' and '\r' anywhere */
  check_line((const char *) data, size);
  return 0;
}
