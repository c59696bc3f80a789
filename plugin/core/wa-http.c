/* wa-http.c: libcurl multi interface on a WaLoop (socket and timer callbacks).
 *
 * Rules (docs/ARCHITECTURE.md, Rules: libcurl): one timer at a time, -1
 * removes it, 0 schedules it on the loop (never call curl_multi_socket_action
 * from inside the callback); drain curl_multi_info_read after every action; a
 * watch's condition is changed by removing and re-adding it. */
#include "wa-http.h"

#include <curl/curl.h>
#include <gio/gio.h>
#include <string.h>

#include "wa-i18n.h"

#define DEFAULT_MAX_BODY (16 * 1024 * 1024)

struct _WaHttp {
  WaLoop *loop;
  CURLM *multi;
  char *user_agent;
  char *proxy;
  char *proxy_user;
  char *proxy_pass;
  gboolean proxy_set;
  guint connect_ms;
  guint total_ms;
  gsize max_body;
  guint timer;
  GHashTable *calls;   /* WaHttpCall* set, in flight */
  GHashTable *sockets; /* fd -> SocketWatch* */
  guint dispatching;   /* > 0 while callbacks run */
  gboolean dying;
};

struct _WaHttpCall {
  WaHttp *http;
  CURL *easy;
  struct curl_slist *headers;
  char *body_copy;
  curl_mime *mime;
  WaHttpProgress progress;
  gpointer progress_data;
  curl_off_t progress_last;
  char *method;
  char *log_url;
  GByteArray *body;
  GHashTable *resp_headers;
  WaHttpCallback callback;
  gpointer data;
  gboolean too_large;
  gboolean sink_stopped;
  gboolean (*sink)(const guint8 *data, gsize len, gpointer sink_data);
  gpointer sink_data;
  gboolean cancelled;
  gboolean finished;
  gboolean repeatable; /* a GET or an upload: safe to send twice */
  gboolean repeated;   /* tried again on a new connection once */
  CURLcode result;
  char errbuf[CURL_ERROR_SIZE];
};

typedef struct {
  WaHttp *http;
  curl_socket_t fd;
  guint watch;
} SocketWatch;

static WaLogFunc log_func;

void
wa_http_set_log_func(WaLogFunc func)
{
  log_func = func;
}

static gboolean
debug_http(void)
{
  static int enabled = -1;
  if (enabled < 0)
    enabled = g_strcmp0(g_getenv("WABIZ_DEBUG_HTTP"), "1") == 0;
  return enabled;
}

static void http_log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void
http_log(const char *fmt, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  if (!debug_http())
    return;
  va_start(args, fmt);
  msg = g_strdup_vprintf(fmt, args);
  va_end(args);
  if (log_func != NULL)
    log_func(msg);
  else
    g_debug("%s", msg);
}

gboolean
wa_http_host_is_loopback(const char *host)
{
  g_autoptr(GInetAddress) addr = NULL;

  if (host == NULL)
    return FALSE;
  if (g_ascii_strcasecmp(host, "localhost") == 0)
    return TRUE;
  addr = g_inet_address_new_from_string(host);
  return addr != NULL && g_inet_address_get_is_loopback(addr);
}

static gboolean
url_is_loopback(const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, NULL);

  return uri != NULL && wa_http_host_is_loopback(g_uri_get_host(uri));
}

char *
wa_http_redact_url(const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, NULL);

  if (uri == NULL)
    return g_strdup("(unparsable URL)");
  return g_uri_join(G_URI_FLAGS_ENCODED, g_uri_get_scheme(uri), NULL, g_uri_get_host(uri), g_uri_get_port(uri),
                    g_uri_get_path(uri), NULL, NULL);
}

/* ---- calls ---------------------------------------------------------------- */

static void
call_free(WaHttpCall *call)
{
  if (call->easy != NULL)
    curl_easy_cleanup(call->easy);
  curl_slist_free_all(call->headers);
  curl_mime_free(call->mime);
  g_free(call->body_copy);
  g_free(call->method);
  g_free(call->log_url);
  if (call->body != NULL)
    g_byte_array_unref(call->body);
  if (call->resp_headers != NULL)
    g_hash_table_unref(call->resp_headers);
  g_free(call);
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
  WaHttpCall *call = userdata;
  gsize n = size * nmemb;

  if (call->sink != NULL) {
    long status = 0;

    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      if (!call->sink((const guint8 *) ptr, n, call->sink_data)) {
        call->sink_stopped = TRUE;
        return 0; /* CURLE_WRITE_ERROR */
      }
      return n;
    }
  }
  if (call->body->len + n > call->http->max_body) {
    call->too_large = TRUE;
    return 0; /* CURLE_WRITE_ERROR */
  }
  g_byte_array_append(call->body, (const guint8 *) ptr, (guint) n);
  return n;
}

static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
  WaHttpCall *call = userdata;
  gsize n = size * nitems;
  g_autofree char *line = g_strndup(buffer, n);
  char *colon;

  g_strchomp(line);
  if (g_str_has_prefix(line, "HTTP/")) {
    /* a new answer (after 100 Continue or a proxy CONNECT): forget the old headers */
    g_hash_table_remove_all(call->resp_headers);
    return n;
  }
  colon = strchr(line, ':');
  if (colon != NULL && colon != line) {
    char *name = g_ascii_strdown(line, colon - line);
    char *value = g_strdup(colon + 1);
    g_strstrip(value);
    g_hash_table_replace(call->resp_headers, name, value);
  }
  return n;
}

static int
xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  WaHttpCall *call = userdata;

  if (ulnow != call->progress_last && !call->cancelled) {
    call->progress_last = ulnow;
    call->progress((guint64) ulnow, (guint64) MAX(ultotal, ulnow), call->progress_data);
  }
  return 0;
}

/* The multipart body of @request (files streamed by libcurl from disk). */
static curl_mime *
form_new(CURL *easy, const WaHttpRequest *request)
{
  curl_mime *mime = curl_mime_init(easy);

  for (guint i = 0; i < request->n_form; i++) {
    const WaHttpFormPart *p = &request->form[i];
    curl_mimepart *part = curl_mime_addpart(mime);

    curl_mime_name(part, p->name);
    if (p->path != NULL) {
      curl_mime_filedata(part, p->path);
      /* filedata sets the path's base name; the caller's name wins */
      curl_mime_filename(part, p->filename);
      curl_mime_type(part, p->type);
    } else if (p->data != NULL) {
      curl_mime_data(part, p->data, p->data_len);
      curl_mime_filename(part, p->filename);
      curl_mime_type(part, p->type);
    } else {
      curl_mime_data(part, p->value != NULL ? p->value : "", CURL_ZERO_TERMINATED);
    }
  }
  return mime;
}

/* TRUE when @code means the request never left this machine, so it is safe to
 * send again: the name did not resolve, the connection or TLS handshake failed,
 * or nothing of the request was written. */
static gboolean
provably_not_sent(CURLcode code, CURL *easy)
{
  long request_size = 0;

  switch (code) {
  case CURLE_URL_MALFORMAT:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
    return TRUE;
  case CURLE_UNSUPPORTED_PROTOCOL:
    /* also what libcurl says when the answer is not HTTP ("Received
     * HTTP/0.9"): the request went out then, so only its size tells */
  default:
    break;
  }
  if (curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size) != CURLE_OK)
    return FALSE;
  return request_size == 0;
}

static void
dispatch(WaHttp *http, WaHttpCall *call)
{
  WaHttpResponse response = {0};
  gsize len = call->body->len;
  guint8 *bytes = g_byte_array_free(call->body, FALSE);

  call->body = NULL;
  response.body = g_bytes_new_take(bytes, len);
  response.headers = call->resp_headers;
  response.curl_code = call->result;
  if (call->result == CURLE_OK) {
    response.completed = TRUE;
    response.reached = TRUE;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &response.status);
  } else {
    response.reached = !provably_not_sent(call->result, call->easy);
    if (call->too_large)
      response.error = g_strdup(_("the answer was larger than allowed"));
    else if (call->sink_stopped)
      response.error = g_strdup(_("stopped by the receiver"));
    else if (call->errbuf[0] != '\0')
      response.error = g_strdup(call->errbuf);
    else
      response.error = g_strdup(curl_easy_strerror(call->result));
  }
  http_log("HTTP %s %s -> %ld%s%s", call->method, call->log_url, response.status, response.error != NULL ? " " : "",
           response.error != NULL ? response.error : "");
  call->callback(&response, call->data);
  g_bytes_unref(response.body);
  g_free(response.error);
}

static void really_free(WaHttp *http);

/* Whether @call failed on a kept-alive connection the server had closed
 * (nothing answered, the connection was reused): a server may close an idle
 * connection just as a request goes out on it. */
static gboolean
stale_connection(WaHttpCall *call, CURLcode result)
{
  long status = 0;
  long connects = 0;

  if (result != CURLE_SEND_ERROR && result != CURLE_RECV_ERROR && result != CURLE_GOT_NOTHING)
    return FALSE;
  return curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 0 &&
         curl_easy_getinfo(call->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects == 0;
}

/* Sends @call (taken off the multi handle) once more, on a new connection. */
static gboolean
repeat_fresh(WaHttp *http, WaHttpCall *call)
{
  http_log("HTTP %s %s: the kept-alive connection was closed (%s), sending again on a new one", call->method,
           call->log_url, call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(call->result));
  call->repeated = TRUE;
  call->errbuf[0] = '\0';
  call->progress_last = 0;
  g_byte_array_set_size(call->body, 0);
  g_hash_table_remove_all(call->resp_headers);
  curl_easy_setopt(call->easy, CURLOPT_FRESH_CONNECT, 1L);
  return curl_multi_add_handle(http->multi, call->easy) == CURLM_OK;
}

static void
check_done(WaHttp *http)
{
  g_autoptr(GPtrArray) done = g_ptr_array_new();
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
    WaHttpCall *call = NULL;

    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &call);
    call->result = msg->data.result;
    curl_multi_remove_handle(http->multi, call->easy);
    if (call->repeatable && !call->repeated && !call->sink_stopped && !call->too_large &&
        stale_connection(call, call->result) && repeat_fresh(http, call))
      continue;
    call->finished = TRUE;
    g_hash_table_remove(http->calls, call);
    g_ptr_array_add(done, call);
  }
  if (done->len == 0)
    return;

  http->dispatching++;
  for (guint i = 0; i < done->len; i++) {
    WaHttpCall *call = g_ptr_array_index(done, i);
    if (!call->cancelled && !http->dying)
      dispatch(http, call);
    call_free(call);
  }
  http->dispatching--;
  if (http->dying && http->dispatching == 0)
    really_free(http);
}

/* ---- loop glue -------------------------------------------------------------- */

static void
socket_ready(gpointer data, int fd, WaIoCondition cond)
{
  SocketWatch *sw = data;
  WaHttp *http = sw->http;
  int mask = 0;
  int running;

  if (cond & WA_IO_READ)
    mask |= CURL_CSELECT_IN;
  if (cond & WA_IO_WRITE)
    mask |= CURL_CSELECT_OUT;
  /* sw may be freed inside this call (CURL_POLL_REMOVE); do not touch it after */
  curl_multi_socket_action(http->multi, fd, mask, &running);
  check_done(http);
}

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  WaHttp *http = userp;
  SocketWatch *sw = socketp;
  WaIoCondition cond = 0;

  if (what == CURL_POLL_REMOVE) {
    if (sw != NULL) {
      wa_loop_input_clear(http->loop, &sw->watch);
      g_hash_table_remove(http->sockets, GINT_TO_POINTER(fd));
      curl_multi_assign(http->multi, fd, NULL);
    }
    return 0;
  }
  if (sw == NULL) {
    sw = g_new0(SocketWatch, 1);
    sw->http = http;
    sw->fd = fd;
    g_hash_table_replace(http->sockets, GINT_TO_POINTER(fd), sw);
    curl_multi_assign(http->multi, fd, sw);
  } else {
    wa_loop_input_clear(http->loop, &sw->watch);
  }
  if (what & CURL_POLL_IN)
    cond |= WA_IO_READ;
  if (what & CURL_POLL_OUT)
    cond |= WA_IO_WRITE;
  sw->watch = wa_loop_input_add(http->loop, fd, cond, socket_ready, sw);
  return 0;
}

static gboolean
timer_fired(gpointer data)
{
  WaHttp *http = data;
  int running;

  http->timer = 0;
  curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(http);
  return G_SOURCE_REMOVE;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
  WaHttp *http = userp;

  wa_loop_timeout_clear(http->loop, &http->timer);
  if (timeout_ms >= 0)
    http->timer = wa_loop_timeout_add(http->loop, (guint) timeout_ms, timer_fired, http);
  return 0;
}

static void
socket_watch_free(gpointer data)
{
  SocketWatch *sw = data;
  wa_loop_input_clear(sw->http->loop, &sw->watch);
  g_free(sw);
}

/* ---- public ------------------------------------------------------------------- */

static gpointer
global_init(gpointer unused)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return NULL;
}

WaHttp *
wa_http_new(WaLoop *loop, const char *user_agent)
{
  static GOnce once = G_ONCE_INIT;
  WaHttp *http;

  g_return_val_if_fail(loop != NULL && user_agent != NULL, NULL);
  g_once(&once, global_init, NULL);
  http = g_new0(WaHttp, 1);
  http->loop = loop;
  http->multi = curl_multi_init();
  http->user_agent = g_strdup(user_agent);
  http->connect_ms = 15000;
  http->total_ms = 60000;
  http->max_body = DEFAULT_MAX_BODY;
  http->calls = g_hash_table_new(NULL, NULL);
  http->sockets = g_hash_table_new_full(NULL, NULL, NULL, socket_watch_free);
  curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
  curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
  curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);
  return http;
}

static int
socket_cb_ignore(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  return 0;
}

static int
timer_cb_ignore(CURLM *multi, long timeout_ms, void *userp)
{
  return 0;
}

static void
really_free(WaHttp *http)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init(&iter, http->calls);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    WaHttpCall *call = key;
    curl_multi_remove_handle(http->multi, call->easy);
    call_free(call);
  }
  g_hash_table_destroy(http->calls);
  wa_loop_timeout_clear(http->loop, &http->timer);
  /* our watches go first; libcurl must not call back into freed state */
  curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, socket_cb_ignore);
  curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, timer_cb_ignore);
  g_hash_table_destroy(http->sockets);
  curl_multi_cleanup(http->multi);
  g_free(http->user_agent);
  g_free(http->proxy);
  g_free(http->proxy_user);
  if (http->proxy_pass != NULL) {
    memset(http->proxy_pass, 0, strlen(http->proxy_pass));
    g_free(http->proxy_pass);
  }
  g_free(http);
}

void
wa_http_free(WaHttp *http)
{
  if (http == NULL)
    return;
  http->dying = TRUE;
  if (http->dispatching == 0)
    really_free(http);
}

void
wa_http_set_proxy(WaHttp *http, const char *proxy, const char *username, const char *password)
{
  g_free(http->proxy);
  g_free(http->proxy_user);
  g_free(http->proxy_pass);
  http->proxy = g_strdup(proxy);
  http->proxy_user = g_strdup(username);
  http->proxy_pass = g_strdup(password);
  http->proxy_set = proxy != NULL;
}

void
wa_http_set_timeouts(WaHttp *http, guint connect_ms, guint total_ms)
{
  http->connect_ms = connect_ms;
  http->total_ms = total_ms;
}

void
wa_http_set_max_body(WaHttp *http, gsize max_body)
{
  http->max_body = max_body;
}

guint
wa_http_pending(WaHttp *http)
{
  return g_hash_table_size(http->calls);
}

WaHttpCall *
wa_http_start(WaHttp *http, const WaHttpRequest *request, WaHttpCallback callback, gpointer data)
{
  WaHttpCall *call;
  CURL *easy;

  g_return_val_if_fail(http != NULL && !http->dying, NULL);
  g_return_val_if_fail(request != NULL && request->url != NULL && callback != NULL, NULL);

  call = g_new0(WaHttpCall, 1);
  call->http = http;
  call->callback = callback;
  call->data = data;
  call->method = g_strdup(request->method != NULL ? request->method : "GET");
  call->log_url = wa_http_redact_url(request->url);
  call->body = g_byte_array_new();
  call->resp_headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  call->easy = easy = curl_easy_init();

  curl_easy_setopt(easy, CURLOPT_URL, request->url);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->errbuf);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, http->user_agent);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) http->connect_ms);
  if (request->long_transfer) {
    /* a 100 MB upload takes as long as it takes, as long as it moves */
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long) MAX(http->total_ms / 1000, 1u));
  } else {
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) (request->total_ms > 0 ? request->total_ms : http->total_ms));
  }
  if (request->stall_s > 0) {
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long) request->stall_s);
  }
  call->sink = request->sink;
  call->sink_data = request->sink_data;
  if (request->progress != NULL) {
    call->progress = request->progress;
    call->progress_data = request->progress_data;
    call->progress_last = -1;
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, call);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  }
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
  if (url_is_loopback(request->url)) {
    /* this computer: never through a proxy (a token to a plain http base
     * URL would pass it in clear), whatever the settings or environment */
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
  } else if (http->proxy_set) {
    curl_easy_setopt(easy, CURLOPT_PROXY, http->proxy);
    if (http->proxy_user != NULL && *http->proxy_user != '\0') {
      curl_easy_setopt(easy, CURLOPT_PROXYUSERNAME, http->proxy_user);
      curl_easy_setopt(easy, CURLOPT_PROXYPASSWORD, http->proxy_pass != NULL ? http->proxy_pass : "");
    }
  }

  if (request->bearer != NULL) {
    g_autofree char *auth = g_strconcat("Authorization: Bearer ", request->bearer, NULL);
    call->headers = curl_slist_append(call->headers, auth);
    memset(auth, 0, strlen(auth));
  }
  call->headers = curl_slist_append(call->headers, "Expect:");
  call->headers = curl_slist_append(call->headers, "Accept: application/json");
  call->repeatable = request->form != NULL || g_strcmp0(call->method, "GET") == 0;
  if (request->form != NULL) {
    /* libcurl writes the Content-Type with the boundary, and POSTs */
    call->mime = form_new(easy, request);
    curl_easy_setopt(easy, CURLOPT_MIMEPOST, call->mime);
  } else if (request->body != NULL) {
    g_autofree char *ct =
      g_strconcat("Content-Type: ", request->content_type != NULL ? request->content_type : "application/json", NULL);
    call->headers = curl_slist_append(call->headers, ct);
    call->body_copy = g_memdup2(request->body, request->body_len);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body_copy);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) request->body_len);
  }
  if (request->form != NULL) {
    /* a POST already */
  } else if (g_strcmp0(call->method, "GET") == 0 && request->body == NULL)
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  else if (g_strcmp0(call->method, "POST") != 0)
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, call->method);
  else if (request->body == NULL)
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L), curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);

  g_hash_table_add(http->calls, call);
  if (curl_multi_add_handle(http->multi, easy) != CURLM_OK) {
    g_hash_table_remove(http->calls, call);
    call_free(call);
    return NULL;
  }
  return call;
}

void
wa_http_cancel(WaHttpCall *call)
{
  WaHttp *http;

  if (call == NULL)
    return;
  if (call->finished) {
    call->cancelled = TRUE; /* freed by check_done after dispatch */
    return;
  }
  http = call->http;
  g_hash_table_remove(http->calls, call);
  curl_multi_remove_handle(http->multi, call->easy);
  call_free(call);
}
