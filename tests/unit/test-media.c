/* test-media.c: files to send (plugin/core wa-media): typed by content with
 * libmagic and mapped to WhatsApp's kinds and limits, the refusals, the
 * outbox payload and the message built from it, and the multipart upload
 * as it goes over the wire (against the scripted server of test-server.h). */
#include <string.h>

#include "wa-graph.h"
#include "wa-media.h"
#include "test-server.h"

#define MB 1000000u
#define KB 1000u

/* ---- sample files, as small as libmagic still recognises them ------------------ */

static GBytes *
jpeg_bytes(void)
{
  static const guint8 b[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J',  'F',  'I',  'F',  0x00,
                             0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xd9};
  return g_bytes_new_static(b, sizeof(b));
}

static GBytes *
png_bytes(void)
{
  static const guint8 b[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0,
                             0,    0,   1,   0,   0,    0,    1,    8,    2, 0, 0, 0,  0,   0,   0,   0};
  return g_bytes_new_static(b, sizeof(b));
}

static GBytes *
text_bytes(const char *text)
{
  return g_bytes_new(text, strlen(text));
}

/* An Ogg page holding @packet (one segment table, no CRC: libmagic does not check it). */
static void
ogg_page(GByteArray *a, const guint8 *packet, guint len, guint8 flags, guint8 seq)
{
  const guint8 head[] = {'O', 'g', 'g', 'S', 0, flags, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, seq, 0, 0, 0, 0, 0, 0, 0};
  guint8 segs = (guint8) (len / 255 + 1);

  g_byte_array_append(a, head, sizeof(head));
  g_byte_array_append(a, &segs, 1);
  for (guint i = 0; i < segs; i++) {
    guint8 s = i + 1 < segs ? 255 : (guint8) (len % 255);
    g_byte_array_append(a, &s, 1);
  }
  g_byte_array_append(a, packet, len);
}

static GBytes *
ogg_bytes(gboolean opus)
{
  static const guint8 opus_head[] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0};
  static const guint8 vorbis_head[] = {1, 'v', 'o', 'r', 'b', 'i', 's',  0, 0, 0, 0, 1, 0x44, 0xac, 0,
                                       0, 0,   0,   0,   0,   0,   0xf4, 1, 0, 0, 0, 0, 0,    0xb8, 1};
  GByteArray *a = g_byte_array_new();

  if (opus)
    ogg_page(a, opus_head, sizeof(opus_head), 2, 0);
  else
    ogg_page(a, vorbis_head, sizeof(vorbis_head), 2, 0);
  return g_byte_array_free_to_bytes(a);
}

static GBytes *
webp_bytes(gboolean animated)
{
  const guint8 b[] = {'R', 'I', 'F', 'F', 22,  0,   0,
                      0,   'W', 'E', 'B', 'P', 'V', 'P',
                      '8', 'X', 10,  0,   0,   0,   animated ? 0x02 : 0x00,
                      0,   0,   0,   0,   0,   0,   0,
                      0,   0};
  return g_bytes_new(b, sizeof(b));
}

static GBytes *
bmp_bytes(void)
{
  static const guint8 b[] = {'B', 'M', 58, 0, 0, 0, 0, 0, 0,  0, 54, 0, 0, 0, 40, 0, 0, 0, 1, 0,
                             0,   0,   1,  0, 0, 0, 1, 0, 24, 0, 0,  0, 0, 0, 4,  0, 0, 0, 0, 0,
                             0,   0,   0,  0, 0, 0, 0, 0, 0,  0, 0,  0, 0, 0, 0,  0, 0, 0, 0, 0};
  return g_bytes_new_static(b, sizeof(b));
}

static WaMediaInfo *
classify(GBytes *bytes, guint64 size, const char *name, GError **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data(bytes, &len);
  WaMediaInfo *info = wa_media_classify_bytes(data, len, size != 0 ? size : len, name, error);

  g_bytes_unref(bytes);
  return info;
}

/* ---- classification ---------------------------------------------------------------- */

static void
test_kinds(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaMediaInfo) jpeg = classify(jpeg_bytes(), 0, "photo.jpg", &error);
  g_autoptr(WaMediaInfo) png = NULL;
  g_autoptr(WaMediaInfo) pdf = NULL;
  g_autoptr(WaMediaInfo) txt = NULL;
  g_autoptr(WaMediaInfo) voice = NULL;
  g_autoptr(WaMediaInfo) sticker = NULL;

  g_assert_no_error(error);
  g_assert_cmpint(jpeg->kind, ==, WA_MEDIA_IMAGE);
  g_assert_cmpstr(jpeg->mime, ==, "image/jpeg");
  g_assert_cmpuint(jpeg->limit, ==, 5 * MB);

  png = classify(png_bytes(), 0, "x.png", &error);
  g_assert_no_error(error);
  g_assert_cmpint(png->kind, ==, WA_MEDIA_IMAGE);
  g_assert_cmpstr(png->mime, ==, "image/png");

  /* by content, not by name: a PDF called .jpg is a document, and keeps its name */
  pdf = classify(text_bytes("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"), 0, "/tmp/scan.jpg", &error);
  g_assert_no_error(error);
  g_assert_cmpint(pdf->kind, ==, WA_MEDIA_DOCUMENT);
  g_assert_cmpstr(pdf->mime, ==, "application/pdf");
  g_assert_cmpstr(pdf->filename, ==, "scan.jpg");
  g_assert_cmpuint(pdf->limit, ==, 100 * MB);

  txt = classify(text_bytes("name,qty\nsoap,3\n"), 0, "order.csv", &error);
  g_assert_no_error(error);
  g_assert_cmpint(txt->kind, ==, WA_MEDIA_DOCUMENT);
  g_assert_cmpstr(txt->mime, ==, "text/plain");

  voice = classify(ogg_bytes(TRUE), 0, "note.ogg", &error);
  g_assert_no_error(error);
  g_assert_cmpint(voice->kind, ==, WA_MEDIA_AUDIO);
  g_assert_cmpstr(voice->mime, ==, "audio/ogg; codecs=opus");
  g_assert_true(voice->voice);
  g_assert_cmpuint(voice->limit, ==, 16 * MB);

  sticker = classify(webp_bytes(FALSE), 0, "s.webp", &error);
  g_assert_no_error(error);
  g_assert_cmpint(sticker->kind, ==, WA_MEDIA_STICKER);
  g_assert_false(sticker->animated);
  g_assert_cmpuint(sticker->limit, ==, 100 * KB);
}

static void
test_refusals(void)
{
  g_autoptr(GError) error = NULL;
  WaMediaInfo *info;

  info = classify(bmp_bytes(), 0, "x.bmp", &error);
  g_assert_null(info);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNSUPPORTED);
  g_assert_nonnull(strstr(error->message, "x.bmp"));
  g_assert_nonnull(strstr(error->message, "image/bmp"));
  g_assert_nonnull(strstr(error->message, "JPEG or PNG"));
  g_clear_error(&error);

  /* Ogg with another codec than Opus */
  info = classify(ogg_bytes(FALSE), 0, "song.ogg", &error);
  g_assert_null(info);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNSUPPORTED);
  g_assert_nonnull(strstr(error->message, "Opus"));
  g_clear_error(&error);

  /* an ELF binary, whatever its name */
  {
    static const guint8 elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0};
    info = classify(g_bytes_new_static(elf, sizeof(elf)), 0, "report.pdf", &error);
    g_assert_null(info);
    g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNSUPPORTED);
    g_clear_error(&error);
  }

  info = classify(g_bytes_new_static("", 0), 0, "empty.txt", &error);
  g_assert_null(info);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_EMPTY);
  g_clear_error(&error);
}

/* A ZIP of @names (stored, empty members): enough for libmagic. */
static GBytes *
zip_bytes(const char *const *names)
{
  GByteArray *a = g_byte_array_new();

  for (guint i = 0; names[i] != NULL; i++) {
    guint16 len = (guint16) strlen(names[i]);
    const guint8 head[] = {'P',
                           'K',
                           3,
                           4,
                           20,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           0,
                           (guint8) (len & 0xff),
                           (guint8) (len >> 8),
                           0,
                           0};

    g_byte_array_append(a, head, sizeof(head));
    g_byte_array_append(a, (const guint8 *) names[i], len);
  }
  return g_byte_array_free_to_bytes(a);
}

static void
test_office_files(void)
{
  static const char *const usual[] = {"[Content_Types].xml", "_rels/.rels", "word/document.xml", NULL};
  static const char *const other_order[] = {"_rels/.rels", "word/document.xml", "[Content_Types].xml", NULL};
  static const char *const plain[] = {"notes.txt", "photo.jpg", NULL};
  g_autoptr(GError) error = NULL;
  WaMediaInfo *info;

  info = classify(zip_bytes(usual), 0, "offer.docx", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(info->mime, ==, "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  wa_media_info_free(info);
  /* parts in another order: a ZIP to libmagic; the name says which Office type */
  info = classify(zip_bytes(other_order), 0, "Offer.DOCX", &error);
  g_assert_no_error(error);
  g_assert_cmpint(info->kind, ==, WA_MEDIA_DOCUMENT);
  g_assert_cmpstr(info->mime, ==, "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  wa_media_info_free(info);
  /* a ZIP that does not say it is an Office file is not taken */
  info = classify(zip_bytes(plain), 0, "archive.zip", &error);
  g_assert_null(info);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_UNSUPPORTED);
  g_assert_nonnull(strstr(error->message, "application/zip"));
  g_clear_error(&error);
  /* and a name alone makes nothing a document */
  info = classify(bmp_bytes(), 0, "x.docx", &error);
  g_assert_null(info);
  g_clear_error(&error);
}

static void
test_limits(void)
{
  g_autoptr(GError) error = NULL;
  WaMediaInfo *info;

  /* images: 5 MB exactly goes, one byte more does not */
  info = classify(jpeg_bytes(), 5 * MB, "a.jpg", &error);
  g_assert_no_error(error);
  wa_media_info_free(info);
  info = classify(jpeg_bytes(), 5 * MB + 1, "a.jpg", &error);
  g_assert_null(info);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_TOO_LARGE);
  g_assert_nonnull(strstr(error->message, "a.jpg is 5.0 MB"));
  g_assert_nonnull(strstr(error->message, "up to 5.0 MB"));
  g_clear_error(&error);

  /* stickers: 100 KB static, 500 KB animated */
  info = classify(webp_bytes(FALSE), 100 * KB + 1, "s.webp", &error);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_TOO_LARGE);
  g_clear_error(&error);
  info = classify(webp_bytes(TRUE), 100 * KB + 1, "a.webp", &error);
  g_assert_no_error(error);
  g_assert_true(info->animated);
  g_assert_cmpuint(info->limit, ==, 500 * KB);
  wa_media_info_free(info);
  info = classify(webp_bytes(TRUE), 500 * KB + 1, "a.webp", &error);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_TOO_LARGE);
  g_clear_error(&error);

  /* audio 16 MB, documents 100 MB */
  info = classify(ogg_bytes(TRUE), 16 * MB + 1, "n.ogg", &error);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_TOO_LARGE);
  g_clear_error(&error);
  info = classify(text_bytes("%PDF-1.4\n"), 100 * MB, "big.pdf", &error);
  g_assert_no_error(error);
  wa_media_info_free(info);
  info = classify(text_bytes("%PDF-1.4\n"), 100 * MB + 1, "big.pdf", &error);
  g_assert_error(error, WA_MEDIA_ERROR, WA_MEDIA_ERROR_TOO_LARGE);
  g_clear_error(&error);
}

static void
test_names_and_lines(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaMediaInfo) info = classify(text_bytes("%PDF-1.4\n"), 123456, "../../x/re\x01port\n.pdf", &error);
  g_autofree char *line = NULL;
  g_autofree char *small = wa_media_format_size(999);

  g_assert_no_error(error);
  g_assert_cmpstr(info->filename, ==, "re_port_.pdf");
  line = wa_media_describe(info);
  g_assert_cmpstr(line, ==, "[Document] re_port_.pdf, 123 KB");
  g_assert_cmpstr(small, ==, "999 bytes");
}

/* ---- the payload and the message ------------------------------------------------------- */

static JsonObject *
parse(const char *text, JsonNode **root)
{
  *root = wa_json_parse_object(text, strlen(text), NULL);
  g_assert_nonnull(*root);
  return json_node_get_object(*root);
}

static void
test_payloads(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaMediaInfo) doc = classify(text_bytes("%PDF-1.4\n"), 0, "report.pdf", &error);
  g_autoptr(WaMediaInfo) voice = classify(ogg_bytes(TRUE), 0, "n.ogg", &error);
  g_autoptr(WaMediaInfo) sticker = classify(webp_bytes(FALSE), 0, "s.webp", &error);
  g_autofree char *p_doc = wa_media_payload_new(doc, "1037543291543636", "the report");
  g_autofree char *p_voice = wa_media_payload_new(voice, "55", "ignored");
  g_autofree char *p_sticker = wa_media_payload_new(sticker, "56", "ignored");
  g_autoptr(JsonNode) r1 = NULL;
  g_autoptr(JsonNode) r2 = NULL;
  g_autoptr(JsonNode) r3 = NULL;
  g_autoptr(JsonNode) msg = NULL;
  JsonObject *o;

  g_assert_no_error(error);
  o = wa_json_get_object(parse(p_doc, &r1), "document");
  g_assert_cmpstr(wa_json_get_string(o, "id"), ==, "1037543291543636");
  g_assert_cmpstr(wa_json_get_string(o, "filename"), ==, "report.pdf");
  g_assert_cmpstr(wa_json_get_string(o, "caption"), ==, "the report");
  g_assert_false(json_object_has_member(o, "link"));

  o = wa_json_get_object(parse(p_voice, &r2), "audio");
  g_assert_true(json_object_get_boolean_member(o, "voice"));
  g_assert_false(json_object_has_member(o, "caption")); /* audio has none */

  o = wa_json_get_object(parse(p_sticker, &r3), "sticker");
  g_assert_cmpuint(json_object_get_size(o), ==, 1); /* the id only */

  /* the outbox turns the payload into a message: envelope + details */
  msg = wa_message_payload_new("491701234567", p_doc, "wabiz:7", &error);
  g_assert_no_error(error);
  o = json_node_get_object(msg);
  g_assert_cmpstr(wa_json_get_string(o, "messaging_product"), ==, "whatsapp");
  g_assert_cmpstr(wa_json_get_string(o, "to"), ==, "+491701234567");
  g_assert_cmpstr(wa_json_get_string(o, "type"), ==, "document");
  g_assert_cmpstr(wa_json_get_string(o, "biz_opaque_callback_data"), ==, "wabiz:7");
  g_assert_cmpstr(wa_json_get_string(wa_json_get_object(o, "document"), "id"), ==, "1037543291543636");

  /* a payload cannot change the address */
  g_clear_pointer(&msg, json_node_unref);
  msg = wa_message_payload_new("491701234567", "{\"type\":\"image\",\"to\":\"+1555\",\"image\":{\"id\":\"1\"}}", NULL,
                               &error);
  g_assert_cmpstr(wa_json_get_string(json_node_get_object(msg), "to"), ==, "+491701234567");
  g_clear_pointer(&msg, json_node_unref);
  g_assert_null(wa_message_payload_new("491701234567", "{\"image\":{}}", NULL, &error));
  g_assert_nonnull(error);
}

/* ---- the upload on the wire ---------------------------------------------------------------- */

typedef struct {
  guint done;
  char *media_id;
  WaGraphError *error;
  guint64 last_sent;
  guint64 last_total;
  guint progress_calls;
} Upload;

static void
upload_progress(guint64 sent, guint64 total, gpointer data)
{
  Upload *u = data;

  g_assert_cmpuint(sent, >=, u->last_sent);
  u->last_sent = sent;
  u->last_total = total;
  u->progress_calls++;
}

static void
upload_cb(WaGraphReply *reply, gpointer data)
{
  Upload *u = data;

  u->done++;
  if (reply->error != NULL) {
    u->error = wa_graph_error_new();
    u->error->code = reply->error->code;
  } else {
    u->media_id = wa_media_id_from_json(reply->object, NULL);
  }
}

static void
test_upload_multipart(void)
{
  Server *srv = server_new();
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  g_autoptr(GError) error = NULL;
  WaGraph *graph = wa_graph_new(http, srv->base, "TOKEN-1", &error);
  g_autofree char *dir = g_dir_make_tmp("test-media-XXXXXX", &error);
  g_autofree char *path = g_build_filename(dir, "on disk.pdf", NULL);
  GString *content = g_string_new("%PDF-1.4\n");
  Upload u = {0};
  g_autoptr(SoupMultipart) multipart = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new(SOUP_MESSAGE_HEADERS_MULTIPART);
  GHashTable *found = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

  g_assert_no_error(error);
  while (content->len < 300000)
    g_string_append(content, "0123456789 stream me from disk\n");
  g_assert_true(g_file_set_contents(path, content->str, content->len, &error));

  server_script(srv, 200, "{\"id\":\"1037543291543636\"}");
  wa_graph_upload_media(graph, "106540352242922", path, "application/pdf", "report.pdf", upload_progress, &u, upload_cb,
                        &u);
  test_wait_count(u.done, 1, WAIT_S);
  g_assert_null(u.error);
  g_assert_cmpstr(u.media_id, ==, "1037543291543636");
  g_assert_cmpuint(u.progress_calls, >, 0);
  g_assert_cmpuint(u.last_sent, ==, u.last_total);
  g_assert_cmpuint(u.last_sent, >, content->len);

  g_assert_cmpstr(seen(srv, 0)->method, ==, "POST");
  g_assert_cmpstr(seen(srv, 0)->path, ==, "/v25.0/106540352242922/media");
  g_assert_cmpstr(seen(srv, 0)->auth, ==, "Bearer TOKEN-1");
  g_assert_true(g_str_has_prefix(seen(srv, 0)->content_type, "multipart/form-data; boundary="));
  soup_message_headers_replace(headers, "Content-Type", seen(srv, 0)->content_type);
  /* libsoup's parser runs strstr over the body: it must end in a NUL past its size */
  body = g_bytes_new_static(seen(srv, 0)->body, strlen(seen(srv, 0)->body));
  multipart = soup_multipart_new_from_message(headers, body);
  g_assert_nonnull(multipart);
  g_assert_cmpint(soup_multipart_get_length(multipart), ==, 3);
  for (int i = 0; i < soup_multipart_get_length(multipart); i++) {
    SoupMessageHeaders *ph = NULL;
    GBytes *pb = NULL;
    char *disposition = NULL;
    GHashTable *params = NULL;

    g_assert_true(soup_multipart_get_part(multipart, i, &ph, &pb));
    g_assert_true(soup_message_headers_get_content_disposition(ph, &disposition, &params));
    g_assert_cmpstr(disposition, ==, "form-data");
    if (g_strcmp0(g_hash_table_lookup(params, "name"), "file") == 0) {
      g_assert_cmpstr(g_hash_table_lookup(params, "filename"), ==, "report.pdf");
      g_assert_cmpstr(soup_message_headers_get_content_type(ph, NULL), ==, "application/pdf");
      g_assert_cmpuint(g_bytes_get_size(pb), ==, content->len);
      g_assert_true(memcmp(g_bytes_get_data(pb, NULL), content->str, content->len) == 0);
    } else {
      g_hash_table_insert(found, g_strdup(g_hash_table_lookup(params, "name")),
                          g_strndup(g_bytes_get_data(pb, NULL), g_bytes_get_size(pb)));
    }
    g_free(disposition);
    g_hash_table_unref(params);
  }
  g_assert_cmpstr(g_hash_table_lookup(found, "messaging_product"), ==, "whatsapp");
  g_assert_cmpstr(g_hash_table_lookup(found, "type"), ==, "application/pdf");
  g_free(u.media_id);
  u = (Upload){0};

  /* Meta's refusal of the file comes back as its error */
  server_script(srv, 400,
                "{\"error\":{\"message\":\"(#131053) Media upload error\",\"type\":\"OAuthException\","
                "\"code\":131053,\"fbtrace_id\":\"x\"}}");
  wa_graph_upload_media(graph, "106540352242922", path, "application/pdf", "report.pdf", NULL, NULL, upload_cb, &u);
  test_wait_count(u.done, 1, WAIT_S);
  g_assert_nonnull(u.error);
  g_assert_cmpint(u.error->code, ==, 131053);
  g_clear_pointer(&u.error, wa_graph_error_free);

  g_hash_table_unref(found);
  g_unlink(path);
  g_rmdir(dir);
  g_string_free(content, TRUE);
  wa_graph_free(graph);
  wa_http_free(http);
  server_free(srv);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/media/kinds", test_kinds);
  g_test_add_func("/media/refusals", test_refusals);
  g_test_add_func("/media/limits", test_limits);
  g_test_add_func("/media/office-files", test_office_files);
  g_test_add_func("/media/names-and-lines", test_names_and_lines);
  g_test_add_func("/media/payloads", test_payloads);
  g_test_add_func("/media/upload-multipart", test_upload_multipart);
  return g_test_run();
}
