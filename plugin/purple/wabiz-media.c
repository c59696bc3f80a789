/* wabiz-media.c: customers' attachments (image, sticker, audio, video,
 * document): downloading them beside the inbound queue, retrying, telling
 * the agent, and /save.
 *
 * The store records each attachment as pending in the same transaction as
 * its message (wa-store-media.c), so an acknowledged event never loses one.
 * The message line is shown at once; the download (plugin/core wa-download:
 * lookup, then the file streamed into an encrypted file) runs afterwards,
 * at most MAX_ACTIVE per account, and ends in a line: what it is, its size,
 * and "/save N" (Finch and BitlBee), plus the picture itself in Pidgin.
 * Transient failures are retried with a doubling delay, across restarts
 * (pending rows are resumed at sign-on); a media id past WhatsApp's 7 days,
 * a 404, a file over the size limit, a URL the token may not go to, or a
 * digest that still does not match after one fresh download end as "could
 * not be downloaded: <reason>". Nothing retries more than MAX_ATTEMPTS times.
 *
 * Must not: pass customer text (names, captions) to libpurple except through
 * wabiz-conv.c, name a file after anything but a safe basename, overwrite a
 * file, or log ids, names or URLs. */
#include "wabiz.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "wa-download.h"
#include "wa-file.h"
#include "wa-attach.h"
#include "wa-media.h"

#include <dlfcn.h>
#include <sodium.h>

#define MAX_ACTIVE 2
#define MAX_ATTEMPTS 8
#define MAX_RETRY_DELAY_MS (60 * 60 * 1000)
#define MEDIA_ID_LIFE_S (7 * 86400)
#define BIG_FILE (4 * 1024 * 1024) /* a line when a download this large starts */
#define INLINE_MAX (5 * 1024 * 1024)

typedef struct {
  WabizAccount *wa;
  WaStoreMedia *media;
  WaDownload *download;
  guint timer;
  gboolean running;
  gboolean digest_retried; /* one fresh download after a digest mismatch */
  gboolean told_big;
  guint told_quarters; /* of a big file: 25, 50 and 75 % told so far (0 to 3) */
} MediaJob;

struct _WabizMediaState {
  GHashTable *jobs; /* media row id -> MediaJob* */
  GQueue waiting;   /* MediaJob* due, waiting for a free slot */
  guint active;
};

static void job_start(MediaJob *job);

static void
job_free(MediaJob *job)
{
  if (job->timer != 0)
    purple_timeout_remove(job->timer);
  wa_download_cancel(job->download);
  wa_store_media_free(job->media);
  g_free(job);
}

static WabizMediaState *
state(WabizAccount *wa)
{
  if (wa->media == NULL) {
    wa->media = g_new0(WabizMediaState, 1);
    wa->media->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) job_free);
    g_queue_init(&wa->media->waiting);
  }
  return wa->media;
}

/* ---- words ------------------------------------------------------------------- */

static const char *
type_name(const WaStoreMedia *m)
{
  if (g_strcmp0(m->type, "image") == 0)
    return _("Image");
  if (g_strcmp0(m->type, "sticker") == 0)
    return _("Sticker");
  if (g_strcmp0(m->type, "audio") == 0)
    return m->voice ? _("Voice note") : _("Audio");
  if (g_strcmp0(m->type, "video") == 0)
    return _("Video");
  if (g_strcmp0(m->type, "document") == 0)
    return _("Document");
  return _("Attachment");
}

/* The customer's conversation of @customer_id (its buddy), or NULL. */
static PurpleConversation *
customer_conv(WabizAccount *wa, const char *customer_id)
{
  GSList *buddies = purple_find_buddies(wa->account, NULL);
  PurpleConversation *conv = NULL;

  for (GSList *l = buddies; l != NULL; l = l->next) {
    PurpleBuddy *buddy = l->data;

    if (g_strcmp0(purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID), customer_id) == 0) {
      conv = wabiz_conv_im(wa->account, purple_buddy_get_name(buddy), TRUE);
      break;
    }
  }
  g_slist_free(buddies);
  return conv;
}

static void
say(WabizAccount *wa, const WaStoreMedia *m, const char *text, PurpleMessageFlags flags)
{
  wabiz_conv_write_plain(customer_conv(wa, m->customer_id), text, flags, 0);
}

/* "Image 2 (photo.jpg, 120 KB)" */
static char *
describe(const WaStoreMedia *m)
{
  g_autofree char *size = m->size > 0 ? wa_media_format_size(m->size) : NULL;
  g_autofree char *name = m->filename != NULL ? wa_attach_safe_name(m->filename, "?") : NULL;

  if (name != NULL && size != NULL)
    return g_strdup_printf(_("%s %u (%s, %s)"), type_name(m), m->number, name, size);
  if (size != NULL)
    return g_strdup_printf(_("%s %u (%s)"), type_name(m), m->number, size);
  return g_strdup_printf(_("%s %u"), type_name(m), m->number);
}

/* ---- Pidgin: pictures inline ------------------------------------------------------ */

static gboolean
shows_images(void)
{
  const char *override = wabiz_test_env("WABIZ_TEST_UI");
  const char *ui = override != NULL ? override : purple_core_get_ui();

  return g_strcmp0(ui, "gtk-gaim") == 0;
}

/* Whether the image loader of the messenger (gdk-pixbuf, in Pidgin's
 * process; not linked here) has a loader named @name: looked up at run time,
 * so the plugin does not depend on it. The test build may say yes
 * (WABIZ_TEST_PIXBUF_FORMATS, names separated by commas). */
static gboolean
pixbuf_can_load(const char *name)
{
  typedef GSList *(*GetFormats)(void);
  typedef char *(*GetName)(gpointer format);
  const char *fake = wabiz_test_env("WABIZ_TEST_PIXBUF_FORMATS");
  gpointer get_formats, get_name;
  gboolean found = FALSE;

  if (fake != NULL) {
    g_auto(GStrv) names = g_strsplit(fake, ",", -1);

    return g_strv_contains((const char *const *) names, name);
  }
  get_formats = dlsym(RTLD_DEFAULT, "gdk_pixbuf_get_formats");
  get_name = dlsym(RTLD_DEFAULT, "gdk_pixbuf_format_get_name");
  if (get_formats != NULL && get_name != NULL) {
    GSList *formats = ((GetFormats) get_formats)();

    for (GSList *l = formats; l != NULL && !found; l = l->next) {
      g_autofree char *format = ((GetName) get_name)(l->data);

      found = g_strcmp0(format, name) == 0;
    }
    g_slist_free(formats);
  }
  return found;
}

/* JPEG, PNG and GIF: what Pidgin's image loader always reads; WebP (stickers)
 * when a loader for it is installed, else they get the line. */
static gboolean
inline_type(const WaStoreMedia *m)
{
  if (m->mime_type == NULL)
    return FALSE;
  if (g_str_has_prefix(m->mime_type, "image/webp"))
    return pixbuf_can_load("webp");
  return g_str_has_prefix(m->mime_type, "image/jpeg") || g_str_has_prefix(m->mime_type, "image/png") ||
         g_str_has_prefix(m->mime_type, "image/gif");
}

/* The decrypted picture into the imgstore and the conversation. */
static gboolean
show_inline(WabizAccount *wa, const WaStoreMedia *m)
{
  g_autoptr(WaAttachReader) reader = NULL;
  g_autoptr(GByteArray) data = NULL;
  g_autofree char *name = NULL;
  guint8 *buf;
  gboolean ok = FALSE;
  int id;

  if (!shows_images() || !inline_type(m) || m->size > INLINE_MAX || m->file_key == NULL)
    return FALSE;
  reader = wa_attach_reader_open(m->path, m->file_key, NULL);
  if (reader == NULL)
    return FALSE;
  data = g_byte_array_new();
  buf = g_malloc(WA_ATTACH_CHUNK);
  for (;;) {
    gsize len = 0;

    if (!wa_attach_reader_read(reader, buf, &len, NULL) || data->len + len > INLINE_MAX)
      break;
    if (len == 0) {
      ok = TRUE;
      break;
    }
    g_byte_array_append(data, buf, (guint) len);
  }
  g_free(buf);
  if (!ok || data->len == 0)
    return FALSE;
  name = g_strdup_printf("%s-%u.%s", m->type, m->number, wa_attach_extension(m->mime_type));
  {
    gsize len = data->len;

    id = purple_imgstore_add_with_id(g_byte_array_steal(data, NULL), len, name);
  }
  if (id == 0)
    return FALSE;
  wabiz_conv_write_image(customer_conv(wa, m->customer_id), id, 0);
  purple_imgstore_unref_by_id(id); /* the conversation keeps its own reference */
  return TRUE;
}

/* ---- file transfers: audio, video, documents (and images by option) ---------------------- */

#define LATE_S (5 * 60) /* older messages arrived while the messenger was closed: listed only */

typedef struct {
  char *src;
  WaKey *key;
  WaAttachReader *reader;
  guint8 *buf;
  guint timer;
} XferFeed;

static void
feed_free(XferFeed *feed)
{
  if (feed == NULL)
    return;
  if (feed->timer != 0)
    purple_timeout_remove(feed->timer);
  wa_attach_reader_free(feed->reader);
  g_free(feed->src);
  wa_key_free(feed->key);
  if (feed->buf != NULL)
    sodium_memzero(feed->buf, WA_ATTACH_CHUNK);
  g_free(feed->buf);
  g_free(feed);
}

/* Declined, cancelled or ended: the feed goes. */
static void
xfer_release(PurpleXfer *xfer)
{
  feed_free(xfer->data);
  xfer->data = NULL;
}

/* One chunk per turn of the loop, decrypted into the agent's file. */
static gboolean
feed_tick(gpointer data)
{
  PurpleXfer *xfer = data;
  XferFeed *feed = xfer->data;
  gsize len = 0;

  if (!wa_attach_reader_read(feed->reader, feed->buf, &len, NULL)) {
    feed->timer = 0;
    purple_xfer_cancel_local(xfer);
    return FALSE;
  }
  if (len == 0) {
    feed->timer = 0;
    purple_xfer_set_completed(xfer, TRUE);
    purple_xfer_end(xfer);
    return FALSE;
  }
  if (!purple_xfer_write_file(xfer, feed->buf, len)) {
    feed->timer = 0;
    purple_xfer_cancel_local(xfer);
    return FALSE;
  }
  return TRUE;
}

static void
xfer_init(PurpleXfer *xfer)
{
  XferFeed *feed = xfer->data;

  feed->reader = wa_attach_reader_open(feed->src, feed->key, NULL);
  if (feed->reader == NULL) {
    purple_xfer_cancel_local(xfer);
    return;
  }
  feed->buf = g_malloc(WA_ATTACH_CHUNK);
  purple_xfer_start(xfer, -1, NULL, 0);
  feed->timer = purple_timeout_add(0, feed_tick, xfer);
}

static gboolean
wants_transfer(WabizAccount *wa, const WaStoreMedia *m)
{
  const char *images = purple_account_get_string(wa->account, WABIZ_OPT_MEDIA_IMAGES, WABIZ_MEDIA_IMAGES_INLINE);
  gboolean picture = g_strcmp0(m->type, "image") == 0 || g_strcmp0(m->type, "sticker") == 0;

  /* BitlBee stages the decrypted file in /tmp before its DCC SEND: offered
   * unless the account's option turns that off (then the line and !save) */
  if (wabiz_bitlbee() && !purple_account_get_bool(wa->account, WABIZ_OPT_BITLBEE_TRANSFERS, TRUE))
    return FALSE;
  if (m->timestamp > 0 && wabiz_now() - m->timestamp > LATE_S)
    return FALSE;
  return !picture || g_strcmp0(images, WABIZ_MEDIA_IMAGES_INLINE) != 0;
}

static gboolean
wants_inline(WabizAccount *wa, const WaStoreMedia *m)
{
  const char *images = purple_account_get_string(wa->account, WABIZ_OPT_MEDIA_IMAGES, WABIZ_MEDIA_IMAGES_INLINE);

  return g_strcmp0(images, WABIZ_MEDIA_IMAGES_TRANSFER) != 0;
}

/* Offers the decrypted file as an incoming transfer from the customer. */
static void
offer_transfer(WabizAccount *wa, const WaStoreMedia *m)
{
  PurpleConversation *conv = customer_conv(wa, m->customer_id);
  g_autofree char *fallback = NULL;
  g_autofree char *name = NULL;
  PurpleXfer *xfer;
  XferFeed *feed;

  if (conv == NULL || m->file_key == NULL)
    return;
  fallback = g_strdup_printf("whatsapp-%s-%u.%s", m->type, m->number, wa_attach_extension(m->mime_type));
  name = wa_attach_safe_name(m->filename, fallback);
  xfer = purple_xfer_new(wa->account, PURPLE_XFER_RECEIVE, purple_conversation_get_name(conv));
  if (xfer == NULL)
    return;
  feed = g_new0(XferFeed, 1);
  feed->src = g_strdup(m->path);
  feed->key = wa_key_copy(m->file_key);
  xfer->data = feed;
  purple_xfer_set_filename(xfer, name);
  purple_xfer_set_size(xfer, (size_t) MAX(m->size, 0));
  purple_xfer_set_init_fnc(xfer, xfer_init);
  purple_xfer_set_request_denied_fnc(xfer, xfer_release);
  purple_xfer_set_cancel_recv_fnc(xfer, xfer_release);
  purple_xfer_set_end_fnc(xfer, xfer_release);
  purple_xfer_request(xfer);
}

/* ---- the outcome ------------------------------------------------------------------- */

/* The file of an attachment whose row is gone (the customer was erased
 * while it downloaded). */
static void
remove_orphan(const char *path)
{
  g_autofree char *part = g_strconcat(path, ".part", NULL);

  unlink(path);
  unlink(part);
}

typedef struct {
  WabizAccount *wa;
  char *id;
} RetryNote;

static void
retry_note_free(RetryNote *note)
{
  g_free(note->id);
  g_free(note);
}

/* A retry was recorded; a row gone meanwhile (erased) ends its job. */
static void
retry_stored_cb(const WaStoreMedia *media, const GError *error, gpointer data)
{
  RetryNote *note = data;
  WabizAccount *wa = note->wa;
  MediaJob *job;

  wabiz_store_release(wa, note);
  if (g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND) && wa->media != NULL &&
      (job = g_hash_table_lookup(wa->media->jobs, note->id)) != NULL && !job->running) {
    remove_orphan(job->media->path);
    g_queue_remove(&wa->media->waiting, job);
    g_hash_table_remove(wa->media->jobs, note->id);
  }
  retry_note_free(note);
}

static void
stored_cb(const WaStoreMedia *media, const GError *error, gpointer data)
{
  MediaJob *job = data;
  WabizAccount *wa = job->wa;

  wabiz_store_release(wa, job);
  if (g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND))
    remove_orphan(job->media->path); /* erased while it downloaded */
  else if (error != NULL)
    purple_debug_warning("wabiz", "an attachment's state could not be stored: %s\n", error->message);
  job_free(job);
}

/* Records @change and drops the job (the store answers later). */
static void
job_end(MediaJob *job, const WaStoreMediaChange *change)
{
  WabizAccount *wa = job->wa;
  WabizMediaState *st = state(wa);

  g_hash_table_steal(st->jobs, job->media->id);
  if (wa->store != NULL)
    wa_store_media_update(wa->store, job->media->id, change, stored_cb,
                          wabiz_store_hold(wa, job, (GDestroyNotify) job_free));
  else
    job_free(job);
}

static void
next_waiting(WabizAccount *wa)
{
  WabizMediaState *st = state(wa);

  while (st->active < MAX_ACTIVE && !g_queue_is_empty(&st->waiting))
    job_start(g_queue_pop_head(&st->waiting));
}

static void
fail(MediaJob *job, const char *reason)
{
  g_autofree char *what = describe(job->media);
  g_autofree char *line = g_strdup_printf(_("%s could not be downloaded: %s"), what, reason);
  WaStoreMediaChange change = {.state = WA_STORE_MEDIA_FAILED, .count_attempt = TRUE, .error_text = reason};

  say(job->wa, job->media, line, PURPLE_MESSAGE_ERROR);
  job_end(job, &change);
}

static guint
retry_delay_ms(WabizAccount *wa, guint attempts)
{
  int first = purple_account_get_int(wa->account, WABIZ_OPT_MEDIA_RETRY_MS, 30000);
  guint64 delay = (guint64) MAX(first, 10);

  for (guint i = 1; i < attempts && delay < MAX_RETRY_DELAY_MS; i++)
    delay *= 2;
  return (guint) MIN(delay, (guint64) MAX_RETRY_DELAY_MS);
}

static gboolean
retry_due(gpointer data)
{
  MediaJob *job = data;

  job->timer = 0;
  job_start(job);
  return FALSE;
}

/* A transient failure: later, or given up after MAX_ATTEMPTS. */
static void
retry(MediaJob *job, const char *reason)
{
  WabizAccount *wa = job->wa;
  guint attempts = job->media->attempts + 1;
  guint delay;
  WaStoreMediaChange change = {.state = WA_STORE_MEDIA_PENDING, .count_attempt = TRUE, .error_text = reason};

  if (attempts >= MAX_ATTEMPTS) {
    g_autofree char *text = g_strdup_printf(_("%s (gave up after %u attempts)"), reason, attempts);

    fail(job, text);
    return;
  }
  delay = retry_delay_ms(wa, attempts);
  change.next_attempt = wabiz_now() + (delay + 999) / 1000;
  job->media->attempts = attempts;
  job->media->next_attempt = change.next_attempt;
  purple_debug_info("wabiz", "attachment download failed (attempt %u), next in %u ms\n", attempts, delay);
  job->timer = purple_timeout_add(delay, retry_due, job);
  if (wa->store != NULL) {
    RetryNote *note = g_new0(RetryNote, 1);

    note->wa = wa;
    note->id = g_strdup(job->media->id);
    wa_store_media_update(wa->store, job->media->id, &change, retry_stored_cb,
                          wabiz_store_hold(wa, note, (GDestroyNotify) retry_note_free));
  }
}

static void
done_cb(const WaDownloadResult *result, gpointer data)
{
  MediaJob *job = data;
  WabizAccount *wa = job->wa;
  WaStoreMediaChange change = {0};

  job->download = NULL;
  job->running = FALSE;
  state(wa)->active--;
  switch (result->outcome) {
  case WA_DOWNLOAD_OK: {
    g_autofree char *what = NULL;
    g_autofree char *line = NULL;

    job->media->size = result->size;
    job->media->state = WA_STORE_MEDIA_DONE;
    if (result->mime_type != NULL && job->media->mime_type == NULL)
      job->media->mime_type = g_strdup(result->mime_type);
    what = describe(job->media);
    if (wants_inline(wa, job->media) && show_inline(wa, job->media))
      line = g_strdup_printf(_("%s received (shown above; /save %u saves it)."), what, job->media->number);
    else
      line = g_strdup_printf(_("%s received. Type /save %u to save it."), what, job->media->number);
    say(wa, job->media, line, PURPLE_MESSAGE_SYSTEM);
    if (wants_transfer(wa, job->media))
      offer_transfer(wa, job->media);
    change.state = WA_STORE_MEDIA_DONE;
    change.size = result->size;
    change.mime_type = result->mime_type;
    change.count_attempt = TRUE;
    job_end(job, &change);
    break;
  }
  case WA_DOWNLOAD_DIGEST_MISMATCH:
    if (!job->digest_retried) {
      /* once more, from a fresh lookup */
      job->digest_retried = TRUE;
      job_start(job);
      break;
    }
    fail(job, result->error);
    break;
  case WA_DOWNLOAD_NOT_FOUND:
  case WA_DOWNLOAD_TOO_LARGE:
  case WA_DOWNLOAD_REFUSED:
    if (result->outcome == WA_DOWNLOAD_TOO_LARGE)
      job->media->size = result->size;
    fail(job, result->error);
    break;
  case WA_DOWNLOAD_TRANSIENT:
  case WA_DOWNLOAD_LOCAL:
    retry(job, result->error);
    break;
  }
  next_waiting(wa);
}

static void
progress_cb(guint64 got, guint64 total, gpointer data)
{
  MediaJob *job = data;

  if (!job->told_big && total >= BIG_FILE) {
    g_autofree char *size = wa_media_format_size(total);
    g_autofree char *line =
      g_strdup_printf(_("%s %u: downloading %s..."), type_name(job->media), job->media->number, size);

    job->told_big = TRUE;
    say(job->wa, job->media, line, PURPLE_MESSAGE_SYSTEM);
  }
  /* a big file's progress: a line at each quarter reached (the latest, when
   * one step passes several), at most three */
  if (job->told_big && total > 0) {
    guint quarter = (guint) MIN(got * 4 / total, 3);

    if (quarter > job->told_quarters) {
      g_autofree char *have = wa_media_format_size(got);
      g_autofree char *line = g_strdup_printf(_("%s %u: %u%% downloaded (%s)..."), type_name(job->media),
                                              job->media->number, quarter * 25, have);

      job->told_quarters = quarter;
      say(job->wa, job->media, line, PURPLE_MESSAGE_SYSTEM);
    }
  }
}

static void
job_start(MediaJob *job)
{
  WabizAccount *wa = job->wa;
  WabizMediaState *st = state(wa);
  g_autofree char *dir = NULL;
  g_autoptr(GError) error = NULL;
  WaDownloadRequest request = {0};
  WaDownload *download;
  int max_mb = purple_account_get_int(wa->account, WABIZ_OPT_MEDIA_MAX_MB, 100);

  if (wa->store == NULL || wa->graph == NULL)
    return;
  if (job->media->timestamp > 0 && wabiz_now() - job->media->timestamp > MEDIA_ID_LIFE_S) {
    fail(job, _("WhatsApp keeps attachments for 7 days, and this one is older"));
    return;
  }
  if (job->media->file_key == NULL || job->media->media_id == NULL) {
    fail(job, _("its record in the store does not open"));
    return;
  }
  if (st->active >= MAX_ACTIVE) {
    g_queue_push_tail(&st->waiting, job);
    return;
  }
  dir = wa_store_media_dir(wa->store);
  if (!wa_file_private_dir(dir, "the media directory", &error)) {
    retry(job, error->message);
    return;
  }
  request.media_id = job->media->media_id;
  request.sha256 = job->media->sha256;
  request.max_bytes = (gint64) MAX(max_mb, 1) * 1024 * 1024;
  request.dest = job->media->path;
  request.key = job->media->file_key;
  /* stalled for as long as an API request may take: cut, and retried */
  request.stall_s = (guint) MAX(purple_account_get_int(wa->account, WABIZ_OPT_HTTP_TIMEOUT, 60), 1);
  st->active++;
  job->running = TRUE;
  /* an id that cannot be asked for ends at once (done_cb), returning NULL */
  download = wa_download_start(wa->graph, wa->http, purple_account_get_password(wa->account), &request, progress_cb,
                               done_cb, job);
  if (download != NULL)
    job->download = download;
}

/* ---- entry points ------------------------------------------------------------------------ */

/* @at_once: at sign-on, a retry that was due later in an earlier session
 * runs now (a restart is a good moment; attempts still count). */
static void
schedule(WabizAccount *wa, const WaStoreMedia *m, gboolean at_once)
{
  WabizMediaState *st = state(wa);
  MediaJob *job;
  gint64 wait_s;

  if (m == NULL || m->state != WA_STORE_MEDIA_PENDING || g_hash_table_contains(st->jobs, m->id))
    return;
  job = g_new0(MediaJob, 1);
  job->wa = wa;
  job->media = wa_store_media_copy(m);
  g_hash_table_insert(st->jobs, job->media->id, job);
  wait_s = at_once ? 0 : m->next_attempt - wabiz_now();
  if (wait_s > 0)
    job->timer = purple_timeout_add((guint) MIN(wait_s, 86400) * 1000, retry_due, job);
  else
    job_start(job);
}

void
wabiz_media_arrived(WabizAccount *wa, const WaStoreMedia *media)
{
  if (media == NULL || wa->store == NULL)
    return;
  if (media->state == WA_STORE_MEDIA_PENDING && !g_hash_table_contains(state(wa)->jobs, media->id)) {
    g_autofree char *line = g_strdup_printf(_("%s %u: downloading..."), type_name(media), media->number);

    say(wa, media, line, PURPLE_MESSAGE_SYSTEM);
  }
  schedule(wa, media, FALSE);
}

static void
held_nothing(gpointer data)
{
}

static void
pending_cb(GPtrArray *list, const GError *error, gpointer data)
{
  WabizAccount *wa = data;

  wabiz_store_release(wa, wa);
  if (list == NULL)
    return;
  for (guint i = 0; i < list->len; i++)
    schedule(wa, g_ptr_array_index(list, i), TRUE);
}

void
wabiz_media_start(WabizAccount *wa)
{
  if (wa->store != NULL)
    wa_store_media_list(wa->store, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_PENDING), pending_cb,
                        wabiz_store_hold(wa, wa, held_nothing));
}

void
wabiz_media_stop(WabizAccount *wa)
{
  if (wa->media == NULL)
    return;
  g_queue_clear(&wa->media->waiting);
  g_hash_table_destroy(wa->media->jobs); /* cancels downloads, removes partial files */
  g_free(wa->media);
  wa->media = NULL;
}

/* ---- /save N [PATH] ------------------------------------------------------------------------- */

typedef struct {
  char *account_user; /* to find the account again */
  char *conv_name;
  char *src;
  WaKey *key;
  char *dir;
  char *name;
  char *saved; /* result */
} SaveJob;

static void
save_job_free(SaveJob *job)
{
  g_free(job->account_user);
  g_free(job->conv_name);
  g_free(job->src);
  wa_key_free(job->key);
  g_free(job->dir);
  g_free(job->name);
  g_free(job->saved);
  g_free(job);
}

static void
save_say(const char *account_user, const char *conv_name, const char *text, PurpleMessageFlags flags)
{
  PurpleAccount *account = purple_accounts_find(account_user, WABIZ_PRPL_ID);

  if (account != NULL)
    wabiz_conv_write_plain(wabiz_conv_im(account, conv_name, TRUE), text, flags, 0);
}

/* Off the main loop: decrypts into the first free name of "name", "name
 * (1)", ... (never over an existing file). */
static gpointer
save_work(gpointer data, GError **error)
{
  SaveJob *job = data;
  const char *dot = strrchr(job->name, '.');
  g_autofree char *stem =
    dot != NULL && dot != job->name ? g_strndup(job->name, (gsize) (dot - job->name)) : g_strdup(job->name);
  const char *ext = dot != NULL && dot != job->name ? dot : "";

  for (guint i = 0; i < 1000; i++) {
    g_autofree char *name = i == 0 ? g_strdup(job->name) : g_strdup_printf("%s (%u)%s", stem, i, ext);
    g_autofree char *path = g_build_filename(job->dir, name, NULL);
    g_autoptr(GError) local = NULL;

    if (wa_attach_decrypt_to_file(job->src, job->key, path, &local)) {
      job->saved = g_steal_pointer(&path);
      return job;
    }
    if (!g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_EXIST)) {
      g_propagate_error(error, g_steal_pointer(&local));
      return NULL;
    }
  }
  g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, _("too many files of that name"));
  return NULL;
}

static void
save_done(gpointer result, GError *error, gpointer data)
{
  SaveJob *job = data;
  g_autofree char *text = NULL;

  if (error != NULL)
    text = g_strdup_printf(_("The attachment could not be saved: %s"), error->message);
  else
    text = g_strdup_printf(_("Saved to %s"), job->saved);
  save_say(job->account_user, job->conv_name, text, error != NULL ? PURPLE_MESSAGE_ERROR : PURPLE_MESSAGE_SYSTEM);
  g_clear_error(&error);
  save_job_free(job);
}

typedef struct {
  WabizAccount *wa;
  char *conv_name;
  char *path; /* or NULL */
  guint number;
} SaveRequest;

static void
save_request_free(SaveRequest *req)
{
  g_free(req->conv_name);
  g_free(req->path);
  g_free(req);
}

/* Where /save writes: PATH (a directory, or a file name in an existing
 * directory), else the downloads directory. */
static gboolean
save_target(const SaveRequest *req, const WaStoreMedia *m, char **dir, char **name)
{
  g_autofree char *fallback =
    g_strdup_printf("whatsapp-%s-%u.%s", m->type, m->number, wa_attach_extension(m->mime_type));
  const char *downloads = g_get_user_special_dir(G_USER_DIRECTORY_DOWNLOAD);

  if (req->path == NULL) {
    *dir = g_strdup(downloads != NULL ? downloads : g_get_home_dir());
    *name = wa_attach_safe_name(m->filename, fallback);
    return TRUE;
  }
  if (g_file_test(req->path, G_FILE_TEST_IS_DIR)) {
    *dir = g_strdup(req->path);
    *name = wa_attach_safe_name(m->filename, fallback);
    return TRUE;
  }
  *dir = g_path_get_dirname(req->path);
  {
    g_autofree char *base = g_path_get_basename(req->path);

    *name = wa_attach_safe_name(base, fallback);
  }
  return g_file_test(*dir, G_FILE_TEST_IS_DIR);
}

static void
save_media_cb(const WaStoreMedia *m, const GError *error, gpointer data)
{
  SaveRequest *req = data;
  WabizAccount *wa = req->wa;
  PurpleConversation *conv = wabiz_conv_im(wa->account, req->conv_name, TRUE);
  g_autofree char *text = NULL;
  SaveJob *job;

  wabiz_store_release(wa, req);
  if (error != NULL)
    text = g_strdup_printf(_("The attachment could not be read: %s"), error->message);
  else if (m == NULL)
    text = g_strdup_printf(_("There is no attachment %u in this conversation."), req->number);
  else if (m->state == WA_STORE_MEDIA_PENDING)
    text = g_strdup_printf(_("Attachment %u is still being downloaded."), req->number);
  else if (m->state == WA_STORE_MEDIA_FAILED)
    text =
      g_strdup_printf(_("Attachment %u could not be downloaded: %s"), req->number, m->error != NULL ? m->error : "?");
  else if (m->state == WA_STORE_MEDIA_EXPIRED)
    text = g_strdup_printf(_("Attachment %u was deleted after the retention period."), req->number);
  else if (m->file_key == NULL)
    text = g_strdup_printf(_("Attachment %u does not open (its record was altered)."), req->number);
  if (text != NULL) {
    wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_ERROR, 0);
    save_request_free(req);
    return;
  }
  job = g_new0(SaveJob, 1);
  if (!save_target(req, m, &job->dir, &job->name)) {
    g_autofree char *line = g_strdup_printf(_("The folder %s does not exist."), job->dir);

    wabiz_conv_write_plain(conv, line, PURPLE_MESSAGE_ERROR, 0);
    save_job_free(job);
    save_request_free(req);
    return;
  }
  job->account_user = g_strdup(purple_account_get_username(wa->account));
  job->conv_name = g_strdup(req->conv_name);
  job->src = g_strdup(m->path);
  job->key = wa_key_copy(m->file_key);
  save_request_free(req);
  wa_work_run(wabiz_loop(), save_work, save_done, job);
}

PurpleCmdRet
wabiz_cmd_save(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  WabizAccount *wa = wabiz_account_data(purple_conversation_get_account(conv));
  const char *who = purple_conversation_get_name(conv);
  PurpleBuddy *buddy;
  const char *customer;
  g_auto(GStrv) words = NULL;
  SaveRequest *req;
  guint64 number = 0;
  char *end = NULL;

  if (wa == NULL || wa->store == NULL) {
    *error = g_strdup(_("The account is not connected."));
    return PURPLE_CMD_RET_FAILED;
  }
  words = args != NULL && args[0] != NULL ? g_strsplit(g_strstrip(args[0]), " ", 2) : NULL;
  if (words != NULL && words[0] != NULL)
    number = g_ascii_strtoull(words[0], &end, 10);
  if (number == 0 || number > G_MAXUINT || end == NULL || *end != '\0') {
    *error = g_strdup(_("Usage: /save N [PATH]: N is the attachment's number in this conversation."));
    return PURPLE_CMD_RET_FAILED;
  }
  buddy = purple_find_buddy(wa->account, who);
  customer = buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL;
  if (customer == NULL) {
    *error = g_strdup(_("Nothing is stored about this customer."));
    return PURPLE_CMD_RET_FAILED;
  }
  req = g_new0(SaveRequest, 1);
  req->wa = wa;
  req->conv_name = g_strdup(who);
  req->number = (guint) number;
  if (words[1] != NULL && *g_strstrip(words[1]) != '\0')
    req->path =
      g_str_has_prefix(words[1], "~/") ? g_build_filename(g_get_home_dir(), words[1] + 2, NULL) : g_strdup(words[1]);
  wa_store_media_get(wa->store, customer, req->number, save_media_cb,
                     wabiz_store_hold(wa, req, (GDestroyNotify) save_request_free));
  return PURPLE_CMD_RET_OK;
}

/* ---- export: the attachments beside the JSON ----------------------------------------------- */

typedef struct {
  char *src;
  WaKey *key;
  char *name;
} ExportItem;

typedef struct {
  WabizAccount *wa; /* until the store has answered */
  char *account_user;
  char *conv_name;
  char *dir;
  GPtrArray *items; /* ExportItem* */
  guint written;
} ExportJob;

static void
export_item_free(ExportItem *item)
{
  g_free(item->src);
  wa_key_free(item->key);
  g_free(item->name);
  g_free(item);
}

static void
export_job_free(ExportJob *job)
{
  g_free(job->account_user);
  g_free(job->conv_name);
  g_free(job->dir);
  g_clear_pointer(&job->items, g_ptr_array_unref);
  g_free(job);
}

/* Off the main loop: "N-name" files in a private directory; an earlier
 * export's file of the same name is replaced (unlinked first: a symbolic
 * link there is removed, never followed). */
static gpointer
export_work(gpointer data, GError **error)
{
  ExportJob *job = data;

  if (!wa_file_private_dir(job->dir, "the attachments folder", error))
    return NULL;
  for (guint i = 0; i < job->items->len; i++) {
    ExportItem *item = g_ptr_array_index(job->items, i);
    g_autofree char *path = g_build_filename(job->dir, item->name, NULL);

    if (unlink(path) != 0 && errno != ENOENT) {
      wa_file_set_error(error, "cannot replace", path, errno);
      return NULL;
    }
    if (!wa_attach_decrypt_to_file(item->src, item->key, path, error))
      return NULL;
    job->written++;
  }
  return job;
}

static void
export_done(gpointer result, GError *error, gpointer data)
{
  ExportJob *job = data;
  g_autofree char *text = NULL;

  if (error != NULL)
    text = g_strdup_printf(_("The attachments could not be exported: %s"), error->message);
  else
    text = g_strdup_printf(ngettext("%u attachment exported to %s.", "%u attachments exported to %s.", job->written),
                           job->written, job->dir);
  save_say(job->account_user, job->conv_name, text, error != NULL ? PURPLE_MESSAGE_ERROR : PURPLE_MESSAGE_SYSTEM);
  g_clear_error(&error);
  export_job_free(job);
}

static void
export_list_cb(GPtrArray *list, const GError *error, gpointer data)
{
  ExportJob *job = data;

  wabiz_store_release(job->wa, job);
  job->wa = NULL;
  if (list == NULL || list->len == 0) {
    export_job_free(job);
    return;
  }
  for (guint i = 0; i < list->len; i++) {
    const WaStoreMedia *m = g_ptr_array_index(list, i);
    g_autofree char *fallback =
      g_strdup_printf("whatsapp-%s-%u.%s", m->type, m->number, wa_attach_extension(m->mime_type));
    g_autofree char *safe = wa_attach_safe_name(m->filename, fallback);
    ExportItem *item;

    if (m->file_key == NULL)
      continue;
    item = g_new0(ExportItem, 1);
    item->src = g_strdup(m->path);
    item->key = wa_key_copy(m->file_key);
    item->name = g_strdup_printf("%u-%s", m->number, safe);
    g_ptr_array_add(job->items, item);
  }
  wa_work_run(wabiz_loop(), export_work, export_done, job);
}

void
wabiz_media_export(WabizAccount *wa, const char *customer_id, const char *dir, const char *conv_name)
{
  ExportJob *job;

  if (wa->store == NULL || customer_id == NULL)
    return;
  job = g_new0(ExportJob, 1);
  job->wa = wa;
  job->account_user = g_strdup(purple_account_get_username(wa->account));
  job->conv_name = g_strdup(conv_name);
  job->dir = g_strdup(dir);
  job->items = g_ptr_array_new_with_free_func((GDestroyNotify) export_item_free);
  wa_store_media_of_customer(wa->store, customer_id, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_DONE), export_list_cb,
                             wabiz_store_hold(wa, job, (GDestroyNotify) export_job_free));
}
