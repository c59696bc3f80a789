/* wa-compose.h: the agent's commands that send something other than plain
 * text (/reply, /react, /location, /buttons, /list, /askphone): parsing their
 * arguments and checking them against the Cloud API's limits
 * (docs/CLOUD-API.md, Sending: limits) before anything is queued, so a
 * message Meta would refuse is refused here with a clear reason.
 *
 * A composed message is the JSON of its type member (and context), stored in
 * the outbox as the entry's payload and completed by wa_message_payload_new()
 * (wa-graph.h) when it is sent, plus the line the conversation shows.
 * Must not: include libpurple, or send anything. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WA_COMPOSE_ERROR (wa_compose_error_quark())
GQuark wa_compose_error_quark(void);

typedef enum {
  WA_COMPOSE_ERROR_SYNTAX, /* the arguments do not have the command's form */
  WA_COMPOSE_ERROR_LIMIT,  /* a value is outside the API's limits */
} WaComposeError;

/* The Cloud API's limits, in characters (Unicode code points). */
#define WA_COMPOSE_BUTTONS_MAX 3
#define WA_COMPOSE_BUTTON_TITLE_MAX 20
#define WA_COMPOSE_BODY_MAX 1024
#define WA_COMPOSE_LIST_BODY_MAX 4096
#define WA_COMPOSE_LIST_BUTTON_MAX 20
#define WA_COMPOSE_LIST_ROWS_MAX 10
#define WA_COMPOSE_ROW_TITLE_MAX 24
#define WA_COMPOSE_ROW_DESCRIPTION_MAX 72
/* /reply N: how far back N may reach among the customer's messages */
#define WA_COMPOSE_REPLY_NTH_MAX 50
/* an emoji sequence (flags, families, skin tones) stays well inside this */
#define WA_COMPOSE_EMOJI_MAX_CODEPOINTS 16

typedef struct {
  char *type;    /* the message type: "text", "reaction", "location", "interactive" */
  char *payload; /* JSON object: {"type": T, T: {...}} and, for a reply, "context" */
  char *line;    /* what the agent's conversation (and the stored history) shows */
} WaComposed;

void wa_composed_free(WaComposed *composed);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaComposed, wa_composed_free)

/* A wamid as the API gives it: "wamid." then 1 to 250 base64 characters. */
gboolean wa_compose_wamid_is_valid(const char *wamid);

/* "[N] TEXT": @nth is N (1 = the last inbound message, the default), @text
 * the rest (new string). */
gboolean wa_compose_reply_parse(const char *args, guint *nth, char **text, GError **error);
/* A text in reply to @wamid; the line quotes @quote (may be NULL). */
WaComposed *wa_compose_reply(const char *text, const char *wamid, const char *quote, GError **error);

/* TRUE when @emoji is one emoji: a pictographic character with its variation
 * selector, skin tone, keycap or tags, joined sequences (ZWJ), or a flag. */
gboolean wa_compose_emoji_is_valid(const char *emoji);
/* A reaction with @emoji ("" or NULL removes ours) to @wamid; @quote (may be
 * NULL) is the reacted-to message, for the line. */
WaComposed *wa_compose_reaction(const char *emoji, const char *wamid, const char *quote, GError **error);

/* "LAT LON [NAME]" (a comma after LAT is allowed). */
WaComposed *wa_compose_location(const char *args, GError **error);

/* "BODY | B1 | B2 [| B3]": reply buttons. */
WaComposed *wa_compose_buttons(const char *args, GError **error);

/* "BUTTON | BODY | ROW[; ROW...]", each ROW "Title" or "Title - description". */
WaComposed *wa_compose_list(const char *args, GError **error);

/* The request_contact_info message with @body (NULL or empty: a default). */
WaComposed *wa_compose_askphone(const char *body, GError **error);

/* A short one-line quote of @text (at most @max characters, "…" when cut). */
char *wa_compose_quote(const char *text, guint max);

G_END_DECLS
