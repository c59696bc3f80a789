/* wa-signature.h: authenticity checks for webhook deliveries.
 *
 * Meta signs every webhook POST with X-Hub-Signature-256: sha256=<hex>, an
 * HMAC-SHA256 keyed with the app secret over the RAW body bytes exactly as
 * received (Meta escapes "/" and non-ASCII, so a re-serialised body does not
 * verify). The verify token of the GET handshake is compared in constant time.
 *
 * Must not: parse or re-serialise the body, log the secret, the token or the
 * expected MAC, or exit early on content when comparing secrets. No libpurple. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WA_SIGNATURE_ERROR (wa_signature_error_quark())
GQuark wa_signature_error_quark(void);

typedef enum {
  WA_SIGNATURE_ERROR_MISSING,   /* no header, or an empty one */
  WA_SIGNATURE_ERROR_MALFORMED, /* no "sha256=" prefix (e.g. sha1= only), or not 64 hex digits */
  WA_SIGNATURE_ERROR_MISMATCH,  /* well-formed but wrong: refuse the delivery */
  WA_SIGNATURE_ERROR_NO_SECRET, /* no app secret configured: nothing can be verified */
} WaSignatureError;

/* Checks @header_value (the X-Hub-Signature-256 value; may be NULL) against
 * HMAC-SHA256(@app_secret, @body[0..@len)). The prefix "sha256=" is matched
 * without regard to case, the hex digits may be upper or lower case, and
 * surrounding blanks are ignored. @body may contain NUL bytes; it may be NULL
 * only when @len is 0. @app_secret is a NUL-terminated string of any length.
 * Returns TRUE when the signature matches; otherwise FALSE with @error set. */
gboolean wa_signature_check(const char *header_value, const guint8 *body, gsize len, const char *app_secret,
                            GError **error);

/* "sha256=<64 lowercase hex digits>" for @body under @app_secret, as Meta would
 * send it. Newly allocated (g_free); NULL when @app_secret is NULL or empty. */
char *wa_signature_compute(const guint8 *body, gsize len, const char *app_secret);

/* Compares two secrets (verify tokens) by their BLAKE2b digests with
 * sodium_memcmp: the time taken shows neither their content nor their length
 * (beyond the number of 128-byte blocks hashed). NULL or empty strings never
 * compare equal, so an unconfigured token never matches. */
gboolean wa_token_equal(const char *a, const char *b);

G_END_DECLS
