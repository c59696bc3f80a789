/* wa-csv.h: CSV files in and out: the reader for campaign recipients and
 * customer import, the writer for campaign reports, and the recipients
 * parser on top of the reader.
 *
 * Reader (RFC 4180, as spreadsheets export it): the first non-empty line is
 * the header; fields separated by ',' or ';' (whichever the header has more
 * of outside quotes; ',' when it has neither); fields may be quoted ("a, b"),
 * a quote inside a quoted field is doubled (""), quoted fields may span
 * lines; lines end with CRLF, LF or CR; a UTF-8 byte order mark is skipped;
 * empty lines (and lines of separators only) are skipped. The file must be
 * UTF-8 without NUL bytes (refused otherwise, naming the line). A row may
 * have fewer fields than the header (the rest are empty); more non-empty
 * ones than the header is an error. Field, row and row-count limits
 * (WaCsvLimits) are checked while reading; every error names its line (the
 * physical line a record starts on, the header being line 1 unless empty
 * lines or a BOM line came before). Fields are kept exactly as written
 * (no trimming), header names are trimmed.
 *
 * Writer: fields are quoted when they contain the separator, a quote, a line
 * break, or leading or trailing spaces; quotes doubled; rows end with CRLF.
 * Spreadsheet formula injection is neutralised: a field beginning with
 * '=', '+', '-', '@', a tab or a carriage return gets a leading apostrophe
 * ('), which spreadsheets show as text and do not evaluate (so "-5" is
 * written as "'-5"; phone numbers are written as digits, without '+').
 *
 * Recipients: a column "to" (a phone number, normalised with
 * wa_customer_id_normalize(), or a business-scoped user ID), one column per
 * template placeholder (named "1", "2", ... or the placeholder's name; "{{1}}"
 * is accepted too), an optional column "consent" (opt-in, opt-out or empty;
 * case is ignored, and optin / opt in / in / yes, optout / opt out / out / no
 * are understood too);
 * other columns are ignored. Every row either becomes a recipient or a
 * problem with its line number: empty "to", invalid number, duplicate (of an
 * earlier line), an empty placeholder value, or a consent value not
 * understood. A missing "to" or placeholder column fails the whole file.
 *
 * Must not: read files (callers hand in the bytes), log field contents, or
 * accept input beyond the limits. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WA_CSV_ERROR (wa_csv_error_quark())
GQuark wa_csv_error_quark(void);

typedef enum {
  WA_CSV_ERROR_ENCODING, /* not UTF-8, or a NUL byte */
  WA_CSV_ERROR_SYNTAX,   /* an unterminated quote, text after a closing quote, too many fields */
  WA_CSV_ERROR_LIMIT,    /* a field, row or row count beyond the limits */
  WA_CSV_ERROR_HEADER,   /* no header, an empty or duplicate column name, a required column missing */
} WaCsvError;

typedef struct {
  gsize max_field_bytes; /* 0: WA_CSV_DEFAULT_FIELD_BYTES */
  gsize max_row_bytes;   /* 0: WA_CSV_DEFAULT_ROW_BYTES */
  guint max_rows;        /* data rows, 0: WA_CSV_DEFAULT_ROWS */
  guint max_columns;     /* 0: WA_CSV_DEFAULT_COLUMNS */
} WaCsvLimits;

#define WA_CSV_DEFAULT_FIELD_BYTES 4096
#define WA_CSV_DEFAULT_ROW_BYTES 65536
#define WA_CSV_DEFAULT_ROWS 100000
#define WA_CSV_DEFAULT_COLUMNS 256

typedef struct {
  guint line;    /* where the record starts (1-based) */
  char **fields; /* NULL-terminated; as many as the header (missing ones "") */
} WaCsvRow;

typedef struct {
  char separator; /* ',' or ';' */
  char **header;  /* NULL-terminated, trimmed */
  guint n_columns;
  guint header_line;
  GPtrArray *rows; /* WaCsvRow* */
} WaCsv;

/* Parses @len bytes of @data; @limits may be NULL (defaults). NULL with
 * @error. Free with wa_csv_free(). */
WaCsv *wa_csv_parse(const char *data, gsize len, const WaCsvLimits *limits, GError **error);
void wa_csv_free(WaCsv *csv);
/* The index of column @name (trimmed, case-insensitive), or -1. */
int wa_csv_column(const WaCsv *csv, const char *name);

/* Appends one row of @n fields (NULL is written as empty) to @out, see the
 * writer rules above. */
void wa_csv_append_row(GString *out, const char *const *fields, guint n, char separator);

/* ---- recipients ---- */

typedef enum {
  WA_CSV_CONSENT_NONE = 0, /* no column, or empty */
  WA_CSV_CONSENT_OPT_IN = 1,
  WA_CSV_CONSENT_OPT_OUT = 2,
} WaCsvConsent;

typedef struct {
  guint line;
  char *to;      /* wa_id digits or a BSUID */
  char **params; /* one per placeholder, in the order given; NULL-terminated */
  WaCsvConsent consent;
} WaCsvRecipient;

typedef enum {
  WA_CSV_PROBLEM_EMPTY = 1,          /* no "to" */
  WA_CSV_PROBLEM_INVALID_NUMBER = 2, /* "to" is neither a phone number nor a BSUID */
  WA_CSV_PROBLEM_DUPLICATE = 3,      /* the same recipient as line @first_line */
  WA_CSV_PROBLEM_EMPTY_PARAM = 4,    /* placeholder @param has no value */
  WA_CSV_PROBLEM_BAD_CONSENT = 5,    /* the consent column holds something else */
} WaCsvProblemKind;

typedef struct {
  guint line;
  WaCsvProblemKind kind;
  guint first_line;  /* DUPLICATE: the line it repeats */
  char *param;       /* EMPTY_PARAM: the placeholder's name */
  char *description; /* translated, for the agent (no field contents except the placeholder name) */
} WaCsvProblem;

typedef struct {
  GPtrArray *rows;     /* WaCsvRecipient*, in file order */
  GPtrArray *problems; /* WaCsvProblem*, in file order */
  char separator;
} WaCsvRecipients;

/* Reads a recipients file for a template whose placeholders are
 * @placeholders (@n of them: "1", "2", ... or names). @default_cc is the
 * country calling code for national numbers (may be NULL). NULL with
 * @error when the file as a whole is refused. */
WaCsvRecipients *wa_csv_recipients_parse(const char *data, gsize len, const char *const *placeholders, guint n,
                                         const char *default_cc, const WaCsvLimits *limits, GError **error);
void wa_csv_recipients_free(WaCsvRecipients *recipients);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaCsv, wa_csv_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaCsvRecipients, wa_csv_recipients_free)

G_END_DECLS
