/* wa-text.h: text between libpurple's HTML and WhatsApp's plain text.
 *
 * Outbound: the HTML an agent types in Pidgin (or the plain text from Finch)
 * becomes WhatsApp text with its own markup (*bold*, _italic_, ~strike~,
 * ```monospace```), and long texts are split into numbered parts.
 * Inbound: wa_text_to_html() is the single place where text from customers or
 * from the API is escaped before it reaches libpurple; nothing else may build
 * HTML from such text. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* WhatsApp's limit for a text body. We count UTF-16 code units, which is never
 * less than the number of characters, so a part fits however Meta counts. */
#define WA_TEXT_MAX_UNITS 4096

/* Converts HTML from a libpurple conversation into WhatsApp text. */
char *wa_html_to_whatsapp(const char *html);

/* Length of @text in UTF-16 code units (@text must be valid UTF-8). */
gsize wa_text_utf16_length(const char *text);

/* Splits @text into parts of at most @max_units UTF-16 code units each, at
 * paragraph, line or word breaks where possible and never inside a character.
 * A text that fits is returned as one part, unchanged; otherwise each part is
 * prefixed "(i/n) ". Returns a NULL-terminated array (g_strfreev). */
char **wa_text_split(const char *text, gsize max_units);

/* Escapes @text (from a customer or the API) for libpurple and turns newlines
 * into <br>. With @whatsapp_markup, *bold*, _italic_, ~strike~ and ```mono```
 * become <b>, <i>, <s> and <tt> after escaping. Invalid UTF-8 is repaired. */
char *wa_text_to_html(const char *text, gboolean whatsapp_markup);

/* TRUE when @text contains something WhatsApp would show as a link preview
 * (http:// or https:// URL). */
gboolean wa_text_has_url(const char *text);

G_END_DECLS
