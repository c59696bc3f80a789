/* wa-template.h: message templates. The catalogue's objects as the Graph
 * API gives them (GET /{waba-id}/message_templates, kept as given), their
 * placeholders as one ordered list of slots, the agent's /template arguments,
 * the checks Meta would make (so a send Meta would refuse is refused here,
 * with the template's placeholders shown), the text the conversation shows
 * and the outbox payload (completed by wa_message_payload_new(), wa-graph.h).
 * Must not: include libpurple, or send or store anything. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define WA_TEMPLATE_ERROR (wa_template_error_quark())
GQuark wa_template_error_quark(void);

typedef enum {
  WA_TEMPLATE_ERROR_INVALID,      /* not a template object */
  WA_TEMPLATE_ERROR_SYNTAX,       /* the arguments do not have the command's form */
  WA_TEMPLATE_ERROR_UNKNOWN,      /* no such template (or language) */
  WA_TEMPLATE_ERROR_NOT_SENDABLE, /* its status does not allow sending */
  WA_TEMPLATE_ERROR_PARAMETERS,   /* missing, extra or too long values */
} WaTemplateError;

/* Meta's limits (characters): a header text parameter, a parameter when
 * the template has more than a body, when it has only a body; a coupon. */
#define WA_TEMPLATE_HEADER_PARAM_MAX 60
#define WA_TEMPLATE_PARAM_MAX 1024
#define WA_TEMPLATE_BODY_ONLY_PARAM_MAX 32768
#define WA_TEMPLATE_COUPON_MAX 15
#define WA_TEMPLATE_BUTTON_PARAM_MAX 2000

typedef enum {
  WA_TEMPLATE_SLOT_HEADER_TEXT,     /* a header {{1}} / {{name}} */
  WA_TEMPLATE_SLOT_HEADER_MEDIA,    /* an image, video or document: a local file, a media id or an https link */
  WA_TEMPLATE_SLOT_HEADER_LOCATION, /* "LAT,LON[,NAME[,ADDRESS]]" */
  WA_TEMPLATE_SLOT_BODY,            /* a body {{1}} / {{name}} */
  WA_TEMPLATE_SLOT_BUTTON_URL,      /* the {{1}} suffix of a URL button */
  WA_TEMPLATE_SLOT_BUTTON_PAYLOAD,  /* a quick reply's payload (optional) */
  WA_TEMPLATE_SLOT_COUPON,          /* a copy-code button's code */
  WA_TEMPLATE_SLOT_OFFER_EXPIRY,    /* a limited-time offer's end: milliseconds or an ISO 8601 time */
} WaTemplateSlotKind;

typedef struct {
  WaTemplateSlotKind kind;
  char *key;     /* what the agent types before "=": "1", "first_name", "header", "button2", "code",
                  * "expires", "card1.header", "card1.1", "card1.button1" */
  char *param;   /* the placeholder's own name ("1", "first_name"); NULL for media, buttons */
  char *format;  /* media: "IMAGE", "VIDEO", "DOCUMENT" */
  char *example; /* the template's example value, or NULL */
  int card;      /* carousel card (0-based), -1 outside a carousel */
  int button;    /* button index (0-based) for button slots */
  guint max;     /* longest value, characters; 0: no limit here */
  gboolean optional;
  gboolean positional; /* filled by the "|" list in order (text placeholders of header and body) */
} WaTemplateSlot;

typedef struct {
  char *type; /* QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, FLOW... */
  char *text;
  char *url;
  char *phone_number;
} WaTemplateButton;

typedef struct {
  char *header_format; /* NULL, TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION */
  char *header_text;
  char *body;
  GPtrArray *buttons; /* WaTemplateButton* */
} WaTemplateCard;

typedef struct {
  char *id;
  char *name;
  char *language;
  char *category; /* MARKETING, UTILITY, AUTHENTICATION (as given) */
  char *status;   /* as given: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ... */
  char *quality;  /* GREEN, YELLOW, RED, UNKNOWN or NULL */
  char *rejected_reason;
  gboolean named; /* parameter_format NAMED */
  WaTemplateCard main;
  char *footer;
  GPtrArray *cards; /* WaTemplateCard*: a carousel's */
  char *offer_text; /* a limited-time offer's text, or NULL */
  gboolean offer_expires;
  GPtrArray *slots; /* WaTemplateSlot*, in the order they are shown */
  char *json;       /* the object as given (what the store keeps) */
} WaTemplate;

void wa_template_free(WaTemplate *tpl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaTemplate, wa_template_free)

/* A template object of the catalogue; NULL with @error when it is not one
 * (no name, language or status). */
WaTemplate *wa_template_from_object(JsonObject *obj, GError **error);
WaTemplate *wa_template_from_json(const char *json, GError **error);

/* One page of GET /{waba-id}/message_templates: the templates appended to
 * @into (objects that are not templates skipped), the cursor of the next
 * page in @after (NULL when this is the last: no paging.next). */
gboolean wa_template_page_parse(JsonObject *reply, GPtrArray *into, char **after, GError **error);

/* TRUE when Meta accepts sends of @tpl (APPROVED); otherwise @why (may be
 * NULL) gets a sentence saying why, from its status. */
gboolean wa_template_sendable(const WaTemplate *tpl, char **why);

/* "{{1}} {{2}}" or "{{first_name}}, header (IMAGE), button1, code": the
 * slots as the agent types them (new string). */
char *wa_template_describe_slots(const WaTemplate *tpl);

/* The /template arguments: NAME [LANG] V | V | key=value | ... ("\|" is a
 * literal bar). LANG is taken when the second word is a language @catalogue
 * (WaTemplate*, may be NULL) has for NAME. */
typedef struct {
  char *name;
  char *language;        /* NULL when not given */
  GPtrArray *positional; /* char* */
  GPtrArray *keys;       /* char*: the named values' keys, with values[i] */
  GPtrArray *values;
} WaTemplateArgs;

void wa_template_args_free(WaTemplateArgs *args);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaTemplateArgs, wa_template_args_free)
WaTemplateArgs *wa_template_args_parse(const char *text, GPtrArray *catalogue, GError **error);

/* The template to send: @name in @language, or else the only approved
 * language, or else @default_language. Unknown names and languages, and
 * templates that are not sendable, are refused with the reason. */
WaTemplate *wa_template_pick(GPtrArray *catalogue, const char *name, const char *language, const char *default_language,
                             GError **error);

/* The values of @tpl's slots from @args (one per slot, NULL where an
 * optional one is not given): missing, extra and too long values are
 * refused, the error listing the placeholders. */
GPtrArray *wa_template_fill(const WaTemplate *tpl, const WaTemplateArgs *args, GError **error);

/* What the conversation shows: "[Template name, CATEGORY]" then header,
 * body, footer and buttons with @values put in. */
char *wa_template_render(const WaTemplate *tpl, GPtrArray *values);

/* The outbox payload {"type":"template","template":{...}}; header media
 * values must be a media id or an https link by then (a local file is
 * uploaded first). @marketing_endpoint marks it for POST
 * /{phone-number-id}/marketing_messages. @now_ms is the wall clock (Unix
 * milliseconds): a limited-time offer must end after it. NULL with @error
 * when a value does not read (a location, an expiry) or an offer has ended. */
char *wa_template_payload(const WaTemplate *tpl, GPtrArray *values, gboolean marketing_endpoint, gint64 now_ms,
                          GError **error);

/* TRUE for a header media value that is a local file (not a media id or
 * a link). */
gboolean wa_template_media_is_file(const char *value);

/* The x-business-use-case-usage header of a management call: how long to
 * wait (seconds) before the next one. 0 while well under the limits; the
 * estimated time to regain access when given; an hour at 100 %; ten
 * minutes from 90 %. */
gint64 wa_template_usage_backoff(const char *header);

G_END_DECLS
