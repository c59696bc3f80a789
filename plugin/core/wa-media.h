/* wa-media.h: what a file to send is, by its content: the kind of WhatsApp
 * message it makes (image, audio, video, document, sticker), the MIME type
 * to upload it with, and the Cloud API's type and size limits, checked
 * before anything is uploaded (docs/CLOUD-API.md, Media: types and limits).
 *
 * The type comes from the bytes (libmagic), never from the file name: a
 * "photo.jpg" that is a PDF goes as a document, a "scan.pdf" that is a BMP
 * is refused. Must not: read more than the head of a file, or guess. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  WA_MEDIA_NONE = 0,
  WA_MEDIA_IMAGE,
  WA_MEDIA_AUDIO,
  WA_MEDIA_VIDEO,
  WA_MEDIA_DOCUMENT,
  WA_MEDIA_STICKER,
} WaMediaKind;

#define WA_MEDIA_ERROR (wa_media_error_quark())
GQuark wa_media_error_quark(void);

typedef enum {
  WA_MEDIA_ERROR_UNREADABLE,  /* the file cannot be opened or read */
  WA_MEDIA_ERROR_EMPTY,       /* nothing in it */
  WA_MEDIA_ERROR_UNSUPPORTED, /* a type WhatsApp does not accept */
  WA_MEDIA_ERROR_TOO_LARGE,   /* over its kind's limit */
} WaMediaError;

typedef struct {
  WaMediaKind kind;
  char *mime;        /* what is uploaded and declared: "image/jpeg", "audio/ogg; codecs=opus" */
  char *sniffed;     /* what libmagic said ("image/bmp"), for messages */
  char *filename;    /* the file's base name, control characters replaced */
  guint64 size;      /* bytes */
  guint64 limit;     /* the kind's limit for this type, in bytes */
  gboolean voice;    /* an Ogg Opus recording: sent as a voice note */
  gboolean animated; /* an animated WebP sticker */
} WaMediaInfo;

void wa_media_info_free(WaMediaInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaMediaInfo, wa_media_info_free)

/* The Cloud API's word for @kind: "image", "audio", ...; NULL for NONE. */
const char *wa_media_kind_name(WaMediaKind kind);
/* A translated label for conversation lines: "Image", "Voice note", ... */
const char *wa_media_kind_label(WaMediaKind kind, gboolean voice);

/* What @head (the first bytes of a file of @size bytes named @name) is.
 * Returns NULL with @error (UNSUPPORTED or TOO_LARGE, with a message fit
 * for the agent) when WhatsApp would not take it. */
WaMediaInfo *wa_media_classify_bytes(const guint8 *head, gsize head_len, guint64 size, const char *name,
                                     GError **error);
/* The same for the file at @path: reads its head only. */
WaMediaInfo *wa_media_classify_file(const char *path, GError **error);

/* Images, videos and documents take a caption; audio and stickers do not. */
gboolean wa_media_takes_caption(WaMediaKind kind);

/* "120 KB", "4.8 MB" (decimal units, as Meta states its limits). */
char *wa_media_format_size(guint64 bytes);

/* The conversation line of a sent file: "[Document] report.pdf, 120 KB". */
char *wa_media_describe(const WaMediaInfo *info);

/* The message details kept in the outbox (JSON): {"type": kind, kind:
 * {"id": media_id, "caption"?, "filename"?, "voice"?}}. @caption may be NULL
 * (dropped for kinds without captions). */
char *wa_media_payload_new(const WaMediaInfo *info, const char *media_id, const char *caption);

/* Caption limit of the Cloud API (characters). */
#define WA_MEDIA_CAPTION_MAX 1024

G_END_DECLS
