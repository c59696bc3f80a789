/* sim-validate.h: checks of POST /{pnid}/messages bodies against the Cloud
 * API's documented rules and limits, with Meta-style error codes and
 * messages. Pure functions: no simulator state is read or changed here. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

/* A Graph API error, as sent in the {"error":{...}} envelope. */
typedef struct
{
  guint http_status;
  gint64 code;
  gint64 subcode;   /* 0 = none */
  const char *type; /* static string, "OAuthException" by default */
  char *message;
  char *details; /* error_data.details, or NULL */
  gboolean is_transient;
} SimError;

void sim_error_set (SimError *err, guint http_status, gint64 code, const char *message,
                    const char *details_format, ...) G_GNUC_PRINTF (5, 6);
void sim_error_clear (SimError *err);

/* What a valid request asks for; pointers borrow from the request object. */
typedef struct
{
  gboolean is_read;       /* the mark-as-read / typing form */
  const char *message_id; /* is_read: the message marked as read */
  gboolean typing;        /* is_read: typing_indicator present */
  const char *input;      /* "to" or "recipient" exactly as sent */
  char *digits;           /* normalised phone digits (owned), NULL for a BSUID */
  const char *user_id;    /* the BSUID when sent with "recipient" */
  gboolean is_group;
  const char *type;
  const char *template_name;
  const char *template_lang;
  const char *biz_opaque;
} SimSendInfo;

void sim_send_info_clear (SimSendInfo *info);
gboolean sim_validate_send (JsonNode *root, SimSendInfo *info, SimError *err);
gboolean sim_is_bsuid (const char *s);
char *sim_normalize_phone (const char *to);
