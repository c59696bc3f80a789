/* wa-attach.c: encrypted media files (secretstream chunks), digests, the
 * download token policy, safe names and sizes. See wa-attach.h.
 *
 * Must not: include libpurple, log content, keys or URLs with their query,
 * or keep a whole file in memory. */
#include "wa-attach.h"

#include <gio/gio.h>

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "wa-file.h"
#include "wa-http.h"
#include "wa-i18n.h"

#define MAGIC "WABIZMEDIA1\n"
#define MAGIC_LEN (sizeof(MAGIC) - 1)
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define HEADER_BYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES

/* ---- digests ---------------------------------------------------------------- */

gboolean
wa_attach_digest_decode(const char *text, guint8 out[WA_ATTACH_DIGEST_BYTES])
{
  size_t len, bin_len = 0;
  const char *end = NULL;

  if (text == NULL)
    return FALSE;
  len = strlen(text);
  if (len == 2 * WA_ATTACH_DIGEST_BYTES &&
      sodium_hex2bin(out, WA_ATTACH_DIGEST_BYTES, text, len, NULL, &bin_len, &end) == 0 &&
      bin_len == WA_ATTACH_DIGEST_BYTES && end == text + len)
    return TRUE;
  if (len < 43 || len > 44)
    return FALSE;
  static const int variants[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                 sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
  for (gsize i = 0; i < G_N_ELEMENTS(variants); i++)
    if (sodium_base642bin(out, WA_ATTACH_DIGEST_BYTES, text, len, NULL, &bin_len, &end, variants[i]) == 0 &&
        bin_len == WA_ATTACH_DIGEST_BYTES && end == text + len)
      return TRUE;
  return FALSE;
}

/* ---- token policy ------------------------------------------------------------- */

static gboolean
host_under(const char *host, const char *domain)
{
  gsize h = strlen(host), d = strlen(domain);

  return g_ascii_strcasecmp(host, domain) == 0 ||
         (h > d + 1 && host[h - d - 1] == '.' && g_ascii_strcasecmp(host + h - d, domain) == 0);
}

/* Meta serves media from these (lookaside.fbsbx.com today; its CDNs and
 * WhatsApp's own media hosts under the other two). */
static const char *const meta_media_domains[] = {"fbsbx.com", "fbcdn.net", "whatsapp.net"};

gboolean
wa_attach_url_allowed(const char *url, const char *base_url, GError **error)
{
  g_autoptr(GUri) uri = url != NULL ? g_uri_parse(url, G_URI_FLAGS_ENCODED, NULL) : NULL;
  g_autoptr(GUri) base = base_url != NULL ? g_uri_parse(base_url, G_URI_FLAGS_ENCODED, NULL) : NULL;
  const char *scheme, *host;

  if (uri == NULL || g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0') {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("the media URL is not a valid URL"));
    return FALSE;
  }
  if (g_uri_get_userinfo(uri) != NULL) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, _("the media URL carries credentials"));
    return FALSE;
  }
  scheme = g_uri_get_scheme(uri);
  host = g_uri_get_host(uri);
  if (base != NULL && g_uri_get_host(base) != NULL && g_ascii_strcasecmp(g_uri_get_scheme(base), scheme) == 0 &&
      g_ascii_strcasecmp(g_uri_get_host(base), host) == 0 && g_uri_get_port(base) == g_uri_get_port(uri) &&
      (g_ascii_strcasecmp(scheme, "https") == 0 ||
       (g_ascii_strcasecmp(scheme, "http") == 0 && wa_http_host_is_loopback(host))))
    return TRUE; /* the API's own host: a simulator or a BSP */
  if (g_ascii_strcasecmp(scheme, "https") == 0 && g_uri_get_port(uri) == -1)
    for (gsize i = 0; i < G_N_ELEMENTS(meta_media_domains); i++)
      if (host_under(host, meta_media_domains[i]))
        return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
              _("the media URL points to %s, which is neither one of Meta's media hosts nor the API host: the access "
                "token is not sent there"),
              host);
  return FALSE;
}

/* ---- types ------------------------------------------------------------------------- */

gboolean
wa_attach_type_downloads(const char *type)
{
  static const char *const types[] = {"image", "sticker", "audio", "video", "document"};

  for (gsize i = 0; type != NULL && i < G_N_ELEMENTS(types); i++)
    if (strcmp(type, types[i]) == 0)
      return TRUE;
  return FALSE;
}

/* ---- names and sizes ----------------------------------------------------------- */

#define SAFE_NAME_MAX 120

char *
wa_attach_safe_name(const char *name, const char *fallback)
{
  g_autofree char *valid = NULL;
  const char *base;
  GString *out;

  if (name == NULL)
    return g_strdup(fallback);
  valid = g_utf8_make_valid(name, -1);
  base = strrchr(valid, '/');
  base = base != NULL ? base + 1 : valid;
  if (strrchr(base, '\\') != NULL)
    base = strrchr(base, '\\') + 1;
  out = g_string_new(NULL);
  for (const char *p = base; *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);

    if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029 || c == 0x202e || c == ':' ||
        (out->len == 0 && (c == '.' || c == ' ')))
      continue;
    if (out->len + (gsize) (g_utf8_next_char(p) - p) > SAFE_NAME_MAX)
      break;
    g_string_append_unichar(out, c);
  }
  while (out->len > 0 && (out->str[out->len - 1] == ' ' || out->str[out->len - 1] == '.'))
    g_string_truncate(out, out->len - 1);
  if (out->len == 0) {
    g_string_free(out, TRUE);
    return g_strdup(fallback);
  }
  return g_string_free(out, FALSE);
}

const char *
wa_attach_extension(const char *mime_type)
{
  static const struct {
    const char *mime;
    const char *ext;
  } table[] = {
    {"image/jpeg", "jpg"}, {"image/png", "png"},  {"image/webp", "webp"}, {"image/gif", "gif"},
    {"audio/ogg", "ogg"},  {"audio/mpeg", "mp3"}, {"audio/mp4", "m4a"},   {"audio/aac", "aac"},
    {"audio/amr", "amr"},  {"video/mp4", "mp4"},  {"video/3gpp", "3gp"},  {"application/pdf", "pdf"},
    {"text/plain", "txt"},
  };
  gsize n;

  if (mime_type == NULL)
    return "bin";
  n = strcspn(mime_type, "; ");
  for (gsize i = 0; i < G_N_ELEMENTS(table); i++)
    if (strlen(table[i].mime) == n && g_ascii_strncasecmp(mime_type, table[i].mime, n) == 0)
      return table[i].ext;
  return "bin";
}

/* ---- writer ---------------------------------------------------------------------- */

struct _WaMediaWriter {
  char *path;
  int fd;
  gboolean finished;
  guint64 size;
  crypto_secretstream_xchacha20poly1305_state *state; /* sodium_malloc'd */
  crypto_hash_sha256_state *hash;                     /* sodium_malloc'd */
  guint8 *plain;                                      /* WA_ATTACH_CHUNK, sodium_malloc'd */
  gsize filled;
  guint8 cipher[WA_ATTACH_CHUNK + ABYTES];
};

WaAttachWriter *
wa_attach_writer_new(const char *path, const WaKey *key, GError **error)
{
  g_autoptr(WaAttachWriter) w = g_new0(WaAttachWriter, 1);
  guint8 header[HEADER_BYTES];

  w->fd = -1;
  w->state = sodium_malloc(sizeof *w->state);
  w->hash = sodium_malloc(sizeof *w->hash);
  w->plain = sodium_malloc(WA_ATTACH_CHUNK);
  if (w->state == NULL || w->hash == NULL || w->plain == NULL) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, _("no secure memory for a media file"));
    return NULL;
  }
  w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (w->fd < 0) {
    wa_file_set_error(error, "cannot create", path, errno);
    return NULL;
  }
  w->path = g_strdup(path);
  crypto_secretstream_xchacha20poly1305_init_push(w->state, header, wa_key_bytes(key));
  crypto_hash_sha256_init(w->hash);
  if (!wa_file_private_fd(w->fd, path, error) || !wa_file_write_all(w->fd, path, MAGIC, MAGIC_LEN, error) ||
      !wa_file_write_all(w->fd, path, header, sizeof header, error))
    return NULL;
  return g_steal_pointer(&w);
}

static gboolean
push_chunk(WaAttachWriter *w, guint8 tag, GError **error)
{
  unsigned long long clen = 0;

  crypto_secretstream_xchacha20poly1305_push(w->state, w->cipher, &clen, w->plain, w->filled, NULL, 0, tag);
  sodium_memzero(w->plain, w->filled);
  w->filled = 0;
  return wa_file_write_all(w->fd, w->path, w->cipher, (gsize) clen, error);
}

gboolean
wa_attach_writer_write(WaAttachWriter *w, const void *data, gsize len, GError **error)
{
  const guint8 *p = data;

  g_return_val_if_fail(w != NULL && !w->finished, FALSE);
  crypto_hash_sha256_update(w->hash, p, len);
  w->size += len;
  while (len > 0) {
    gsize n = MIN(len, WA_ATTACH_CHUNK - w->filled);

    memcpy(w->plain + w->filled, p, n);
    w->filled += n;
    p += n;
    len -= n;
    /* a full chunk is pushed only when more follows: the last one, full or
     * not, goes with the FINAL tag in finish() */
    if (w->filled == WA_ATTACH_CHUNK && len > 0 && !push_chunk(w, 0, error))
      return FALSE;
  }
  return TRUE;
}

guint64
wa_attach_writer_size(const WaAttachWriter *w)
{
  return w->size;
}

gboolean
wa_attach_writer_finish(WaAttachWriter *w, guint8 digest[WA_ATTACH_DIGEST_BYTES], GError **error)
{
  g_return_val_if_fail(w != NULL && !w->finished, FALSE);
  if (!push_chunk(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL, error))
    return FALSE;
  if (fsync(w->fd) != 0)
    return wa_file_set_error(error, "cannot write", w->path, errno);
  if (close(w->fd) != 0) {
    w->fd = -1;
    return wa_file_set_error(error, "cannot write", w->path, errno);
  }
  w->fd = -1;
  crypto_hash_sha256_final(w->hash, digest);
  w->finished = TRUE;
  return TRUE;
}

void
wa_attach_writer_free(WaAttachWriter *w)
{
  if (w == NULL)
    return;
  if (w->fd >= 0)
    close(w->fd);
  if (!w->finished && w->path != NULL)
    unlink(w->path);
  sodium_free(w->state);
  sodium_free(w->hash);
  sodium_free(w->plain);
  sodium_memzero(w->cipher, sizeof w->cipher);
  g_free(w->path);
  g_free(w);
}

/* ---- reader ------------------------------------------------------------------------ */

struct _WaMediaReader {
  char *path;
  int fd;
  gboolean ended;
  crypto_secretstream_xchacha20poly1305_state *state;
  guint8 cipher[WA_ATTACH_CHUNK + ABYTES];
};

static gboolean
tampered(GError **error, const char *what)
{
  g_set_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_TAMPERED, _("the media file %s"), what);
  return FALSE;
}

WaAttachReader *
wa_attach_reader_open(const char *path, const WaKey *key, GError **error)
{
  g_autoptr(WaAttachReader) r = g_new0(WaAttachReader, 1);
  guint8 head[MAGIC_LEN + HEADER_BYTES];

  r->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (r->fd < 0) {
    wa_file_set_error(error, "cannot open", path, errno);
    return NULL;
  }
  r->path = g_strdup(path);
  r->state = sodium_malloc(sizeof *r->state);
  if (r->state == NULL) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, _("no secure memory for a media file"));
    return NULL;
  }
  if (!wa_file_read_exact(r->fd, path, head, sizeof head, NULL)) {
    tampered(error, _("is cut short"));
    return NULL;
  }
  if (memcmp(head, MAGIC, MAGIC_LEN) != 0) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT, _("not a media file of this plugin"));
    return NULL;
  }
  if (crypto_secretstream_xchacha20poly1305_init_pull(r->state, head + MAGIC_LEN, wa_key_bytes(key)) != 0) {
    tampered(error, _("has an invalid header"));
    return NULL;
  }
  return g_steal_pointer(&r);
}

/* Reads up to @want bytes (fewer only at the end of the file). */
static gssize
read_up_to(WaAttachReader *r, guint8 *buf, gsize want, GError **error)
{
  gsize got = 0;

  while (got < want) {
    ssize_t n = read(r->fd, buf + got, want - got);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      wa_file_set_error(error, "cannot read", r->path, errno);
      return -1;
    }
    if (n == 0)
      break;
    got += (gsize) n;
  }
  return (gssize) got;
}

gboolean
wa_attach_reader_read(WaAttachReader *r, guint8 *buf, gsize *len, GError **error)
{
  unsigned long long mlen = 0;
  unsigned char tag = 0;
  gssize n;

  *len = 0;
  if (r->ended)
    return TRUE;
  n = read_up_to(r, r->cipher, sizeof r->cipher, error);
  if (n < 0)
    return FALSE;
  if ((gsize) n < ABYTES)
    return tampered(error, _("is cut short"));
  if (crypto_secretstream_xchacha20poly1305_pull(r->state, buf, &mlen, &tag, r->cipher, (unsigned long long) n, NULL,
                                                 0) != 0)
    return tampered(error, _("does not open: altered, or another key"));
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    guint8 extra;

    if (read_up_to(r, &extra, 1, error) != 0) {
      sodium_memzero(buf, (gsize) mlen);
      return tampered(error, _("has bytes after its end"));
    }
    r->ended = TRUE;
  } else if ((gsize) n < sizeof r->cipher) {
    sodium_memzero(buf, (gsize) mlen);
    return tampered(error, _("is cut short"));
  }
  *len = (gsize) mlen;
  if (*len == 0 && !r->ended)
    return tampered(error, _("has an empty chunk"));
  return TRUE;
}

void
wa_attach_reader_free(WaAttachReader *r)
{
  if (r == NULL)
    return;
  if (r->fd >= 0)
    close(r->fd);
  sodium_free(r->state);
  g_free(r->path);
  g_free(r);
}

gboolean
wa_attach_decrypt_to_file(const char *src, const WaKey *key, const char *dest, GError **error)
{
  g_autoptr(WaAttachReader) r = wa_attach_reader_open(src, key, error);
  guint8 *buf;
  gboolean ok = FALSE;
  int fd;

  if (r == NULL)
    return FALSE;
  buf = sodium_malloc(WA_ATTACH_CHUNK);
  if (buf == NULL) {
    g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, _("no secure memory for a media file"));
    return FALSE;
  }
  fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    sodium_free(buf);
    return wa_file_set_error(error, "cannot create", dest, errno);
  }
  for (;;) {
    gsize len = 0;

    if (!wa_attach_reader_read(r, buf, &len, error))
      break;
    if (len == 0) {
      ok = TRUE;
      break;
    }
    if (!wa_file_write_all(fd, dest, buf, len, error))
      break;
  }
  sodium_memzero(buf, WA_ATTACH_CHUNK);
  sodium_free(buf);
  if (ok && fsync(fd) != 0)
    ok = wa_file_set_error(error, "cannot write", dest, errno);
  if (close(fd) != 0 && ok)
    ok = wa_file_set_error(error, "cannot write", dest, errno);
  if (!ok)
    unlink(dest);
  return ok;
}
