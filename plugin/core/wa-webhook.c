/* wa-webhook.c: webhook body -> WaWebhook (see wa-webhook.h).
 *
 * Must not: trust any member's type (every read goes through the lenient
 * wa_json getters), assert on input, stop at the first entry, change or array
 * element, or include libpurple. */
#include "wa-webhook.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

#include "wa-crypt.h"
#include "wa-json.h"

G_DEFINE_QUARK(wa - webhook - error - quark, wa_webhook_error)

typedef struct {
  guint skipped;
} ParseCtx;

static char *
dup_string(JsonObject *obj, const char *name)
{
  return g_strdup(wa_json_get_string(obj, name));
}

/* A new node holding @obj (shared, referenced), with no parent. */
static JsonNode *
object_node(JsonObject *obj)
{
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);

  json_node_set_object(node, obj);
  return node;
}

/* The array member @name; NULL when absent, and counted when of another type. */
static JsonArray *
get_array(JsonObject *obj, const char *name, ParseCtx *ctx)
{
  JsonArray *array = wa_json_get_array(obj, name);

  if (array == NULL && obj != NULL && json_object_has_member(obj, name))
    ctx->skipped++;
  return array;
}

/* Calls @each for every object element of @array; other elements are counted. */
typedef void (*EachObject)(JsonObject *obj, gpointer out, ParseCtx *ctx);

static void
for_each_object(JsonArray *array, EachObject each, gpointer out, ParseCtx *ctx)
{
  guint n = array != NULL ? json_array_get_length(array) : 0;

  for (guint i = 0; i < n; i++) {
    JsonObject *obj = wa_json_array_get_object(array, i);

    if (obj == NULL)
      ctx->skipped++;
    else
      each(obj, out, ctx);
  }
}

static void
add_error(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  g_ptr_array_add(out, wa_graph_error_from_webhook(obj));
}

static GPtrArray *
new_error_array(void)
{
  return g_ptr_array_new_with_free_func((GDestroyNotify) wa_graph_error_free);
}

/* --- contacts ----------------------------------------------------------- */

static void
add_contact(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  WaContact *contact = g_new0(WaContact, 1);
  JsonObject *profile = wa_json_get_object(obj, "profile");

  contact->wa_id = wa_json_dup_id(obj, "wa_id");
  contact->user_id = dup_string(obj, "user_id");
  contact->parent_user_id = dup_string(obj, "parent_user_id");
  contact->identity_key_hash = dup_string(obj, "identity_key_hash");
  contact->profile_name = dup_string(profile, "name");
  contact->username = dup_string(profile, "username");
  g_ptr_array_add(out, contact);
}

/* --- messages ----------------------------------------------------------- */

/* The strings @member of each object of @obj's array @array_name (skipping
 * empty ones); @fallback, when not NULL, is read where @member is missing. */
static GPtrArray *
strings_of(JsonObject *obj, const char *array_name, const char *member, const char *fallback)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  JsonArray *array = wa_json_get_array(obj, array_name);
  guint n = array != NULL ? json_array_get_length(array) : 0;

  for (guint i = 0; i < n; i++) {
    JsonObject *item = wa_json_array_get_object(array, i);
    char *value = wa_json_dup_id(item, member);

    if (value == NULL && fallback != NULL)
      value = wa_json_dup_id(item, fallback);
    if (value == NULL || *value == '\0')
      g_free(value);
    else
      g_ptr_array_add(out, value);
  }
  return out;
}

static WaSharedContact *
shared_contact_new(JsonObject *card)
{
  WaSharedContact *c = g_new0(WaSharedContact, 1);
  JsonObject *name = wa_json_get_object(card, "name");
  JsonObject *org = wa_json_get_object(card, "org");
  JsonArray *phones = wa_json_get_array(card, "phones");
  const char *formatted = wa_json_get_string(name, "formatted_name");
  const char *company = wa_json_get_string(org, "company");
  const char *department = wa_json_get_string(org, "department");
  guint n_phones = phones != NULL ? json_array_get_length(phones) : 0;

  if (formatted != NULL && *formatted != '\0') {
    c->name = g_strdup(formatted);
  } else {
    const char *first = wa_json_get_string(name, "first_name");
    const char *last = wa_json_get_string(name, "last_name");

    if (first != NULL || last != NULL)
      c->name =
        g_strjoin(first != NULL && last != NULL ? " " : "", first != NULL ? first : "", last != NULL ? last : "", NULL);
  }
  if (company != NULL && *company != '\0' && department != NULL && *department != '\0')
    c->org = g_strdup_printf("%s, %s", company, department);
  else if (company != NULL && *company != '\0')
    c->org = g_strdup(company);
  c->phones = strings_of(card, "phones", "phone", "wa_id");
  c->emails = strings_of(card, "emails", "email", NULL);
  c->urls = strings_of(card, "urls", "url", NULL);
  for (guint i = 0; i < n_phones && c->wa_id == NULL; i++) {
    char *wa_id = wa_json_dup_id(wa_json_array_get_object(phones, i), "wa_id");

    if (wa_id != NULL && *wa_id == '\0')
      g_clear_pointer(&wa_id, g_free);
    c->wa_id = wa_id;
  }
  return c;
}

/* "Name: phone, phone, email" per shared contact, one line each. */
static char *
shared_contacts_text(GPtrArray *contacts)
{
  GString *text = g_string_new(NULL);

  for (guint i = 0; i < contacts->len; i++) {
    const WaSharedContact *c = g_ptr_array_index(contacts, i);
    const char *sep = c->name != NULL ? ": " : "";

    if (text->len > 0)
      g_string_append_c(text, '\n');
    if (c->name != NULL)
      g_string_append(text, c->name);
    for (guint j = 0; j < c->phones->len + c->emails->len; j++) {
      g_string_append(text, sep);
      g_string_append(text, j < c->phones->len ? g_ptr_array_index(c->phones, j)
                                               : g_ptr_array_index(c->emails, j - c->phones->len));
      sep = ", ";
    }
  }
  return g_string_free(text, FALSE);
}

static gboolean
is_media_type(const char *type)
{
  return g_str_equal(type, "image") || g_str_equal(type, "video") || g_str_equal(type, "audio") ||
         g_str_equal(type, "document") || g_str_equal(type, "sticker");
}

/* Fills the per-type fields of @msg from @container (the message, or the
 * message inside an edit), whose payload member is named @type. */
static void
parse_payload(WaMessage *msg, const char *type, JsonObject *container, ParseCtx *ctx)
{
  JsonObject *p = wa_json_get_object(container, type);

  if (g_str_equal(type, "text")) {
    msg->text = dup_string(p, "body");
  } else if (is_media_type(type)) {
    msg->media_id = wa_json_dup_id(p, "id");
    msg->mime_type = dup_string(p, "mime_type");
    msg->sha256 = dup_string(p, "sha256");
    msg->filename = dup_string(p, "filename");
    msg->media_url = dup_string(p, "url");
    msg->voice = wa_json_get_bool(p, "voice", FALSE);
    msg->animated = wa_json_get_bool(p, "animated", FALSE);
    msg->text = dup_string(p, "caption");
  } else if (g_str_equal(type, "location")) {
    double lat = wa_json_get_double(p, "latitude", NAN);
    double lon = wa_json_get_double(p, "longitude", NAN);

    msg->has_location = !isnan(lat) && !isnan(lon);
    msg->latitude = msg->has_location ? lat : 0.0;
    msg->longitude = msg->has_location ? lon : 0.0;
    msg->location_name = dup_string(p, "name");
    msg->location_address = dup_string(p, "address");
    msg->location_url = dup_string(p, "url");
  } else if (g_str_equal(type, "reaction")) {
    msg->reaction_message_id = dup_string(p, "message_id");
    msg->reaction_emoji = dup_string(p, "emoji");
  } else if (g_str_equal(type, "interactive")) {
    const char *itype = wa_json_get_string(p, "type");
    JsonObject *reply = itype != NULL ? wa_json_get_object(p, itype) : NULL;

    msg->interactive_type = g_strdup(itype);
    msg->reply_id = wa_json_dup_id(reply, "id");
    if (msg->reply_id == NULL)
      msg->reply_id = dup_string(reply, "name"); /* nfm_reply */
    msg->text = dup_string(reply, "title");
    if (msg->text == NULL)
      msg->text = dup_string(reply, "body"); /* nfm_reply */
    msg->reply_description = dup_string(reply, "description");
    msg->reply_json = dup_string(reply, "response_json");
    msg->permission_response = dup_string(reply, "response");
    msg->permission_permanent = wa_json_get_bool(reply, "is_permanent", FALSE);
  } else if (g_str_equal(type, "button")) {
    msg->reply_id = dup_string(p, "payload");
    msg->text = dup_string(p, "text");
  } else if (g_str_equal(type, "contacts")) {
    /* the payload is an array, unlike every other type */
    JsonArray *cards = get_array(container, "contacts", ctx);
    guint n = cards != NULL ? json_array_get_length(cards) : 0;

    for (guint i = 0; i < n; i++) {
      JsonObject *card = wa_json_array_get_object(cards, i);

      if (card != NULL) /* a card of another type is ignored (not counted), as before */
        g_ptr_array_add(msg->shared_contacts, shared_contact_new(card));
    }
    msg->text = shared_contacts_text(msg->shared_contacts);
  } else if (g_str_equal(type, "order")) {
    JsonArray *items = get_array(p, "product_items", ctx);
    guint n = items != NULL ? json_array_get_length(items) : 0;

    msg->order_catalog_id = wa_json_dup_id(p, "catalog_id");
    msg->text = dup_string(p, "text");
    for (guint i = 0; i < n; i++) {
      JsonObject *item = wa_json_array_get_object(items, i);
      WaOrderItem *entry;
      gint64 quantity;
      double price;

      if (item == NULL) {
        ctx->skipped++;
        continue;
      }
      msg->order_item_count++;
      quantity = wa_json_get_int(item, "quantity", 0);
      if (quantity > 0)
        msg->order_quantity = quantity > G_MAXINT64 - msg->order_quantity ? G_MAXINT64 : msg->order_quantity + quantity;
      entry = g_new0(WaOrderItem, 1);
      entry->product_id = wa_json_dup_id(item, "product_retailer_id");
      entry->quantity = MAX(quantity, 0);
      price = wa_json_get_double(item, "item_price", NAN);
      entry->has_price = isfinite(price) && price >= 0;
      entry->price = entry->has_price ? price : 0.0;
      entry->currency = dup_string(item, "currency");
      g_ptr_array_add(msg->order_items, entry);
    }
  } else if (g_str_equal(type, "system")) {
    msg->system_type = dup_string(p, "type");
    msg->system_body = dup_string(p, "body");
    msg->system_new_wa_id = wa_json_dup_id(p, "wa_id");
    msg->system_new_user_id = dup_string(p, "user_id");
    msg->system_previous_user_id = dup_string(p, "previous_user_id");
    msg->text = g_strdup(msg->system_body);
  } else if (g_str_equal(type, "revoke")) {
    msg->original_message_id = dup_string(p, "original_message_id");
  } else if (g_str_equal(type, "edit")) {
    JsonObject *inner = wa_json_get_object(p, "message");
    const char *inner_type = wa_json_get_string(inner, "type");

    msg->original_message_id = dup_string(p, "original_message_id");
    msg->edit_type = g_strdup(inner_type);
    /* one level only: an edit inside an edit would overwrite these fields */
    if (inner_type != NULL && !g_str_equal(inner_type, "edit"))
      parse_payload(msg, inner_type, inner, ctx);
  } else if (g_str_equal(type, "unsupported")) {
    msg->unsupported_type = dup_string(p, "type");
  }
  /* unknown types: nothing more to extract; raw keeps the payload */
}

static void
add_message(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  WaMessage *msg = g_new0(WaMessage, 1);
  JsonObject *context = wa_json_get_object(obj, "context");
  JsonObject *referred = wa_json_get_object(context, "referred_product");
  JsonObject *referral = wa_json_get_object(obj, "referral");

  msg->id = dup_string(obj, "id");
  msg->from = wa_json_dup_id(obj, "from");
  msg->from_user_id = dup_string(obj, "from_user_id");
  msg->from_parent_user_id = dup_string(obj, "from_parent_user_id");
  msg->group_id = wa_json_dup_id(obj, "group_id");
  msg->timestamp = wa_json_get_int(obj, "timestamp", 0);
  msg->type = dup_string(obj, "type");

  msg->context_id = dup_string(context, "id");
  msg->context_from = wa_json_dup_id(context, "from");
  msg->forwarded = wa_json_get_bool(context, "forwarded", FALSE);
  msg->frequently_forwarded = wa_json_get_bool(context, "frequently_forwarded", FALSE);
  msg->referred_catalog_id = wa_json_dup_id(referred, "catalog_id");
  msg->referred_product_id = wa_json_dup_id(referred, "product_retailer_id");

  msg->referral_source_url = dup_string(referral, "source_url");
  msg->referral_headline = dup_string(referral, "headline");
  msg->referral_body = dup_string(referral, "body");
  msg->referral_source_id = wa_json_dup_id(referral, "source_id");
  msg->referral_source_type = dup_string(referral, "source_type");
  msg->shared_contacts = g_ptr_array_new_with_free_func((GDestroyNotify) wa_shared_contact_free);
  msg->order_items = g_ptr_array_new_with_free_func((GDestroyNotify) wa_order_item_free);

  if (msg->type != NULL)
    parse_payload(msg, msg->type, obj, ctx);

  msg->errors = new_error_array();
  for_each_object(get_array(obj, "errors", ctx), add_error, msg->errors, ctx);
  msg->raw = object_node(obj);
  g_ptr_array_add(out, msg);
}

/* --- statuses ----------------------------------------------------------- */

static void
add_status(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  WaStatus *st = g_new0(WaStatus, 1);
  JsonObject *conversation = wa_json_get_object(obj, "conversation");
  JsonObject *pricing = wa_json_get_object(obj, "pricing");

  st->id = dup_string(obj, "id");
  st->status = dup_string(obj, "status");
  st->timestamp = wa_json_get_int(obj, "timestamp", 0);
  st->recipient_id = wa_json_dup_id(obj, "recipient_id");
  st->recipient_user_id = dup_string(obj, "recipient_user_id");
  st->recipient_parent_user_id = dup_string(obj, "parent_recipient_user_id");
  st->recipient_type = dup_string(obj, "recipient_type");
  st->recipient_participant_id = wa_json_dup_id(obj, "recipient_participant_id");
  st->biz_opaque_callback_data = dup_string(obj, "biz_opaque_callback_data");
  st->conversation_id = dup_string(conversation, "id");
  st->conversation_origin = dup_string(wa_json_get_object(conversation, "origin"), "type");
  st->has_pricing = pricing != NULL;
  st->billable = wa_json_get_bool(pricing, "billable", FALSE);
  st->pricing_model = dup_string(pricing, "pricing_model");
  st->pricing_type = dup_string(pricing, "type");
  st->pricing_category = dup_string(pricing, "category");
  st->errors = new_error_array();
  for_each_object(get_array(obj, "errors", ctx), add_error, st->errors, ctx);
  st->raw = object_node(obj);
  g_ptr_array_add(out, st);
}

/* --- envelope ----------------------------------------------------------- */

typedef struct {
  JsonObject *entry;
  GPtrArray *changes;
} EntryOut;

/* --- echoes and group events -------------------------------------------- */

static void
add_echo(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  WaEcho *echo = g_new0(WaEcho, 1);

  echo->id = dup_string(obj, "id");
  echo->from = wa_json_dup_id(obj, "from");
  echo->to = wa_json_dup_id(obj, "to");
  echo->type = dup_string(obj, "type");
  echo->text = dup_string(wa_json_get_object(obj, "text"), "body");
  echo->timestamp = wa_json_get_int(obj, "timestamp", 0);
  echo->raw = object_node(obj);
  g_ptr_array_add(out, echo);
}

/* The length of the array member @name; -1 when absent, and counted when
 * of another type. */
static gint
array_length(JsonObject *obj, const char *name, ParseCtx *ctx)
{
  JsonArray *array = get_array(obj, name, ctx);

  return array != NULL ? (gint) MIN(json_array_get_length(array), G_MAXINT) : -1;
}

static void
add_group_event(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  WaGroupEvent *event = g_new0(WaGroupEvent, 1);

  event->group_id = dup_string(obj, "group_id");
  event->type = dup_string(obj, "type");
  event->subject = dup_string(obj, "subject");
  event->timestamp = wa_json_get_int(obj, "timestamp", 0);
  event->added = array_length(obj, "added_participants", ctx);
  event->removed = array_length(obj, "removed_participants", ctx);
  event->raw = object_node(obj);
  g_ptr_array_add(out, event);
}

static void
add_call(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  WaCall *call = g_new0(WaCall, 1);

  call->id = dup_string(obj, "id");
  call->from = wa_json_dup_id(obj, "from");
  call->from_user_id = dup_string(obj, "from_user_id");
  call->to = wa_json_dup_id(obj, "to");
  call->event = dup_string(obj, "event");
  call->direction = dup_string(obj, "direction");
  call->status = dup_string(obj, "status");
  call->timestamp = wa_json_get_int(obj, "timestamp", 0);
  call->duration = MAX(wa_json_get_int(obj, "duration", 0), 0);
  call->raw = object_node(obj);
  g_ptr_array_add(out, call);
}

static void
add_change(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  EntryOut *eo = out;
  JsonObject *value = wa_json_get_object(obj, "value");
  JsonObject *metadata;
  WaChange *change;

  if (value == NULL) {
    ctx->skipped++;
    return;
  }
  metadata = wa_json_get_object(value, "metadata");
  change = g_new0(WaChange, 1);
  change->waba_id = wa_json_dup_id(eo->entry, "id");
  change->entry_time = wa_json_get_int(eo->entry, "time", 0);
  change->field = dup_string(obj, "field");
  change->phone_number_id = wa_json_dup_id(metadata, "phone_number_id");
  change->display_phone_number = wa_json_dup_id(metadata, "display_phone_number");
  change->contacts = g_ptr_array_new_with_free_func((GDestroyNotify) wa_contact_free);
  change->messages = g_ptr_array_new_with_free_func((GDestroyNotify) wa_message_free);
  change->statuses = g_ptr_array_new_with_free_func((GDestroyNotify) wa_status_free);
  change->errors = new_error_array();
  change->echoes = g_ptr_array_new_with_free_func((GDestroyNotify) wa_echo_free);
  change->groups = g_ptr_array_new_with_free_func((GDestroyNotify) wa_group_event_free);
  change->calls = g_ptr_array_new_with_free_func((GDestroyNotify) wa_call_free);
  for_each_object(get_array(value, "contacts", ctx), add_contact, change->contacts, ctx);
  for_each_object(get_array(value, "messages", ctx), add_message, change->messages, ctx);
  for_each_object(get_array(value, "statuses", ctx), add_status, change->statuses, ctx);
  for_each_object(get_array(value, "errors", ctx), add_error, change->errors, ctx);
  for_each_object(get_array(value, "message_echoes", ctx), add_echo, change->echoes, ctx);
  for_each_object(get_array(value, "groups", ctx), add_group_event, change->groups, ctx);
  for_each_object(get_array(value, "calls", ctx), add_call, change->calls, ctx);
  change->value = object_node(value);
  g_ptr_array_add(eo->changes, change);
}

static void
add_entry(JsonObject *obj, gpointer out, ParseCtx *ctx)
{
  EntryOut eo = {obj, out};
  JsonArray *changes = wa_json_get_array(obj, "changes");

  if (changes == NULL) {
    ctx->skipped++; /* an entry without changes carries nothing */
    return;
  }
  for_each_object(changes, add_change, &eo, ctx);
}

WaWebhook *
wa_webhook_parse(const char *body, gsize len, GError **error)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *obj;
  const char *object;
  JsonArray *entries;
  ParseCtx ctx = {0};
  WaWebhook *webhook;

  g_return_val_if_fail(body != NULL || len == 0, NULL);

  root = wa_json_parse_object(body != NULL ? body : "", len, error);
  if (root == NULL)
    return NULL;
  obj = json_node_get_object(root);
  object = wa_json_get_string(obj, "object");
  if (g_strcmp0(object, "whatsapp_business_account") != 0) {
    g_set_error(error, WA_WEBHOOK_ERROR, WA_WEBHOOK_ERROR_OBJECT, "webhook object is not whatsapp_business_account");
    return NULL;
  }
  entries = wa_json_get_array(obj, "entry");
  if (entries == NULL) {
    g_set_error_literal(error, WA_WEBHOOK_ERROR, WA_WEBHOOK_ERROR_ENVELOPE, "webhook has no entry array");
    return NULL;
  }
  webhook = g_new0(WaWebhook, 1);
  webhook->changes = g_ptr_array_new_with_free_func((GDestroyNotify) wa_change_free);
  for_each_object(entries, add_entry, webhook->changes, &ctx);
  webhook->skipped = ctx.skipped;
  return webhook;
}

static const WaContact *
find_contact(const WaChange *change, const char *wa_id, const char *user_id)
{
  for (guint i = 0; wa_id != NULL && i < change->contacts->len; i++) {
    const WaContact *c = g_ptr_array_index(change->contacts, i);

    if (g_strcmp0(c->wa_id, wa_id) == 0)
      return c;
  }
  for (guint i = 0; user_id != NULL && i < change->contacts->len; i++) {
    const WaContact *c = g_ptr_array_index(change->contacts, i);

    if (g_strcmp0(c->user_id, user_id) == 0)
      return c;
  }
  return NULL;
}

const WaContact *
wa_change_find_contact(const WaChange *change, const WaMessage *message)
{
  g_return_val_if_fail(change != NULL && message != NULL, NULL);

  return find_contact(change, message->from, message->from_user_id);
}

const WaContact *
wa_change_find_call_contact(const WaChange *change, const WaCall *call)
{
  g_return_val_if_fail(change != NULL && call != NULL, NULL);

  return find_contact(change, call->from, call->from_user_id);
}

/* --- freeing ------------------------------------------------------------ */

/* The entry of value.contacts[] that @contact was read from, or NULL. */
static JsonNode *
contact_json(const WaChange *change, const WaContact *contact)
{
  JsonObject *value =
    change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value) ? json_node_get_object(change->value) : NULL;
  JsonArray *contacts = value != NULL ? wa_json_get_array(value, "contacts") : NULL;
  guint n = contacts != NULL ? json_array_get_length(contacts) : 0;

  for (guint i = 0; contact != NULL && i < n; i++) {
    JsonObject *c = wa_json_array_get_object(contacts, i);
    g_autofree char *wa_id = c != NULL ? wa_json_dup_id(c, "wa_id") : NULL;

    if (c != NULL && g_strcmp0(wa_id, contact->wa_id) == 0 &&
        g_strcmp0(wa_json_get_string(c, "user_id"), contact->user_id) == 0)
      return json_array_get_element(contacts, i);
  }
  return NULL;
}

char *
wa_change_event_for_one(const WaChange *change, const char *member, JsonNode *item, const WaContact *contact)
{
  JsonObject *value =
    change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value) ? json_node_get_object(change->value) : NULL;
  JsonNode *metadata = value != NULL ? json_object_get_member(value, "metadata") : NULL;
  JsonNode *contact_node = contact_json(change, contact);
  const char *product = value != NULL ? wa_json_get_string(value, "messaging_product") : NULL;
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "object");
  json_builder_add_string_value(b, "whatsapp_business_account");
  json_builder_set_member_name(b, "entry");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  if (change->waba_id != NULL) {
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, change->waba_id);
  }
  if (change->entry_time > 0) {
    json_builder_set_member_name(b, "time");
    json_builder_add_int_value(b, change->entry_time);
  }
  json_builder_set_member_name(b, "changes");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  if (change->field != NULL) {
    json_builder_set_member_name(b, "field");
    json_builder_add_string_value(b, change->field);
  }
  json_builder_set_member_name(b, "value");
  json_builder_begin_object(b);
  if (product != NULL) {
    json_builder_set_member_name(b, "messaging_product");
    json_builder_add_string_value(b, product);
  }
  if (metadata != NULL) {
    json_builder_set_member_name(b, "metadata");
    json_builder_add_value(b, json_node_copy(metadata));
  }
  if (contact_node != NULL) {
    json_builder_set_member_name(b, "contacts");
    json_builder_begin_array(b);
    json_builder_add_value(b, json_node_copy(contact_node));
    json_builder_end_array(b);
  }
  json_builder_set_member_name(b, member);
  json_builder_begin_array(b);
  json_builder_add_value(b, json_node_copy(item));
  json_builder_end_array(b);
  json_builder_end_object(b); /* value */
  json_builder_end_object(b); /* change */
  json_builder_end_array(b);
  json_builder_end_object(b); /* entry */
  json_builder_end_array(b);
  json_builder_end_object(b);
  root = json_builder_get_root(b);
  return json_to_string(root, FALSE);
}

void
wa_webhook_prepare_stored(WaWebhook *webhook)
{
  for (guint c = 0; webhook != NULL && c < webhook->changes->len; c++) {
    const WaChange *change = g_ptr_array_index(webhook->changes, c);

    if (g_strcmp0(change->field, "messages") == 0) {
      for (guint i = 0; i < change->messages->len; i++) {
        WaMessage *msg = g_ptr_array_index(change->messages, i);

        if (msg->raw != NULL && msg->group_id == NULL && msg->stored == NULL)
          msg->stored = wa_change_event_for_one(change, "messages", msg->raw, wa_change_find_contact(change, msg));
      }
    } else if (g_strcmp0(change->field, "smb_message_echoes") == 0) {
      for (guint i = 0; i < change->echoes->len; i++) {
        WaEcho *echo = g_ptr_array_index(change->echoes, i);

        if (echo->raw != NULL && echo->stored == NULL)
          echo->stored = wa_change_event_for_one(change, "message_echoes", echo->raw, NULL);
      }
    }
  }
}


void
wa_shared_contact_free(WaSharedContact *c)
{
  if (c == NULL)
    return;
  g_free(c->name);
  g_free(c->org);
  g_free(c->wa_id);
  g_clear_pointer(&c->phones, g_ptr_array_unref);
  g_clear_pointer(&c->emails, g_ptr_array_unref);
  g_clear_pointer(&c->urls, g_ptr_array_unref);
  g_free(c);
}

void
wa_order_item_free(WaOrderItem *item)
{
  if (item == NULL)
    return;
  g_free(item->product_id);
  g_free(item->currency);
  g_free(item);
}

void
wa_call_free(WaCall *call)
{
  if (call == NULL)
    return;
  g_free(call->id);
  g_free(call->from);
  g_free(call->from_user_id);
  g_free(call->to);
  g_free(call->event);
  g_free(call->direction);
  g_free(call->status);
  g_clear_pointer(&call->raw, json_node_unref);
  g_free(call);
}

void
wa_contact_free(WaContact *contact)
{
  if (contact == NULL)
    return;
  g_free(contact->wa_id);
  g_free(contact->user_id);
  g_free(contact->parent_user_id);
  g_free(contact->profile_name);
  g_free(contact->username);
  g_free(contact->identity_key_hash);
  g_free(contact);
}

void
wa_message_free(WaMessage *m)
{
  if (m == NULL)
    return;
  g_free(m->id);
  g_free(m->from);
  g_free(m->from_user_id);
  g_free(m->from_parent_user_id);
  g_free(m->group_id);
  g_free(m->type);
  g_free(m->text);
  g_free(m->context_id);
  g_free(m->context_from);
  g_free(m->referred_catalog_id);
  g_free(m->referred_product_id);
  g_free(m->referral_source_url);
  g_free(m->referral_headline);
  g_free(m->referral_body);
  g_free(m->referral_source_id);
  g_free(m->referral_source_type);
  g_clear_pointer(&m->shared_contacts, g_ptr_array_unref);
  g_clear_pointer(&m->order_items, g_ptr_array_unref);
  g_free(m->media_id);
  g_free(m->mime_type);
  g_free(m->sha256);
  g_free(m->filename);
  g_free(m->media_url);
  g_free(m->location_name);
  g_free(m->location_address);
  g_free(m->location_url);
  g_free(m->reaction_message_id);
  g_free(m->reaction_emoji);
  g_free(m->interactive_type);
  g_free(m->reply_id);
  g_free(m->reply_description);
  g_free(m->reply_json);
  g_free(m->permission_response);
  g_free(m->order_catalog_id);
  g_free(m->system_type);
  g_free(m->system_body);
  g_free(m->system_new_wa_id);
  g_free(m->system_new_user_id);
  g_free(m->system_previous_user_id);
  g_free(m->original_message_id);
  g_free(m->edit_type);
  g_free(m->unsupported_type);
  g_clear_pointer(&m->errors, g_ptr_array_unref);
  g_clear_pointer(&m->raw, json_node_unref);
  wa_crypt_wipe_free(m->stored);
  g_free(m);
}

void
wa_status_free(WaStatus *s)
{
  if (s == NULL)
    return;
  g_free(s->id);
  g_free(s->status);
  g_free(s->recipient_id);
  g_free(s->recipient_user_id);
  g_free(s->recipient_parent_user_id);
  g_free(s->recipient_type);
  g_free(s->recipient_participant_id);
  g_free(s->biz_opaque_callback_data);
  g_free(s->conversation_id);
  g_free(s->conversation_origin);
  g_free(s->pricing_model);
  g_free(s->pricing_type);
  g_free(s->pricing_category);
  g_clear_pointer(&s->errors, g_ptr_array_unref);
  g_clear_pointer(&s->raw, json_node_unref);
  g_free(s);
}

void
wa_echo_free(WaEcho *e)
{
  if (e == NULL)
    return;
  g_free(e->id);
  g_free(e->from);
  g_free(e->to);
  g_free(e->type);
  g_free(e->text);
  g_clear_pointer(&e->raw, json_node_unref);
  wa_crypt_wipe_free(e->stored);
  g_free(e);
}

void
wa_group_event_free(WaGroupEvent *g)
{
  if (g == NULL)
    return;
  g_free(g->group_id);
  g_free(g->type);
  g_free(g->subject);
  g_clear_pointer(&g->raw, json_node_unref);
  g_free(g);
}

void
wa_change_free(WaChange *c)
{
  if (c == NULL)
    return;
  g_free(c->waba_id);
  g_free(c->field);
  g_free(c->phone_number_id);
  g_free(c->display_phone_number);
  g_clear_pointer(&c->contacts, g_ptr_array_unref);
  g_clear_pointer(&c->messages, g_ptr_array_unref);
  g_clear_pointer(&c->statuses, g_ptr_array_unref);
  g_clear_pointer(&c->errors, g_ptr_array_unref);
  g_clear_pointer(&c->echoes, g_ptr_array_unref);
  g_clear_pointer(&c->groups, g_ptr_array_unref);
  g_clear_pointer(&c->calls, g_ptr_array_unref);
  g_clear_pointer(&c->value, json_node_unref);
  g_free(c);
}

void
wa_webhook_free(WaWebhook *webhook)
{
  if (webhook == NULL)
    return;
  g_clear_pointer(&webhook->changes, g_ptr_array_unref);
  g_free(webhook);
}
