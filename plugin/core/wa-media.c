/* wa-media.c: files to send, classified by content with libmagic and
 * checked against the Cloud API's table of types and limits (wa-media.h).
 *
 * libmagic was chosen over GIO's content-type guess because GIO needs the
 * shared-mime-info database, which a minimal Debian system may lack (it is
 * only recommended), and then guesses nothing; libmagic1 always brings its
 * compiled database (libmagic-mgc). One magic cookie per process, used on
 * the main thread only (libmagic is not thread-safe per cookie). */
#include "wa-media.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <magic.h>
#include <string.h>

#include "wa-i18n.h"

/* libmagic reads no further for the types in the table below */
#define HEAD_BYTES (256 * 1024)

#define KB 1000
#define MB (1000 * 1000)

G_DEFINE_QUARK(wa - media - error - quark, wa_media_error)

/* Meta's supported media (docs/CLOUD-API.md, Media: types and limits):
 * what libmagic says -> what is declared, the kind and its limit. */
static const struct {
  const char *sniffed;
  const char *mime;
  WaMediaKind kind;
  guint64 limit;
} table[] = {
  {"image/jpeg", "image/jpeg", WA_MEDIA_IMAGE, 5 * MB},
  {"image/png", "image/png", WA_MEDIA_IMAGE, 5 * MB},
  {"image/webp", "image/webp", WA_MEDIA_STICKER, 100 * KB}, /* 500 KB when animated */
  {"audio/aac", "audio/aac", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/x-hx-aac-adts", "audio/aac", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/x-hx-aac-adif", "audio/aac", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/amr", "audio/amr", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/x-amr", "audio/amr", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/mpeg", "audio/mpeg", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/mp4", "audio/mp4", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/x-m4a", "audio/mp4", WA_MEDIA_AUDIO, 16 * MB},
  {"audio/ogg", "audio/ogg; codecs=opus", WA_MEDIA_AUDIO, 16 * MB}, /* Opus only */
  {"video/mp4", "video/mp4", WA_MEDIA_VIDEO, 16 * MB},
  {"video/3gpp", "video/3gpp", WA_MEDIA_VIDEO, 16 * MB},
  {"application/pdf", "application/pdf", WA_MEDIA_DOCUMENT, 100 * MB},
  {"text/plain", "text/plain", WA_MEDIA_DOCUMENT, 100 * MB},
  {"application/msword", "application/msword", WA_MEDIA_DOCUMENT, 100 * MB},
  {"application/vnd.ms-excel", "application/vnd.ms-excel", WA_MEDIA_DOCUMENT, 100 * MB},
  {"application/vnd.ms-powerpoint", "application/vnd.ms-powerpoint", WA_MEDIA_DOCUMENT, 100 * MB},
  {"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
   "application/vnd.openxmlformats-officedocument.wordprocessingml.document", WA_MEDIA_DOCUMENT, 100 * MB},
  {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", WA_MEDIA_DOCUMENT, 100 * MB},
  {"application/vnd.openxmlformats-officedocument.presentationml.presentation",
   "application/vnd.openxmlformats-officedocument.presentationml.presentation", WA_MEDIA_DOCUMENT, 100 * MB},
};

#define STICKER_ANIMATED_LIMIT (500 * KB)

void
wa_media_info_free(WaMediaInfo *info)
{
  if (info == NULL)
    return;
  g_free(info->mime);
  g_free(info->sniffed);
  g_free(info->filename);
  g_free(info);
}

const char *
wa_media_kind_name(WaMediaKind kind)
{
  switch (kind) {
  case WA_MEDIA_IMAGE:
    return "image";
  case WA_MEDIA_AUDIO:
    return "audio";
  case WA_MEDIA_VIDEO:
    return "video";
  case WA_MEDIA_DOCUMENT:
    return "document";
  case WA_MEDIA_STICKER:
    return "sticker";
  case WA_MEDIA_NONE:
  default:
    return NULL;
  }
}

const char *
wa_media_kind_label(WaMediaKind kind, gboolean voice)
{
  switch (kind) {
  case WA_MEDIA_IMAGE:
    return _("Image");
  case WA_MEDIA_AUDIO:
    return voice ? _("Voice note") : _("Audio");
  case WA_MEDIA_VIDEO:
    return _("Video");
  case WA_MEDIA_DOCUMENT:
    return _("Document");
  case WA_MEDIA_STICKER:
    return _("Sticker");
  case WA_MEDIA_NONE:
  default:
    return _("File");
  }
}

gboolean
wa_media_takes_caption(WaMediaKind kind)
{
  return kind == WA_MEDIA_IMAGE || kind == WA_MEDIA_VIDEO || kind == WA_MEDIA_DOCUMENT;
}

char *
wa_media_format_size(guint64 bytes)
{
  if (bytes < KB)
    return g_strdup_printf(ngettext("%u byte", "%u bytes", (gulong) bytes), (guint) bytes);
  if (bytes < MB)
    return g_strdup_printf(_("%u KB"), (guint) ((bytes + KB / 2) / KB));
  return g_strdup_printf(_("%.1f MB"), (double) bytes / MB);
}

/* ---- libmagic ---------------------------------------------------------------- */

typedef struct {
  magic_t mime; /* MAGIC_MIME_TYPE */
  magic_t text; /* descriptions ("Ogg data, Opus audio") */
} Magic;

static gpointer
magic_init(gpointer unused)
{
  Magic *m = g_new0(Magic, 1);

  m->mime = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
  m->text = magic_open(MAGIC_ERROR);
  if (m->mime != NULL && magic_load(m->mime, NULL) != 0)
    g_clear_pointer(&m->mime, magic_close);
  if (m->text != NULL && magic_load(m->text, NULL) != 0)
    g_clear_pointer(&m->text, magic_close);
  return m;
}

static Magic *
magic_get(void)
{
  static GOnce once = G_ONCE_INIT;
  return g_once(&once, magic_init, NULL);
}

/* A WebP whose VP8X header has the animation flag (bit 1 of byte 20). */
static gboolean
webp_animated(const guint8 *head, gsize len)
{
  return len >= 21 && memcmp(head + 12, "VP8X", 4) == 0 && (head[20] & 0x02) != 0;
}

static char *
safe_name(const char *name)
{
  g_autofree char *base = g_path_get_basename(name != NULL && *name != '\0' ? name : "file");
  char *clean = g_utf8_make_valid(base, -1);

  for (char *p = clean; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = '_';
  if (*clean == '\0' || g_str_equal(clean, ".") || g_str_equal(clean, "..") || g_str_equal(clean, "/")) {
    g_free(clean);
    clean = g_strdup("file");
  }
  return clean;
}

/* Why @sniffed cannot go, as the agent reads it. */
static void
set_unsupported(GError **error, const char *name, const char *sniffed, const char *description)
{
  const char *hint;

  if (g_str_has_prefix(sniffed, "image/"))
    hint = _("WhatsApp takes pictures as JPEG or PNG (up to 5 MB) and stickers as WebP.");
  else if (g_str_equal(sniffed, "audio/ogg"))
    hint = _("WhatsApp takes Ogg audio only with the Opus codec; AAC, AMR, MP3 and MP4 audio go too.");
  else if (g_str_has_prefix(sniffed, "audio/"))
    hint = _("WhatsApp takes audio as AAC, AMR, MP3, MP4 or Ogg Opus (up to 16 MB).");
  else if (g_str_has_prefix(sniffed, "video/"))
    hint = _("WhatsApp takes video as MP4 or 3GPP (up to 16 MB).");
  else
    hint = _("WhatsApp takes documents as PDF, plain text, Word, Excel or PowerPoint (up to 100 MB).");
  g_set_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNSUPPORTED,
              _("Not sent: %s is of a type WhatsApp does not accept (%s%s%s). %s"), name, sniffed,
              description != NULL ? ", " : "", description != NULL ? description : "", hint);
}

WaMediaInfo *
wa_media_classify_bytes(const guint8 *head, gsize head_len, guint64 size, const char *name, GError **error)
{
  Magic *m = magic_get();
  g_autoptr(WaMediaInfo) info = g_new0(WaMediaInfo, 1);
  g_autofree char *description = NULL;
  const char *sniffed;

  info->filename = safe_name(name);
  info->size = size;
  if (size == 0 || head_len == 0) {
    g_set_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_EMPTY, _("Not sent: %s is empty."), info->filename);
    return NULL;
  }
  if (m->mime == NULL || m->text == NULL) {
    g_set_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNSUPPORTED,
                _("Not sent: the file type database (libmagic) could not be loaded."));
    return NULL;
  }
  sniffed = magic_buffer(m->mime, head, head_len);
  info->sniffed = g_strdup(sniffed != NULL ? sniffed : "application/octet-stream");
  {
    const char *text = magic_buffer(m->text, head, head_len);
    description = g_strdup(text);
  }
  for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
    if (!g_str_equal(table[i].sniffed, info->sniffed))
      continue;
    info->kind = table[i].kind;
    info->mime = g_strdup(table[i].mime);
    info->limit = table[i].limit;
    break;
  }
  if (info->kind == WA_MEDIA_NONE && g_str_equal(info->sniffed, "application/zip")) {
    /* an Office Open XML file whose parts are not in the order libmagic
     * looks for is just a ZIP to it: the content says "ZIP container",
     * the name says which of the three */
    static const char *const ooxml[][2] = {
      {".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {".pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    };
    g_autofree char *lower = g_ascii_strdown(info->filename, -1);

    for (guint i = 0; i < G_N_ELEMENTS(ooxml); i++) {
      if (g_str_has_suffix(lower, ooxml[i][0])) {
        info->kind = WA_MEDIA_DOCUMENT;
        info->mime = g_strdup(ooxml[i][1]);
        info->limit = 100 * MB;
      }
    }
  }
  if (info->kind == WA_MEDIA_NONE && g_str_has_prefix(info->sniffed, "text/")) {
    /* CSV, source code, ...: text, and WhatsApp takes text as text/plain */
    info->kind = WA_MEDIA_DOCUMENT;
    info->mime = g_strdup("text/plain");
    info->limit = 100 * MB;
  }
  if (info->kind == WA_MEDIA_AUDIO && g_str_equal(info->sniffed, "audio/ogg")) {
    if (description == NULL || strstr(description, "Opus audio") == NULL) {
      set_unsupported(error, info->filename, info->sniffed, description);
      return NULL;
    }
    info->voice = TRUE;
  }
  if (info->kind == WA_MEDIA_STICKER && webp_animated(head, head_len)) {
    info->animated = TRUE;
    info->limit = STICKER_ANIMATED_LIMIT;
  }
  if (info->kind == WA_MEDIA_NONE) {
    set_unsupported(error, info->filename, info->sniffed, NULL);
    return NULL;
  }
  if (size > info->limit) {
    g_autofree char *have = wa_media_format_size(size);
    g_autofree char *max = wa_media_format_size(info->limit);
    const char *hint = "";

    if (info->kind == WA_MEDIA_IMAGE || info->kind == WA_MEDIA_VIDEO)
      hint = _(" Make it smaller, or put it in a PDF (documents go up to 100 MB).");
    g_set_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_TOO_LARGE,
                _("Not sent: %s is %s, and WhatsApp takes %s files (%s) up to %s.%s"), info->filename, have,
                wa_media_kind_name(info->kind), info->mime, max, hint);
    return NULL;
  }
  return g_steal_pointer(&info);
}

WaMediaInfo *
wa_media_classify_file(const char *path, GError **error)
{
  g_autoptr(GFile) file = g_file_new_for_path(path);
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(GFileInfo) finfo = NULL;
  g_autofree guint8 *head = g_malloc(HEAD_BYTES);
  g_autoptr(GError) local = NULL;
  gsize got = 0;

  in = g_file_read(file, NULL, &local);
  if (in != NULL)
    finfo = g_file_input_stream_query_info(in, G_FILE_ATTRIBUTE_STANDARD_SIZE "," G_FILE_ATTRIBUTE_STANDARD_TYPE, NULL,
                                           &local);
  if (finfo != NULL && g_file_info_get_file_type(finfo) != G_FILE_TYPE_REGULAR)
    g_set_error_literal(&local, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE, _("not a regular file"));
  if (local == NULL)
    g_input_stream_read_all(G_INPUT_STREAM(in), head, HEAD_BYTES, &got, NULL, &local);
  if (local != NULL) {
    g_autofree char *name = g_filename_display_basename(path);

    g_set_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNREADABLE, _("Not sent: %s cannot be read (%s)."), name,
                local->message);
    return NULL;
  }
  return wa_media_classify_bytes(head, got, (guint64) g_file_info_get_size(finfo), path, error);
}

char *
wa_media_describe(const WaMediaInfo *info)
{
  g_autofree char *size = wa_media_format_size(info->size);

  return g_strdup_printf("[%s] %s, %s", wa_media_kind_label(info->kind, info->voice), info->filename, size);
}

char *
wa_media_payload_new(const WaMediaInfo *info, const char *media_id, const char *caption)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonGenerator) gen = json_generator_new();
  g_autoptr(JsonNode) root = NULL;
  const char *kind = wa_media_kind_name(info->kind);
  gboolean caption_ok = wa_media_takes_caption(info->kind);

  g_return_val_if_fail(kind != NULL && media_id != NULL, NULL);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, kind);
  json_builder_set_member_name(b, kind);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "id");
  json_builder_add_string_value(b, media_id);
  if (caption_ok && caption != NULL && *caption != '\0') {
    json_builder_set_member_name(b, "caption");
    json_builder_add_string_value(b, caption);
  }
  if (info->kind == WA_MEDIA_DOCUMENT) {
    json_builder_set_member_name(b, "filename");
    json_builder_add_string_value(b, info->filename);
  }
  if (info->kind == WA_MEDIA_AUDIO && info->voice) {
    json_builder_set_member_name(b, "voice");
    json_builder_add_boolean_value(b, TRUE);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  return json_generator_to_data(gen, NULL);
}
