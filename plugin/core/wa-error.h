/* wa-error.h: the Graph API error, parsed from either form it takes.
 *
 * Synchronous errors come as {"error":{message,type,code,error_subcode,
 * error_data:{details},fbtrace_id,is_transient}} in an HTTP reply; asynchronous
 * ones as {code,title,message,error_data:{details},href} inside webhooks. Both
 * become one WaGraphError with a classification that decides what the plugin
 * does (docs/CLOUD-API.md, Errors): dispatch on the code, never on the HTTP status
 * or the message text. No libpurple here; user-facing text is marked for
 * translation with our own gettext domain. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef enum {
  WA_ERROR_CLASS_NETWORK,       /* no answer from the API (connect, DNS, TLS, timeout, reset), or a
                                 * refusal from something in front of it (a 401, 403 or 407 without
                                 * the API's error: http_status set, reached FALSE) */
  WA_ERROR_CLASS_RETRYABLE,     /* transient server trouble: retry with backoff */
  WA_ERROR_CLASS_RATE_LIMITED,  /* throughput, pair or app rate limit: retry later */
  WA_ERROR_CLASS_WINDOW_CLOSED, /* 24-hour window closed: a template is needed */
  WA_ERROR_CLASS_AUTH,          /* token refused or expired */
  WA_ERROR_CLASS_PERMISSION,    /* token lacks a permission */
  WA_ERROR_CLASS_NOT_FOUND,     /* object does not exist or is not visible */
  WA_ERROR_CLASS_PERMANENT,     /* anything else: fix the request, do not retry */
} WaErrorClass;

typedef struct {
  int http_status; /* 0 for webhook errors and network failures */
  gint64 code;     /* Graph error code; 0 when none was given */
  gint64 subcode;  /* error_subcode; 0 when absent */
  char *type;      /* "OAuthException", ... or NULL */
  char *message;   /* the API's message, or the network failure text */
  char *title;     /* webhook errors only */
  char *details;   /* error_data.details */
  char *fbtrace_id;
  gboolean is_transient;
  gboolean reached; /* FALSE when the request provably never reached the API */
  WaErrorClass klass;
} WaGraphError;

#define WA_GRAPH_ERROR (wa_graph_error_quark())
GQuark wa_graph_error_quark(void);

WaGraphError *wa_graph_error_new(void);
void wa_graph_error_free(WaGraphError *error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaGraphError, wa_graph_error_free)

/* Classifies by code (and subcode), falling back to the HTTP status when the
 * body had no Graph envelope. */
WaErrorClass wa_error_classify(gint64 code, gint64 subcode, int http_status, gboolean is_transient);
const char *wa_error_class_name(WaErrorClass klass);

/* Parses a reply body with HTTP status @http_status. Returns NULL when the
 * status is 2xx and the body holds no "error" object, or holds a message id
 * (messages[0].id) next to one; otherwise an error (a non-JSON body, such as
 * an HTML error page, still yields one). */
WaGraphError *wa_graph_error_from_reply(int http_status, const char *body, gsize len);
/* Parses a webhook error object ({code,title,message,error_data}). */
WaGraphError *wa_graph_error_from_webhook(JsonObject *obj);
/* A failure that produced no HTTP answer. */
WaGraphError *wa_graph_error_new_network(const char *message, gboolean reached);

/* A plain-language reason for the agent, with what to do. Newly allocated. */
char *wa_graph_error_describe(const WaGraphError *error);
/* The plain-language reason and advice for a Graph error code, or NULL when the
 * code is not one we explain. Static strings (translated). */
const char *wa_error_code_reason(gint64 code);
const char *wa_error_code_advice(gint64 code);

/* A GError in domain WA_GRAPH_ERROR, code = the class, message = describe(). */
GError *wa_graph_error_to_gerror(const WaGraphError *error);

G_END_DECLS
