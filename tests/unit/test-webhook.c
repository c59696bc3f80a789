/* test-webhook.c: webhook bodies -> WaWebhook, in two modes.
 *
 *   test-webhook --fixtures DIR   the project's own conformance fixtures
 *                                 (tests/data/webhooks: every webhook field and
 *                                 message shape the code handles), checked
 *                                 shape by shape, plus hand-written bodies for
 *                                 statuses, errors, several entries, lenient
 *                                 types, BSUID-only senders and refused
 *                                 envelopes.
 *   test-webhook --meta DIR       Meta's published examples (the folder of the
 *                                 meson option meta_examples): every one must
 *                                 parse; several are checked field by field.
 *                                 A missing DIR is a skip with its reason.
 *
 * Must not: modify the examples, depend on directory order, or pass when a
 * directory holds fewer files than expected. */
#include <locale.h>

#include "wa-webhook.h"

#include "wa-describe.h"
#include "wa-json.h"

#include <string.h>

#define MIN_EXAMPLES 16

/* Meta's folder holds 16 examples; ours one file per shape in fixture_cases. */
#define MIN_FIXTURES 37

static const char *spec_dir;

static WaWebhook *
parse_str(const char *body, GError **error)
{
  return wa_webhook_parse(body, strlen(body), error);
}

static WaWebhook *
parse_example(const char *name)
{
  g_autofree char *path = g_build_filename(spec_dir, name, NULL);
  g_autofree char *body = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;
  WaWebhook *webhook;

  g_file_get_contents(path, &body, &len, &error);
  g_assert_no_error(error);
  webhook = wa_webhook_parse(body, len, &error);
  g_assert_no_error(error);
  g_assert_nonnull(webhook);
  return webhook;
}

static const WaChange *
only_change(const WaWebhook *webhook)
{
  g_assert_cmpuint(webhook->changes->len, ==, 1);
  return g_ptr_array_index(webhook->changes, 0);
}

/* The single message of an example's single change, checked against the
 * common envelope all "messages" examples share. */
static const WaMessage *
only_message(const WaWebhook *webhook)
{
  const WaChange *change = only_change(webhook);

  g_assert_cmpstr(change->field, ==, "messages");
  g_assert_cmpstr(change->phone_number_id, ==, "106540352242922");
  g_assert_cmpstr(change->display_phone_number, ==, "15550783881");
  g_assert_cmpuint(change->messages->len, ==, 1);
  g_assert_cmpuint(change->statuses->len, ==, 0);
  return g_ptr_array_index(change->messages, 0);
}

static void
check_all_parse(guint minimum)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = g_dir_open(spec_dir, 0, &error);
  const char *name;
  guint count = 0;

  g_assert_no_error(error);
  while ((name = g_dir_read_name(dir)) != NULL) {
    g_autoptr(WaWebhook) webhook = NULL;

    if (!g_str_has_suffix(name, ".json"))
      continue;
    g_test_message("example %s", name);
    webhook = parse_example(name);
    g_assert_cmpuint(webhook->changes->len, >=, 1);
    g_assert_cmpuint(webhook->skipped, ==, 0);
    for (guint i = 0; i < webhook->changes->len; i++) {
      const WaChange *change = g_ptr_array_index(webhook->changes, i);

      g_assert_nonnull(change->waba_id);
      g_assert_nonnull(change->field);
      g_assert_nonnull(change->value);
      for (guint j = 0; j < change->messages->len; j++) {
        const WaMessage *msg = g_ptr_array_index(change->messages, j);

        g_assert_nonnull(msg->id);
        g_assert_nonnull(msg->type);
        g_assert_cmpint(msg->timestamp, >, 1700000000);
        g_assert_nonnull(msg->raw);
      }
    }
    count++;
  }
  g_assert_cmpuint(count, >=, minimum);
}

static void
test_all_examples(void)
{
  check_all_parse(MIN_EXAMPLES);
}

static void
test_all_fixtures(void)
{
  check_all_parse(MIN_FIXTURES);
}

static void
test_text(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("text_message.json");
  const WaChange *change = only_change(webhook);
  const WaMessage *msg = only_message(webhook);
  const WaContact *contact = wa_change_find_contact(change, msg);

  g_assert_cmpstr(change->waba_id, ==, "419561257915477");
  g_assert_cmpstr(msg->id, ==, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
  g_assert_cmpstr(msg->from, ==, "16505551234");
  g_assert_cmpstr(msg->type, ==, "text");
  g_assert_cmpstr(msg->text, ==, "Does it come in another color?");
  g_assert_cmpint(msg->timestamp, ==, 1749416383);
  g_assert_null(msg->context_id);
  g_assert_false(msg->forwarded);
  g_assert_cmpuint(change->contacts->len, ==, 1);
  g_assert_nonnull(contact);
  g_assert_cmpstr(contact->profile_name, ==, "Sheena Nelson");
  g_assert_cmpstr(contact->wa_id, ==, "16505551234");
  g_assert_null(contact->user_id);
}

static void
test_image(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("image_message.json");
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "image");
  g_assert_cmpstr(msg->media_id, ==, "1003383421387256");
  g_assert_cmpstr(msg->mime_type, ==, "image/jpeg");
  g_assert_cmpstr(msg->sha256, ==, "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=");
  g_assert_cmpstr(msg->text, ==, "Taj Mahal");
  g_assert_null(msg->media_url);
  g_assert_false(msg->voice);
}

static void
test_location(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("location_message.json");
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "location");
  g_assert_true(msg->has_location);
  g_assert_cmpfloat_with_epsilon(msg->latitude, 37.44221496582, 1e-9);
  g_assert_cmpfloat_with_epsilon(msg->longitude, -122.16165924072, 1e-9);
  g_assert_cmpstr(msg->location_name, ==, "Philz Coffee");
  g_assert_cmpstr(msg->location_address, ==, "101 Forest Ave, Palo Alto, CA 94301");
  g_assert_cmpstr(msg->location_url, ==, "https://philzcoffee.com/");
}

static void
test_reaction(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("reaction_message.json");
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "reaction");
  g_assert_cmpstr(msg->reaction_message_id, ==, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA");
  g_assert_cmpstr(msg->reaction_emoji, ==, "\xf0\x9f\x91\x8d");
  g_assert_null(msg->text);
}

static void
test_interactive(void)
{
  g_autoptr(WaWebhook) button = parse_example("interactive_button_reply_message.json");
  g_autoptr(WaWebhook) list = parse_example("interactive_list_reply_message.json");
  const WaMessage *b = only_message(button);
  const WaMessage *l = only_message(list);

  g_assert_cmpstr(b->type, ==, "interactive");
  g_assert_cmpstr(b->interactive_type, ==, "button_reply");
  g_assert_cmpstr(b->reply_id, ==, "cancel-button");
  g_assert_cmpstr(b->text, ==, "Cancel");
  g_assert_cmpstr(b->context_id, ==, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA");
  g_assert_cmpstr(b->context_from, ==, "15550783881");

  g_assert_cmpstr(l->interactive_type, ==, "list_reply");
  g_assert_cmpstr(l->reply_id, ==, "priority_express");
  g_assert_cmpstr(l->text, ==, "Priority Mail Express");
  g_assert_cmpstr(l->reply_description, ==, "Next Day to 2 Days");
}

static void
test_button(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("button_message.json");
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "button");
  g_assert_cmpstr(msg->reply_id, ==, "Unsubscribe");
  g_assert_cmpstr(msg->text, ==, "Unsubscribe");
  g_assert_null(msg->interactive_type);
  g_assert_cmpstr(msg->context_id, ==, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJFNjk2OTMwNEZCQjhGMzUyQUYA");
}

static void
test_contacts_message(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("contact_sharing_message.json");
  const WaChange *change = only_change(webhook);
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "contacts");
  g_assert_cmpstr(msg->text, ==,
                  "Luc\xc3\xad"
                  "a G\xc3\xb3mez: +1 (983) 555-2319");
  /* the shared card is not mistaken for the sender */
  g_assert_cmpuint(change->contacts->len, ==, 1);
  g_assert_cmpstr(wa_change_find_contact(change, msg)->profile_name, ==, "Sheena Nelson");
}

static void
test_order(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("order_message.json");
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "order");
  g_assert_cmpstr(msg->order_catalog_id, ==, "194836987003835");
  g_assert_cmpuint(msg->order_item_count, ==, 2);
  g_assert_cmpint(msg->order_quantity, ==, 3);
  g_assert_cmpstr(msg->text, ==, "");
}

static void
test_system(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("system_message.json");
  const WaChange *change = only_change(webhook);
  const WaMessage *msg = only_message(webhook);

  g_assert_cmpstr(msg->type, ==, "system");
  g_assert_cmpstr(msg->system_type, ==, "user_changed_number");
  g_assert_cmpstr(msg->system_new_wa_id, ==, "12195555358");
  g_assert_cmpstr(msg->system_body, ==, "User Sheena Nelson changed from 16505551234 to 12195555358");
  /* system messages carry no contacts */
  g_assert_cmpuint(change->contacts->len, ==, 0);
  g_assert_null(wa_change_find_contact(change, msg));
}

static void
test_unsupported(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("unsupported_message.json");
  const WaMessage *msg = only_message(webhook);
  const WaGraphError *err;

  g_assert_cmpstr(msg->type, ==, "unsupported");
  g_assert_cmpuint(msg->errors->len, ==, 1);
  err = g_ptr_array_index(msg->errors, 0);
  g_assert_cmpint(err->code, ==, 131051);
  g_assert_cmpstr(err->title, ==, "Message type unknown");
  g_assert_cmpstr(err->details, ==, "Message type is currently not supported.");
}

static void
test_context_and_referral(void)
{
  g_autoptr(WaWebhook) inquiry = parse_example("text_message_with_context_product_inquiry.json");
  g_autoptr(WaWebhook) ad = parse_example("text_message_from_click_to_whatsapp_ad.json");
  const WaMessage *i = only_message(inquiry);
  const WaMessage *a = only_message(ad);

  g_assert_cmpstr(i->text, ==, "Is this still available?");
  g_assert_cmpstr(i->referred_catalog_id, ==, "194836987003835");
  g_assert_cmpstr(i->referred_product_id, ==, "di9ozbzfi4");
  g_assert_cmpstr(a->text, ==, "Hello! Can I get more info on this?");
  g_assert_cmpstr(a->referral_source_url, ==, "https://fb.me/3cr4Wqqkv");
  g_assert_cmpstr(a->referral_headline, ==, "Chat with us");
}

static void
test_groups(void)
{
  static const char *const names[] = {
    "group_create_message.json",
    "group_remove_participants.json",
    "group_settings_update.json",
  };
  static const char *const fields[] = {
    "group_lifecycle_update",
    "group_participants_update",
    "group_settings_update",
  };

  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autoptr(WaWebhook) webhook = parse_example(names[i]);
    const WaChange *change = only_change(webhook);
    JsonObject *value;
    JsonArray *groups;

    g_assert_cmpstr(change->field, ==, fields[i]);
    g_assert_cmpstr(change->waba_id, ==, "102290129340398");
    g_assert_nonnull(change->value);
    value = json_node_get_object(change->value);
    groups = wa_json_get_array(value, "groups");
    g_assert_nonnull(groups);
    g_assert_cmpstr(wa_json_get_string(wa_json_array_get_object(groups, 0), "group_id"), ==,
                    "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD");
    for (guint j = 0; j < change->messages->len; j++)
      g_assert_nonnull(((WaMessage *) g_ptr_array_index(change->messages, j))->group_id);
  }
}


/* --- the project's fixtures: one file per shape ------------------------- */

/* Each fixture's field, its counts, and for message shapes the line a person
 * sees (wa_message_describe of its first message) and who sent it. */
static const struct {
  const char *file;
  const char *field;
  guint messages;
  guint statuses;
  const char *from; /* first message's sender (phone digits or BSUID) */
  const char *line; /* first message described; NULL: no message */
} fixture_cases[] = {
  {"account_update.json", "account_update", 0, 0, NULL, NULL},
  {"audio_voice.json", "messages", 1, 0, "4915112345678", "[Voice message]"},
  {"bsuid_only.json", "messages", 1, 0, "DE.1349120865530274", "Hi, I only have a username"},
  {"button.json", "messages", 1, 0, "4915112345678", "[Reply] Stop promotions (payload: STOP_PROMOS)"},
  {"call_permission_update.json", "call_permission_update", 0, 0, NULL, NULL},
  {"calls.json", "calls", 0, 0, NULL, NULL},
  {"contacts.json", "messages", 1, 0, "4915112345678",
   "[Contact] Jonas Brandt (Brandt Logistik, Dispatch): +49 151 2223334, jonas@example.com, https://brandt.example"},
  {"document.json", "messages", 1, 0, "4915112345678", "[Document] Rechnung 1187.pdf My invoice"},
  {"edit.json", "messages", 1, 0, "4915112345678", "edited a message: Order 1188, not 1187"},
  {"group_create.json", "group_lifecycle_update", 0, 0, NULL, NULL},
  {"group_message.json", "messages", 1, 0, "4915112345678", "Can someone hold a parcel for me?"},
  {"group_participants_remove.json", "group_participants_update", 0, 0, NULL, NULL},
  {"group_settings_update.json", "group_settings_update", 0, 0, NULL, NULL},
  {"image.json", "messages", 1, 0, "4915112345678", "[Image] The scratch on the lid"},
  {"interactive_button_reply.json", "messages", 1, 0, "4915112345678", "[Reply] Reschedule"},
  {"interactive_call_permission_reply.json", "messages", 1, 0, "4915112345678",
   "[Calls] The customer allows calls from this business for now. Calls are not answered here."},
  {"interactive_list_reply.json", "messages", 1, 0, "4915112345678",
   "[Reply] Tuesday 10-12 (Delivery between 10 and 12)"},
  {"interactive_nfm_reply.json", "messages", 1, 0, "4915112345678",
   "[Form] Sent — size: 40; colour: brown; gift_wrap: yes"},
  {"location.json", "messages", 1, 0, "4915112345678",
   "[Location] Alexanderplatz, 10178 Berlin (52.520008, 13.404954) "
   "https://www.openstreetmap.org/?mlat=52.520008&mlon=13.404954#map=16/52.520008/13.404954 https://example.com/alex"},
  {"message_template_status_update.json", "message_template_status_update", 0, 0, NULL, NULL},
  {"order.json", "messages", 1, 0, "4915112345678",
   "[Order] 2 products, 4 pieces: 1 × boot-40-brown at 89.90 EUR; 3 × sock-pack at 4.50 EUR; total 103.40 EUR — note: "
   "For the shop in Mitte"},
  {"phone_number_quality_update.json", "phone_number_quality_update", 0, 0, NULL, NULL},
  {"reaction.json", "messages", 1, 0, "4915112345678", "reacted 👍 to an earlier message"},
  {"reaction_removed.json", "messages", 1, 0, "4915112345678", "removed a reaction to an earlier message"},
  {"request_welcome.json", "messages", 1, 0, "4915112345678", "[The customer opened the chat for the first time]"},
  {"revoke.json", "messages", 1, 0, "4915112345678", "deleted a message"},
  {"smb_message_echoes.json", "smb_message_echoes", 0, 0, NULL, NULL},
  {"status_failed.json", "messages", 0, 1, NULL, NULL},
  {"statuses.json", "messages", 0, 3, NULL, NULL},
  {"sticker.json", "messages", 1, 0, "4915112345678", "[Sticker]"},
  {"system_changed_number.json", "messages", 1, 0, "4915112345678",
   "User Lena Vogel changed from 4915112345678 to 4915199999999"},
  {"system_changed_user_id.json", "messages", 1, 0, "4915112345678", "User Lena Vogel changed their user ID"},
  {"text.json", "messages", 1, 0, "4915112345678", "Hallo! Is my order 1187 on its way?"},
  {"text_forwarded.json", "messages", 1, 0, "4915112345678", "(Forwarded many times) Look at this offer"},
  {"text_from_ad.json", "messages", 1, 0, "4915112345678",
   "(From an ad: Winter sale: 30% off, https://fb.me/fixture-ad) Is the winter sale still on?"},
  {"text_product_inquiry.json", "messages", 1, 0, "4915112345678",
   "(About product boot-40-brown) Do you have it in size 40?"},
  {"text_reply.json", "messages", 1, 0, "4915112345678", "(In reply to an earlier message) Yes, that one."},
  {"two_customers.json", "messages", 2, 0, "4915112345678", "First customer here"},
  {"unknown_type.json", "messages", 1, 0, "4915112345678", "[A hologram message, not shown by this version]"},
  {"unsupported.json", "messages", 1, 0, "4915112345678",
   "[A message of a kind WhatsApp does not pass on (poll)] Message type unknown (Message type is currently not "
   "supported.) [error 131051]"},
  {"value_errors.json", "messages", 0, 0, NULL, NULL},
  {"video.json", "messages", 1, 0, "4915112345678", "[Video] How it rattles"},
};

static void
test_fixture_shapes(void)
{
  for (guint i = 0; i < G_N_ELEMENTS(fixture_cases); i++) {
    g_autoptr(WaWebhook) webhook = parse_example(fixture_cases[i].file);
    const WaChange *change = only_change(webhook);

    g_test_message("fixture %s", fixture_cases[i].file);
    g_assert_cmpuint(webhook->skipped, ==, 0);
    g_assert_cmpstr(change->waba_id, ==, "310000000000042");
    g_assert_cmpstr(change->field, ==, fixture_cases[i].field);
    g_assert_cmpuint(change->messages->len, ==, fixture_cases[i].messages);
    g_assert_cmpuint(change->statuses->len, ==, fixture_cases[i].statuses);
    if (change->phone_number_id != NULL)
      g_assert_cmpstr(change->phone_number_id, ==, "210000000000017");
    if (fixture_cases[i].line != NULL) {
      const WaMessage *msg = g_ptr_array_index(change->messages, 0);
      g_autofree char *line = wa_message_describe(msg);

      g_assert_cmpstr(msg->from != NULL ? msg->from : msg->from_user_id, ==, fixture_cases[i].from);
      g_assert_cmpstr(line, ==, fixture_cases[i].line);
    }
  }
}

/* Echoes and group events come typed: what the plugin needs, and the raw
 * object. Wrong types are skipped and counted, never fatal. */
static void
test_echoes_and_groups(void)
{
  g_autoptr(WaWebhook) echoes = parse_example("smb_message_echoes.json");
  g_autoptr(WaWebhook) created = parse_example("group_create.json");
  g_autoptr(WaWebhook) removed = parse_example("group_participants_remove.json");
  g_autoptr(WaWebhook) settings = parse_example("group_settings_update.json");
  g_autoptr(WaWebhook) lenient = NULL;
  g_autoptr(GError) error = NULL;
  const WaChange *change = only_change(echoes);
  const WaEcho *echo;
  const WaGroupEvent *g;

  g_assert_cmpuint(change->echoes->len, ==, 1);
  g_assert_cmpuint(change->groups->len, ==, 0);
  echo = g_ptr_array_index(change->echoes, 0);
  g_assert_cmpstr(echo->id, ==, "wamid.FIXTURE0028QUJDREVGR0hJSktMTU5PUA==");
  g_assert_cmpstr(echo->from, ==, "493012345670");
  g_assert_cmpstr(echo->to, ==, "4915112345678");
  g_assert_cmpstr(echo->type, ==, "text");
  g_assert_cmpstr(echo->text, ==, "Sent from the phone: we open at 9");
  g_assert_cmpint(echo->timestamp, ==, 1767013320);
  g_assert_nonnull(echo->raw);

  change = only_change(created);
  g_assert_cmpuint(change->groups->len, ==, 1);
  g = g_ptr_array_index(change->groups, 0);
  g_assert_cmpstr(g->group_id, ==, "Rml4dHVyZUdyb3VwOjQ5MzAxMjM0NTY3MDoxMjAzNjMwMDAwMDAwMDAxZD");
  g_assert_cmpstr(g->type, ==, "group_create");
  g_assert_cmpstr(g->subject, ==, "Mitte store pickups");
  g_assert_cmpint(g->timestamp, ==, 1767013200);
  g_assert_cmpint(g->added, ==, 2);
  g_assert_cmpint(g->removed, ==, -1);

  g = g_ptr_array_index(only_change(removed)->groups, 0);
  g_assert_cmpstr(g->type, ==, "group_participants_remove");
  g_assert_null(g->subject);
  g_assert_cmpint(g->added, ==, -1);
  g_assert_cmpint(g->removed, ==, 2);

  g = g_ptr_array_index(only_change(settings)->groups, 0);
  g_assert_cmpstr(g->type, ==, "group_settings_update");
  g_assert_cmpint(g->added, ==, -1);
  g_assert_cmpint(g->removed, ==, -1);

  /* a number for "to", an echo that is not an object, a participants list
   * that is not an array, groups that are not an array */
  lenient = parse_str("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":["
                      "{\"field\":\"smb_message_echoes\",\"value\":{\"message_echoes\":"
                      "[{\"to\":4915112345678,\"type\":\"image\",\"timestamp\":\"12\"},7]}},"
                      "{\"field\":\"group_participants_update\",\"value\":{\"groups\":"
                      "[{\"group_id\":\"g1\",\"added_participants\":{}}]}},"
                      "{\"field\":\"group_settings_update\",\"value\":{\"groups\":{}}}]}]}",
                      &error);
  g_assert_no_error(error);
  g_assert_cmpuint(lenient->changes->len, ==, 3);
  g_assert_cmpuint(lenient->skipped, ==, 3);
  change = g_ptr_array_index(lenient->changes, 0);
  g_assert_cmpuint(change->echoes->len, ==, 1);
  echo = g_ptr_array_index(change->echoes, 0);
  g_assert_cmpstr(echo->to, ==, "4915112345678");
  g_assert_null(echo->id);
  g_assert_null(echo->text);
  g_assert_cmpint(echo->timestamp, ==, 12);
  g = g_ptr_array_index(((WaChange *) g_ptr_array_index(lenient->changes, 1))->groups, 0);
  g_assert_cmpint(g->added, ==, -1);
  g_assert_cmpuint(((WaChange *) g_ptr_array_index(lenient->changes, 2))->groups->len, ==, 0);
}

/* Every file in the fixtures folder has its row above, so a new fixture
 * cannot go unchecked. */
static void
test_fixture_table_complete(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = g_dir_open(spec_dir, 0, &error);
  const char *name;
  guint count = 0;

  g_assert_no_error(error);
  while ((name = g_dir_read_name(dir)) != NULL) {
    gboolean listed = FALSE;

    if (!g_str_has_suffix(name, ".json"))
      continue;
    for (guint i = 0; i < G_N_ELEMENTS(fixture_cases) && !listed; i++)
      listed = g_str_equal(name, fixture_cases[i].file);
    if (!listed)
      g_error("fixture %s has no row in fixture_cases", name);
    count++;
  }
  g_assert_cmpuint(count, ==, G_N_ELEMENTS(fixture_cases));
}

/* --- hand-written bodies ------------------------------------------------ */

#define ENVELOPE(VALUE)                                                                                        \
  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"111\",\"changes\":[{\"field\":\"messages\"," \
  "\"value\":" VALUE "}]}]}"
#define META                                                                                                       \
  "\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":" \
  "\"106540352242922\"}"

static void
test_statuses(void)
{
  const char *body = ENVELOPE(
    "{" META ",\"statuses\":["
    "{\"id\":\"wamid.A\",\"status\":\"sent\",\"timestamp\":\"1750030073\",\"recipient_id\":\"16505551234\","
    "\"biz_opaque_callback_data\":\"outbox:42\",\"conversation\":{\"id\":\"c1\",\"origin\":{\"type\":\"service\"}},"
    "\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP\",\"type\":\"regular\",\"category\":\"utility\"}},"
    "{\"id\":\"wamid.A\",\"status\":\"delivered\",\"timestamp\":1750030080,\"recipient_id\":\"16505551234\"},"
    "{\"id\":\"wamid.A\",\"status\":\"read\",\"timestamp\":\"1750030099\",\"recipient_user_id\":\"US."
    "13491208655302741918\"},"
    "{\"id\":\"wamid.B\",\"status\":\"failed\",\"timestamp\":\"1751142888\",\"recipient_id\":\"16505551234\","
    "\"biz_opaque_callback_data\":\"outbox:43\",\"errors\":[{\"code\":131047,\"title\":\"Re-engagement message\","
    "\"message\":\"Re-engagement message\",\"error_data\":{\"details\":\"Message failed to send because more than 24 "
    "hours have passed.\"},"
    "\"href\":\"/documentation/business-messaging/whatsapp/support/error-codes\"}]}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *change;
  const WaStatus *sent, *delivered, *read, *failed;
  const WaGraphError *err;

  g_assert_no_error(error);
  change = only_change(webhook);
  g_assert_cmpuint(change->messages->len, ==, 0);
  g_assert_cmpuint(change->statuses->len, ==, 4);
  sent = g_ptr_array_index(change->statuses, 0);
  delivered = g_ptr_array_index(change->statuses, 1);
  read = g_ptr_array_index(change->statuses, 2);
  failed = g_ptr_array_index(change->statuses, 3);

  g_assert_cmpstr(sent->id, ==, "wamid.A");
  g_assert_cmpstr(sent->status, ==, "sent");
  g_assert_cmpint(sent->timestamp, ==, 1750030073);
  g_assert_cmpstr(sent->recipient_id, ==, "16505551234");
  g_assert_cmpstr(sent->biz_opaque_callback_data, ==, "outbox:42");
  g_assert_true(sent->has_pricing);
  g_assert_true(sent->billable);
  g_assert_cmpstr(sent->pricing_model, ==, "PMP");
  g_assert_cmpstr(sent->pricing_type, ==, "regular");
  g_assert_cmpstr(sent->pricing_category, ==, "utility");
  g_assert_cmpstr(sent->conversation_id, ==, "c1");
  g_assert_cmpstr(sent->conversation_origin, ==, "service");
  g_assert_cmpuint(sent->errors->len, ==, 0);

  g_assert_cmpstr(delivered->status, ==, "delivered");
  g_assert_cmpint(delivered->timestamp, ==, 1750030080);
  g_assert_false(delivered->has_pricing);
  g_assert_null(delivered->pricing_category);
  g_assert_null(delivered->biz_opaque_callback_data);

  g_assert_cmpstr(read->status, ==, "read");
  g_assert_null(read->recipient_id);
  g_assert_cmpstr(read->recipient_user_id, ==, "US.13491208655302741918");

  g_assert_cmpstr(failed->status, ==, "failed");
  g_assert_cmpstr(failed->biz_opaque_callback_data, ==, "outbox:43");
  g_assert_false(failed->has_pricing);
  g_assert_cmpuint(failed->errors->len, ==, 1);
  err = g_ptr_array_index(failed->errors, 0);
  g_assert_cmpint(err->code, ==, 131047);
  g_assert_cmpint(err->klass, ==, WA_ERROR_CLASS_WINDOW_CLOSED);
  g_assert_cmpstr(err->details, ==, "Message failed to send because more than 24 hours have passed.");
}

static void
test_value_errors_only(void)
{
  const char *body = ENVELOPE("{" META ",\"errors\":[{\"code\":130429,\"title\":\"Rate limit hit\","
                              "\"message\":\"Rate limit hit\",\"error_data\":{\"details\":\"too many\"}}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *change;

  g_assert_no_error(error);
  change = only_change(webhook);
  g_assert_cmpuint(change->messages->len, ==, 0);
  g_assert_cmpuint(change->statuses->len, ==, 0);
  g_assert_cmpuint(change->errors->len, ==, 1);
  g_assert_cmpint(((WaGraphError *) g_ptr_array_index(change->errors, 0))->code, ==, 130429);
  g_assert_cmpstr(((WaGraphError *) g_ptr_array_index(change->errors, 0))->title, ==, "Rate limit hit");
}

static void
test_many_entries(void)
{
  const char *body =
    "{\"object\":\"whatsapp_business_account\",\"entry\":["
    "{\"id\":\"111\",\"changes\":["
    "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"P1\"},\"messages\":["
    "{\"id\":\"m1\",\"from\":\"1\",\"timestamp\":\"10\",\"type\":\"text\",\"text\":{\"body\":\"one\"}},"
    "{\"id\":\"m2\",\"from\":\"1\",\"timestamp\":11,\"type\":\"text\",\"text\":{\"body\":\"two\"}}]}},"
    "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"P2\"},\"messages\":["
    "{\"id\":\"m3\",\"from\":\"2\",\"timestamp\":\"12\",\"type\":\"text\",\"text\":{\"body\":\"three\"}}]}}]},"
    "{\"id\":222,\"time\":1751247548,\"changes\":["
    "{\"field\":\"message_template_status_update\",\"value\":{\"event\":\"APPROVED\",\"message_template_id\":"
    "1689556908129835}}]}]}";
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *c1, *c2, *c3;

  g_assert_no_error(error);
  g_assert_cmpuint(webhook->changes->len, ==, 3);
  g_assert_cmpuint(webhook->skipped, ==, 0);
  c1 = g_ptr_array_index(webhook->changes, 0);
  c2 = g_ptr_array_index(webhook->changes, 1);
  c3 = g_ptr_array_index(webhook->changes, 2);
  g_assert_cmpstr(c1->phone_number_id, ==, "P1");
  g_assert_cmpuint(c1->messages->len, ==, 2);
  g_assert_cmpstr(((WaMessage *) g_ptr_array_index(c1->messages, 1))->text, ==, "two");
  /* timestamps as string and as integer */
  g_assert_cmpint(((WaMessage *) g_ptr_array_index(c1->messages, 0))->timestamp, ==, 10);
  g_assert_cmpint(((WaMessage *) g_ptr_array_index(c1->messages, 1))->timestamp, ==, 11);
  g_assert_cmpstr(c2->phone_number_id, ==, "P2");
  g_assert_cmpstr(((WaMessage *) g_ptr_array_index(c2->messages, 0))->id, ==, "m3");
  g_assert_cmpstr(c1->waba_id, ==, "111");
  g_assert_cmpint(c1->entry_time, ==, 0);
  /* entry.id as an integer */
  g_assert_cmpstr(c3->waba_id, ==, "222");
  g_assert_cmpint(c3->entry_time, ==, 1751247548);
  g_assert_cmpstr(c3->field, ==, "message_template_status_update");
  g_assert_null(c3->phone_number_id);
  g_assert_cmpstr(wa_json_get_string(json_node_get_object(c3->value), "event"), ==, "APPROVED");
  g_assert_cmpint(wa_json_get_int(json_node_get_object(c3->value), "message_template_id", 0), ==, 1689556908129835);
}

static void
test_wrong_types(void)
{
  const char *body =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[7,\"x\",null,{\"id\":[1],\"changes\":{}},"
    "{\"id\":\"1\",\"time\":\"soon\",\"changes\":[1,{\"field\":3,\"value\":[]},{\"field\":\"messages\",\"value\":"
    "{\"metadata\":\"no\",\"contacts\":{\"wa_id\":1},\"statuses\":\"none\",\"errors\":[1],\"messages\":[[],true,"
    "{\"id\":5,\"from\":{},\"timestamp\":[1],\"type\":7,\"text\":\"flat\"},"
    "{\"id\":\"ok\",\"type\":\"text\",\"text\":\"flat\",\"context\":[1],\"errors\":{}},"
    "{\"id\":\"img\",\"type\":\"image\",\"image\":{\"id\":{},\"mime_type\":5,\"voice\":\"yes\"}},"
    "{\"id\":\"loc\",\"type\":\"location\",\"location\":{\"latitude\":\"north\",\"longitude\":1}},"
    "{\"id\":\"ord\",\"type\":\"order\",\"order\":{\"product_items\":[1,{\"quantity\":\"2\"},{\"quantity\":-5}]}},"
    "{\"id\":\"con\",\"type\":\"contacts\",\"contacts\":[3,{\"name\":1,\"phones\":[{\"wa_id\":49170}]}]},"
    "{\"id\":\"int\",\"type\":\"interactive\",\"interactive\":{\"type\":\"type\"}},"
    "{\"id\":\"edit\",\"type\":\"edit\",\"edit\":{\"original_message_id\":\"m0\",\"message\":"
    "{\"type\":\"edit\",\"edit\":{\"message\":{\"type\":\"text\",\"text\":{\"body\":\"deep\"}}}}}}"
    "]}}]}]}";
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *change;
  const WaMessage *m;

  g_assert_no_error(error);
  change = only_change(webhook);
  /* entries 7, "x", null and the one with changes:{}; changes 1 and value:[];
   * contacts:{} and statuses:"none"; value errors[1]; messages [] and true;
   * a message's errors:{}; order item 1. Objects where objects are expected
   * (metadata, context) and contact card 3 are ignored, not counted. */
  g_assert_cmpuint(webhook->skipped, ==, 4 + 2 + 2 + 1 + 2 + 1 + 1);
  g_assert_cmpstr(change->waba_id, ==, "1");
  g_assert_cmpint(change->entry_time, ==, 0);
  g_assert_null(change->phone_number_id);
  g_assert_cmpuint(change->contacts->len, ==, 0);
  g_assert_cmpuint(change->statuses->len, ==, 0);
  g_assert_cmpuint(change->errors->len, ==, 0);
  g_assert_cmpuint(change->messages->len, ==, 8);

  m = g_ptr_array_index(change->messages, 0);
  g_assert_null(m->id);
  g_assert_null(m->type);
  g_assert_null(m->from);
  g_assert_cmpint(m->timestamp, ==, 0);
  m = g_ptr_array_index(change->messages, 1);
  g_assert_cmpstr(m->id, ==, "ok");
  g_assert_null(m->text);
  g_assert_null(m->context_id);
  g_assert_cmpuint(m->errors->len, ==, 0);
  m = g_ptr_array_index(change->messages, 2);
  g_assert_null(m->media_id);
  g_assert_null(m->mime_type);
  g_assert_false(m->voice);
  m = g_ptr_array_index(change->messages, 3);
  g_assert_false(m->has_location);
  m = g_ptr_array_index(change->messages, 4);
  g_assert_cmpuint(m->order_item_count, ==, 2);
  g_assert_cmpint(m->order_quantity, ==, 2);
  m = g_ptr_array_index(change->messages, 5);
  g_assert_cmpstr(m->text, ==, "49170");
  m = g_ptr_array_index(change->messages, 6);
  g_assert_cmpstr(m->interactive_type, ==, "type");
  g_assert_null(m->reply_id);
  /* an edit of an edit is not followed */
  m = g_ptr_array_index(change->messages, 7);
  g_assert_cmpstr(m->original_message_id, ==, "m0");
  g_assert_cmpstr(m->edit_type, ==, "edit");
  g_assert_null(m->text);
}

static void
test_more_types(void)
{
  const char *body = ENVELOPE(
    "{" META ",\"messages\":["
    "{\"id\":\"a\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"audio\",\"audio\":{\"id\":\"55\",\"mime_type\":"
    "\"audio/ogg; codecs=opus\",\"voice\":true,\"url\":\"https://x/y\"}},"
    "{\"id\":\"d\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"document\",\"document\":{\"id\":56,\"filename\":"
    "\"receipt.pdf\",\"caption\":\"here\"},"
    "\"context\":{\"forwarded\":true}},"
    "{\"id\":\"r\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\"}},"
    "{\"id\":\"v\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"revoke\",\"revoke\":{\"original_message_id\":\"wamid."
    "Y\"}},"
    "{\"id\":\"e\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"edit\",\"edit\":{\"original_message_id\":\"wamid.Z\","
    "\"message\":{\"type\":\"image\",\"image\":{\"id\":\"77\",\"caption\":\"new caption\"}}}},"
    "{\"id\":\"n\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
    "\"nfm_reply\":{\"name\":\"flow\",\"body\":\"Sent\",\"response_json\":\"{\\\"flow_token\\\":\\\"t\\\"}\"}}},"
    "{\"id\":\"u\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"hologram\",\"hologram\":{\"depth\":3},\"context\":{"
    "\"frequently_forwarded\":true}},"
    "{\"id\":\"g\",\"from\":\"1\",\"group_id\":\"G1\",\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"hi "
    "all\"}},"
    "{\"id\":\"c\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"contacts\",\"contacts\":["
    "{\"name\":{\"first_name\":\"Ann\",\"last_name\":\"Lee\"},\"phones\":[{\"phone\":\"+49 170 "
    "1\"},{\"wa_id\":\"4917022\"}]},"
    "{\"name\":{\"formatted_name\":\"Bo\"}}]}"
    "]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *change;
  const WaMessage *m;

  g_assert_no_error(error);
  change = only_change(webhook);
  g_assert_cmpuint(change->messages->len, ==, 9);
  m = g_ptr_array_index(change->messages, 0);
  g_assert_cmpstr(m->media_id, ==, "55");
  g_assert_true(m->voice);
  g_assert_cmpstr(m->media_url, ==, "https://x/y");
  g_assert_cmpstr(m->mime_type, ==, "audio/ogg; codecs=opus");
  m = g_ptr_array_index(change->messages, 1);
  g_assert_cmpstr(m->media_id, ==, "56");
  g_assert_cmpstr(m->filename, ==, "receipt.pdf");
  g_assert_cmpstr(m->text, ==, "here");
  g_assert_true(m->forwarded);
  g_assert_false(m->frequently_forwarded);
  m = g_ptr_array_index(change->messages, 2);
  g_assert_cmpstr(m->reaction_message_id, ==, "wamid.X");
  g_assert_null(m->reaction_emoji);
  m = g_ptr_array_index(change->messages, 3);
  g_assert_cmpstr(m->original_message_id, ==, "wamid.Y");
  m = g_ptr_array_index(change->messages, 4);
  g_assert_cmpstr(m->type, ==, "edit");
  g_assert_cmpstr(m->original_message_id, ==, "wamid.Z");
  g_assert_cmpstr(m->edit_type, ==, "image");
  g_assert_cmpstr(m->media_id, ==, "77");
  g_assert_cmpstr(m->text, ==, "new caption");
  m = g_ptr_array_index(change->messages, 5);
  g_assert_cmpstr(m->interactive_type, ==, "nfm_reply");
  g_assert_cmpstr(m->reply_id, ==, "flow");
  g_assert_cmpstr(m->text, ==, "Sent");
  g_assert_cmpstr(m->reply_json, ==, "{\"flow_token\":\"t\"}");
  m = g_ptr_array_index(change->messages, 6);
  g_assert_cmpstr(m->type, ==, "hologram");
  g_assert_true(m->frequently_forwarded);
  g_assert_null(m->text);
  g_assert_cmpint(wa_json_get_int(wa_json_get_object(json_node_get_object(m->raw), "hologram"), "depth", 0), ==, 3);
  m = g_ptr_array_index(change->messages, 7);
  g_assert_cmpstr(m->group_id, ==, "G1");
  g_assert_cmpstr(m->text, ==, "hi all");
  m = g_ptr_array_index(change->messages, 8);
  g_assert_cmpstr(m->text, ==, "Ann Lee: +49 170 1, 4917022\nBo");
}

static void
test_missing_messages(void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(ENVELOPE("{" META "}"), &error);
  const WaChange *change;

  g_assert_no_error(error);
  change = only_change(webhook);
  g_assert_nonnull(change->messages);
  g_assert_cmpuint(change->messages->len, ==, 0);
  g_assert_cmpuint(change->contacts->len, ==, 0);
  g_assert_cmpuint(webhook->skipped, ==, 0);
  g_assert_cmpstr(change->phone_number_id, ==, "106540352242922");
}

static void
test_bsuid_only(void)
{
  const char *body = ENVELOPE(
    "{" META ","
    "\"contacts\":[{\"profile\":{\"name\":\"Ann\"},\"wa_id\":\"4915112345678\",\"user_id\":\"DE.999\"},"
    "{\"profile\":{\"name\":\"Sheena\",\"username\":\"@sheena\"},\"user_id\":\"US.13491208655302741918\","
    "\"parent_user_id\":\"US.ENT.11815799212886844830\"}],"
    "\"messages\":[{\"from_user_id\":\"US.13491208655302741918\",\"id\":\"wamid.B1\",\"timestamp\":\"1760000000\","
    "\"type\":\"text\",\"text\":{\"body\":\"hi\"}},"
    "{\"from_user_id\":\"US.000\",\"id\":\"wamid.B2\",\"timestamp\":\"1760000001\",\"type\":\"text\",\"text\":{"
    "\"body\":\"?\"}}]}");
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *change;
  const WaMessage *msg;
  const WaContact *contact;

  g_assert_no_error(error);
  change = only_change(webhook);
  msg = g_ptr_array_index(change->messages, 0);
  g_assert_null(msg->from);
  g_assert_cmpstr(msg->from_user_id, ==, "US.13491208655302741918");
  contact = wa_change_find_contact(change, msg);
  g_assert_nonnull(contact);
  g_assert_null(contact->wa_id);
  g_assert_cmpstr(contact->profile_name, ==, "Sheena");
  g_assert_cmpstr(contact->username, ==, "@sheena");
  g_assert_cmpstr(contact->parent_user_id, ==, "US.ENT.11815799212886844830");
  /* an unknown BSUID matches nobody */
  g_assert_null(wa_change_find_contact(change, g_ptr_array_index(change->messages, 1)));
}

static void
test_refused(void)
{
  g_autoptr(GError) error = NULL;
  const char *text = ENVELOPE("{\"messages\":[]}");
  g_autofree char *truncated = g_strndup(text, strlen(text) - 3);
  g_autofree char *open = g_strnfill(64, '[');
  g_autofree char *close = g_strnfill(64, ']');
  /* the envelope holds 6 levels: 64 more inside value is too deep, 40 is not */
  g_autofree char *deep = g_strdup_printf(ENVELOPE("{\"x\":%s%s}"), open, close);
  g_autofree char *shallow = g_strdup_printf(ENVELOPE("{\"x\":%.*s%.*s}"), 40, open, 40, close);
  WaWebhook *ok;

  g_assert_null(parse_str(deep, &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP);
  g_clear_error(&error);
  ok = parse_str(shallow, &error);
  g_assert_no_error(error);
  g_assert_nonnull(ok);
  wa_webhook_free(ok);

  g_assert_null(parse_str("{\"object\":\"page\",\"entry\":[]}", &error));
  g_assert_error(error, WA_WEBHOOK_ERROR, WA_WEBHOOK_ERROR_OBJECT);
  g_clear_error(&error);
  g_assert_null(parse_str("{\"entry\":[]}", &error));
  g_assert_error(error, WA_WEBHOOK_ERROR, WA_WEBHOOK_ERROR_OBJECT);
  g_clear_error(&error);
  g_assert_null(parse_str("{\"object\":\"whatsapp_business_account\"}", &error));
  g_assert_error(error, WA_WEBHOOK_ERROR, WA_WEBHOOK_ERROR_ENVELOPE);
  g_clear_error(&error);
  g_assert_null(parse_str("{\"object\":\"whatsapp_business_account\",\"entry\":{}}", &error));
  g_assert_error(error, WA_WEBHOOK_ERROR, WA_WEBHOOK_ERROR_ENVELOPE);
  g_clear_error(&error);
  g_assert_null(parse_str(truncated, &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_null(parse_str("[]", &error));
  g_assert_error(error, WA_JSON_ERROR, WA_JSON_ERROR_NOT_OBJECT);
  g_clear_error(&error);
  g_assert_null(wa_webhook_parse(NULL, 0, &error));
  g_assert_nonnull(error);
}

/* What a person sees for each example message: the exact line for a few, a
 * non-empty line without markup for all. */
static void
test_describe(void)
{
  const struct {
    const char *file;
    const char *expected;
  } cases[] = {
    {"text_message.json", "Does it come in another color?"},
    {"image_message.json", "[Image] Taj Mahal"},
    {"location_message.json",
     "[Location] Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301 (37.442215, -122.161659) "
     "https://www.openstreetmap.org/?mlat=37.442215&mlon=-122.161659#map=16/37.442215/-122.161659 "
     "https://philzcoffee.com/"},
    {"reaction_message.json", NULL},
    {"order_message.json", NULL},
    {"unsupported_message.json", NULL},
    {"text_message_from_click_to_whatsapp_ad.json", NULL},
    {"text_message_with_context_product_inquiry.json", NULL},
    {"system_message.json", NULL},
    {"button_message.json", NULL},
    {"contact_sharing_message.json", NULL},
    {"interactive_button_reply_message.json", NULL},
    {"interactive_list_reply_message.json", NULL},
  };

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(WaWebhook) webhook = parse_example(cases[i].file);
    const WaMessage *msg = only_message(webhook);
    g_autofree char *line = wa_message_describe(msg);

    g_test_message("%s: %s", cases[i].file, line);
    g_assert_cmpuint(strlen(line), >, 0);
    if (cases[i].expected != NULL)
      g_assert_cmpstr(line, ==, cases[i].expected);
    if (g_str_equal(msg->type, "text") && msg->referral_headline == NULL && msg->referred_product_id == NULL)
      g_assert_cmpstr(line, ==, msg->text);
    if (!g_str_equal(msg->type, "text") && !g_str_equal(msg->type, "system") && !g_str_equal(msg->type, "reaction"))
      g_assert_nonnull(strchr(line, '['));
    g_assert_cmpint(wa_message_opens_window(msg), ==, !g_str_equal(msg->type, "system"));
  }
}

/* --- the inbound kinds, described --------------------------------------- */

/* A one-message webhook whose message object is @message_json. */
static WaWebhook *
parse_message(const char *message_json)
{
  g_autofree char *body = g_strdup_printf(
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"messages\","
    "\"value\":{\"metadata\":{\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"wa_id\":\"4915112345678\","
    "\"profile\":"
    "{\"name\":\"Lena\",\"username\":\"@lena\"}}],\"messages\":[{%s}]}}]}]}",
    message_json);
  g_autoptr(GError) error = NULL;
  WaWebhook *webhook = parse_str(body, &error);

  g_assert_no_error(error);
  return webhook;
}

static const WaMessage *
first_message(const WaWebhook *webhook)
{
  const WaChange *change = only_change(webhook);

  g_assert_cmpuint(change->messages->len, ==, 1);
  return g_ptr_array_index(change->messages, 0);
}

static char *
describe_one(const char *message_json, const WaDescribeContext *ctx)
{
  g_autoptr(WaWebhook) webhook = parse_message(message_json);

  return wa_message_describe_in(first_message(webhook), ctx);
}

#define FROM "\"from\":\"4915112345678\",\"id\":\"wamid.x\",\"timestamp\":\"1\","

/* Replies, reactions, edits and deletions quote what the caller found, or
 * say that it is not known; quotes are one short line. */
static void
test_describe_quotes(void)
{
  WaDescribeContext found = {.quoted = "Your parcel ships today,\nexpect it on Friday between 10 and 12 o'clock "
                                       "at the latest, or call us"};
  g_autofree char *reply = describe_one(FROM "\"type\":\"text\",\"text\":{\"body\":\"Great\"},"
                                             "\"context\":{\"id\":\"wamid.q\"}",
                                        &found);
  g_autofree char *reply_unknown =
    describe_one(FROM "\"type\":\"text\",\"text\":{\"body\":\"Great\"},\"context\":{\"id\":\"wamid.q\"}", NULL);
  g_autofree char *reacted =
    describe_one(FROM "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.q\",\"emoji\":\"👍\"}", &found);
  g_autofree char *removed =
    describe_one(FROM "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.q\",\"emoji\":\"\"}", &found);
  g_autofree char *edited = describe_one(FROM "\"type\":\"edit\",\"edit\":{\"original_message_id\":\"wamid.q\","
                                              "\"message\":{\"type\":\"image\",\"image\":{\"id\":\"9\","
                                              "\"caption\":\"now blue\"}}}",
                                         &found);
  g_autofree char *revoked =
    describe_one(FROM "\"type\":\"revoke\",\"revoke\":{\"original_message_id\":\"wamid.q\"}", &found);
  g_autofree char *tap = describe_one(FROM "\"type\":\"button\",\"button\":{\"text\":\"Stop\",\"payload\":\"STOP\"},"
                                           "\"context\":{\"id\":\"wamid.t\"}",
                                      NULL);
  g_autoptr(WaWebhook) webhook = parse_message(FROM "\"type\":\"edit\",\"edit\":{\"original_message_id\":\"wamid.o\","
                                                    "\"message\":{\"type\":\"text\",\"text\":{\"body\":\"x\"}}}");

  g_assert_cmpstr(reply, ==, "(In reply to: “Your parcel ships today, expect it on Friday between 10 and…”) Great");
  g_assert_cmpstr(reply_unknown, ==, "(In reply to an earlier message) Great");
  g_assert_cmpstr(reacted, ==, "reacted 👍 to: “Your parcel ships today, expect it on Friday between 10 and…”");
  g_assert_cmpstr(removed, ==,
                  "removed the reaction to: “Your parcel ships today, expect it on Friday between 10 and…”");
  g_assert_cmpstr(edited, ==,
                  "edited a message: [Image] now blue (was: “Your parcel ships today, expect it on Friday between 10 "
                  "and…”)");
  g_assert_cmpstr(revoked, ==, "deleted a message: “Your parcel ships today, expect it on Friday between 10 and…”");
  /* a tap answers the business's own message: nothing said when unknown */
  g_assert_cmpstr(tap, ==, "[Reply] Stop (payload: STOP)");
  g_assert_cmpstr(wa_message_referenced_id(first_message(webhook)), ==, "wamid.o");
}

static void
test_short_quote(void)
{
  g_autofree char *exact = wa_describe_short_quote("abc\t\tdef\r\n");
  g_autofree char *accents =
    wa_describe_short_quote("ääääääääääääääääääääääääääääääääääääääääääääääääääääääääääääääää");
  g_autofree char *invalid = wa_describe_short_quote("\xff\xfe");
  g_autofree char *empty = wa_describe_short_quote(NULL);

  g_assert_cmpstr(exact, ==, "abc def");
  /* 60 characters (not bytes), then the ellipsis */
  g_assert_cmpuint(g_utf8_strlen(accents, -1), ==, 61);
  g_assert_true(g_str_has_suffix(accents, "ää…"));
  g_assert_cmpstr(invalid, ==, "?");
  g_assert_cmpstr(empty, ==, "");
}

/* Shared contacts: every card, numbered from the caller's count, with
 * organisation, phones, emails and links; a card without a WhatsApp id
 * keeps its phone. */
static void
test_describe_contacts(void)
{
  const char *json = FROM "\"type\":\"contacts\",\"contacts\":[{\"name\":{\"first_name\":\"Jonas\",\"last_name\":"
                          "\"Brandt\"},\"org\":{\"company\":\"ACME\"},\"phones\":[{\"phone\":\"+49 151 2223334\","
                          "\"wa_id\":\"491512223334\"}],\"emails\":[{\"email\":\"j@example.com\"}],\"urls\":[{\"url\":"
                          "\"https://acme.example\"}]},{\"name\":{\"formatted_name\":\"Desk\"},\"phones\":[{\"phone\":"
                          "\"030 1234\"}]},{\"phones\":[]}]";
  g_autoptr(WaWebhook) webhook = parse_message(json);
  const WaMessage *m = first_message(webhook);
  const WaSharedContact *first = g_ptr_array_index(m->shared_contacts, 0);
  const WaSharedContact *second = g_ptr_array_index(m->shared_contacts, 1);
  WaDescribeContext numbered = {.first_contact = 4};
  g_autofree char *line = wa_message_describe_in(m, &numbered);
  g_autofree char *plain = wa_message_describe(m);

  g_assert_cmpuint(m->shared_contacts->len, ==, 3);
  g_assert_cmpstr(first->name, ==, "Jonas Brandt");
  g_assert_cmpstr(first->org, ==, "ACME");
  g_assert_cmpstr(first->wa_id, ==, "491512223334");
  g_assert_cmpstr(g_ptr_array_index(first->emails, 0), ==, "j@example.com");
  g_assert_cmpstr(g_ptr_array_index(first->urls, 0), ==, "https://acme.example");
  g_assert_null(second->wa_id);
  g_assert_cmpstr(line, ==,
                  "[Contact 4] Jonas Brandt (ACME): +49 151 2223334, j@example.com, https://acme.example\n"
                  "[Contact 5] Desk: 030 1234\n"
                  "[Contact 6] (no name)\n"
                  "(/addcontact N adds contact N as a buddy)");
  g_assert_true(g_str_has_prefix(plain, "[Contact] Jonas Brandt (ACME)"));
  g_assert_null(strstr(plain, "/addcontact"));
  /* in BitlBee commands are typed with ! */
  numbered.command_prefix = '!';
  g_free(line);
  line = wa_message_describe_in(m, &numbered);
  g_assert_true(g_str_has_suffix(line, "\n(!addcontact N adds contact N as a buddy)"));
}

/* Orders: each line, and totals per currency; none when a price is missing. */
static void
test_describe_order(void)
{
  g_autofree char *mixed = describe_one(
    FROM "\"type\":\"order\",\"order\":{\"catalog_id\":\"7\",\"product_items\":[{\"product_retailer_id\":\"a\","
         "\"quantity\":2,\"item_price\":1.25,\"currency\":\"EUR\"},{\"product_retailer_id\":\"b\",\"quantity\":\"1\","
         "\"item_price\":\"x\",\"currency\":\"EUR\"}]}",
    NULL);
  g_autofree char *two = describe_one(
    FROM
    "\"type\":\"order\",\"order\":{\"product_items\":[{\"product_retailer_id\":\"a\",\"quantity\":2,"
    "\"item_price\":1.25,\"currency\":\"EUR\"},{\"product_retailer_id\":\"b\",\"quantity\":3,\"item_price\":2,"
    "\"currency\":\"USD\"},{\"product_retailer_id\":\"c\",\"quantity\":1,\"item_price\":0.5,\"currency\":\"EUR\"}]}",
    NULL);
  g_autoptr(WaWebhook) webhook =
    parse_message(FROM "\"type\":\"order\",\"order\":{\"product_items\":[{\"product_retailer_id\":\"a\","
                       "\"quantity\":2,\"item_price\":1.25,\"currency\":\"EUR\"}]}");
  const WaOrderItem *item = g_ptr_array_index(first_message(webhook)->order_items, 0);

  g_assert_cmpstr(item->product_id, ==, "a");
  g_assert_cmpint(item->quantity, ==, 2);
  g_assert_true(item->has_price);
  g_assert_cmpfloat(item->price, ==, 1.25);
  g_assert_cmpstr(item->currency, ==, "EUR");
  g_assert_cmpstr(mixed, ==, "[Order] 2 products, 3 pieces: 2 × a at 1.25 EUR; 1 × b");
  g_assert_cmpstr(two, ==,
                  "[Order] 3 products, 6 pieces: 2 × a at 1.25 EUR; 3 × b at 2.00 USD; 1 × c at 0.50 EUR; "
                  "total 3.00 EUR + 6.00 USD");
}

/* Flow answers: bounded, flow token left out, unreadable JSON said so. */
static void
test_describe_form(void)
{
  GString *many = g_string_new("{\\\"flow_token\\\":\\\"t\\\"");
  g_autofree char *json = NULL;
  g_autofree char *line = NULL;
  g_autofree char *bad =
    describe_one(FROM
                 "\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\","
                 "\"body\":\"Sent\",\"response_json\":\"[[[[\"}}",
                 NULL);
  g_autofree char *nested =
    describe_one(FROM
                 "\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{\"name\":\"flow\","
                 "\"response_json\":\"{\\\"sizes\\\":[\\\"40\\\",\\\"41\\\"],\\\"n\\\":2,\\\"o\\\":{\\\"a\\\":1}}\"}}",
                 NULL);

  for (guint i = 0; i < 15; i++)
    g_string_append_printf(many, ",\\\"f%u\\\":\\\"v%u\\\"", i, i);
  g_string_append_c(many, '}');
  json = g_strdup_printf(FROM "\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{"
                              "\"name\":\"flow\",\"body\":\"Sent\",\"response_json\":\"%s\"}}",
                         many->str + 0);
  g_string_free(many, TRUE);
  line = describe_one(json, NULL);
  g_assert_cmpstr(bad, ==, "[Form] Sent (its answers could not be read)");
  g_assert_cmpstr(nested, ==, "[Form] — sizes: 40, 41; n: 2; o: …");
  g_assert_true(g_str_has_prefix(line, "[Form] Sent — f0: v0; f1: v1;"));
  g_assert_true(g_str_has_suffix(line, "f9: v9 (and 5 more answers)"));
  g_assert_null(strstr(line, "flow_token"));
}

/* Locations in every locale: a dot, six decimals, an OpenStreetMap link. */
static void
test_describe_location(void)
{
  g_autofree char *bare = NULL;
  const char *old = setlocale(LC_NUMERIC, NULL);
  g_autofree char *saved = g_strdup(old);

  setlocale(LC_NUMERIC, "de_DE.UTF-8"); /* where installed: a decimal comma */
  bare = describe_one(FROM "\"type\":\"location\",\"location\":{\"latitude\":-33.8688,\"longitude\":151.2093}", NULL);
  setlocale(LC_NUMERIC, saved);
  g_assert_cmpstr(bare, ==,
                  "[Location] (-33.868800, 151.209300) "
                  "https://www.openstreetmap.org/?mlat=-33.868800&mlon=151.209300#map=16/-33.868800/151.209300");
}

/* The ad is said once: the caller says when it was seen. */
static void
test_describe_referral_once(void)
{
  const char *json = FROM "\"type\":\"text\",\"text\":{\"body\":\"Hi\"},\"referral\":{\"source_id\":\"55\","
                          "\"source_type\":\"ad\",\"headline\":\"Sale\",\"source_url\":\"https://fb.me/a\"}";
  WaDescribeContext seen = {.referral_seen = TRUE};
  g_autoptr(WaWebhook) webhook = parse_message(json);
  g_autofree char *first = wa_message_describe(first_message(webhook));
  g_autofree char *again = wa_message_describe_in(first_message(webhook), &seen);

  g_assert_cmpstr(first, ==, "(From an ad: Sale, https://fb.me/a) Hi");
  g_assert_cmpstr(again, ==, "Hi");
  g_assert_cmpstr(wa_message_referral_key(first_message(webhook)), ==, "55");
  g_assert_cmpstr(first_message(webhook)->referral_source_type, ==, "ad");
}

/* Calls (field "calls") and the call permission answer. */
static void
test_calls(void)
{
  const char *body =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"calls\","
    "\"value\":{\"metadata\":{\"phone_number_id\":\"2\"},\"contacts\":[{\"wa_id\":\"4915112345678\"},{\"user_id\":"
    "\"DE.Caller0000001\"}],\"calls\":[{\"id\":\"wacid.1\",\"from\":\"4915112345678\",\"event\":\"connect\","
    "\"direction\":\"USER_INITIATED\",\"timestamp\":\"5\"},{\"id\":\"wacid.2\",\"from_user_id\":\"DE.Caller0000001\","
    "\"event\":\"terminate\",\"status\":\"FAILED\",\"duration\":\"0\"},{\"id\":\"wacid.3\",\"event\":\"ring\"},7]}}]}]"
    "}";
  g_autoptr(GError) error = NULL;
  g_autoptr(WaWebhook) webhook = parse_str(body, &error);
  const WaChange *change = only_change(webhook);
  const WaCall *connect, *ended, *other;
  g_autofree char *connect_line = NULL;
  g_autofree char *ended_line = NULL;
  g_autofree char *other_line = NULL;
  g_autofree char *permission = describe_one(
    FROM "\"type\":\"interactive\",\"interactive\":{\"type\":\"call_permission_reply\",\"call_permission_reply\":"
         "{\"response\":\"reject\"}}",
    NULL);

  g_assert_no_error(error);
  g_assert_cmpuint(webhook->skipped, ==, 1);
  g_assert_cmpuint(change->calls->len, ==, 3);
  connect = g_ptr_array_index(change->calls, 0);
  ended = g_ptr_array_index(change->calls, 1);
  other = g_ptr_array_index(change->calls, 2);
  g_assert_cmpstr(connect->direction, ==, "USER_INITIATED");
  g_assert_cmpint(connect->timestamp, ==, 5);
  g_assert_cmpstr(wa_change_find_call_contact(change, connect)->wa_id, ==, "4915112345678");
  g_assert_cmpstr(wa_change_find_call_contact(change, ended)->user_id, ==, "DE.Caller0000001");
  g_assert_null(wa_change_find_call_contact(change, other));
  connect_line = wa_call_describe(connect);
  ended_line = wa_call_describe(ended);
  other_line = wa_call_describe(other);
  g_assert_cmpstr(connect_line, ==,
                  "The customer is calling on WhatsApp. Calls are not answered here: call back by phone, or write.");
  g_assert_true(g_str_has_prefix(ended_line, "The customer's WhatsApp call ended (FAILED)."));
  g_assert_true(g_str_has_prefix(other_line, "WhatsApp call event \"ring\""));
  g_assert_cmpstr(permission, ==, "[Calls] The customer answered the call permission request: reject.");
  {
    WaCall ours = {.direction = (char *) "BUSINESS_INITIATED",
                   .event = (char *) "terminate",
                   .status = (char *) "COMPLETED"};
    g_autofree char *line = wa_call_describe(&ours);

    g_assert_cmpstr(line, ==,
                    "A WhatsApp call from this business (made elsewhere) to the customer: terminate, COMPLETED.");
  }
}

/* A user ID change names the old and the new one. */
static void
test_user_id_change(void)
{
  g_autoptr(WaWebhook) webhook = parse_example("system_changed_user_id.json");
  const WaMessage *m = first_message(webhook);

  g_assert_cmpstr(m->system_type, ==, "user_changed_user_id");
  g_assert_cmpstr(m->system_new_user_id, ==, "DE.LenaNew0000000002");
  g_assert_cmpstr(m->system_previous_user_id, ==, "DE.LenaOld0000000001");
  g_assert_false(wa_message_opens_window(m));
}

/* Meta's own words for a message it does not pass on, bounded. */
static void
test_describe_unsupported(void)
{
  g_autofree char *line = describe_one(
    FROM "\"type\":\"unsupported\",\"unsupported\":{\"type\":\"poll\"},\"errors\":[{\"code\":131051,\"title\":"
         "\"Message type unknown\",\"message\":\"Not yet\",\"error_data\":{\"details\":\"Polls are not supported.\"}}]",
    NULL);

  g_assert_cmpstr(line, ==,
                  "[A message of a kind WhatsApp does not pass on (poll)] Message type unknown: Not yet (Polls are not "
                  "supported.) [error 131051]");
}

int
main(int argc, char **argv)
{
  gboolean meta = FALSE;

  g_test_init(&argc, &argv, NULL);
  for (int i = 1; i + 1 < argc && spec_dir == NULL; i++) {
    if (g_str_equal(argv[i], "--fixtures") || g_str_equal(argv[i], "--meta")) {
      meta = g_str_equal(argv[i], "--meta");
      spec_dir = argv[i + 1];
    }
  }
  if (spec_dir == NULL) {
    g_printerr("usage: test-webhook [--tap] --fixtures DIR | --meta DIR\n");
    return 1;
  }
  if (meta && !g_file_test(spec_dir, G_FILE_TEST_IS_DIR)) {
    /* TAP's plan for a skipped test, with its reason. */
    g_print("1..0 # SKIP Meta's webhook examples are not at '%s' (meson option meta_examples)\n", spec_dir);
    return 0;
  }

  if (meta) {
    g_test_add_func("/webhook/meta/all-examples", test_all_examples);
    g_test_add_func("/webhook/meta/text", test_text);
    g_test_add_func("/webhook/meta/image", test_image);
    g_test_add_func("/webhook/meta/location", test_location);
    g_test_add_func("/webhook/meta/reaction", test_reaction);
    g_test_add_func("/webhook/meta/interactive", test_interactive);
    g_test_add_func("/webhook/meta/button", test_button);
    g_test_add_func("/webhook/meta/contacts-message", test_contacts_message);
    g_test_add_func("/webhook/meta/order", test_order);
    g_test_add_func("/webhook/meta/system", test_system);
    g_test_add_func("/webhook/meta/unsupported", test_unsupported);
    g_test_add_func("/webhook/meta/context-and-referral", test_context_and_referral);
    g_test_add_func("/webhook/meta/groups", test_groups);
    g_test_add_func("/webhook/meta/describe", test_describe);
    return g_test_run();
  }
  g_test_add_func("/webhook/fixtures/all-parse", test_all_fixtures);
  g_test_add_func("/webhook/fixtures/table-complete", test_fixture_table_complete);
  g_test_add_func("/webhook/fixtures/shapes", test_fixture_shapes);
  g_test_add_func("/webhook/fixtures/echoes-and-groups", test_echoes_and_groups);
  g_test_add_func("/webhook/statuses", test_statuses);
  g_test_add_func("/webhook/value-errors-only", test_value_errors_only);
  g_test_add_func("/webhook/many-entries", test_many_entries);
  g_test_add_func("/webhook/wrong-types", test_wrong_types);
  g_test_add_func("/webhook/more-types", test_more_types);
  g_test_add_func("/webhook/missing-messages", test_missing_messages);
  g_test_add_func("/webhook/bsuid-only", test_bsuid_only);
  g_test_add_func("/webhook/refused", test_refused);
  g_test_add_func("/webhook/describe/quotes", test_describe_quotes);
  g_test_add_func("/webhook/describe/short-quote", test_short_quote);
  g_test_add_func("/webhook/describe/contacts", test_describe_contacts);
  g_test_add_func("/webhook/describe/order", test_describe_order);
  g_test_add_func("/webhook/describe/form", test_describe_form);
  g_test_add_func("/webhook/describe/location", test_describe_location);
  g_test_add_func("/webhook/describe/referral-once", test_describe_referral_once);
  g_test_add_func("/webhook/describe/unsupported", test_describe_unsupported);
  g_test_add_func("/webhook/calls", test_calls);
  g_test_add_func("/webhook/user-id-change", test_user_id_change);
  return g_test_run();
}
