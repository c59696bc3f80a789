/* wa-describe.h: what an inbound message says, as plain text for a person.
 *
 * Text is the customer's own words; every other type gets a short bracketed
 * description ("[Image] caption", "[Location] ...") with what it carries:
 * the place and a map link, shared contacts, button and list taps, form
 * answers, order lines and totals, reactions, edits and deletions, replies
 * (quoting the message replied to, when the caller found it), calls. The
 * result is plain text: the caller escapes it (wa_text_to_html) before it
 * reaches any HTML sink.
 * Must not: produce markup, look anything up (the caller passes what it
 * found in a WaDescribeContext), or include libpurple. */
#pragma once

#include "wa-webhook.h"

G_BEGIN_DECLS

/* What the caller knows beyond the message itself. */
typedef struct {
  /* The text of the message this one refers to (replied to, reacted to,
   * edited, deleted), as stored; NULL when it is not stored or unknown. */
  const char *quoted;
  /* The number the first shared contact of a "contacts" message gets (for
   * /addcontact N); 0 leaves them unnumbered. */
  guint first_contact;
  /* The ad referral was shown before for this customer: leave it out. */
  gboolean referral_seen;
  /* What the agent types before a command: '/' (also when 0), or '!' in
   * BitlBee, which runs no libpurple commands. */
  char command_prefix;
} WaDescribeContext;

/* Newly allocated, translated; never NULL or empty. @ctx may be NULL (no
 * quote, numbering or referral memory). */
char *wa_message_describe_in(const WaMessage *message, const WaDescribeContext *ctx);
/* wa_message_describe_in(@message, NULL). */
char *wa_message_describe(const WaMessage *message);

/* The wamid of the message @message refers to (context.id, the reacted-to,
 * edited or deleted message), or NULL. Owned by @message. */
const char *wa_message_referenced_id(const WaMessage *message);

/* @text shortened for a quote: one line, at most about 60 characters (cut at
 * a character boundary, "…" added). Newly allocated. */
char *wa_describe_short_quote(const char *text);

/* The line for a voice call event (field "calls"): the customer is calling,
 * or the call ended; calls are not answered here (a call the business made
 * from elsewhere is named as such). Newly allocated. */
char *wa_call_describe(const WaCall *call);

/* A stable key for a message's ad referral (source id, else URL, else
 * headline), or NULL when it has none. Owned by @message. */
const char *wa_message_referral_key(const WaMessage *message);

/* TRUE for messages a customer wrote (they open the 24-hour window); FALSE
 * for system notices such as a number change. */
gboolean wa_message_opens_window(const WaMessage *message);

G_END_DECLS
