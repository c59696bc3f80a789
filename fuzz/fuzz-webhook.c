/* fuzz-webhook.c: libFuzzer target for wa_webhook_parse() (plugin/core).
 *
 * Input: a webhook body, as Meta would POST it. Every change, contact,
 * message and status that comes out is walked the way the plugin walks it
 * (describe, window, find the sender, describe each error).
 * Must not: print the input. */
#include "fuzz-common.h"

#include "wa-describe.h"
#include "wa-json.h"
#include "wa-webhook.h"

static gsize
touch(const char *s)
{
  return s != NULL ? strlen(s) : 0;
}

static void
walk_errors(GPtrArray *errors)
{
  fuzz_check(errors != NULL);
  for (guint i = 0; i < errors->len; i++) {
    const WaGraphError *e = g_ptr_array_index(errors, i);
    g_autofree char *text = wa_graph_error_describe(e);

    fuzz_check(text != NULL);
  }
}

static void
walk_change(const WaChange *change)
{
  fuzz_check(change->contacts != NULL && change->messages != NULL && change->statuses != NULL);
  fuzz_check(change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value));
  touch(change->waba_id);
  touch(change->field);
  touch(change->phone_number_id);
  touch(change->display_phone_number);
  for (guint i = 0; i < change->contacts->len; i++) {
    const WaContact *c = g_ptr_array_index(change->contacts, i);

    touch(c->wa_id);
    touch(c->user_id);
    touch(c->profile_name);
    touch(c->username);
  }
  for (guint i = 0; i < change->messages->len; i++) {
    const WaMessage *m = g_ptr_array_index(change->messages, i);
    g_autofree char *described = wa_message_describe(m);
    /* as the plugin describes it: quoting, numbering contacts, ad seen */
    WaDescribeContext known = {.quoted = m->text, .first_contact = 1, .referral_seen = i % 2 == 1};
    g_autofree char *in_context = wa_message_describe_in(m, &known);
    g_autofree char *quote = wa_describe_short_quote(m->text);
    const WaContact *sender = wa_change_find_contact(change, m);

    fuzz_check(described != NULL && *described != '\0');
    fuzz_check(in_context != NULL && *in_context != '\0');
    fuzz_check(g_utf8_strlen(quote, -1) <= 61);
    touch(wa_message_referenced_id(m));
    touch(wa_message_referral_key(m));
    wa_message_opens_window(m);
    if (sender != NULL)
      fuzz_check((m->from != NULL && g_strcmp0(sender->wa_id, m->from) == 0) ||
                 (m->from_user_id != NULL && g_strcmp0(sender->user_id, m->from_user_id) == 0));
    touch(m->id);
    touch(m->text);
    touch(m->filename);
    touch(m->reply_json);
    fuzz_check(m->raw != NULL);
    walk_errors(m->errors);
  }
  for (guint i = 0; i < change->statuses->len; i++) {
    const WaStatus *s = g_ptr_array_index(change->statuses, i);

    touch(s->id);
    touch(s->status);
    touch(s->biz_opaque_callback_data);
    fuzz_check(s->raw != NULL);
    walk_errors(s->errors);
  }
  walk_errors(change->errors);
  for (guint i = 0; i < change->calls->len; i++) {
    const WaCall *call = g_ptr_array_index(change->calls, i);
    g_autofree char *line = wa_call_describe(call);

    fuzz_check(line != NULL && *line != '\0');
    wa_change_find_call_contact(change, call);
    fuzz_check(call->raw != NULL);
  }
}

FUZZ_DEFAULT_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(WaWebhook) webhook = NULL;
  g_autoptr(GError) error = NULL;

  webhook = wa_webhook_parse((const char *) data, size, &error);
  fuzz_check((webhook == NULL) == (error != NULL));
  if (webhook == NULL) {
    fuzz_check(error->domain == WA_JSON_ERROR || error->domain == WA_WEBHOOK_ERROR);
    return 0;
  }
  for (guint i = 0; i < webhook->changes->len; i++)
    walk_change(g_ptr_array_index(webhook->changes, i));
  return 0;
}
