/* wa-receipts.h: when read receipts and the typing indicator go to a
 * customer, how delivery ticks are coalesced into conversation lines, and
 * what the tooltip says about the last message's status. Pure logic: the
 * plugin asks, these functions answer from the state they are given.
 * Must not: send anything, read a clock, or include libpurple. */
#pragma once

#include <glib.h>

#include "wa-store.h"

G_BEGIN_DECLS

/* The typing indicator lasts 25 s at Meta; it is sent again at most this
 * often per conversation. */
#define WA_TYPING_INTERVAL_S 20

/* When a read receipt goes: the account option (never DEFAULT) or a
 * customer's override (DEFAULT: the account's). */
typedef enum {
  WA_RECEIPTS_DEFAULT = 0,
  WA_RECEIPTS_SEEN,   /* when the conversation is seen (or typed in, or replied to) */
  WA_RECEIPTS_TYPING, /* when the agent types or replies */
  WA_RECEIPTS_REPLY,  /* on reply only */
  WA_RECEIPTS_NEVER,
} WaReceiptPolicy;

/* What the agent just did in the conversation. */
typedef enum {
  WA_RECEIPT_SEEN,
  WA_RECEIPT_TYPING,
  WA_RECEIPT_REPLY,
} WaReceiptMoment;

/* "seen", "typing", "reply", "never", "default"; DEFAULT for NULL or
 * anything else (@known: FALSE then, unless @s is "default"). */
WaReceiptPolicy wa_receipt_policy_from_string(const char *s, gboolean *known);
const char *wa_receipt_policy_to_string(WaReceiptPolicy policy);

/* The policy in force: @override unless DEFAULT, else @account (DEFAULT
 * there means TYPING). Without a "seen" signal (@can_see FALSE: BitlBee)
 * SEEN counts as REPLY. */
WaReceiptPolicy wa_receipt_policy_effective(WaReceiptPolicy account, WaReceiptPolicy override, gboolean can_see);
/* Whether @policy (effective) lets a receipt go at @moment. */
gboolean wa_receipt_policy_allows(WaReceiptPolicy policy, WaReceiptMoment moment);

/* One conversation's receipts (owned by the caller; strings owned here). */
typedef struct {
  char *newest;     /* the newest inbound wamid, or NULL */
  gint64 newest_ts; /* its timestamp (Unix s), 0 = unknown */
  char *sent;       /* the wamid the last receipt went for, or NULL */
  gint64 typing_at; /* when the last typing indicator went (Unix s), 0 = never */
} WaReceiptState;

typedef enum {
  WA_RECEIPT_NONE,
  WA_RECEIPT_READ,             /* "status": "read" on state->newest */
  WA_RECEIPT_TYPING_INDICATOR, /* the same, with "typing_indicator" */
} WaReceiptAction;

void wa_receipt_state_clear(WaReceiptState *state);
/* An inbound message arrived (@timestamp 0: unknown); one older than the
 * newest known is ignored (webhooks are not ordered). */
void wa_receipt_state_inbound(WaReceiptState *state, const char *wamid, gint64 timestamp);
/* What to send at @moment under @policy (effective) at time @now: at most
 * one receipt per newest inbound message; a typing indicator (TYPING only)
 * at most every WA_TYPING_INTERVAL_S, with a plain receipt in between when a
 * newer message is unread. */
WaReceiptAction wa_receipt_decide(const WaReceiptState *state, WaReceiptPolicy policy, WaReceiptMoment moment,
                                  gint64 now);
/* @action (not NONE) went out at @now for state->newest. */
void wa_receipt_state_sent(WaReceiptState *state, WaReceiptAction action, gint64 now);

/* ---- ticks ---------------------------------------------------------------- */

typedef enum {
  WA_TICKS_FAILURES = 0, /* the default: failures only */
  WA_TICKS_NONE,
  WA_TICKS_ALL,
} WaTicksPolicy;

/* "none", "failures", "all"; FAILURES for anything else. */
WaTicksPolicy wa_ticks_policy_from_string(const char *s);

/* Delivered and read statuses of a conversation, collected until the next
 * line: a message counts once, at its best status. */
typedef struct _WaTicks WaTicks;

WaTicks *wa_ticks_new(void);
void wa_ticks_free(WaTicks *ticks);
/* Counts @status (DELIVERED, READ or PLAYED; others are ignored) of
 * message @wamid. */
void wa_ticks_add(WaTicks *ticks, const char *wamid, WaStoreStatus status);
gboolean wa_ticks_pending(const WaTicks *ticks);
/* "delivered: 3 messages; read" (translated), and starts over; NULL when
 * nothing is pending. */
char *wa_ticks_take_line(WaTicks *ticks);

/* ---- the last message's status (tooltip, Get Info) ---------------------- */

typedef struct {
  char *wamid; /* NULL: nothing known */
  WaStoreStatus status;
  gint64 time;     /* the status's time (Unix s) */
  char *category;  /* pricing category as reported (any word), or NULL */
  gboolean pinned; /* wamid is our newest send: other messages' statuses are older news */
} WaLastStatus;

void wa_last_status_clear(WaLastStatus *last);
/* Our newest send was accepted as @wamid at @now. */
void wa_last_status_sent(WaLastStatus *last, const char *wamid, gint64 now);
/* A status webhook; returns TRUE when @last changed. A status of the same
 * message moves by rank (failed always wins); one of another message
 * replaces it only when nothing is pinned and it is not older. A NULL
 * @category keeps the one known. */
gboolean wa_last_status_apply(WaLastStatus *last, const char *wamid, WaStoreStatus status, gint64 time,
                              const char *category);
/* "read 14:02" style text for the tooltip (translated; owned by the
 * caller); NULL when nothing is known. */
char *wa_last_status_describe(const WaLastStatus *last);

G_END_DECLS
