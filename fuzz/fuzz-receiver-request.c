/* fuzz-receiver-request.c: libFuzzer target for what wabiz-receiver does with
 * a webhook POST (rx_route_post, plugin/receiver/rx-route.h): depth check,
 * signature check against every account on the path, envelope, and routing
 * of each change by metadata.phone_number_id and entry[].id.
 *
 * Three accounts share the path: two under one app secret (one of them also
 * names its WABA), one under another app. Input: one mode byte, then the
 * X-Hub-Signature-256 value up to the first '\n', then the body. Mode % 4:
 * 0 uses the header as given, 1 and 2 replace it with the body's signature
 * under the first or second app secret (the fuzzer cannot forge an HMAC, and
 * the routing is what lies behind it), 3 signs with a secret nobody has.
 * Checked: the status follows from depth and signature alone; exactly the
 * accounts whose secret signed are in signed_by; every routed change went to
 * a signed account that claims it, with that account's key.
 * Must not: print the input or a secret. */
#include "fuzz-common.h"

#include "rx-route.h"
#include "wa-json.h"
#include "wa-signature.h"

#define N_ACCOUNTS 3

static const struct {
  const char *account, *waba_id, *secret;
} setup[N_ACCOUNTS] = {
  {"106540352242922", NULL, "app-secret-one"},
  {"106540352242923", "102290129340398", "app-secret-one"},
  {"106540352242924", "419561257915477", "app-secret-two"},
};
static const char *const mode_secret[] = {NULL, "app-secret-one", "app-secret-two", "nobody's"};

static RxRegistration regs[N_ACCOUNTS];
static RxAccount accounts[N_ACCOUNTS];
static GPtrArray *on_path;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init(argc, argv);
  on_path = g_ptr_array_new();
  for (guint i = 0; i < N_ACCOUNTS; i++) {
    regs[i].account = (char *) setup[i].account;
    regs[i].waba_id = (char *) setup[i].waba_id;
    regs[i].app_secret = (char *) setup[i].secret;
    regs[i].path = (char *) "/webhook";
    memset(regs[i].public_key, 0x40 + (int) i, sizeof regs[i].public_key);
    accounts[i].reg = &regs[i];
    g_ptr_array_add(on_path, &accounts[i]);
  }
  return 0;
}

static const RxAccount *
account_by_id(const char *id)
{
  for (guint i = 0; i < N_ACCOUNTS; i++)
    if (g_str_equal(accounts[i].reg->account, id))
      return &accounts[i];
  return NULL;
}

static gboolean
is_signed(const RxRoute *route, const RxAccount *account)
{
  for (guint i = 0; i < route->signed_by->len; i++)
    if (g_ptr_array_index(route->signed_by, i) == account)
      return TRUE;
  return FALSE;
}

static void
check_routed(const RxRoute *route)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init(&iter, route->routed);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    const RxAccount *account = account_by_id(key);
    GPtrArray *changes = value;

    fuzz_check(account != NULL && is_signed(route, account));
    fuzz_check(changes->len > 0);
    for (guint i = 0; i < changes->len; i++) {
      const RxChange *change = g_ptr_array_index(changes, i);
      const RxRegistration *reg = account->reg;
      JsonObject *metadata;
      g_autofree char *phone_number_id = NULL;

      fuzz_check(g_str_equal(change->account, reg->account));
      fuzz_check(memcmp(change->public_key, reg->public_key, sizeof reg->public_key) == 0);
      fuzz_check(change->field != NULL);
      fuzz_check(change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value));
      if (reg->waba_id != NULL)
        fuzz_check(g_strcmp0(change->waba_id, reg->waba_id) == 0);
      metadata = wa_json_get_object(json_node_get_object(change->value), "metadata");
      phone_number_id = wa_json_dup_id(metadata, "phone_number_id");
      if (phone_number_id != NULL)
        fuzz_check(g_str_equal(phone_number_id, reg->account));
      else
        fuzz_check(reg->waba_id != NULL);
    }
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *header = NULL;
  const char *body;
  const uint8_t *nl;
  size_t header_len, body_len;
  g_auto(RxRoute) route = {0};
  RxRouteStatus status;
  guint mode;

  if (size == 0)
    return 0;
  mode = data[0] % 4;
  data++;
  size--;
  nl = memchr(data, '\n', size);
  header_len = nl != NULL ? (size_t) (nl - data) : size;
  body = (const char *) (nl != NULL ? nl + 1 : data + size);
  body_len = size - header_len - (nl != NULL ? 1 : 0);
  if (mode == 0)
    header = fuzz_strndup(data, header_len);
  else
    header = wa_signature_compute((const guint8 *) body, body_len, mode_secret[mode]);

  status = rx_route_post(body, body_len, header, on_path, &route);
  fuzz_check(route.signed_by != NULL && route.routed != NULL);
  if (!wa_json_check_depth(body, body_len, WA_JSON_MAX_DEPTH, NULL)) {
    fuzz_check(status == RX_ROUTE_TOO_DEEP);
  } else {
    for (guint i = 0; i < N_ACCOUNTS; i++)
      fuzz_check(is_signed(&route, &accounts[i]) ==
                 wa_signature_check(header, (const guint8 *) body, body_len, regs[i].app_secret, NULL));
    if (mode == 1)
      fuzz_check(route.signed_by->len == 2);
    else if (mode == 2)
      fuzz_check(route.signed_by->len == 1);
    else if (mode == 3)
      fuzz_check(route.signed_by->len == 0);
    fuzz_check((status == RX_ROUTE_UNSIGNED) == (route.signed_by->len == 0));
  }
  if (status == RX_ROUTE_OK)
    check_routed(&route);
  else
    fuzz_check(g_hash_table_size(route.routed) == 0 && route.unclaimed == 0);
  return 0;
}
