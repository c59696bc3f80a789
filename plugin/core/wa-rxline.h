/* wa-rxline.h: the line protocol between the plugin and wabiz-receiver.
 *
 * One message per line: a verb of capital letters, optionally followed by one
 * space and a compact JSON object, ended by '\n'. plugin/receiver/PROTOCOL.md
 * lists the verbs. This file only frames and unframes lines; it never decides
 * what a verb means, and never touches a socket.
 *
 * Must not: include libpurple or libsoup, block, or accept a line longer than
 * WA_RXLINE_MAX (the buffer reports an error instead of growing without end). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define WA_RXLINE_PROTO 1
/* Longest line either side accepts, '\n' included: a 3 MiB webhook change,
 * sealed and base64-encoded, fits with room to spare. */
#define WA_RXLINE_MAX (8u * 1024u * 1024u)
#define WA_RXLINE_VERB_MAX 16

#define WA_RXLINE_ERROR (wa_rxline_error_quark())
GQuark wa_rxline_error_quark(void);

typedef enum {
  WA_RXLINE_ERROR_TOO_LONG, /* a line (or an unterminated tail) exceeds WA_RXLINE_MAX */
  WA_RXLINE_ERROR_SYNTAX,   /* bad verb, missing space, or a payload that is not a JSON object */
} WaRxlineError;

/* Formats "VERB\n" (@payload NULL) or "VERB {json}\n". Newly allocated; the
 * JSON is compact, so it never contains a raw newline. */
char *wa_rxline_format(const char *verb, JsonObject *payload);

/* Parses one line of @len bytes (without its '\n'; a trailing '\r' is an
 * error). On success *@verb is a new string and *@payload a new object node
 * (NULL when the line had no payload); on failure both are NULL and @error is
 * set in WA_RXLINE_ERROR. The payload is depth-limited like every JSON input. */
gboolean wa_rxline_parse(const char *line, gsize len, char **verb, JsonNode **payload, GError **error);

/* Splits a byte stream into lines. */
typedef struct _WaRxlineBuf WaRxlineBuf;

WaRxlineBuf *wa_rxline_buf_new(void);
void wa_rxline_buf_free(WaRxlineBuf *buf);
/* Appends received bytes. FALSE with @error (TOO_LONG) when the pending
 * unterminated data already exceeds WA_RXLINE_MAX: the peer must be dropped. */
gboolean wa_rxline_buf_append(WaRxlineBuf *buf, const void *data, gsize len, GError **error);
/* The next complete line without its '\n', newly allocated (its length in
 * *@len when non-NULL), or NULL when no complete line is buffered. */
char *wa_rxline_buf_pop(WaRxlineBuf *buf, gsize *len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaRxlineBuf, wa_rxline_buf_free)

G_END_DECLS
