/* wa-http.h: asynchronous HTTP for plugin/core: a libcurl multi handle driven by
 * an injected WaLoop.
 *
 * One WaHttp per account: connections are reused (and multiplexed over HTTP/2
 * when the server offers it). Redirects are never followed and only http and
 * https are allowed. Callers decide which URLs may carry a token; this layer
 * sends exactly the headers it is given. Requests to this computer (a
 * loopback host) never go through a proxy, configured or from the
 * environment: a proxy cannot reach our loopback anyway, and a token sent
 * over plain http to it would be readable there. Never blocks. */
#pragma once

#include <glib.h>

#include "wa-loop.h"

G_BEGIN_DECLS

typedef struct _WaHttp WaHttp;
typedef struct _WaHttpCall WaHttpCall;

/* One part of a multipart/form-data body: a text field (@value), a file
 * streamed from disk (@path; never read into memory whole) or bytes in
 * memory (@data, copied). */
typedef struct {
  const char *name;
  const char *value; /* a text field, or NULL */
  const char *path;  /* a file, or NULL */
  const void *data;  /* or the file's bytes, or NULL */
  gsize data_len;
  const char *filename; /* the file name sent with @path or @data */
  const char *type;     /* the Content-Type of that part */
} WaHttpFormPart;

/* Upload progress: @sent of @total bytes of the request body. Must not
 * cancel the call. */
typedef void (*WaHttpProgress)(guint64 sent, guint64 total, gpointer data);

typedef struct {
  const char *method; /* "GET", "POST", "DELETE" */
  const char *url;
  const char *content_type; /* with a body */
  const char *body;         /* copied; may be NULL */
  gsize body_len;
  const char *bearer;         /* sent as "Authorization: Bearer ..." when not NULL */
  const WaHttpFormPart *form; /* instead of @body: a multipart/form-data POST of @n_form parts */
  guint n_form;
  WaHttpProgress progress; /* may be NULL */
  gpointer progress_data;
  /* a long transfer (an upload): no total timeout, but it fails when no byte
   * moves for the total timeout */
  gboolean long_transfer;
  /* Streaming (downloads): the body of a 2xx answer goes to @sink piece by
   * piece as it arrives, instead of into the response (max_body does not
   * apply: the sink keeps count); a sink that returns FALSE aborts the call
   * (not completed, error "stopped by the receiver"). Other answers (errors)
   * are kept in the response as usual. */
  gboolean (*sink)(const guint8 *data, gsize len, gpointer sink_data);
  gpointer sink_data;
  guint total_ms; /* > 0: this call's total timeout instead of the default */
  guint stall_s;  /* > 0: give up when under 1 KiB/s arrives for this long (a stalled download) */
} WaHttpRequest;

typedef struct {
  gboolean completed;  /* an HTTP answer arrived (any status) */
  gboolean reached;    /* FALSE when the request provably never left this machine */
  long status;         /* HTTP status; 0 without an answer */
  GBytes *body;        /* never NULL */
  GHashTable *headers; /* lower-case name -> value of the final answer */
  char *error;         /* transport failure text when !completed */
  int curl_code;       /* CURLcode */
} WaHttpResponse;

/* Called once per call unless the call was cancelled. The response belongs to
 * the caller of the callback and is freed after it returns. */
typedef void (*WaHttpCallback)(WaHttpResponse *response, gpointer data);

/* @user_agent is required (media downloads fail without one). */
WaHttp *wa_http_new(WaLoop *loop, const char *user_agent);
/* Cancels every call in flight without calling their callbacks. Safe to call
 * from inside a callback. */
void wa_http_free(WaHttp *http);

/* @proxy: a libcurl proxy URL ("socks5h://host:1080", "http://host:3128"), ""
 * for no proxy at all, or NULL to follow the environment. */
void wa_http_set_proxy(WaHttp *http, const char *proxy, const char *username, const char *password);
/* Connect and total timeouts in milliseconds (defaults 15 s and 60 s). */
void wa_http_set_timeouts(WaHttp *http, guint connect_ms, guint total_ms);
/* Largest response body accepted (default 16 MiB); larger answers fail. */
void wa_http_set_max_body(WaHttp *http, gsize max_body);

/* Starts a request. Returns a handle valid until the callback has returned or
 * wa_http_cancel() was called. A GET or an upload (@form) that fails on a
 * kept-alive connection the server had closed, before any answer, is sent
 * once more on a new connection (both are safe to send twice); other
 * requests are never sent again here. */
WaHttpCall *wa_http_start(WaHttp *http, const WaHttpRequest *request, WaHttpCallback callback, gpointer data);
/* The callback will not be called. */
void wa_http_cancel(WaHttpCall *call);
/* Number of calls in flight. */
guint wa_http_pending(WaHttp *http);

/* Debug output: WABIZ_DEBUG_HTTP=1 logs method, scheme, host, path and status
 * (never query strings, tokens or bodies) through this function; the plugin
 * routes it to purple_debug. Default: g_debug. */
typedef void (*WaLogFunc)(const char *message);
void wa_http_set_log_func(WaLogFunc func);

/* TRUE for "localhost" and loopback addresses (127.0.0.0/8, ::1). */
gboolean wa_http_host_is_loopback(const char *host);

/* The URL without userinfo, query or fragment, for log lines. */
char *wa_http_redact_url(const char *url);

G_END_DECLS
