/* wa-webhook.h: a webhook POST body as plain C structs.
 *
 * wa_webhook_parse() turns the JSON Meta delivers (docs/CLOUD-API.md, Webhooks)
 * into WaWebhook -> WaChange -> contacts / messages / statuses / errors, so the
 * receiver and the plugin never touch JSON for the fields we model. It walks
 * every entry[] and changes[] and every element of each array; elements of
 * the wrong type are skipped and counted, never asserted on. Fields we do not
 * model stay reachable through the raw JSON kept beside them.
 *
 * Must not: verify signatures (wa-signature does, over the raw bytes, before
 * this runs), deduplicate, interpret events, call json_parser directly (only
 * wa_json_parse_object, which limits nesting), or include libpurple.
 *
 * Ownership: everything reachable from a WaWebhook belongs to it and is freed
 * by wa_webhook_free(). Every string member may be NULL when the body did not
 * carry it (or carried another type), unless stated otherwise; ids given as
 * integers are rendered as decimal strings. Every GPtrArray member is non-NULL
 * (possibly empty). JsonNode members are private copies that share the parsed
 * tree; treat them as read-only and json_node_ref() them to keep them. */
#pragma once

#include <json-glib/json-glib.h>

#include "wa-error.h"

G_BEGIN_DECLS

#define WA_WEBHOOK_ERROR (wa_webhook_error_quark())
GQuark wa_webhook_error_quark(void);

typedef enum {
  WA_WEBHOOK_ERROR_OBJECT,   /* "object" is not "whatsapp_business_account" */
  WA_WEBHOOK_ERROR_ENVELOPE, /* "entry" is missing or not an array */
} WaWebhookError;

/* value.contacts[]: who wrote (inbound messages; v25+ statuses too). */
typedef struct {
  char *wa_id;             /* phone digits; absent for username-only users (v25+) */
  char *user_id;           /* BSUID (v25+) */
  char *parent_user_id;    /* parent BSUID, when enabled */
  char *profile_name;      /* profile.name */
  char *username;          /* profile.username (v25+) */
  char *identity_key_hash; /* only with the identity-change check */
} WaContact;

/* One card of a "contacts" message. */
typedef struct {
  char *name;        /* name.formatted_name, else first and last name; may be NULL */
  char *org;         /* org.company (with org.department); may be NULL */
  char *wa_id;       /* the first phone's WhatsApp id (digits), or NULL */
  GPtrArray *phones; /* char*: phones[].phone, else phones[].wa_id */
  GPtrArray *emails; /* char*: emails[].email */
  GPtrArray *urls;   /* char*: urls[].url */
} WaSharedContact;

/* One entry of an order's product_items. */
typedef struct {
  char *product_id;   /* product_retailer_id; may be NULL */
  gint64 quantity;    /* 0 when absent or not a positive integer */
  gboolean has_price; /* item_price was a number */
  double price;       /* item_price (per piece) */
  char *currency;     /* ISO 4217, or NULL */
} WaOrderItem;

/* value.messages[]: one inbound message. */
typedef struct {
  char *id;           /* wamid: the dedupe key */
  char *from;         /* phone digits; absent for username-only users */
  char *from_user_id; /* BSUID (v25+) */
  char *from_parent_user_id;
  char *group_id;   /* group messages only */
  gint64 timestamp; /* Unix seconds (string or integer in JSON); 0 when absent */
  char *type;       /* "text", "image", ...; unknown types are kept as given */

  /* What to show, when the type has a natural text: text.body; the caption of
   * image, video and document; button.text; the interactive reply's title (or
   * nfm_reply.body); order.text; system.body; for "contacts" one line per
   * shared contact, "Name: phone, phone"; for "edit" the edited message's text. */
  char *text;

  /* context */
  char *context_id; /* the quoted (replied-to) message */
  char *context_from;
  gboolean forwarded;
  gboolean frequently_forwarded;
  char *referred_catalog_id; /* product enquiry */
  char *referred_product_id; /* context.referred_product.product_retailer_id */

  /* referral (click-to-WhatsApp ads) */
  char *referral_source_url;
  char *referral_headline;
  char *referral_body;
  char *referral_source_id;
  char *referral_source_type; /* "ad", "post" */

  /* image, video, audio, document, sticker */
  char *media_id;
  char *mime_type;
  char *sha256;      /* base64, as the webhook gives it */
  char *filename;    /* document */
  char *media_url;   /* present on newer webhooks */
  gboolean voice;    /* audio recorded as a voice note */
  gboolean animated; /* sticker */

  /* location */
  gboolean has_location; /* latitude and longitude were numbers */
  double latitude;
  double longitude;
  char *location_name;
  char *location_address;
  char *location_url;

  /* reaction */
  char *reaction_message_id;
  char *reaction_emoji; /* NULL or "" = reaction removed */

  /* interactive (button_reply, list_reply, nfm_reply, ...) and button */
  char *interactive_type;        /* interactive.type */
  char *reply_id;                /* button_reply/list_reply id, nfm_reply name, button payload */
  char *reply_description;       /* list_reply description */
  char *reply_json;              /* nfm_reply.response_json (a JSON string, unparsed) */
  char *permission_response;     /* call_permission_reply.response: accept, reject, ... */
  gboolean permission_permanent; /* call_permission_reply.is_permanent */

  /* contacts */
  GPtrArray *shared_contacts; /* WaSharedContact*, in order */

  /* order */
  char *order_catalog_id;
  guint order_item_count; /* entries of product_items */
  gint64 order_quantity;  /* sum of their quantities */
  GPtrArray *order_items; /* WaOrderItem*, in order */

  /* system */
  char *system_type; /* user_changed_number, user_changed_user_id, ... */
  char *system_body;
  char *system_new_wa_id;        /* system.wa_id */
  char *system_new_user_id;      /* system.user_id */
  char *system_previous_user_id; /* system.previous_user_id */

  /* revoke, edit */
  char *original_message_id;
  char *edit_type; /* edit: the edited message's type; its payload fills the media fields */

  /* unsupported type: unsupported.type */
  char *unsupported_type;

  GPtrArray *errors; /* WaGraphError*: unsupported types, failed media (131052) */
  JsonNode *raw;     /* the message object as received */
  char *stored;      /* the event as kept with this message alone (wa_webhook_prepare_stored), or NULL */
} WaMessage;

/* value.statuses[]: delivery state of one of our sends. */
typedef struct {
  char *id;                       /* wamid of our send */
  char *status;                   /* sent, delivered, read, failed, played; others kept as given */
  gint64 timestamp;               /* Unix seconds; 0 when absent */
  char *recipient_id;             /* phone or group id; absent when sent to a BSUID */
  char *recipient_user_id;        /* v25+ */
  char *recipient_parent_user_id; /* parent_recipient_user_id */
  char *recipient_type;           /* "group" for group sends */
  char *recipient_participant_id;
  char *biz_opaque_callback_data; /* echoed from the send: our outbox id */
  char *conversation_id;
  char *conversation_origin; /* conversation.origin.type */
  gboolean has_pricing;      /* a pricing object was present */
  gboolean billable;         /* pricing.billable (deprecated by Meta) */
  char *pricing_model;       /* PMP, CBP */
  char *pricing_type;        /* regular, free_customer_service, free_entry_point */
  char *pricing_category;    /* marketing, utility, authentication, service, ... */
  GPtrArray *errors;         /* WaGraphError*, from wa_graph_error_from_webhook() */
  JsonNode *raw;             /* the status object as received */
} WaStatus;

/* value.message_echoes[] (field smb_message_echoes): a message the business
 * sent from elsewhere, e.g. the WhatsApp Business app on the phone. */
typedef struct {
  char *id;         /* wamid; NULL when absent (then it cannot be stored) */
  char *from;       /* the business number */
  char *to;         /* the customer: phone digits or BSUID, as given */
  char *type;       /* text, image, ...; NULL when absent */
  char *text;       /* text.body; NULL when absent (not a text echo) */
  gint64 timestamp; /* Unix seconds; 0 when absent */
  JsonNode *raw;    /* the echo object as received */
  char *stored;     /* the event as kept with this echo alone (wa_webhook_prepare_stored), or NULL */
} WaEcho;

/* value.groups[] (fields group_lifecycle_update, group_participants_update,
 * group_settings_update, ...): one event of a WhatsApp group. */
typedef struct {
  char *group_id;
  char *type;       /* group_create, group_participants_remove, ...; NULL when absent */
  char *subject;    /* NULL when absent */
  gint64 timestamp; /* Unix seconds; 0 when absent */
  gint added;       /* length of added_participants; -1 when absent */
  gint removed;     /* length of removed_participants; -1 when absent */
  JsonNode *raw;    /* the group object as received */
} WaGroupEvent;

/* value.calls[] (field "calls"): one event of a WhatsApp voice call. */
typedef struct {
  char *id;           /* wacid */
  char *from;         /* the caller's phone digits, or NULL */
  char *from_user_id; /* the caller's BSUID (v25+), or NULL */
  char *to;
  char *event;     /* connect, terminate, ...; NULL when absent */
  char *direction; /* USER_INITIATED, BUSINESS_INITIATED; NULL when absent */
  char *status;    /* terminate: COMPLETED, FAILED, ...; NULL when absent */
  gint64 timestamp;
  gint64 duration; /* seconds; 0 when absent */
  JsonNode *raw;
} WaCall;

/* entry[].changes[]: one change, with its entry's WABA id and time. */
typedef struct {
  char *waba_id;              /* entry.id (string or integer) */
  gint64 entry_time;          /* entry.time; 0 when absent */
  char *field;                /* "messages", "message_template_status_update", ... */
  char *phone_number_id;      /* value.metadata.phone_number_id: route by this */
  char *display_phone_number; /* value.metadata.display_phone_number */
  GPtrArray *contacts;        /* WaContact* */
  GPtrArray *messages;        /* WaMessage* */
  GPtrArray *statuses;        /* WaStatus* */
  GPtrArray *errors;          /* WaGraphError*: value.errors (system-level) */
  GPtrArray *echoes;          /* WaEcho*: value.message_echoes */
  GPtrArray *groups;          /* WaGroupEvent*: value.groups */
  GPtrArray *calls;           /* WaCall*: value.calls */
  JsonNode *value;            /* the raw value object, for fields we do not model
                               * (templates, quality, account_update,
                               * user_preferences) */
} WaChange;

typedef struct {
  GPtrArray *changes; /* WaChange*, in body order across all entries */
  guint skipped;      /* entries, changes and array elements of the wrong type */
} WaWebhook;

/* Parses a webhook body of @len bytes (need not be NUL-terminated). Returns a
 * new WaWebhook (free with wa_webhook_free) or NULL with @error set: in
 * WA_JSON_ERROR for invalid, too deeply nested or non-object JSON; in
 * WA_WEBHOOK_ERROR for a wrong envelope. Anything wrong below the envelope is
 * skipped and counted in ->skipped. */
WaWebhook *wa_webhook_parse(const char *body, gsize len, GError **error);

/* The contact of @change that sent @message: the one whose wa_id equals
 * message->from, else whose user_id equals message->from_user_id. NULL when
 * none matches. Owned by @change. */
const WaContact *wa_change_find_contact(const WaChange *change, const WaMessage *message);

/* What is kept of an event with one customer's message: Meta's envelope
 * around a value holding only @member = [@item] and that customer's @contact
 * (may be NULL), with the change's field and metadata. A change may carry
 * several customers' messages; stored whole with each, erasing one customer
 * would leave their words in another's stored event. A new string. */
char *wa_change_event_for_one(const WaChange *change, const char *member, JsonNode *item, const WaContact *contact);

/* Fills ->stored of every customer's message (not a group's) and every echo
 * of @webhook that has its raw object, with wa_change_event_for_one(): done
 * once, where the webhook is parsed (off the messenger's main loop). Freed,
 * and wiped, with the webhook. */
void wa_webhook_prepare_stored(WaWebhook *webhook);

void wa_webhook_free(WaWebhook *webhook);
void wa_change_free(WaChange *change);
void wa_contact_free(WaContact *contact);
void wa_message_free(WaMessage *message);
void wa_status_free(WaStatus *status);
void wa_echo_free(WaEcho *echo);
void wa_group_event_free(WaGroupEvent *event);
void wa_call_free(WaCall *call);
void wa_shared_contact_free(WaSharedContact *contact);
void wa_order_item_free(WaOrderItem *item);

/* The contact of @change that made @call, as wa_change_find_contact(). */
const WaContact *wa_change_find_call_contact(const WaChange *change, const WaCall *call);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaWebhook, wa_webhook_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaChange, wa_change_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaContact, wa_contact_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaMessage, wa_message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaStatus, wa_status_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaEcho, wa_echo_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaGroupEvent, wa_group_event_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaCall, wa_call_free)

G_END_DECLS
