/* wa-describe.h: what an inbound message says, as plain text for a person.
 *
 * Text is the customer's own words; every other type gets a short bracketed
 * description ("[Image] caption", "[Location] ...") until that type has its
 * own feature. The result is plain text: the caller escapes it (wa_text_to_html)
 * before it reaches any HTML sink.
 * Must not: produce markup, or include libpurple. */
#pragma once

#include "wa-webhook.h"

G_BEGIN_DECLS

/* Newly allocated, translated; never NULL or empty. */
char *wa_message_describe(const WaMessage *message);

/* TRUE for messages a customer wrote (they open the 24-hour window); FALSE
 * for system notices such as a number change. */
gboolean wa_message_opens_window(const WaMessage *message);

G_END_DECLS
