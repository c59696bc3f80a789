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

#include <stdlib.h>
#include <string.h>

static void compose_free(WabizCompose *c);

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
say_not_stored(WabizAccount *wa, const char *customer, const GError *error)
{
  g_autofree char *text = g_strdup_printf(_("Not sent: the message could not be stored (%s)."),
                                          error != NULL ? error->message : _("the account is offline"));

  wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
}

/* A part is in the outbox: a file's line is written then (text was echoed). */
static void
queued_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  FileQueued *fq = data;

  wabiz_store_release(fq->wa, fq);
  if (error != NULL)
    say_not_stored(fq->wa, fq->customer, error);
  else if (fq->line != NULL)
    wabiz_conv_write_plain(wabiz_conv_im(fq->wa->account, fq->customer, TRUE), fq->line, PURPLE_MESSAGE_SEND, 0);
  file_queued_free(fq);
}

static void enqueue(FileSend *fs, const char *media_id);

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
      if (reply->error->klass == WA_ERROR_CLASS_AUTH)
        wabiz_token_refused(fs->wa, reply->error);
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
  fs->customer = wa_group_address_id(who) != NULL ? g_strdup(who) : wa_customer_id_normalize(who, cc, &error);
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
  /* groups have no 24-hour window */
  if (wa_group_address_id(fs->customer) == NULL &&
      wabiz_window_state(wa->account, fs->customer, NULL) == WA_WINDOW_CLOSED) {
    say_error(fs, fs->customer, wabiz_window_closed_text());
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
  gboolean group = purple_conversation_get_type(conv) == PURPLE_CONV_TYPE_CHAT;
  /* a group chat's file goes to the group's address (wa-phone.h) */
  g_autofree char *address = group ? wa_group_address(purple_conversation_get_name(conv)) : NULL;
  const char *who = group ? address : purple_conversation_get_name(conv);
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
  if (who == NULL) {
    *error = g_strdup(_("This chat is not a WhatsApp group the plugin knows."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (wabiz_bitlbee() || group) {
    /* no transfers in BitlBee, nor to a group (libpurple's are to a buddy):
     * lines say what happens */
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

/* ---- pasted images: a message with <img id="N"> ------------------------------------------
 * Pidgin puts images pasted or inserted into a message in its imgstore and
 * sends <img id="N"> in the HTML. Each image is checked and uploaded from
 * the imgstore's bytes, one after the other; then the parts of the message
 * go into the outbox in their order (text as text, images by id), all in
 * one go, so the store keeps the order. An image that is refused or whose
 * upload fails is told and left out; the rest still goes. */

typedef struct {
  char *text;         /* WhatsApp text, or NULL for an image */
  char *caption;      /* an image's (a file's) caption, or NULL */
  GBytes *data;       /* the image's bytes, until uploaded */
  WaMediaInfo *info;  /* the image */
  char *media_id;     /* once uploaded */
  gboolean attempted; /* its upload has ended (media_id or not) */
} Part;

struct _WabizCompose {
  WabizAccount *wa;
  char *customer;
  GPtrArray *parts;    /* Part* in the message's order */
  WaGraphCall *upload; /* the one upload in flight */
  Part *uploading;
};

static void
part_free(Part *part)
{
  if (part->text != NULL)
    sodium_memzero(part->text, strlen(part->text));
  g_free(part->text);
  g_free(part->caption);
  g_clear_pointer(&part->data, g_bytes_unref);
  wa_media_info_free(part->info);
  g_free(part->media_id);
  g_free(part);
}

static void
compose_free(WabizCompose *c)
{
  c->wa->composes = g_list_remove(c->wa->composes, c);
  if (c->upload != NULL)
    wa_graph_cancel(c->upload);
  g_ptr_array_unref(c->parts);
  g_free(c->customer);
  g_free(c);
}

static WabizCompose *
compose_new(WabizAccount *wa, const char *customer)
{
  WabizCompose *c = g_new0(WabizCompose, 1);

  c->wa = wa;
  c->customer = g_strdup(customer);
  c->parts = g_ptr_array_new_with_free_func((GDestroyNotify) part_free);
  wa->composes = g_list_prepend(wa->composes, c);
  return c;
}

gboolean
wabiz_file_has_images(const char *html)
{
  const char *start, *end;
  GData *attributes = NULL;
  gboolean found = FALSE;

  if (html == NULL)
    return FALSE;
  if (purple_markup_find_tag("img", html, &start, &end, &attributes)) {
    found = g_datalist_get_data(&attributes, "id") != NULL;
    g_datalist_clear(&attributes);
  }
  return found;
}

static void
add_text(WabizCompose *c, const char *html, gsize len)
{
  g_autofree char *chunk = g_strndup(html, len);
  char *text = wa_html_to_whatsapp(chunk);
  Part *part;

  g_strstrip(text);
  if (*text == '\0') {
    g_free(text);
    return;
  }
  part = g_new0(Part, 1);
  part->text = text;
  g_ptr_array_add(c->parts, part);
}

static void
add_image(WabizCompose *c, int id)
{
  PurpleStoredImage *img = purple_imgstore_find_by_id(id);
  g_autoptr(GError) error = NULL;
  Part *part;
  const char *name;
  gsize size;

  if (img == NULL)
    return;
  size = purple_imgstore_get_size(img);
  name = purple_imgstore_get_filename(img);
  part = g_new0(Part, 1);
  part->data = g_bytes_new(purple_imgstore_get_data(img), size);
  part->info = wa_media_classify_bytes(purple_imgstore_get_data(img), size, size,
                                       name != NULL && *name != '\0' ? name : "image", &error);
  if (part->info == NULL) {
    wabiz_conv_write_plain(wabiz_conv_im(c->wa->account, c->customer, TRUE), error->message, PURPLE_MESSAGE_ERROR, 0);
    part_free(part);
    return;
  }
  g_ptr_array_add(c->parts, part);
}

static void compose_next(WabizCompose *c);
static void compose_queue(WabizCompose *c);

static void
compose_ensured(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  WabizCompose *c = data;
  WabizAccount *wa = c->wa;
  PurpleBuddy *buddy;

  wabiz_store_release(wa, c);
  if (error != NULL || wa->sender == NULL) {
    say_not_stored(wa, c->customer, error);
    compose_free(c);
    return;
  }
  buddy = purple_find_buddy(wa->account, c->customer);
  if (buddy != NULL)
    wabiz_customer_identify(wa, buddy, update->customer->id, NULL);
  /* all in one go: the store runs them in this order */
  for (guint i = 0; i < c->parts->len; i++) {
    Part *part = g_ptr_array_index(c->parts, i);
    FileQueued *fq;

    if (part->text != NULL) {
      g_auto(GStrv) pieces = wa_text_split(part->text, WA_TEXT_MAX_UNITS);

      for (guint j = 0; pieces[j] != NULL; j++) {
        fq = g_new0(FileQueued, 1);
        fq->wa = wa;
        fq->customer = g_strdup(c->customer);
        wa_sender_enqueue_text(wa->sender, update->customer->id, c->customer, pieces[j], wa_text_has_url(pieces[j]),
                               queued_cb, wabiz_store_hold(wa, fq, (GDestroyNotify) file_queued_free));
        sodium_memzero(pieces[j], strlen(pieces[j]));
      }
      continue;
    }
    if (part->media_id == NULL)
      continue; /* refused or failed: told already */
    fq = g_new0(FileQueued, 1);
    fq->wa = wa;
    fq->customer = g_strdup(c->customer);
    fq->type = g_strdup(wa_media_kind_name(part->info->kind));
    fq->payload = wa_media_payload_new(part->info, part->media_id, part->caption);
    fq->line = wa_media_describe(part->info);
    if (part->caption != NULL && wa_media_takes_caption(part->info->kind)) {
      char *with = g_strdup_printf("%s\n%s", fq->line, part->caption);

      g_free(fq->line);
      fq->line = with;
    }
    wa_sender_enqueue(wa->sender, update->customer->id, c->customer, fq->type, fq->line, fq->payload, queued_cb,
                      wabiz_store_hold(wa, fq, (GDestroyNotify) file_queued_free));
  }
  compose_free(c);
}

static void
compose_uploaded(WaGraphReply *reply, gpointer data)
{
  WabizCompose *c = data;
  Part *part = c->uploading;
  g_autoptr(GError) error = NULL;

  c->upload = NULL;
  c->uploading = NULL;
  part->attempted = TRUE;
  g_clear_pointer(&part->data, g_bytes_unref);
  if (reply->error == NULL)
    part->media_id = wa_media_id_from_json(reply->object, &error);
  if (reply->error != NULL) {
    wabiz_report_unsent(c->wa->account, c->customer, reply->error, FALSE);
    if (reply->error->klass == WA_ERROR_CLASS_AUTH)
      wabiz_token_refused(c->wa, reply->error);
  } else if (part->media_id == NULL) {
    g_autofree char *text = g_strdup_printf(_("Not sent: %s"), error->message);

    wabiz_conv_write_plain(wabiz_conv_im(c->wa->account, c->customer, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
  }
  compose_next(c);
}

/* Uploads the next image, or queues everything once all are done. */
static void
compose_next(WabizCompose *c)
{
  WabizAccount *wa = c->wa;

  for (guint i = 0; i < c->parts->len; i++) {
    Part *part = g_ptr_array_index(c->parts, i);

    if (part->text != NULL || part->attempted)
      continue;
    c->uploading = part;
    c->upload = wa_graph_upload_media_bytes(wa->graph, wa->pnid, part->data, part->info->mime, part->info->filename,
                                            compose_uploaded, c);
    if (c->upload != NULL)
      return;
    c->uploading = NULL;
    part->attempted = TRUE;
  }
  compose_queue(c);
}

/* Every upload has ended: the parts go into the outbox. */
static void
compose_queue(WabizCompose *c)
{
  WabizAccount *wa = c->wa;

  /* no longer in flight: the store holds it from here */
  wa->composes = g_list_remove(wa->composes, c);
  if (wa->store == NULL || wa->sender == NULL) {
    compose_free(c);
    return;
  }
  wabiz_store_ensure_address(wa, c->customer, compose_ensured, wabiz_store_hold(wa, c, (GDestroyNotify) compose_free));
}

/* An uploaded file: a message of one part. */
static void
enqueue(FileSend *fs, const char *media_id)
{
  WabizCompose *c = compose_new(fs->wa, fs->customer);
  Part *part = g_new0(Part, 1);

  part->info = g_steal_pointer(&fs->info);
  part->media_id = g_strdup(media_id);
  part->caption = g_steal_pointer(&fs->caption);
  part->attempted = TRUE;
  g_ptr_array_add(c->parts, part);
  compose_queue(c);
}

void
wabiz_file_send_composed(WabizAccount *wa, const char *customer, const char *html)
{
  WabizCompose *c = compose_new(wa, customer);
  const char *p = html;
  const char *start, *end;
  GData *attributes = NULL;

  while (purple_markup_find_tag("img", p, &start, &end, &attributes)) {
    const char *id = g_datalist_get_data(&attributes, "id");

    add_text(c, p, start - p);
    if (id != NULL)
      add_image(c, atoi(id));
    g_datalist_clear(&attributes);
    p = end + 1;
  }
  add_text(c, p, strlen(p));
  compose_next(c);
}

/* Cancels the uploads in flight (sign-off): nothing of them was queued. */
void
wabiz_file_stop(WabizAccount *wa)
{
  const char *text = _("Not sent: the account signed off during the upload. Send the file again once it is back.");

  while (wa->composes != NULL) {
    WabizCompose *c = wa->composes->data;

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, c->customer, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
    compose_free(c);
  }
  while (wa->uploads != NULL) {
    FileSend *fs = wa->uploads->data;

    if (fs->upload != NULL)
      say_error(fs, fs->customer, text);
    file_send_end(fs);
  }
}
