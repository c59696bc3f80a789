/* rx-route.c: a webhook POST's body and signature checked and routed to
 * accounts, without sockets (see rx-route.h). */
#include "rx-route.h"

#include "wa-json.h"
#include "wa-signature.h"
#include "wa-webhook.h"

/* Whether @change (its value an object) is about one phone number: its value
 * has metadata, messages or statuses, of whatever type. */
static gboolean
change_names_a_number(const WaChange *change)
{
  JsonObject *value = json_node_get_object(change->value);

  return json_object_has_member(value, "metadata") || json_object_has_member(value, "messages") ||
         json_object_has_member(value, "statuses");
}

static gboolean
change_claimed_by(const WaChange *change, const RxRegistration *reg)
{
  if (reg->waba_id != NULL && g_strcmp0(reg->waba_id, change->waba_id) != 0)
    return FALSE;
  if (change->phone_number_id != NULL)
    return g_str_equal(change->phone_number_id, reg->account);
  /* about a phone number, but without a readable metadata.phone_number_id:
   * no account's (claiming by WABA would give one number's customers to
   * every account of that WABA) */
  if (change_names_a_number(change))
    return FALSE;
  /* fields without metadata (template and account updates) belong to the
   * WABA: only accounts that name theirs claim them */
  return reg->waba_id != NULL;
}

RxRouteStatus
rx_route_post(const char *body, gsize len, const char *signature, GPtrArray *accounts, RxRoute *route)
{
  g_autoptr(GHashTable) checked = g_hash_table_new(g_str_hash, g_str_equal); /* secret -> match */
  g_autoptr(WaWebhook) webhook = NULL;

  route->signed_by = g_ptr_array_new();
  route->routed = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) g_ptr_array_unref);
  route->unclaimed = 0;

  if (!wa_json_check_depth(body, len, WA_JSON_MAX_DEPTH, NULL))
    return RX_ROUTE_TOO_DEEP;
  for (guint i = 0; i < accounts->len; i++) {
    RxAccount *account = g_ptr_array_index(accounts, i);
    const char *secret = account->reg->app_secret;
    gpointer match;

    if (!g_hash_table_lookup_extended(checked, secret, NULL, &match)) {
      match = GINT_TO_POINTER(wa_signature_check(signature, (const guint8 *) body, len, secret, NULL));
      g_hash_table_insert(checked, (gpointer) secret, match);
    }
    if (GPOINTER_TO_INT(match))
      g_ptr_array_add(route->signed_by, account);
  }
  if (route->signed_by->len == 0)
    return RX_ROUTE_UNSIGNED;

  webhook = wa_webhook_parse(body, len, NULL);
  if (webhook == NULL)
    return RX_ROUTE_NOT_WEBHOOK;

  for (guint c = 0; c < webhook->changes->len; c++) {
    const WaChange *change = g_ptr_array_index(webhook->changes, c);
    gboolean claimed = FALSE;

    if (change->value == NULL || !JSON_NODE_HOLDS_OBJECT(change->value) || change->field == NULL)
      continue;
    for (guint i = 0; i < route->signed_by->len; i++) {
      RxAccount *account = g_ptr_array_index(route->signed_by, i);
      GPtrArray *changes;
      RxChange *routed;

      if (!change_claimed_by(change, account->reg))
        continue;
      claimed = TRUE;
      changes = g_hash_table_lookup(route->routed, account->reg->account);
      if (changes == NULL) {
        changes = g_ptr_array_new_with_free_func((GDestroyNotify) rx_change_free);
        g_hash_table_insert(route->routed, account->reg->account, changes);
      }
      routed = rx_change_new(account->reg->account, account->reg->public_key, change->waba_id, change->entry_time,
                             change->field, json_node_ref(change->value));
      routed->max_pending = account->reg->max_pending_bytes;
      g_ptr_array_add(changes, routed);
    }
    if (!claimed)
      route->unclaimed++;
  }
  return RX_ROUTE_OK;
}

void
rx_route_clear(RxRoute *route)
{
  g_clear_pointer(&route->signed_by, g_ptr_array_unref);
  g_clear_pointer(&route->routed, g_hash_table_unref);
  route->unclaimed = 0;
}
