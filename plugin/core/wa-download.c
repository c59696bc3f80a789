/* wa-download.c: one attachment from the Cloud API into an encrypted file
 * (see wa-download.h).
 *
 * Must not: include libpurple, log URLs with their query, tokens or content,
 * send the token to a URL wa_attach_url_allowed() refuses, or keep the file
 * in memory. */
#include "wa-download.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wa-i18n.h"
#include "wa-json.h"
#include "wa-attach.h"

#define DEFAULT_TIMEOUT_MS (10 * 60 * 1000)
#define DEFAULT_STALL_S 60

struct _WaDownload {
  WaGraph *graph;
  WaHttp *http;
  char *token;
  char *media_id;
  char *webhook_sha256;
  gint64 max_bytes;
  char *dest;
  char *part;
  WaKey *key;
  guint timeout_ms;
  guint stall_s;
  WaDownloadProgressFunc progress;
  WaDownloadDoneFunc done;
  gpointer data;

  WaGraphCall *graph_call;
  WaHttpCall *http_call;
  WaAttachWriter *writer;
  char *endpoint_sha256;
  char *mime_type;
  gint64 total;
  gboolean too_large;
  GError *write_error;
};

static void
download_free(WaDownload *d)
{
  if (d->token != NULL)
    sodium_memzero(d->token, strlen(d->token));
  g_free(d->token);
  g_free(d->media_id);
  g_free(d->webhook_sha256);
  g_free(d->dest);
  g_free(d->part);
  wa_key_free(d->key);
  g_clear_pointer(&d->writer, wa_attach_writer_free); /* removes an unfinished part */
  g_free(d->endpoint_sha256);
  g_free(d->mime_type);
  g_clear_error(&d->write_error);
  g_free(d);
}

static void
finish(WaDownload *d, WaDownloadOutcome outcome, const char *error, gint64 size)
{
  WaDownloadResult result = {.outcome = outcome, .error = error, .size = size, .mime_type = d->mime_type};

  d->graph_call = NULL;
  d->http_call = NULL;
  d->done(&result, d->data);
  download_free(d);
}

/* Media ids are decimal; anything else would name another Graph path. */
static gboolean
media_id_valid(const char *id)
{
  gsize n = id != NULL ? strlen(id) : 0;

  return n > 0 && n <= 40 && strspn(id, "0123456789") == n;
}

/* What a failed answer means for a download. */
static WaDownloadOutcome
outcome_of_error(const WaGraphError *e)
{
  if (e->http_status == 404 || e->klass == WA_ERROR_CLASS_NOT_FOUND)
    return WA_DOWNLOAD_NOT_FOUND;
  return WA_DOWNLOAD_TRANSIENT;
}

static gboolean
sink(const guint8 *data, gsize len, gpointer user_data)
{
  WaDownload *d = user_data;

  if ((gint64) (wa_attach_writer_size(d->writer) + len) > d->max_bytes) {
    d->too_large = TRUE;
    return FALSE;
  }
  if (!wa_attach_writer_write(d->writer, data, len, &d->write_error))
    return FALSE;
  if (d->progress != NULL)
    d->progress(wa_attach_writer_size(d->writer), (guint64) MAX(d->total, 0), d->data);
  return TRUE;
}

static void
fetched(WaHttpResponse *response, gpointer data)
{
  WaDownload *d = data;
  guint8 got[WA_ATTACH_DIGEST_BYTES];
  guint8 want[WA_ATTACH_DIGEST_BYTES];
  const char *expected = d->webhook_sha256 != NULL ? d->webhook_sha256 : d->endpoint_sha256;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  gint64 size;

  d->http_call = NULL;
  if (d->too_large) {
    reason =
      g_strdup_printf(_("the file is larger than the limit of %lld MB"), (long long) (d->max_bytes / (1024 * 1024)));
    finish(d, WA_DOWNLOAD_TOO_LARGE, reason, 0);
    return;
  }
  if (d->write_error != NULL) {
    reason = g_strdup_printf(_("it could not be saved here: %s"), d->write_error->message);
    finish(d, WA_DOWNLOAD_LOCAL, reason, 0);
    return;
  }
  if (!response->completed) {
    reason = g_strdup_printf(_("the download failed: %s"), response->error != NULL ? response->error : "?");
    finish(d, WA_DOWNLOAD_TRANSIENT, reason, 0);
    return;
  }
  if (response->status < 200 || response->status >= 300) {
    reason = g_strdup_printf(_("the media server answered %ld"), response->status);
    finish(d, response->status == 404 || response->status == 410 ? WA_DOWNLOAD_NOT_FOUND : WA_DOWNLOAD_TRANSIENT,
           reason, 0);
    return;
  }
  size = (gint64) wa_attach_writer_size(d->writer);
  if (!wa_attach_writer_finish(d->writer, got, &error)) {
    reason = g_strdup_printf(_("it could not be saved here: %s"), error->message);
    finish(d, WA_DOWNLOAD_LOCAL, reason, 0);
    return;
  }
  if (d->total > 0 && size != d->total) {
    reason = g_strdup_printf(_("the download ended after %lld of %lld bytes"), (long long) size, (long long) d->total);
    unlink(d->part);
    finish(d, WA_DOWNLOAD_TRANSIENT, reason, 0);
    return;
  }
  if (expected != NULL && (!wa_attach_digest_decode(expected, want) || sodium_memcmp(got, want, sizeof got) != 0)) {
    unlink(d->part);
    finish(d, WA_DOWNLOAD_DIGEST_MISMATCH, _("its SHA-256 digest does not match"), size);
    return;
  }
  if (rename(d->part, d->dest) != 0) {
    reason = g_strdup_printf(_("it could not be saved here: %s"), g_strerror(errno));
    unlink(d->part);
    finish(d, WA_DOWNLOAD_LOCAL, reason, 0);
    return;
  }
  finish(d, WA_DOWNLOAD_OK, NULL, size);
}

static void
located(WaGraphReply *reply, gpointer data)
{
  WaDownload *d = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  WaHttpRequest request = {0};
  const char *url;

  d->graph_call = NULL;
  if (reply->error != NULL) {
    g_autofree char *described = wa_graph_error_describe(reply->error);

    reason = g_strdup_printf(_("the media lookup failed: %s"), described);
    finish(d, outcome_of_error(reply->error), reason, 0);
    return;
  }
  url = wa_json_get_string(reply->object, "url");
  d->mime_type = g_strdup(wa_json_get_string(reply->object, "mime_type"));
  d->endpoint_sha256 = g_strdup(wa_json_get_string(reply->object, "sha256"));
  d->total = wa_json_get_int(reply->object, "file_size", 0);
  if (url == NULL) {
    finish(d, WA_DOWNLOAD_REFUSED, _("the media lookup gave no URL"), 0);
    return;
  }
  if (d->total > d->max_bytes) {
    reason = g_strdup_printf(_("the file (%lld MB) is larger than the limit of %lld MB"),
                             (long long) ((d->total + 1024 * 1024 - 1) / (1024 * 1024)),
                             (long long) (d->max_bytes / (1024 * 1024)));
    finish(d, WA_DOWNLOAD_TOO_LARGE, reason, d->total);
    return;
  }
  if (!wa_attach_url_allowed(url, wa_graph_get_base_url(d->graph), &error)) {
    finish(d, WA_DOWNLOAD_REFUSED, error->message, 0);
    return;
  }
  unlink(d->part); /* left by a run that was stopped */
  d->writer = wa_attach_writer_new(d->part, d->key, &error);
  if (d->writer == NULL) {
    reason = g_strdup_printf(_("it could not be saved here: %s"), error->message);
    finish(d, WA_DOWNLOAD_LOCAL, reason, 0);
    return;
  }
  request.method = "GET";
  request.url = url;
  request.bearer = d->token;
  request.sink = sink;
  request.sink_data = d;
  /* a large file on a slow line: at least 32 KiB/s more than the base */
  request.total_ms = (guint) MIN((guint64) d->timeout_ms + (guint64) MAX(d->total, 0) / 32, (guint64) G_MAXUINT32 / 2);
  request.stall_s = d->stall_s;
  d->http_call = wa_http_start(d->http, &request, fetched, d);
  if (d->http_call == NULL)
    finish(d, WA_DOWNLOAD_TRANSIENT, _("the download could not be started"), 0);
}

WaDownload *
wa_download_start(WaGraph *graph, WaHttp *http, const char *token, const WaDownloadRequest *request,
                  WaDownloadProgressFunc progress, WaDownloadDoneFunc done, gpointer data)
{
  WaDownload *d;

  g_return_val_if_fail(graph != NULL && http != NULL && request != NULL && done != NULL, NULL);
  g_return_val_if_fail(request->dest != NULL && request->key != NULL && request->max_bytes > 0, NULL);
  d = g_new0(WaDownload, 1);
  d->graph = graph;
  d->http = http;
  d->token = g_strdup(token);
  d->media_id = g_strdup(request->media_id);
  d->webhook_sha256 = g_strdup(request->sha256);
  d->max_bytes = request->max_bytes;
  d->dest = g_strdup(request->dest);
  d->part = g_strconcat(request->dest, ".part", NULL);
  d->key = wa_key_copy(request->key);
  d->timeout_ms = request->timeout_ms > 0 ? request->timeout_ms : DEFAULT_TIMEOUT_MS;
  d->stall_s = request->stall_s > 0 ? request->stall_s : DEFAULT_STALL_S;
  d->progress = progress;
  d->done = done;
  d->data = data;
  if (!media_id_valid(d->media_id)) {
    finish(d, WA_DOWNLOAD_REFUSED, _("the media id is not valid"), 0);
    return NULL;
  }
  d->graph_call = wa_graph_get(graph, d->media_id, NULL, located, d);
  if (d->graph_call == NULL) {
    finish(d, WA_DOWNLOAD_TRANSIENT, _("the media lookup could not be started"), 0);
    return NULL;
  }
  return d;
}

void
wa_download_cancel(WaDownload *d)
{
  if (d == NULL)
    return;
  if (d->graph_call != NULL)
    wa_graph_cancel(d->graph_call);
  if (d->http_call != NULL)
    wa_http_cancel(d->http_call);
  download_free(d);
}
