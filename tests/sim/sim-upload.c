/* sim-upload.c: media uploads as the Cloud API takes them: a multipart
 * form with messaging_product=whatsapp, type=<MIME> and the file; the
 * supported types and their size limits (docs/CLOUD-API.md, Media: types
 * and limits); the file's first bytes must match the declared type (Meta
 * answers 131053 for a mismatch); answers {"id": "..."}. Faults on uploads
 * are the general ones of /_sim/fault (path "/media"). Media sends that name
 * an id are checked against these uploads. */
#include "sim-upload.h"

#include "sim-json.h"

#include <string.h>

#define KB 1000
#define MB (1000 * 1000)

typedef struct
{
  char *id;
  char *mime;   /* the "type" field, parameters dropped */
  char *codecs; /* "opus" for "audio/ogg; codecs=opus", or NULL */
  gsize size;
  gboolean animated;
} Upload;

static GHashTable *uploads; /* id -> Upload* */
static GPtrArray *uploads_log;
static gint64 uploads_seq;

static const struct
{
  const char *mime;
  const char *kind;
  gsize limit;
  const char *magic; /* the bytes the file starts with, or NULL */
  gsize magic_at;
} types[] = {
  { "image/jpeg", "image", 5 * MB, "\xff\xd8\xff", 0 },
  { "image/png", "image", 5 * MB, "\x89PNG", 0 },
  { "image/webp", "sticker", 500 * KB, "WEBP", 8 },
  { "audio/aac", "audio", 16 * MB, NULL, 0 },
  { "audio/amr", "audio", 16 * MB, "#!AMR", 0 },
  { "audio/mpeg", "audio", 16 * MB, NULL, 0 },
  { "audio/mp4", "audio", 16 * MB, "ftyp", 4 },
  { "audio/ogg", "audio", 16 * MB, "OggS", 0 },
  { "video/mp4", "video", 16 * MB, "ftyp", 4 },
  { "video/3gpp", "video", 16 * MB, "ftyp", 4 },
  { "application/pdf", "document", 100 * MB, "%PDF", 0 },
  { "text/plain", "document", 100 * MB, NULL, 0 },
  { "application/msword", "document", 100 * MB, NULL, 0 },
  { "application/vnd.ms-excel", "document", 100 * MB, NULL, 0 },
  { "application/vnd.ms-powerpoint", "document", 100 * MB, NULL, 0 },
  { "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document", 100 * MB,
    "PK", 0 },
  { "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document", 100 * MB, "PK",
    0 },
  { "application/vnd.openxmlformats-officedocument.presentationml.presentation", "document",
    100 * MB, "PK", 0 },
};

static void
upload_free (gpointer data)
{
  Upload *u = data;

  g_free (u->id);
  g_free (u->mime);
  g_free (u->codecs);
  g_free (u);
}

static void
ensure_registry (void)
{
  if (uploads == NULL)
    {
      uploads = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, upload_free);
      uploads_log = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
    }
}

void
sim_uploads_reset (void)
{
  ensure_registry ();
  g_hash_table_remove_all (uploads);
  g_ptr_array_set_size (uploads_log, 0);
  uploads_seq = 0;
}

JsonNode *
sim_uploads_log (gint64 since)
{
  ensure_registry ();
  return sim_log_since (uploads_log, "uploads", since);
}

static gboolean upload_error (SimError *err, gint64 code, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

/* 100 for a bad parameter, 131053 for media Meta will not take; always FALSE. */
static gboolean
upload_error (SimError *err, gint64 code, const char *format, ...)
{
  va_list args;
  g_autofree char *details = NULL;

  va_start (args, format);
  details = g_strdup_vprintf (format, args);
  va_end (args);
  sim_error_set (err, 400, code,
                 code == 100 ? "(#100) Invalid parameter" : "(#131053) Media upload error", "%s",
                 details);
  return FALSE;
}

#define bad_param(err, ...) upload_error (err, 100, __VA_ARGS__)
#define media_error(err, ...) upload_error (err, 131053, __VA_ARGS__)

/* "audio/ogg; codecs=opus" -> "audio/ogg" and "opus". */
static char *
split_mime (const char *value, char **codecs)
{
  g_auto (GStrv) parts = g_strsplit (value, ";", -1);
  char *mime = g_ascii_strdown (g_strstrip (parts[0]), -1);

  *codecs = NULL;
  for (guint i = 1; parts[i] != NULL; i++)
    {
      char *p = g_strstrip (parts[i]);

      if (g_ascii_strncasecmp (p, "codecs=", 7) == 0)
        {
          g_free (*codecs);
          *codecs = g_ascii_strdown (p + 7, -1);
        }
    }
  return mime;
}

static gboolean
starts_with_at (GBytes *file, const char *magic, gsize at)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (file, &len);
  gsize n = strlen (magic);

  return len >= at + n && memcmp (data + at, magic, n) == 0;
}

char *
sim_upload_media (Sim *sim, const SimNumber *number, SoupServerMessage *msg, SimError *err)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (SoupMultipart) multipart = NULL;
  g_autofree char *product = NULL;
  g_autofree char *type = NULL;
  g_autofree char *file_type = NULL;
  g_autofree char *filename = NULL;
  g_autofree char *mime = NULL;
  g_autofree char *codecs = NULL;
  g_autoptr (GBytes) file = NULL;
  g_autofree char *sha256 = NULL;
  JsonBuilder *entry;
  Upload *u;
  int found = -1;

  ensure_registry ();
  multipart = soup_multipart_new_from_message (headers, bytes);
  if (multipart == NULL)
    {
      bad_param (err, "The request is not multipart/form-data.");
      return NULL;
    }
  for (int i = 0; i < soup_multipart_get_length (multipart); i++)
    {
      SoupMessageHeaders *ph = NULL;
      GBytes *pb = NULL;
      g_autofree char *disposition = NULL;
      g_autoptr (GHashTable) params = NULL;
      const char *name;

      if (!soup_multipart_get_part (multipart, i, &ph, &pb)
          || !soup_message_headers_get_content_disposition (ph, &disposition, &params))
        continue;
      name = g_hash_table_lookup (params, "name");
      if (g_strcmp0 (name, "messaging_product") == 0)
        product = g_strndup (g_bytes_get_data (pb, NULL), g_bytes_get_size (pb));
      else if (g_strcmp0 (name, "type") == 0)
        type = g_strndup (g_bytes_get_data (pb, NULL), g_bytes_get_size (pb));
      else if (g_strcmp0 (name, "file") == 0)
        {
          file = g_bytes_ref (pb);
          filename = g_strdup (g_hash_table_lookup (params, "filename"));
          file_type = g_strdup (soup_message_headers_get_content_type (ph, NULL));
        }
    }
  if (g_strcmp0 (product, "whatsapp") != 0)
    {
      bad_param (err, "Param messaging_product must be \"whatsapp\".");
      return NULL;
    }
  if (type == NULL || *type == '\0')
    {
      bad_param (err, "Param type is required.");
      return NULL;
    }
  if (file == NULL || filename == NULL)
    {
      bad_param (err, "Param file is required (a file part with a file name).");
      return NULL;
    }
  mime = split_mime (type, &codecs);
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    if (g_strcmp0 (types[i].mime, mime) == 0)
      found = (int)i;
  if (found < 0)
    {
      media_error (err, "Unsupported media type: %s.", type);
      return NULL;
    }
  if (file_type != NULL && g_ascii_strncasecmp (file_type, mime, strlen (mime)) != 0)
    {
      media_error (err, "The file's Content-Type (%s) is not the type given (%s).", file_type,
                   type);
      return NULL;
    }
  if (g_bytes_get_size (file) == 0)
    {
      media_error (err, "The file is empty.");
      return NULL;
    }
  if (types[found].magic != NULL
      && !starts_with_at (file, types[found].magic, types[found].magic_at))
    {
      media_error (err, "The file is not of the type given (%s).", type);
      return NULL;
    }
  if (g_str_equal (mime, "audio/ogg") && g_strcmp0 (codecs, "opus") != 0)
    {
      media_error (err, "Ogg audio is accepted with the Opus codec only (audio/ogg; codecs=opus).");
      return NULL;
    }
  {
    gsize limit = types[found].limit;
    gboolean animated = g_str_equal (mime, "image/webp") && g_bytes_get_size (file) >= 21
                        && (((const guint8 *)g_bytes_get_data (file, NULL))[20] & 0x02) != 0;

    if (g_str_equal (mime, "image/webp") && !animated)
      limit = 100 * KB;
    if (g_bytes_get_size (file) > limit)
      {
        media_error (err, "The file is %" G_GSIZE_FORMAT " bytes; %s allows %" G_GSIZE_FORMAT ".",
                     g_bytes_get_size (file), types[found].kind, limit);
        return NULL;
      }
    u = g_new0 (Upload, 1);
    u->animated = animated;
  }
  u->id = g_strdup_printf ("%" G_GUINT64_FORMAT,
                           (guint64)g_random_int_range (100000000, 999999999) * 1000000
                               + (guint64)g_random_int_range (0, 999999));
  u->mime = g_strdup (mime);
  u->codecs = g_strdup (codecs);
  u->size = g_bytes_get_size (file);
  g_hash_table_replace (uploads, u->id, u);

  sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, file);
  entry = sim_log_entry_begin (&uploads_seq);
  json_builder_set_member_name (entry, "id");
  json_builder_add_string_value (entry, u->id);
  json_builder_set_member_name (entry, "pnid");
  json_builder_add_string_value (entry, number->pnid);
  json_builder_set_member_name (entry, "messaging_product");
  json_builder_add_string_value (entry, product);
  json_builder_set_member_name (entry, "type");
  json_builder_add_string_value (entry, type);
  json_builder_set_member_name (entry, "content_type");
  json_builder_add_string_value (entry, file_type);
  json_builder_set_member_name (entry, "filename");
  json_builder_add_string_value (entry, filename);
  json_builder_set_member_name (entry, "size");
  json_builder_add_int_value (entry, (gint64)u->size);
  json_builder_set_member_name (entry, "sha256");
  json_builder_add_string_value (entry, sha256);
  sim_log_entry_end (uploads_log, entry);
  return g_strdup (u->id);
}

gboolean
sim_upload_check_send (const char *type, JsonObject *media, SimError *err)
{
  const char *id;
  Upload *u;
  const char *kind = NULL;
  gboolean voice = FALSE;

  ensure_registry ();
  if (media == NULL || !json_object_has_member (media, "id"))
    return TRUE; /* a link, or already refused by sim-validate.c */
  id = sim_json_string (media, "id");
  u = id != NULL ? g_hash_table_lookup (uploads, id) : NULL;
  if (u == NULL)
    return media_error (err, "Media id %s does not exist or has expired.", id != NULL ? id : "");
  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    if (g_str_equal (types[i].mime, u->mime))
      kind = types[i].kind;
  /* a sticker must be a WebP and only a WebP is a sticker */
  if (g_strcmp0 (kind, type) != 0)
    return media_error (err, "Media id %s is %s, which cannot be sent as %s.", id, u->mime, type);
  if (g_str_equal (type, "audio") && sim_json_bool (media, "voice", &voice) && voice
      && !(g_str_equal (u->mime, "audio/ogg") && g_strcmp0 (u->codecs, "opus") == 0))
    return media_error (err, "A voice note must be audio/ogg; codecs=opus, not %s.", u->mime);
  return TRUE;
}
