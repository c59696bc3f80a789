/* wa-phone.c: phone number normalisation and BSUID recognition. */
#include "wa-phone.h"

#include "wa-i18n.h"

#include <string.h>

G_DEFINE_QUARK(wa - phone - error - quark, wa_phone_error)

gboolean
wa_id_is_bsuid(const char *id)
{
  const char *p;
  gsize n = 0;

  if (id == NULL || !g_ascii_isupper(id[0]) || !g_ascii_isupper(id[1]) || id[2] != '.')
    return FALSE;
  p = id + 3;
  if (strncmp(p, "ENT.", 4) == 0) {
    p += 4;
    for (; g_ascii_isdigit(*p); p++)
      n++;
    return *p == '\0' && n > 0 && n <= 128;
  }
  for (; g_ascii_isalnum(*p); p++)
    n++;
  return *p == '\0' && n > 0 && n <= 128;
}

gboolean
wa_country_code_is_valid(const char *cc)
{
  gsize n;

  if (cc == NULL || cc[0] == '0')
    return FALSE;
  n = strlen(cc);
  if (n < 1 || n > 3)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isdigit(cc[i]))
      return FALSE;
  return TRUE;
}

char *
wa_phone_normalize(const char *input, const char *default_cc, GError **error)
{
  g_autoptr(GString) digits = g_string_new(NULL);
  gboolean plus = FALSE;
  const char *p;
  char *result;

  if (input == NULL)
    input = "";
  p = input;
  while (g_ascii_isspace(*p))
    p++;
  if (*p == '\0') {
    g_set_error_literal(error, WA_PHONE_ERROR, WA_PHONE_ERROR_EMPTY, _("No phone number was given."));
    return NULL;
  }
  if (*p == '+') {
    plus = TRUE;
    p++;
  }
  for (; *p != '\0'; p++) {
    if (g_ascii_isdigit(*p))
      g_string_append_c(digits, *p);
    else if (*p == ' ' || *p == '-' || *p == '.' || *p == '(' || *p == ')' || *p == '/' || *p == '\t')
      continue;
    else {
      g_set_error(error, WA_PHONE_ERROR, WA_PHONE_ERROR_CHARACTERS,
                  _("“%s” is not a phone number: only digits, spaces, dashes, brackets and a leading + are allowed."),
                  input);
      return NULL;
    }
  }

  if (!plus && g_str_has_prefix(digits->str, "00")) {
    g_string_erase(digits, 0, 2);
  } else if (!plus && digits->str[0] == '0') {
    if (!wa_country_code_is_valid(default_cc)) {
      g_set_error(error, WA_PHONE_ERROR, WA_PHONE_ERROR_NEEDS_COUNTRY,
                  _("“%s” is a national number: type it with + and the country code, or set the default country code "
                    "in the account settings."),
                  input);
      return NULL;
    }
    g_string_erase(digits, 0, 1);
    g_string_prepend(digits, default_cc);
  } else if (!plus && g_strcmp0(default_cc, "1") == 0 && digits->len == 10 && digits->str[0] != '1') {
    g_string_prepend(digits, "1");
  }

  if (digits->len < 8 || digits->len > 15 || digits->str[0] == '0') {
    g_set_error(error, WA_PHONE_ERROR, WA_PHONE_ERROR_LENGTH,
                _("“%s” is not a phone number: it needs 8 to 15 digits including the country code."), input);
    return NULL;
  }
  result = g_strdup(digits->str);
  return result;
}

char *
wa_customer_id_normalize(const char *input, const char *default_cc, GError **error)
{
  if (input != NULL) {
    g_autofree char *trimmed = g_strstrip(g_strdup(input));
    if (wa_id_is_bsuid(trimmed))
      return g_steal_pointer(&trimmed);
  }
  return wa_phone_normalize(input, default_cc, error);
}

gboolean
wa_id_is_phone(const char *id)
{
  gsize n = 0;

  if (id == NULL)
    return FALSE;
  for (; g_ascii_isdigit(id[n]); n++)
    ;
  return id[n] == '\0' && n >= 1 && n <= 20;
}

const char *
wa_id_phone_or_null(const char *id)
{
  return wa_id_is_phone(id) ? id : NULL;
}

const char *
wa_id_bsuid_or_null(const char *id)
{
  return wa_id_is_bsuid(id) ? id : NULL;
}

char *
wa_phone_to_e164(const char *digits)
{
  return g_strconcat("+", digits, NULL);
}

gboolean
wa_group_id_is_valid(const char *group_id)
{
  gsize n = 0;

  if (group_id == NULL)
    return FALSE;
  for (; group_id[n] != '\0'; n++)
    if (!g_ascii_isalnum(group_id[n]) && strchr("-_=+/.", group_id[n]) == NULL)
      return FALSE;
  return n > 0 && n <= 256;
}

char *
wa_group_address(const char *group_id)
{
  return wa_group_id_is_valid(group_id) ? g_strconcat(WA_GROUP_ADDRESS_PREFIX, group_id, NULL) : NULL;
}

const char *
wa_group_address_id(const char *address)
{
  const char *id;

  if (address == NULL || !g_str_has_prefix(address, WA_GROUP_ADDRESS_PREFIX))
    return NULL;
  id = address + strlen(WA_GROUP_ADDRESS_PREFIX);
  return wa_group_id_is_valid(id) ? id : NULL;
}
