/* wa-phone.h: customer identifiers: phone numbers and business-scoped user IDs.
 *
 * A customer is addressed by a phone number (stored as digits with country
 * code, no "+": the Cloud API's wa_id form) or, since v25, by a BSUID such as
 * "US.13491208655302741918" when no phone number is known. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WA_PHONE_ERROR (wa_phone_error_quark())
GQuark wa_phone_error_quark(void);

typedef enum {
  WA_PHONE_ERROR_EMPTY,
  WA_PHONE_ERROR_CHARACTERS,    /* letters or other symbols */
  WA_PHONE_ERROR_NEEDS_COUNTRY, /* a national number and no default country code */
  WA_PHONE_ERROR_LENGTH,        /* not 8 to 15 digits */
} WaPhoneError;

/* TRUE when @id looks like a business-scoped user ID ("CC.<alnum>" or
 * "CC.ENT.<digits>"). */
gboolean wa_id_is_bsuid(const char *id);
/* A wa_id as webhooks give it: 1 to 20 digits. */
gboolean wa_id_is_phone(const char *id);
/* @id when it is a wa_id (resp. a BSUID), else NULL: webhook ids that are
 * neither never name a buddy or a conversation. */
const char *wa_id_phone_or_null(const char *id);
const char *wa_id_bsuid_or_null(const char *id);

/* TRUE when @cc is a valid country calling code (1 to 3 digits, not 0). */
gboolean wa_country_code_is_valid(const char *cc);

/* Normalises a phone number as typed to wa_id digits: "+49 170 1234567",
 * "0049 170 1234567" and "491701234567" all give "491701234567". A national
 * number with a trunk prefix ("0170 1234567") takes @default_cc (country
 * calling code digits, may be NULL); so does a ten-digit number when
 * @default_cc is "1" (North America). The result must have 8 to 15 digits
 * (E.164). Returns a new string or NULL with @error set. */
char *wa_phone_normalize(const char *input, const char *default_cc, GError **error);

/* Normalises any customer identifier: a BSUID is returned as is, anything else
 * goes through wa_phone_normalize(). */
char *wa_customer_id_normalize(const char *input, const char *default_cc, GError **error);

/* "+" followed by the digits, for the API's "to" field. */
char *wa_phone_to_e164(const char *digits);

/* WhatsApp groups in the outbox: a group is addressed as "group:<group id>"
 * (its store record and outbox queue use that address; sends go out with
 * recipient_type "group"). A group id is 1 to 256 characters of
 * [A-Za-z0-9-_=+/.]. */
#define WA_GROUP_ADDRESS_PREFIX "group:"
gboolean wa_group_id_is_valid(const char *group_id);
/* "group:<id>", or NULL when @group_id is not valid. */
char *wa_group_address(const char *group_id);
/* The group id of a group address, or NULL when @address is not one. */
const char *wa_group_address_id(const char *address);

G_END_DECLS
