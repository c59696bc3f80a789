/* wabiz-file.c: sending files to customers: the prpl's send_file (Pidgin's
 * "Send File..." and drag and drop, BitlBee's DCC SEND) and /sendfile PATH
 * [CAPTION] (every client).
 *
 * A file is typed by its content and checked against WhatsApp's limits
 * (plugin/core wa-media) before anything is uploaded; a refusal is a line
 * in the conversation. It is then uploaded (POST /{phone-number-id}/media,
 * streamed from disk, progress on the PurpleXfer), and only the media id
 * goes into the outbox, as a message payload: the send itself is durable
 * and paced like text, and a restart sends the stored id again without a
 * second upload (uploaded ids live 30 days at Meta). An upload cut short by
 * a sign-off or a crash queued nothing: the agent sends the file again.
 *
 * Must not: send a link instead of an uploaded id, read a whole file into
 * memory, or keep a PurpleXfer after the account signed off. */
#include "wabiz.h"

#include <string.h>

typedef struct {
  WabizAccount *wa;
  PurpleXfer *xfer; /* NULL for /sendfile in BitlBee (no transfers there) */
  char *customer;   /* normalised */
  char *path;
  char *caption;
  WaMediaInfo *info;
  WaGraphCall *upload;
  gboolean ending; /* our own cancel of the xfer: nothing to undo */
} FileSend;

/* From the upload to the outbox: the store step. */
typedef struct {
  WabizAccount *wa;
  char *customer;
  char *type;
  char *line;
  char *payload;
} FileQueued;

static void
file_send_free(FileSend *fs)
{
  g_free(fs->customer);
  g_free(fs->path);
  g_free(fs->caption);
  wa_media_info_free(fs->info);
  g_free(fs);
}

static void
file_queued_free(FileQueued *fq)
{
  g_free(fq->customer);
  g_free(fq->type);
  g_free(fq->line);
  g_free(fq->payload);
  g_free(fq);
}

static void
say_error(FileSend *fs, const char *who, const char *text)
{
  wabiz_conv_write_plain(wabiz_conv_im(fs->wa->account, who, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
}

/* Ends @fs: its transfer (if any) is cancelled when not completed. */
static void
file_send_end(FileSend *fs)
{
  WabizAccount *wa = fs->wa;

  wa->uploads = g_list_remove(wa->uploads, fs);
  if (fs->upload != NULL)
    wa_graph_cancel(fs->upload);
  fs->upload = NULL;
  if (fs->xfer != NULL) {
    PurpleXfer *xfer = fs->xfer;

    fs->xfer = NULL;
    xfer->data = NULL;
    fs->ending = TRUE;
    if (purple_xfer_is_completed(xfer))
      purple_xfer_end(xfer);
    else if (!purple_xfer_is_canceled(xfer))
      purple_xfer_cancel_local(xfer);
    purple_xfer_unref(xfer);
  }
  file_send_free(fs);
}

/* ---- into the outbox ------------------------------------------------------------ */

static void
queued_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  FileQueued *fq = data;
  PurpleConversation *conv = wabiz_conv_im(fq->wa->account, fq->customer, TRUE);

  wabiz_store_release(fq->wa, fq);
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("Not sent: the message could not be stored (%s)."), error->message);

    wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_ERROR, 0);
  } else {
    wabiz_conv_write_plain(conv, fq->line, PURPLE_MESSAGE_SEND, 0);
  }
  file_queued_free(fq);
}

static void
ensured_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  FileQueued *fq = data;
  WabizAccount *wa = fq->wa;
  PurpleBuddy *buddy;

  wabiz_store_release(wa, fq);
  if (error != NULL || wa->sender == NULL) {
    g_autofree char *text = g_strdup_printf(_("Not sent: the message could not be stored (%s)."),
                                            error != NULL ? error->message : _("the account is offline"));

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, fq->customer, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
    file_queued_free(fq);
    return;
  }
  buddy = purple_find_buddy(wa->account, fq->customer);
  if (buddy != NULL)
    wabiz_customer_identify(wa, buddy, update->customer->id, NULL);
  wa_sender_enqueue_payload(wa->sender, update->customer->id, fq->customer, fq->type, fq->line, fq->payload, queued_cb,
                            wabiz_store_hold(wa, fq, (GDestroyNotify) file_queued_free));
}

/* The uploaded media id of @fs goes into the outbox. */
static void
enqueue(FileSend *fs, const char *media_id)
{
  WabizAccount *wa = fs->wa;
  FileQueued *fq = g_new0(FileQueued, 1);
  g_autofree char *line = wa_media_describe(fs->info);
  gboolean bsuid = wa_id_is_bsuid(fs->customer);

  fq->wa = wa;
  fq->customer = g_strdup(fs->customer);
  fq->type = g_strdup(wa_media_kind_name(fs->info->kind));
  fq->payload = wa_media_payload_new(fs->info, media_id, fs->caption);
  if (fs->caption != NULL && fs->info->kind != WA_MEDIA_AUDIO && fs->info->kind != WA_MEDIA_STICKER)
    fq->line = g_strdup_printf("%s\n%s", line, fs->caption);
  else
    fq->line = g_steal_pointer(&line);
  wa_store_customer_ensure(wa->store, bsuid ? NULL : fs->customer, bsuid ? fs->customer : NULL, NULL,
                           WA_STORE_ENSURE_DEFAULT, ensured_cb,
                           wabiz_store_hold(wa, fq, (GDestroyNotify) file_queued_free));
}

/* ---- the upload ---------------------------------------------------------------------- */

static void
upload_progress(guint64 sent, guint64 total, gpointer data)
{
  FileSend *fs = data;
  guint64 size = fs->info->size;

  if (fs->xfer == NULL || total == 0)
    return;
  /* @total counts the form around the file too */
  purple_xfer_set_bytes_sent(fs->xfer, (size_t) MIN(size, sent * size / total));
  purple_xfer_update_progress(fs->xfer);
}

static void
uploaded_cb(WaGraphReply *reply, gpointer data)
{
  FileSend *fs = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *media_id = NULL;

  fs->upload = NULL;
  if (reply->error == NULL)
    media_id = wa_media_id_from_json(reply->object, &error);
  if (media_id == NULL) {
    if (reply->error != NULL) {
      wabiz_report_unsent(fs->wa->account, fs->customer, reply->error, FALSE);
    } else {
      g_autofree char *text = g_strdup_printf(_("Not sent: %s"), error->message);

      say_error(fs, fs->customer, text);
    }
    file_send_end(fs);
    return;
  }
  purple_debug_info("wabiz", "uploaded a %s of %" G_GUINT64_FORMAT " bytes\n", fs->info->mime, fs->info->size);
  if (fs->xfer != NULL) {
    purple_xfer_set_bytes_sent(fs->xfer, (size_t) fs->info->size);
    purple_xfer_update_progress(fs->xfer);
    purple_xfer_set_completed(fs->xfer, TRUE);
  }
  if (fs->wa->store != NULL && fs->wa->sender != NULL)
    enqueue(fs, media_id);
  file_send_end(fs);
}

/* Checks, then uploads. @who: the conversation's name. */
static void
file_begin(FileSend *fs, const char *who)
{
  WabizAccount *wa = fs->wa;
  const char *cc = purple_account_get_string(wa->account, WABIZ_OPT_DEFAULT_CC, NULL);
  g_autoptr(GError) error = NULL;

  wa->uploads = g_list_prepend(wa->uploads, fs);
  if (wabiz_is_notices(who)) {
    say_error(fs, who, _("Not sent: this conversation only shows notices about the account."));
    file_send_end(fs);
    return;
  }
  fs->customer = wa_customer_id_normalize(who, cc, &error);
  if (fs->customer == NULL) {
    g_autofree char *text = g_strdup_printf(_("Not sent: %s"), error->message);

    say_error(fs, who, text);
    file_send_end(fs);
    return;
  }
  fs->info = wa_media_classify_file(fs->path, &error);
  if (fs->info == NULL) {
    say_error(fs, fs->customer, error->message);
    file_send_end(fs);
    return;
  }
  if (fs->caption != NULL && g_utf8_strlen(fs->caption, -1) > WA_MEDIA_CAPTION_MAX) {
    g_autofree char *text = g_strdup_printf(_("Not sent: a caption may have at most %d characters; this one has %ld."),
                                            WA_MEDIA_CAPTION_MAX, g_utf8_strlen(fs->caption, -1));

    say_error(fs, fs->customer, text);
    file_send_end(fs);
    return;
  }
  if (wabiz_window_state(wa->account, fs->customer, NULL) == WA_WINDOW_CLOSED) {
    say_error(fs, fs->customer,
              _("Not sent: the 24-hour service window with this customer has closed. WhatsApp "
                "only allows an approved message template until the customer writes again."));
    file_send_end(fs);
    return;
  }
  if (fs->xfer != NULL) {
    purple_xfer_set_size(fs->xfer, (size_t) fs->info->size);
    purple_xfer_start(fs->xfer, -1, NULL, 0);
  } else {
    g_autofree char *line = wa_media_describe(fs->info);
    g_autofree char *text = g_strdup_printf(_("Uploading %s ..."), line);

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, fs->customer, TRUE), text, PURPLE_MESSAGE_SYSTEM, 0);
  }
  fs->upload = wa_graph_upload_media(wa->graph, wa->pnid, fs->path, fs->info->mime, fs->info->filename, upload_progress,
                                     fs, uploaded_cb, fs);
  if (fs->upload == NULL) {
    say_error(fs, fs->customer, _("Not sent: the upload could not be started."));
    file_send_end(fs);
  }
}

/* ---- transfers ------------------------------------------------------------------------- */

static void
xfer_init(PurpleXfer *xfer)
{
  FileSend *fs = xfer->data;

  if (fs == NULL)
    return;
  g_free(fs->path);
  fs->path = g_strdup(purple_xfer_get_local_filename(xfer));
  file_begin(fs, purple_xfer_get_remote_user(xfer));
}

/* The agent cancelled (or the core did): the upload stops, nothing is queued. */
static void
xfer_cancel(PurpleXfer *xfer)
{
  FileSend *fs = xfer->data;

  if (fs == NULL || fs->ending)
    return;
  if (g_list_find(fs->wa->uploads, fs) == NULL) {
    /* refused before file_begin, or never started */
    xfer->data = NULL;
    fs->xfer = NULL;
    purple_xfer_unref(xfer);
    file_send_free(fs);
    return;
  }
  fs->ending = TRUE;
  fs->xfer = NULL;
  xfer->data = NULL;
  purple_xfer_unref(xfer);
  file_send_end(fs);
}

static void
xfer_noop(PurpleXfer *xfer)
{
}

static FileSend *
file_send_new(WabizAccount *wa, const char *who, const char *path, const char *caption, gboolean with_xfer)
{
  FileSend *fs = g_new0(FileSend, 1);

  fs->wa = wa;
  fs->path = g_strdup(path);
  fs->caption = caption != NULL && *caption != '\0' ? g_strdup(caption) : NULL;
  if (with_xfer) {
    fs->xfer = purple_xfer_new(wa->account, PURPLE_XFER_SEND, who);
    purple_xfer_ref(fs->xfer); /* ours until file_send_end */
    fs->xfer->data = fs;
    purple_xfer_set_init_fnc(fs->xfer, xfer_init);
    purple_xfer_set_cancel_send_fnc(fs->xfer, xfer_cancel);
    purple_xfer_set_request_denied_fnc(fs->xfer, xfer_cancel);
    purple_xfer_set_end_fnc(fs->xfer, xfer_noop);
  }
  return fs;
}

gboolean
wabiz_can_receive_file(PurpleConnection *gc, const char *who)
{
  return who != NULL && !wabiz_is_notices(who);
}

void
wabiz_send_file(PurpleConnection *gc, const char *who, const char *filename)
{
  WabizAccount *wa = purple_connection_get_protocol_data(gc);
  FileSend *fs;

  if (wa == NULL || wa->graph == NULL)
    return;
  fs = file_send_new(wa, who, filename, NULL, TRUE);
  if (filename != NULL && *filename != '\0')
    purple_xfer_request_accepted(fs->xfer, filename);
  else
    purple_xfer_request(fs->xfer); /* the UI asks for the file */
}

/* Cancels the uploads in flight (sign-off): nothing of them was queued. */
void
wabiz_file_stop(WabizAccount *wa)
{
  while (wa->uploads != NULL)
    file_send_end(wa->uploads->data);
}

/* "PATH [CAPTION]", PATH in double quotes when it has spaces; ~ is home. */
static gboolean
parse_sendfile(const char *args, char **path, char **caption)
{
  const char *p = args != NULL ? args : "";
  const char *end;
  g_autofree char *raw = NULL;

  while (g_ascii_isspace(*p))
    p++;
  if (*p == '"') {
    end = strchr(p + 1, '"');
    if (end == NULL)
      return FALSE;
    raw = g_strndup(p + 1, end - p - 1);
    end++;
  } else {
    end = p;
    while (*end != '\0' && !g_ascii_isspace(*end))
      end++;
    raw = g_strndup(p, end - p);
  }
  if (*raw == '\0')
    return FALSE;
  while (g_ascii_isspace(*end))
    end++;
  if (raw[0] == '~' && (raw[1] == '/' || raw[1] == '\0'))
    *path = g_build_filename(g_get_home_dir(), raw + 1, NULL);
  else
    *path = g_steal_pointer(&raw);
  *caption = *end != '\0' ? g_strdup(end) : NULL;
  return TRUE;
}

PurpleCmdRet
wabiz_cmd_sendfile(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  PurpleConnection *gc = purple_conversation_get_gc(conv);
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  const char *who = purple_conversation_get_name(conv);
  g_autofree char *path = NULL;
  g_autofree char *caption = NULL;
  FileSend *fs;

  if (wa == NULL || wa->graph == NULL) {
    *error = g_strdup(_("The account is not connected."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (!parse_sendfile(args != NULL ? args[0] : NULL, &path, &caption)) {
    *error = g_strdup(_("Usage: /sendfile PATH [CAPTION] (a PATH with spaces in double quotes)"));
    return PURPLE_CMD_RET_FAILED;
  }
  if (wabiz_bitlbee()) {
    /* no transfers in BitlBee: lines say what happens */
    fs = file_send_new(wa, who, path, caption, FALSE);
    file_begin(fs, who);
    return PURPLE_CMD_RET_OK;
  }
  if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
    g_autofree char *text = g_strdup_printf(_("Not sent: %s is not a file that can be read."), path);

    wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_ERROR, 0);
    return PURPLE_CMD_RET_OK;
  }
  fs = file_send_new(wa, who, path, caption, TRUE);
  purple_xfer_request_accepted(fs->xfer, path);
  return PURPLE_CMD_RET_OK;
}
