/* wa-rxline.c: framing for the plugin <-> receiver line protocol.
 *
 * Only splits, formats and parses lines; the meaning of verbs lives with the
 * receiver (plugin/receiver) and the plugin (plugin/purple). Must not touch
 * sockets or grow a buffer past WA_RXLINE_MAX. */
#include "wa-rxline.h"

#include <string.h>

#include "wa-json.h"

G_DEFINE_QUARK(wa - rxline - error - quark, wa_rxline_error)

struct _WaRxlineBuf {
  GByteArray *data;
  gsize start;   /* first byte not yet returned as a line */
  gsize scanned; /* bytes from start known to hold no '\n' */
  gsize tail;    /* bytes after the last '\n' received */
};

char *
wa_rxline_format(const char *verb, JsonObject *payload)
{
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *json = NULL;

  if (payload == NULL)
    return g_strconcat(verb, "\n", NULL);
  node = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(node, payload);
  json = wa_json_to_string(node);
  return g_strconcat(verb, " ", json, "\n", NULL);
}

static gboolean
verb_valid(const char *line, gsize len)
{
  if (len == 0 || len > WA_RXLINE_VERB_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++) {
    if (line[i] < 'A' || line[i] > 'Z')
      return FALSE;
  }
  return TRUE;
}

gboolean
wa_rxline_parse(const char *line, gsize len, char **verb, JsonNode **payload, GError **error)
{
  const char *space = memchr(line, ' ', len);
  gsize verb_len = space != NULL ? (gsize) (space - line) : len;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) local = NULL;

  *verb = NULL;
  *payload = NULL;
  if (len >= WA_RXLINE_MAX) {
    g_set_error(error, WA_RXLINE_ERROR, WA_RXLINE_ERROR_TOO_LONG,
                "line of %" G_GSIZE_FORMAT " bytes is longer than the limit", len);
    return FALSE;
  }
  if (!verb_valid(line, verb_len) || line[len - 1] == '\r') {
    g_set_error_literal(error, WA_RXLINE_ERROR, WA_RXLINE_ERROR_SYNTAX,
                        "a line is a verb of capital letters, then optionally a space and a JSON "
                        "object, ended by a lone newline");
    return FALSE;
  }
  if (space != NULL) {
    node = wa_json_parse_object(space + 1, len - verb_len - 1, &local);
    if (node == NULL) {
      g_set_error(error, WA_RXLINE_ERROR, WA_RXLINE_ERROR_SYNTAX, "payload of %.*s: %s", (int) verb_len, line,
                  local->message);
      return FALSE;
    }
  }
  *verb = g_strndup(line, verb_len);
  *payload = g_steal_pointer(&node);
  return TRUE;
}

WaRxlineBuf *
wa_rxline_buf_new(void)
{
  WaRxlineBuf *buf = g_new0(WaRxlineBuf, 1);

  buf->data = g_byte_array_new();
  return buf;
}

void
wa_rxline_buf_free(WaRxlineBuf *buf)
{
  if (buf == NULL)
    return;
  g_byte_array_unref(buf->data);
  g_free(buf);
}

gboolean
wa_rxline_buf_append(WaRxlineBuf *buf, const void *data, gsize len, GError **error)
{
  const guint8 *nl;

  /* drop the lines already returned before growing */
  if (buf->start > 0) {
    g_byte_array_remove_range(buf->data, 0, (guint) buf->start);
    buf->start = 0;
  }
  /* the unterminated tail is what may not exceed the limit */
  nl = memrchr(data, '\n', len);
  buf->tail = nl != NULL ? len - (gsize) (nl - (const guint8 *) data) - 1 : buf->tail + len;
  if (buf->tail >= WA_RXLINE_MAX) {
    g_set_error(error, WA_RXLINE_ERROR, WA_RXLINE_ERROR_TOO_LONG, "peer sent more than %u bytes without a line end",
                WA_RXLINE_MAX);
    return FALSE;
  }
  g_byte_array_append(buf->data, data, (guint) len);
  return TRUE;
}

char *
wa_rxline_buf_pop(WaRxlineBuf *buf, gsize *len)
{
  const guint8 *from = buf->data->data + buf->start;
  gsize avail = buf->data->len - buf->start;
  const guint8 *nl;
  gsize line_len;
  char *line;

  if (avail <= buf->scanned)
    return NULL;
  nl = memchr(from + buf->scanned, '\n', avail - buf->scanned);
  if (nl == NULL) {
    buf->scanned = avail;
    return NULL;
  }
  line_len = (gsize) (nl - from);
  line = g_malloc(line_len + 1);
  memcpy(line, from, line_len);
  line[line_len] = '\0';
  if (len != NULL)
    *len = line_len;
  buf->start += line_len + 1;
  buf->scanned = 0;
  return line;
}
