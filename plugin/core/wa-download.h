/* wa-download.h: fetching one inbound attachment from the Cloud API into an
 * encrypted file.
 *
 * Two steps: GET /{media-id} through the Graph client (url, mime_type,
 * sha256 as hex, file_size), then GET of that URL with the token, which is
 * sent only where wa_attach_url_allowed() agrees (Meta's media hosts, or the
 * API base URL's own host). The body streams through a WaAttachWriter (so a
 * large file is never in memory whole) into "@dest.part", which becomes
 * @dest only once its size and SHA-256 were checked. The size is checked
 * against the limit before the download (the endpoint's file_size) and while
 * it runs.
 *
 * Nothing here retries: the outcome says whether a retry may help.
 * Must not: include libpurple, log URLs with their query, tokens or content. */
#pragma once

#include "wa-crypt.h"
#include "wa-graph.h"

G_BEGIN_DECLS

typedef enum {
  WA_DOWNLOAD_OK,
  WA_DOWNLOAD_TRANSIENT,       /* network, server trouble, rate limits: try again later */
  WA_DOWNLOAD_NOT_FOUND,       /* the media id or its URL is gone (404; ids last 7 days) */
  WA_DOWNLOAD_TOO_LARGE,       /* over the limit */
  WA_DOWNLOAD_DIGEST_MISMATCH, /* the bytes do not match the digest */
  WA_DOWNLOAD_REFUSED,         /* the URL is not one the token may go to, or the answer makes no sense */
  WA_DOWNLOAD_LOCAL,           /* the file could not be written here */
} WaDownloadOutcome;

typedef struct {
  WaDownloadOutcome outcome;
  const char *error;     /* a reason for people (not OK), else NULL */
  gint64 size;           /* bytes: the endpoint's file_size, or what was written */
  const char *mime_type; /* the endpoint's, or NULL */
} WaDownloadResult;

typedef struct _WaDownload WaDownload;

/* @got bytes of @total (0 when unknown) have arrived. */
typedef void (*WaDownloadProgressFunc)(guint64 got, guint64 total, gpointer data);
/* Called once, unless cancelled; @result is borrowed. */
typedef void (*WaDownloadDoneFunc)(const WaDownloadResult *result, gpointer data);

typedef struct {
  const char *media_id;
  const char *sha256; /* the webhook's digest (base64 or hex), or NULL: the endpoint's is used */
  gint64 max_bytes;   /* > 0 */
  const char *dest;   /* the final path (its directory exists) */
  const WaKey *key;   /* the file's key (copied) */
  guint timeout_ms;   /* time allowed for the file itself (0: 10 minutes), plus 1 s per 32 KiB of its size */
  guint stall_s;      /* a download under 1 KiB/s for this long is cut (transient); 0: 60 s */
} WaDownloadRequest;

/* @graph and @http are borrowed and must outlive the download; @token is
 * copied. A request that cannot start (an invalid media id) calls @done at
 * once and returns NULL. */
WaDownload *wa_download_start(WaGraph *graph, WaHttp *http, const char *token, const WaDownloadRequest *request,
                              WaDownloadProgressFunc progress, WaDownloadDoneFunc done, gpointer data);
/* Stops it (no callback runs afterwards) and removes the partial file. */
void wa_download_cancel(WaDownload *download);

G_END_DECLS
