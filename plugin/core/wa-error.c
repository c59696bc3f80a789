/* wa-error.c: Graph API error parsing, classification and plain-language reasons. */
#include "wa-error.h"

#include "wa-i18n.h"
#include "wa-json.h"

G_DEFINE_QUARK(wa - graph - error - quark, wa_graph_error)

WaGraphError *
wa_graph_error_new(void)
{
  WaGraphError *error = g_new0(WaGraphError, 1);
  error->reached = TRUE;
  error->klass = WA_ERROR_CLASS_PERMANENT;
  return error;
}

void
wa_graph_error_free(WaGraphError *error)
{
  if (error == NULL)
    return;
  g_free(error->type);
  g_free(error->message);
  g_free(error->title);
  g_free(error->details);
  g_free(error->fbtrace_id);
  g_free(error);
}

WaErrorClass
wa_error_classify(gint64 code, gint64 subcode, int http_status, gboolean is_transient)
{
  switch (code) {
  case 0:
    break; /* no code: fall back to the HTTP status below */
  case 1:
  case 2:
  case 131000:
  case 131016:
  case 131057:
  case 133004:
    return WA_ERROR_CLASS_RETRYABLE;
  case 4:
  case 17:
  case 32:
  case 613:
  case 80007:
  case 130429:
  case 131056:
    return WA_ERROR_CLASS_RATE_LIMITED;
  case 131047:
    return WA_ERROR_CLASS_WINDOW_CLOSED;
  case 102:
  case 104:
  case 190:
    return WA_ERROR_CLASS_AUTH;
  case 3:
  case 10:
    return WA_ERROR_CLASS_PERMISSION;
  case 33:
    return WA_ERROR_CLASS_NOT_FOUND;
  case 100:
    if (subcode == 33)
      return WA_ERROR_CLASS_NOT_FOUND;
    return is_transient ? WA_ERROR_CLASS_RETRYABLE : WA_ERROR_CLASS_PERMANENT;
  default:
    if (code >= 200 && code <= 299)
      return WA_ERROR_CLASS_PERMISSION;
    return is_transient ? WA_ERROR_CLASS_RETRYABLE : WA_ERROR_CLASS_PERMANENT;
  }

  /* No Graph envelope: only the transport told us anything. */
  if (is_transient)
    return WA_ERROR_CLASS_RETRYABLE;
  if (http_status == 0)
    return WA_ERROR_CLASS_NETWORK;
  /* Only the API's own error says a token was refused or lacks a permission
   * (those disconnect the account). A bare 401, 403 or 407 (an HTML page)
   * comes from something in front of the API, a proxy, firewall or captive
   * portal, that refused to pass the request on: a network problem. */
  if (http_status == 401 || http_status == 403 || http_status == 407)
    return WA_ERROR_CLASS_NETWORK;
  if (http_status == 404)
    return WA_ERROR_CLASS_NOT_FOUND;
  if (http_status == 429)
    return WA_ERROR_CLASS_RATE_LIMITED;
  if (http_status == 408 || http_status >= 500)
    return WA_ERROR_CLASS_RETRYABLE;
  return WA_ERROR_CLASS_PERMANENT;
}

const char *
wa_error_class_name(WaErrorClass klass)
{
  switch (klass) {
  case WA_ERROR_CLASS_NETWORK:
    return "network";
  case WA_ERROR_CLASS_RETRYABLE:
    return "retryable";
  case WA_ERROR_CLASS_RATE_LIMITED:
    return "rate-limited";
  case WA_ERROR_CLASS_WINDOW_CLOSED:
    return "window-closed";
  case WA_ERROR_CLASS_AUTH:
    return "auth";
  case WA_ERROR_CLASS_PERMISSION:
    return "permission";
  case WA_ERROR_CLASS_NOT_FOUND:
    return "not-found";
  case WA_ERROR_CLASS_PERMANENT:
    return "permanent";
  }
  return "unknown";
}

static void
fill_from_object(WaGraphError *error, JsonObject *obj)
{
  JsonObject *data = wa_json_get_object(obj, "error_data");

  error->code = wa_json_get_int(obj, "code", 0);
  error->subcode = wa_json_get_int(obj, "error_subcode", 0);
  error->type = g_strdup(wa_json_get_string(obj, "type"));
  error->message = g_strdup(wa_json_get_string(obj, "message"));
  error->title = g_strdup(wa_json_get_string(obj, "title"));
  error->details = g_strdup(wa_json_get_string(data, "details"));
  if (error->details == NULL)
    error->details = g_strdup(wa_json_get_string(obj, "error_user_msg"));
  error->fbtrace_id = g_strdup(wa_json_get_string(obj, "fbtrace_id"));
  error->is_transient = wa_json_get_bool(obj, "is_transient", FALSE);
}

WaGraphError *
wa_graph_error_from_reply(int http_status, const char *body, gsize len)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *envelope = NULL;
  WaGraphError *error;

  if (body != NULL && len > 0)
    root = wa_json_parse_object(body, len, NULL);
  if (root != NULL)
    envelope = wa_json_get_object(json_node_get_object(root), "error");

  /* A 2xx that also carries an error: Meta documents a send's success as
   * HTTP 200 with messages[].id, and errors as an "error" object with a 4xx
   * or 5xx status; the two never come together. When they do, the message
   * id wins: Meta took the message under that id, and its fate arrives in
   * status webhooks for it (a failure included). Taken as an error, the
   * message would be retried (a duplicate for the customer) or shown as
   * failed while it is delivered. Without an id the error stands. */
  if (envelope != NULL && http_status >= 200 && http_status < 300) {
    JsonArray *messages = wa_json_get_array(json_node_get_object(root), "messages");

    if (wa_json_get_string(wa_json_array_get_object(messages, 0), "id") != NULL)
      return NULL;
  }

  if (envelope == NULL && http_status >= 200 && http_status < 300) {
    if (root != NULL)
      return NULL;
    /* A 2xx whose body is not a JSON object cannot be used. */
    error = wa_graph_error_new();
    error->http_status = http_status;
    error->message = g_strdup(_("The API answered with something that is not JSON"));
    error->klass = WA_ERROR_CLASS_RETRYABLE;
    return error;
  }

  error = wa_graph_error_new();
  error->http_status = http_status;
  if (envelope != NULL) {
    fill_from_object(error, envelope);
  } else {
    error->message = g_strdup_printf(_("HTTP error %d without an API error body"), http_status);
  }
  error->klass = wa_error_classify(error->code, error->subcode, http_status, error->is_transient);
  /* an answer that is not the API's refused the request: the API never saw it */
  if (error->klass == WA_ERROR_CLASS_NETWORK)
    error->reached = FALSE;
  return error;
}

WaGraphError *
wa_graph_error_from_webhook(JsonObject *obj)
{
  WaGraphError *error = wa_graph_error_new();

  fill_from_object(error, obj);
  error->klass = wa_error_classify(error->code, error->subcode, 0, error->is_transient);
  if (error->code == 0)
    error->klass = WA_ERROR_CLASS_PERMANENT;
  return error;
}

WaGraphError *
wa_graph_error_new_network(const char *message, gboolean reached)
{
  WaGraphError *error = wa_graph_error_new();

  error->message = g_strdup(message);
  error->reached = reached;
  error->klass = WA_ERROR_CLASS_NETWORK;
  return error;
}

typedef struct {
  gint64 code;
  const char *reason;
  const char *advice;
} CodeText;

static const CodeText code_texts[] = {
  {0, N_("The access token is no longer valid."), N_("Enter a new access token in the account settings.")},
  {1, N_("WhatsApp reported an unknown server error."), N_("It will be retried.")},
  {2, N_("The WhatsApp service is temporarily unavailable."), N_("It will be retried.")},
  {3, N_("This app is not allowed to use this API method."), N_("Check the app's permissions in Meta's dashboard.")},
  {4, N_("The app has made too many API calls."), N_("Wait a while; it will be retried.")},
  {10, N_("The access token lacks a permission."),
   N_("Grant whatsapp_business_messaging and whatsapp_business_management to the system user's token.")},
  {33, N_("This business phone number no longer exists."), N_("Check the phone number ID in the account settings.")},
  {100, N_("WhatsApp refused a parameter of the request."), N_("Check the message; it was not sent.")},
  {104, N_("No access token was sent."), N_("Enter the access token as the account password.")},
  {190, N_("The access token is invalid or has expired."), N_("Enter a new access token as the account password.")},
  {368, N_("The WhatsApp Business Account is restricted for a policy violation."),
   N_("See Business Support in Meta's dashboard.")},
  {80007, N_("The WhatsApp Business Account has hit its rate limit."), N_("Wait a while; it will be retried.")},
  {130403, N_("The business has blocked this customer."), N_("Unblock the customer to send messages.")},
  {130429, N_("Too many messages were sent from this number in a short time."), N_("It will be retried shortly.")},
  {130472, N_("The customer is part of a marketing experiment, so the message was not sent."), N_("Nothing to do.")},
  {130497, N_("This business cannot message customers in that country."), N_("Nothing can be sent to this customer.")},
  {131000, N_("Sending failed for an unknown reason."), N_("Try again.")},
  {131005, N_("Access was denied."), N_("Check the token's permissions.")},
  {131008, N_("A required part of the message was missing."),
   N_("For a template, check its placeholders with /templates NAME (the catalogue may be out of date: /templates "
      "refresh); otherwise this is a bug in purple-wabiz, please report it.")},
  {131009, N_("A value in the message is not valid."), N_("Check the recipient and the message.")},
  {131016, N_("The WhatsApp service is temporarily overloaded."), N_("It will be retried.")},
  {131021, N_("You cannot message the business's own number."), N_("Choose another recipient.")},
  {131026,
   N_("The message could not be delivered: the number may not be on WhatsApp, may use an old WhatsApp version, or may "
      "not have accepted the terms."),
   N_("Ask the customer to update WhatsApp, or reach them another way.")},
  {131031, N_("The business account is locked."), N_("See Business Support in Meta's dashboard.")},
  {131037, N_("This number has no approved display name yet."),
   N_("Wait for the display name review in Meta's dashboard.")},
  {131042, N_("There is a problem with the business's payment method."),
   N_("Fix the payment method in Meta's Business Manager.")},
  {131045, N_("The business phone number is not registered."), N_("Register the number with the Cloud API.")},
  {131047, N_("More than 24 hours have passed since the customer last wrote."),
   N_("Only an approved template can be sent now: /template NAME (/templates lists them).")},
  {131048, N_("Messages from this number were limited because too many were reported as spam."),
   N_("Send less, and only to customers who expect it.")},
  {131049,
   N_("WhatsApp did not deliver this message to keep engagement healthy (too many marketing messages to this "
      "customer)."),
   N_("Do not resend it within 24 hours.")},
  {131050, N_("The customer has stopped marketing messages from this business."),
   N_("Do not send marketing messages to this customer.")},
  {131051, N_("This message type is not supported."), N_("Send text or a supported type instead.")},
  {131052, N_("The customer's media could not be downloaded."),
   N_("Ask the customer to send it again, smaller if it is large.")},
  {131053, N_("The media could not be uploaded or fetched (wrong type, too large, or the link failed)."),
   N_("Check the file type and size.")},
  {131056, N_("Too many messages to this customer in a short time."), N_("It will be retried after a pause.")},
  {131057, N_("The business account is in maintenance."), N_("It will be retried in a minute.")},
  {131063, N_("Marketing templates cannot be sent through the Cloud API's messages endpoint for this account."),
   N_("Turn on the account option \"Send marketing templates through the Marketing Messages API\" "
      "(marketing_endpoint), or see Meta's dashboard.")},
  {131064, N_("The messaging limit was reduced because of template classification violations."),
   N_("It lifts by itself; see Meta's dashboard.")},
  {132000, N_("The template got the wrong number of parameters."),
   N_("Check its placeholders with /templates NAME; if it was edited, /templates refresh.")},
  {132001, N_("The template does not exist in that language or is not approved."),
   N_("Pick an approved template and language (/templates lists them; /templates refresh fetches them again).")},
  {132005, N_("The translated template text is too long."), N_("Shorten the parameters.")},
  {132007, N_("The template violates WhatsApp policy."), N_("Edit the template in Meta's dashboard.")},
  {132008, N_("A template parameter is badly formatted."),
   N_("Check the values: no line breaks, tabs or more than four spaces in a row in body values.")},
  {132012, N_("A template parameter has the wrong format (for example text where the header needs a picture)."),
   N_("Check the parameter types with /templates NAME.")},
  {132015, N_("The template is paused because of low quality."),
   N_("Edit the template in Meta's dashboard or wait until the pause ends; send another template meanwhile.")},
  {132016, N_("The template is permanently disabled after repeated low quality."),
   N_("Create a new template in Meta's dashboard.")},
  {132018, N_("A template parameter is not valid."),
   N_("Check the parameter values against /templates NAME (URL suffixes, coupon codes, dates).")},
  {133010, N_("The business phone number is not registered on the platform."),
   N_("Register the number with the Cloud API.")},
  {137000, N_("The customer's identity key changed."), N_("Confirm the customer's identity before sending.")},
};

/* Codes whose subcode says more than the code (docs/CLOUD-API.md, Errors:
 * codes; Graph's OAuth subcodes): the agent learns whether the token expired
 * or was invalidated, and that a new one is needed either way. */
typedef struct {
  gint64 code;
  gint64 subcode;
  CodeText text;
} SubcodeText;

static const SubcodeText subcode_texts[] = {
  {190,
   458,
   {190,
    N_("The access token is no longer valid: the app was removed from the user or business that "
       "issued it."),
    N_("Enter a new access token as the account password.")}},
  {190,
   460,
   {190,
    N_("The access token is no longer valid: the password of the user who issued it was "
       "changed."),
    N_("Enter a new access token as the account password.")}},
  {190, 463, {190, N_("The access token has expired."), N_("Enter a new access token as the account password.")}},
  {190,
   467,
   {190,
    N_("The access token is no longer valid: it was invalidated (for example, its user logged out "
       "or it was revoked)."),
    N_("Enter a new access token as the account password.")}},
};

static const CodeText *
find_code(gint64 code)
{
  for (gsize i = 0; i < G_N_ELEMENTS(code_texts); i++)
    if (code_texts[i].code == code)
      return &code_texts[i];
  return NULL;
}

static const CodeText *
find_text(gint64 code, gint64 subcode)
{
  for (gsize i = 0; subcode != 0 && i < G_N_ELEMENTS(subcode_texts); i++)
    if (subcode_texts[i].code == code && subcode_texts[i].subcode == subcode)
      return &subcode_texts[i].text;
  return find_code(code);
}

const char *
wa_error_code_reason(gint64 code)
{
  const CodeText *t = find_code(code);
  return t != NULL ? _(t->reason) : NULL;
}

const char *
wa_error_code_advice(gint64 code)
{
  const CodeText *t = find_code(code);
  return t != NULL ? _(t->advice) : NULL;
}

/* At most this many characters of a text that came with an answer (the
 * API's message, title or details, or whatever answered in its place). */
#define ANSWER_TEXT_MAX_CHARS 200

/* Appends @text cut to ANSWER_TEXT_MAX_CHARS characters (with "…"), its
 * control characters as spaces and invalid UTF-8 replaced: a reason stays
 * one short line whatever the answer held. */
static void
append_answer_text(GString *s, const char *text)
{
  g_autofree char *valid = g_utf8_make_valid(text, -1);
  const char *p = valid;

  for (guint n = 0; *p != '\0' && n < ANSWER_TEXT_MAX_CHARS; p = g_utf8_next_char(p), n++) {
    gunichar c = g_utf8_get_char(p);

    if (g_unichar_iscntrl(c))
      g_string_append_c(s, ' ');
    else
      g_string_append_unichar(s, c);
  }
  if (*p != '\0')
    g_string_append(s, "…");
}

char *
wa_graph_error_describe(const WaGraphError *error)
{
  const CodeText *t;
  GString *s;

  if (error->klass == WA_ERROR_CLASS_NETWORK && error->http_status != 0)
    return g_strdup_printf(_("The API's address answered with something that is not the WhatsApp API "
                             "(HTTP %d without the API's error): a proxy, firewall or captive portal may be "
                             "in the way, or the API base URL is wrong."),
                           error->http_status);
  if (error->klass == WA_ERROR_CLASS_NETWORK && !error->reached)
    return g_strdup_printf(_("Cannot reach the WhatsApp API: %s"),
                           error->message != NULL ? error->message : _("no answer"));
  if (error->klass == WA_ERROR_CLASS_NETWORK)
    return g_strdup_printf(_("The request went out, but no answer came back from the WhatsApp API: %s"),
                           error->message != NULL ? error->message : _("no answer"));

  t = error->code != 0 ? find_text(error->code, error->subcode) : NULL;
  s = g_string_new(NULL);
  if (t != NULL) {
    g_string_append(s, _(t->reason));
  } else if (error->message != NULL && *error->message != '\0') {
    append_answer_text(s, error->message);
  } else if (error->title != NULL && *error->title != '\0') {
    append_answer_text(s, error->title);
  } else {
    g_string_append(s, _("The WhatsApp API reported an error."));
  }
  if (error->details != NULL && *error->details != '\0') {
    g_string_append(s, " (");
    append_answer_text(s, error->details);
    g_string_append_c(s, ')');
  }
  if (t != NULL) {
    g_string_append_c(s, ' ');
    g_string_append(s, _(t->advice));
  }
  if (error->code != 0)
    g_string_append_printf(s, _(" [error %lld]"), (long long) error->code);
  return g_string_free(s, FALSE);
}

GError *
wa_graph_error_to_gerror(const WaGraphError *error)
{
  g_autofree char *text = wa_graph_error_describe(error);
  return g_error_new_literal(WA_GRAPH_ERROR, (gint) error->klass, text);
}
