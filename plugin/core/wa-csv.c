/* wa-csv.c: the CSV reader, writer and recipients parser (rules in
 * wa-csv.h).
 *
 * The reader works on bytes: separators, quotes and line ends are ASCII, so
 * they never occur inside a UTF-8 sequence, and the whole input is checked
 * to be UTF-8 before it is split.
 *
 * Must not: log field contents, read past @len, or keep more than the
 * limits allow. */
#include "wa-csv.h"

#include <string.h>

#include "wa-i18n.h"
#include "wa-phone.h"

G_DEFINE_QUARK(wa - csv - error - quark, wa_csv_error)

/* ---- reader ----------------------------------------------------------------- */

typedef struct {
  const char *p;
  const char *end;
  guint line; /* of @p */
  char sep;
  gsize max_field;
  gsize max_row;
  guint max_columns;
} Reader;

/* The 1-based line of byte @pos of @data (LF, CRLF and CR end lines). */
static guint
line_of(const char *data, const char *pos)
{
  guint line = 1;

  for (const char *p = data; p < pos; p++)
    if (*p == '\n' || (*p == '\r' && (p + 1 >= pos || p[1] != '\n')))
      line++;
  return line;
}

static gboolean
at_line_end(const Reader *r)
{
  return r->p < r->end && (*r->p == '\r' || *r->p == '\n');
}

static void
skip_line_end(Reader *r)
{
  if (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n')
    r->p++;
  r->p++;
  r->line++;
}

/* The separator of the header: the first record's ',' or ';' outside quotes,
 * whichever is more frequent (',' on a tie). */
static char
detect_separator(const char *p, const char *end)
{
  gsize commas = 0, semicolons = 0;
  gboolean quoted = FALSE, started = FALSE;

  for (; p < end; p++) {
    if (!started && (*p == '\r' || *p == '\n'))
      continue; /* empty lines before the header */
    started = TRUE;
    if (*p == '"')
      quoted = !quoted;
    else if (!quoted && (*p == '\r' || *p == '\n'))
      break;
    else if (!quoted && *p == ',')
      commas++;
    else if (!quoted && *p == ';')
      semicolons++;
  }
  return semicolons > commas ? ';' : ',';
}

static gboolean
field_append(Reader *r, GString *field, gsize *row_bytes, guint start_line, char c, GError **error)
{
  g_string_append_c(field, c);
  if (field->len > r->max_field) {
    g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_LIMIT, _("Line %u: a field is longer than %u bytes."), start_line,
                (guint) MIN(r->max_field, G_MAXUINT));
    return FALSE;
  }
  if (++*row_bytes > r->max_row) {
    g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_LIMIT, _("Line %u: the row is longer than %u bytes."), start_line,
                (guint) MIN(r->max_row, G_MAXUINT));
    return FALSE;
  }
  return TRUE;
}

/* Reads the next record into @fields (char*); FALSE with @error, or TRUE
 * with *@got FALSE at the end of the input. */
static gboolean
read_record(Reader *r, GPtrArray *fields, guint *start_line, gboolean *got, GError **error)
{
  gsize row_bytes = 0;

  g_ptr_array_set_size(fields, 0);
  *got = r->p < r->end;
  if (!*got)
    return TRUE;
  *start_line = r->line;
  for (;;) {
    g_autoptr(GString) field = g_string_new(NULL);

    if (r->p < r->end && *r->p == '"') {
      guint quote_line = r->line;

      r->p++;
      for (;;) {
        char c;

        if (r->p >= r->end) {
          g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_SYNTAX,
                      _("Line %u: a quoted field is not closed (a \" is missing)."), quote_line);
          return FALSE;
        }
        c = *r->p;
        if (c == '"') {
          if (r->p + 1 < r->end && r->p[1] == '"') {
            r->p += 2;
            if (!field_append(r, field, &row_bytes, *start_line, '"', error))
              return FALSE;
            continue;
          }
          r->p++;
          break;
        }
        if (c == '\n' || (c == '\r' && (r->p + 1 >= r->end || r->p[1] != '\n')))
          r->line++;
        r->p++;
        if (!field_append(r, field, &row_bytes, *start_line, c, error))
          return FALSE;
      }
      if (r->p < r->end && *r->p != r->sep && !at_line_end(r)) {
        g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_SYNTAX,
                    _("Line %u: text follows a closing quote (a quote inside a quoted field must be doubled)."),
                    r->line);
        return FALSE;
      }
    } else {
      while (r->p < r->end && *r->p != r->sep && !at_line_end(r)) {
        if (!field_append(r, field, &row_bytes, *start_line, *r->p, error))
          return FALSE;
        r->p++;
      }
    }
    g_ptr_array_add(fields, g_string_free(g_steal_pointer(&field), FALSE));
    if (fields->len > r->max_columns) {
      g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_LIMIT, _("Line %u has more than %u fields."), *start_line,
                  r->max_columns);
      return FALSE;
    }
    if (r->p >= r->end)
      return TRUE;
    if (at_line_end(r)) {
      skip_line_end(r);
      return TRUE;
    }
    r->p++; /* the separator */
  }
}

static gboolean
all_empty(GPtrArray *fields)
{
  for (guint i = 0; i < fields->len; i++)
    if (*(const char *) fields->pdata[i] != '\0')
      return FALSE;
  return TRUE;
}

static void
row_free(gpointer data)
{
  WaCsvRow *row = data;

  g_strfreev(row->fields);
  g_free(row);
}

void
wa_csv_free(WaCsv *csv)
{
  if (csv == NULL)
    return;
  g_strfreev(csv->header);
  g_clear_pointer(&csv->rows, g_ptr_array_unref);
  g_free(csv);
}

static gboolean
set_header(WaCsv *csv, GPtrArray *fields, guint line, GError **error)
{
  csv->header = g_new0(char *, fields->len + 1);
  csv->n_columns = fields->len;
  csv->header_line = line;
  for (guint i = 0; i < fields->len; i++) {
    csv->header[i] = g_strstrip(g_strdup(fields->pdata[i]));
    for (guint j = 0; j < i && *csv->header[i] != '\0'; j++)
      if (g_ascii_strcasecmp(csv->header[i], csv->header[j]) == 0) {
        g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_HEADER, _("Line %u: the column “%s” appears twice."), line,
                    csv->header[i]);
        return FALSE;
      }
  }
  return TRUE;
}

WaCsv *
wa_csv_parse(const char *data, gsize len, const WaCsvLimits *limits, GError **error)
{
  g_autoptr(WaCsv) csv = g_new0(WaCsv, 1);
  g_autoptr(GPtrArray) fields = g_ptr_array_new_with_free_func(g_free);
  const char *invalid = NULL;
  guint max_rows;
  Reader r = {0};

  g_return_val_if_fail(data != NULL || len == 0, NULL);
  if (data == NULL)
    data = "";
  r.max_field = limits != NULL && limits->max_field_bytes > 0 ? limits->max_field_bytes : WA_CSV_DEFAULT_FIELD_BYTES;
  r.max_row = limits != NULL && limits->max_row_bytes > 0 ? limits->max_row_bytes : WA_CSV_DEFAULT_ROW_BYTES;
  r.max_columns = limits != NULL && limits->max_columns > 0 ? limits->max_columns : WA_CSV_DEFAULT_COLUMNS;
  max_rows = limits != NULL && limits->max_rows > 0 ? limits->max_rows : WA_CSV_DEFAULT_ROWS;

  if (!g_utf8_validate_len(data, len, &invalid)) {
    g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_ENCODING,
                _("Line %u is not valid UTF-8 text: save the file as “CSV UTF-8”."), line_of(data, invalid));
    return NULL;
  }
  r.p = data;
  r.end = data + len;
  r.line = 1;
  if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
    r.p += 3;
  r.sep = detect_separator(r.p, r.end);
  csv->separator = r.sep;
  csv->rows = g_ptr_array_new_with_free_func(row_free);

  for (;;) {
    gboolean got = FALSE;
    guint line = 0;
    WaCsvRow *row;

    if (!read_record(&r, fields, &line, &got, error))
      return NULL;
    if (!got)
      break;
    if (all_empty(fields))
      continue; /* an empty line, or separators only */
    if (csv->header == NULL) {
      if (!set_header(csv, fields, line, error))
        return NULL;
      continue;
    }
    /* trailing empty fields beyond the header (spreadsheets add them) */
    while (fields->len > csv->n_columns && *(const char *) fields->pdata[fields->len - 1] == '\0')
      g_ptr_array_set_size(fields, fields->len - 1);
    if (fields->len > csv->n_columns) {
      g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_SYNTAX, _("Line %u has %u fields, but the header has %u."), line,
                  fields->len, csv->n_columns);
      return NULL;
    }
    if (csv->rows->len >= max_rows) {
      g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_LIMIT, _("Line %u: the file has more than %u rows."), line,
                  max_rows);
      return NULL;
    }
    row = g_new0(WaCsvRow, 1);
    row->line = line;
    row->fields = g_new0(char *, csv->n_columns + 1);
    for (guint i = 0; i < csv->n_columns; i++)
      row->fields[i] = g_strdup(i < fields->len ? fields->pdata[i] : "");
    g_ptr_array_add(csv->rows, row);
  }
  if (csv->header == NULL) {
    g_set_error_literal(error, WA_CSV_ERROR, WA_CSV_ERROR_HEADER, _("The file is empty: it needs a header line."));
    return NULL;
  }
  return g_steal_pointer(&csv);
}

int
wa_csv_column(const WaCsv *csv, const char *name)
{
  g_autofree char *wanted = NULL;

  g_return_val_if_fail(csv != NULL && name != NULL, -1);
  wanted = g_strstrip(g_strdup(name));
  if (*wanted == '\0')
    return -1;
  for (guint i = 0; i < csv->n_columns; i++)
    if (g_ascii_strcasecmp(csv->header[i], wanted) == 0)
      return (int) i;
  return -1;
}

/* ---- writer ----------------------------------------------------------------- */

void
wa_csv_append_row(GString *out, const char *const *fields, guint n, char separator)
{
  g_return_if_fail(out != NULL && (fields != NULL || n == 0));
  for (guint i = 0; i < n; i++) {
    const char *field = fields[i] != NULL ? fields[i] : "";
    gsize len = strlen(field);
    gboolean formula = strchr("=+-@\t\r", field[0]) != NULL && field[0] != '\0';
    gboolean quote = strchr(field, separator) != NULL || strpbrk(field, "\"\r\n") != NULL ||
                     (len > 0 && (field[0] == ' ' || field[len - 1] == ' '));

    if (i > 0)
      g_string_append_c(out, separator);
    if (quote)
      g_string_append_c(out, '"');
    if (formula)
      g_string_append_c(out, '\'');
    for (const char *p = field; *p != '\0'; p++) {
      if (*p == '"')
        g_string_append_c(out, '"');
      g_string_append_c(out, *p);
    }
    if (quote)
      g_string_append_c(out, '"');
  }
  g_string_append(out, "\r\n");
}

/* ---- recipients ------------------------------------------------------------- */

static void
recipient_free(gpointer data)
{
  WaCsvRecipient *recipient = data;

  g_free(recipient->to);
  g_strfreev(recipient->params);
  g_free(recipient);
}

static void
problem_free(gpointer data)
{
  WaCsvProblem *problem = data;

  g_free(problem->param);
  g_free(problem->description);
  g_free(problem);
}

void
wa_csv_recipients_free(WaCsvRecipients *recipients)
{
  if (recipients == NULL)
    return;
  g_clear_pointer(&recipients->rows, g_ptr_array_unref);
  g_clear_pointer(&recipients->problems, g_ptr_array_unref);
  g_free(recipients);
}

/* The column of placeholder @name: "name" or "{{name}}". */
static int
placeholder_column(const WaCsv *csv, const char *name)
{
  g_autofree char *braced = g_strdup_printf("{{%s}}", name);
  int col = wa_csv_column(csv, name);

  return col >= 0 ? col : wa_csv_column(csv, braced);
}

static gboolean
parse_consent(const char *value, WaCsvConsent *consent)
{
  static const char *const in[] = {"opt-in", "optin", "opt in", "opt_in", "in", "yes"};
  static const char *const out[] = {"opt-out", "optout", "opt out", "opt_out", "out", "no"};
  g_autofree char *v = g_strstrip(g_ascii_strdown(value, -1));

  *consent = WA_CSV_CONSENT_NONE;
  if (*v == '\0')
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(in); i++)
    if (strcmp(v, in[i]) == 0) {
      *consent = WA_CSV_CONSENT_OPT_IN;
      return TRUE;
    }
  for (guint i = 0; i < G_N_ELEMENTS(out); i++)
    if (strcmp(v, out[i]) == 0) {
      *consent = WA_CSV_CONSENT_OPT_OUT;
      return TRUE;
    }
  return FALSE;
}

static WaCsvProblem *
problem_new(GPtrArray *problems, guint line, WaCsvProblemKind kind, char *description)
{
  WaCsvProblem *problem = g_new0(WaCsvProblem, 1);

  problem->line = line;
  problem->kind = kind;
  problem->description = description;
  g_ptr_array_add(problems, problem);
  return problem;
}

WaCsvRecipients *
wa_csv_recipients_parse(const char *data, gsize len, const char *const *placeholders, guint n, const char *default_cc,
                        const WaCsvLimits *limits, GError **error)
{
  g_autoptr(WaCsv) csv = wa_csv_parse(data, len, limits, error);
  g_autoptr(WaCsvRecipients) out = NULL;
  g_autoptr(GHashTable) seen = NULL; /* to -> first line */
  g_autofree int *param_cols = NULL;
  int to_col, consent_col;

  g_return_val_if_fail(placeholders != NULL || n == 0, NULL);
  if (csv == NULL)
    return NULL;
  to_col = wa_csv_column(csv, "to");
  if (to_col < 0) {
    g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_HEADER,
                _("Line %u: the file has no column “to” (the phone number or user ID of each recipient)."),
                csv->header_line);
    return NULL;
  }
  param_cols = g_new0(int, MAX(n, 1));
  for (guint i = 0; i < n; i++) {
    param_cols[i] = placeholder_column(csv, placeholders[i]);
    if (param_cols[i] < 0) {
      g_set_error(error, WA_CSV_ERROR, WA_CSV_ERROR_HEADER,
                  _("Line %u: the file has no column “%s” for the template's placeholder {{%s}}."), csv->header_line,
                  placeholders[i], placeholders[i]);
      return NULL;
    }
  }
  consent_col = wa_csv_column(csv, "consent");

  out = g_new0(WaCsvRecipients, 1);
  out->rows = g_ptr_array_new_with_free_func(recipient_free);
  out->problems = g_ptr_array_new_with_free_func(problem_free);
  out->separator = csv->separator;
  seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint r = 0; r < csv->rows->len; r++) {
    const WaCsvRow *row = csv->rows->pdata[r];
    g_autofree char *raw_to = g_strstrip(g_strdup(row->fields[to_col]));
    g_autofree char *to = NULL;
    g_autoptr(GError) phone_error = NULL;
    WaCsvConsent consent = WA_CSV_CONSENT_NONE;
    WaCsvRecipient *recipient;
    gpointer first;
    guint i;

    if (*raw_to == '\0') {
      problem_new(out->problems, row->line, WA_CSV_PROBLEM_EMPTY, g_strdup(_("No recipient in the column “to”.")));
      continue;
    }
    to = wa_customer_id_normalize(raw_to, default_cc, &phone_error);
    if (to == NULL) {
      problem_new(out->problems, row->line, WA_CSV_PROBLEM_INVALID_NUMBER, g_strdup(phone_error->message));
      continue;
    }
    if (g_hash_table_lookup_extended(seen, to, NULL, &first)) {
      WaCsvProblem *problem =
        problem_new(out->problems, row->line, WA_CSV_PROBLEM_DUPLICATE,
                    g_strdup_printf(_("The same recipient as line %u."), GPOINTER_TO_UINT(first)));

      problem->first_line = GPOINTER_TO_UINT(first);
      continue;
    }
    if (consent_col >= 0 && !parse_consent(row->fields[consent_col], &consent)) {
      problem_new(out->problems, row->line, WA_CSV_PROBLEM_BAD_CONSENT,
                  g_strdup(_("The column “consent” must be opt-in, opt-out or empty.")));
      continue;
    }
    for (i = 0; i < n; i++) {
      g_autofree char *trimmed = g_strstrip(g_strdup(row->fields[param_cols[i]]));

      if (*trimmed == '\0')
        break;
    }
    if (i < n) {
      WaCsvProblem *problem = problem_new(out->problems, row->line, WA_CSV_PROBLEM_EMPTY_PARAM,
                                          g_strdup_printf(_("No value for the placeholder {{%s}}."), placeholders[i]));

      problem->param = g_strdup(placeholders[i]);
      continue;
    }
    g_hash_table_insert(seen, g_strdup(to), GUINT_TO_POINTER(row->line));
    recipient = g_new0(WaCsvRecipient, 1);
    recipient->line = row->line;
    recipient->to = g_steal_pointer(&to);
    recipient->consent = consent;
    recipient->params = g_new0(char *, n + 1);
    for (i = 0; i < n; i++)
      recipient->params[i] = g_strdup(row->fields[param_cols[i]]);
    g_ptr_array_add(out->rows, recipient);
  }
  return g_steal_pointer(&out);
}
