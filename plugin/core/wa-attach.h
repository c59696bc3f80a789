/* wa-attach.h: inbound media files at rest, and the checks around fetching
 * them.
 *
 * A media file is kept encrypted with a random key of its own (the store
 * keeps that key sealed with the customer's key): libsodium's
 * crypto_secretstream_xchacha20poly1305 in chunks of WA_ATTACH_CHUNK bytes,
 * so neither writing nor reading ever holds a whole file in memory. The file
 * is a magic line, the stream header, and the chunks; the last chunk carries
 * the FINAL tag, so a cut file is detected as well as an altered one. The
 * writer also computes the SHA-256 of the plain bytes, for the check against
 * the digest the webhook and the media endpoint give.
 *
 * Also here: decoding those digests (the webhook gives base64, the media
 * endpoint hex), the token policy for download URLs, safe file names for
 * saving, and sizes for people.
 *
 * Must not: include libpurple, log content, keys or URLs with their query,
 * or keep key bytes outside sodium_malloc'd memory (WaKey). */
#pragma once

#include <glib.h>

#include "wa-crypt.h"

G_BEGIN_DECLS

#define WA_ATTACH_CHUNK (64 * 1024)
#define WA_ATTACH_DIGEST_BYTES 32

/* ---- digests ---------------------------------------------------------------- */

/* Decodes a SHA-256 digest given as base64 (standard or URL-safe, with or
 * without padding) or as 64 hex digits. FALSE for anything else. */
gboolean wa_attach_digest_decode(const char *text, guint8 out[WA_ATTACH_DIGEST_BYTES]);

/* ---- where the token may go -------------------------------------------------- */

/* Whether the access token may be sent with a GET of @url: only over https
 * to one of Meta's media hosts (lookaside.fbsbx.com and other hosts under
 * fbsbx.com, fbcdn.net, whatsapp.net), or to the host (and port) of
 * @base_url, the configured API base URL (a simulator or BSP, which may be
 * plain http only on a loopback host, as the base URL itself). FALSE with
 * @error saying why otherwise. */
gboolean wa_attach_url_allowed(const char *url, const char *base_url, GError **error);

/* ---- types ---------------------------------------------------------------------- */

/* Whether a message of @type carries a file to download: image, sticker,
 * audio, video, document. */
gboolean wa_attach_type_downloads(const char *type);

/* ---- names and sizes ---------------------------------------------------------- */

/* A file name safe to create in a directory: the last path component of
 * @name with control characters, path separators and leading dots removed,
 * at most 120 bytes (valid UTF-8); @fallback when nothing is left. */
char *wa_attach_safe_name(const char *name, const char *fallback);

/* A file extension for a MIME type ("jpg" for image/jpeg), or "bin". */
const char *wa_attach_extension(const char *mime_type);

/* ---- encrypted files ----------------------------------------------------------- */

typedef struct _WaMediaWriter WaAttachWriter;

/* Creates @path (0600, O_EXCL, no symbolic links) and writes the stream
 * header for @key. */
WaAttachWriter *wa_attach_writer_new(const char *path, const WaKey *key, GError **error);
/* Adds @len plain bytes (any amount; written in whole chunks). */
gboolean wa_attach_writer_write(WaAttachWriter *writer, const void *data, gsize len, GError **error);
/* Plain bytes added so far. */
guint64 wa_attach_writer_size(const WaAttachWriter *writer);
/* Writes the last chunk (FINAL), syncs and closes the file, and gives the
 * SHA-256 of the plain bytes. The writer stays to be freed. */
gboolean wa_attach_writer_finish(WaAttachWriter *writer, guint8 digest[WA_ATTACH_DIGEST_BYTES], GError **error);
/* Closes (and, when not finished, removes) the file; wipes the state. */
void wa_attach_writer_free(WaAttachWriter *writer);

typedef struct _WaMediaReader WaAttachReader;

WaAttachReader *wa_attach_reader_open(const char *path, const WaKey *key, GError **error);
/* The next chunk of plain bytes into @buf (WA_ATTACH_CHUNK bytes); *@len
 * gets its length, 0 once the FINAL chunk was read. FALSE with
 * WA_CRYPT_ERROR_TAMPERED for a wrong key, altered bytes, or a file cut
 * short (no FINAL chunk), or a G_FILE_ERROR. */
gboolean wa_attach_reader_read(WaAttachReader *reader, guint8 *buf, gsize *len, GError **error);
void wa_attach_reader_free(WaAttachReader *reader);

/* Decrypts @src into a new file @dest (created O_EXCL, 0600; removed again
 * when anything fails). */
gboolean wa_attach_decrypt_to_file(const char *src, const WaKey *key, const char *dest, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaAttachWriter, wa_attach_writer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaAttachReader, wa_attach_reader_free)

G_END_DECLS
