/* wa-receipts.c: the receipt policy, tick coalescing and the last status,
 * as wa-receipts.h describes them. */
#include "wa-receipts.h"

#include "wa-i18n.h"

static const char *const policy_names[] = {
  [WA_RECEIPTS_DEFAULT] = "default", [WA_RECEIPTS_SEEN] = "seen",   [WA_RECEIPTS_TYPING] = "typing",
  [WA_RECEIPTS_REPLY] = "reply",     [WA_RECEIPTS_NEVER] = "never",
};

WaReceiptPolicy
wa_receipt_policy_from_string(const char *s, gboolean *known)
{
  for (guint i = 0; s != NULL && i < G_N_ELEMENTS(policy_names); i++)
    if (g_ascii_strcasecmp(s, policy_names[i]) == 0) {
      if (known != NULL)
        *known = TRUE;
      return (WaReceiptPolicy) i;
    }
  if (known != NULL)
    *known = FALSE;
  return WA_RECEIPTS_DEFAULT;
}

const char *
wa_receipt_policy_to_string(WaReceiptPolicy policy)
{
  return (guint) policy < G_N_ELEMENTS(policy_names) ? policy_names[policy] : "default";
}

WaReceiptPolicy
wa_receipt_policy_effective(WaReceiptPolicy account, WaReceiptPolicy override, gboolean can_see)
{
  WaReceiptPolicy policy = override != WA_RECEIPTS_DEFAULT ? override : account;

  if (policy == WA_RECEIPTS_DEFAULT)
    policy = WA_RECEIPTS_TYPING;
  if (policy == WA_RECEIPTS_SEEN && !can_see)
    policy = WA_RECEIPTS_REPLY;
  return policy;
}

gboolean
wa_receipt_policy_allows(WaReceiptPolicy policy, WaReceiptMoment moment)
{
  switch (policy) {
  case WA_RECEIPTS_SEEN:
    return TRUE;
  case WA_RECEIPTS_DEFAULT:
  case WA_RECEIPTS_TYPING:
    return moment == WA_RECEIPT_TYPING || moment == WA_RECEIPT_REPLY;
  case WA_RECEIPTS_REPLY:
    return moment == WA_RECEIPT_REPLY;
  case WA_RECEIPTS_NEVER:
  default:
    return FALSE;
  }
}

void
wa_receipt_state_clear(WaReceiptState *state)
{
  g_clear_pointer(&state->newest, g_free);
  g_clear_pointer(&state->sent, g_free);
  state->newest_ts = 0;
  state->typing_at = 0;
}

void
wa_receipt_state_inbound(WaReceiptState *state, const char *wamid, gint64 timestamp)
{
  if (wamid == NULL || g_strcmp0(state->newest, wamid) == 0 || (timestamp > 0 && timestamp < state->newest_ts))
    return;
  state->newest_ts = MAX(timestamp, state->newest_ts);
  g_free(state->newest);
  state->newest = g_strdup(wamid);
}

WaReceiptAction
wa_receipt_decide(const WaReceiptState *state, WaReceiptPolicy policy, WaReceiptMoment moment, gint64 now)
{
  gboolean unread;

  if (state->newest == NULL || !wa_receipt_policy_allows(policy, moment))
    return WA_RECEIPT_NONE;
  unread = g_strcmp0(state->newest, state->sent) != 0;
  /* a clock that went back counts as the interval having passed */
  if (moment == WA_RECEIPT_TYPING &&
      (state->typing_at == 0 || now - state->typing_at >= WA_TYPING_INTERVAL_S || now < state->typing_at))
    return WA_RECEIPT_TYPING_INDICATOR;
  return unread ? WA_RECEIPT_READ : WA_RECEIPT_NONE;
}

void
wa_receipt_state_sent(WaReceiptState *state, WaReceiptAction action, gint64 now)
{
  if (action == WA_RECEIPT_NONE || state->newest == NULL)
    return;
  if (g_strcmp0(state->sent, state->newest) != 0) {
    g_free(state->sent);
    state->sent = g_strdup(state->newest);
  }
  if (action == WA_RECEIPT_TYPING_INDICATOR)
    state->typing_at = now;
}

/* ---- ticks ---------------------------------------------------------------- */

WaTicksPolicy
wa_ticks_policy_from_string(const char *s)
{
  if (g_strcmp0(s, "none") == 0)
    return WA_TICKS_NONE;
  if (g_strcmp0(s, "all") == 0)
    return WA_TICKS_ALL;
  return WA_TICKS_FAILURES;
}

struct _WaTicks {
  GHashTable *best; /* wamid -> GINT_TO_POINTER(WaStoreStatus) */
};

WaTicks *
wa_ticks_new(void)
{
  WaTicks *ticks = g_new0(WaTicks, 1);

  ticks->best = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  return ticks;
}

void
wa_ticks_free(WaTicks *ticks)
{
  if (ticks == NULL)
    return;
  g_hash_table_destroy(ticks->best);
  g_free(ticks);
}

void
wa_ticks_add(WaTicks *ticks, const char *wamid, WaStoreStatus status)
{
  gpointer old;

  if (wamid == NULL)
    return;
  if (status == WA_STORE_STATUS_PLAYED)
    status = WA_STORE_STATUS_READ; /* a voice note played was read */
  if (status != WA_STORE_STATUS_DELIVERED && status != WA_STORE_STATUS_READ)
    return;
  if (g_hash_table_lookup_extended(ticks->best, wamid, NULL, &old) && GPOINTER_TO_INT(old) >= (int) status)
    return;
  g_hash_table_insert(ticks->best, g_strdup(wamid), GINT_TO_POINTER(status));
}

gboolean
wa_ticks_pending(const WaTicks *ticks)
{
  return g_hash_table_size(ticks->best) > 0;
}

/* "delivered" or "delivered: 3 messages" */
static char *
tick_part(const char *word, guint n)
{
  if (n == 1)
    return g_strdup(word);
  return g_strdup_printf(ngettext("%s: %u message", "%s: %u messages", n), word, n);
}

char *
wa_ticks_take_line(WaTicks *ticks)
{
  GHashTableIter iter;
  gpointer value;
  guint delivered = 0, read = 0;
  g_autofree char *d = NULL;
  g_autofree char *r = NULL;

  g_hash_table_iter_init(&iter, ticks->best);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    if (GPOINTER_TO_INT(value) == WA_STORE_STATUS_READ)
      read++;
    else
      delivered++;
  }
  g_hash_table_remove_all(ticks->best);
  if (delivered == 0 && read == 0)
    return NULL;
  if (delivered > 0)
    d = tick_part(_("delivered"), delivered);
  if (read > 0)
    r = tick_part(_("read"), read);
  if (d != NULL && r != NULL)
    return g_strdup_printf("%s; %s", d, r);
  return g_strdup(d != NULL ? d : r);
}

/* ---- the last message's status -------------------------------------------- */

void
wa_last_status_clear(WaLastStatus *last)
{
  g_clear_pointer(&last->wamid, g_free);
  g_clear_pointer(&last->category, g_free);
  last->status = WA_STORE_STATUS_NONE;
  last->time = 0;
  last->pinned = FALSE;
}

void
wa_last_status_sent(WaLastStatus *last, const char *wamid, gint64 now)
{
  if (wamid == NULL || g_strcmp0(last->wamid, wamid) == 0) {
    last->pinned = wamid != NULL || last->pinned;
    return;
  }
  wa_last_status_clear(last);
  last->wamid = g_strdup(wamid);
  last->time = now;
  last->pinned = TRUE;
}

/* Played is read for a voice note: the same rank. */
static int
rank(WaStoreStatus status)
{
  return status == WA_STORE_STATUS_PLAYED ? WA_STORE_STATUS_READ : (int) status;
}

gboolean
wa_last_status_apply(WaLastStatus *last, const char *wamid, WaStoreStatus status, gint64 time, const char *category)
{
  gboolean changed = FALSE;

  if (wamid == NULL || status == WA_STORE_STATUS_NONE)
    return FALSE;
  if (g_strcmp0(last->wamid, wamid) != 0) {
    if (last->wamid != NULL && (last->pinned || time < last->time))
      return FALSE;
    wa_last_status_clear(last);
    last->wamid = g_strdup(wamid);
    changed = TRUE;
  }
  if (last->status != WA_STORE_STATUS_FAILED &&
      (status == WA_STORE_STATUS_FAILED || rank(status) > rank(last->status))) {
    last->status = status;
    last->time = time;
    changed = TRUE;
  }
  if (category != NULL && *category != '\0' && g_strcmp0(category, last->category) != 0) {
    g_free(last->category);
    last->category = g_strdup(category);
    changed = TRUE;
  }
  return changed;
}

char *
wa_last_status_describe(const WaLastStatus *last)
{
  const char *word;
  g_autoptr(GDateTime) when = NULL;
  g_autofree char *at = NULL;

  if (last->wamid == NULL)
    return NULL;
  switch (last->status) {
  case WA_STORE_STATUS_SENT:
    word = _("sent");
    break;
  case WA_STORE_STATUS_DELIVERED:
    word = _("delivered");
    break;
  case WA_STORE_STATUS_READ:
    word = _("read");
    break;
  case WA_STORE_STATUS_PLAYED:
    word = _("played");
    break;
  case WA_STORE_STATUS_FAILED:
    word = _("failed");
    break;
  default:
    word = _("accepted by WhatsApp");
    break;
  }
  when = last->time > 0 ? g_date_time_new_from_unix_local(last->time) : NULL;
  if (when == NULL)
    return g_strdup(word);
  at = g_date_time_format(when, "%Y-%m-%d %H:%M");
  /* TRANSLATORS: a message's status and when, e.g. "read, 2026-12-07 14:02" */
  return g_strdup_printf(_("%s, %s"), word, at);
}
