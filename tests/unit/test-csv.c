/* test-csv.c: the CSV reader, writer and recipients parser
 * (plugin/core/wa-csv.c) on what spreadsheets and people produce: quoting,
 * doubled quotes, line breaks inside fields, CRLF/LF/CR, a byte order mark,
 * empty lines, ',' or ';', short and long rows, broken files with the line
 * named, limits, invalid UTF-8; the writer's quoting and formula
 * neutralising, read back; recipients with numbers in every format, BSUIDs,
 * duplicates, consent and placeholders by number or name. */
#include "wa-csv.h"

#include <string.h>

static WaCsv *
parse_ok(const char *text)
{
  g_autoptr(GError) error = NULL;
  WaCsv *csv = wa_csv_parse(text, strlen(text), NULL, &error);

  g_assert_no_error(error);
  g_assert_nonnull(csv);
  return csv;
}

#define ROW(csv, i) ((WaCsvRow *) (csv)->rows->pdata[i])

/* Parses @len bytes expecting @code; the message must name "Line @line". */
static void
parse_fails(const char *text, gsize len, const WaCsvLimits *limits, gint code, guint line)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaCsv) csv = wa_csv_parse(text, len, limits, &error);
  g_autofree char *expected = g_strdup_printf("Line %u", line);

  g_assert_null(csv);
  g_assert_error(error, WA_CSV_ERROR, code);
  if (line > 0)
    g_assert_nonnull(strstr(error->message, expected));
}

static void
test_rfc4180(void)
{
  g_autoptr(WaCsv) csv = parse_ok("\xEF\xBB\xBF"
                                  "to, 1 ,note\r\n"
                                  "4915112345678,\"Ada, Countess\",\"she said \"\"hi\"\"\"\r\n"
                                  "\r\n"
                                  "14155550123,\"two\r\nlines\",\r\n"
                                  "447700900123,plain,\"\"\r\n"
                                  ",,\r\n"
                                  "449,last,no newline at the end");

  g_assert_cmpint(csv->separator, ==, ',');
  g_assert_cmpuint(csv->n_columns, ==, 3);
  /* header names trimmed, the BOM gone */
  g_assert_cmpstr(csv->header[0], ==, "to");
  g_assert_cmpstr(csv->header[1], ==, "1");
  g_assert_cmpint(wa_csv_column(csv, "TO"), ==, 0);
  g_assert_cmpint(wa_csv_column(csv, " note "), ==, 2);
  g_assert_cmpint(wa_csv_column(csv, "consent"), ==, -1);
  g_assert_cmpuint(csv->rows->len, ==, 4);
  g_assert_cmpstr(ROW(csv, 0)->fields[1], ==, "Ada, Countess");
  g_assert_cmpstr(ROW(csv, 0)->fields[2], ==, "she said \"hi\"");
  g_assert_cmpuint(ROW(csv, 0)->line, ==, 2);
  /* a line break inside quotes stays in the field; the next record's line counts it */
  g_assert_cmpstr(ROW(csv, 1)->fields[1], ==, "two\r\nlines");
  g_assert_cmpstr(ROW(csv, 1)->fields[2], ==, "");
  g_assert_cmpuint(ROW(csv, 1)->line, ==, 4);
  g_assert_cmpuint(ROW(csv, 2)->line, ==, 6);
  /* a line of separators only is skipped like an empty one */
  g_assert_cmpuint(ROW(csv, 3)->line, ==, 8);
  g_assert_cmpstr(ROW(csv, 3)->fields[2], ==, "no newline at the end");
}

static void
test_separators_and_line_ends(void)
{
  g_autoptr(WaCsv) semi = parse_ok("to;amount;\"a;b\"\n4915112345678;1,50;x\n");
  g_autoptr(WaCsv) cr = parse_ok("to,1\r4915112345678,a\r14155550123,b\r");
  g_autoptr(WaCsv) single = parse_ok("\n\nto\n4915112345678\n");
  g_autoptr(WaCsv) comma_in_quotes = parse_ok("\"x;y;z\",to,1\n1,2,3\n");

  /* a German spreadsheet: ';' between fields, ',' in amounts */
  g_assert_cmpint(semi->separator, ==, ';');
  g_assert_cmpstr(semi->header[2], ==, "a;b");
  g_assert_cmpstr(ROW(semi, 0)->fields[1], ==, "1,50");
  /* old Mac line ends */
  g_assert_cmpuint(cr->rows->len, ==, 2);
  g_assert_cmpuint(ROW(cr, 1)->line, ==, 3);
  /* one column, empty lines before the header */
  g_assert_cmpint(single->separator, ==, ',');
  g_assert_cmpuint(single->header_line, ==, 3);
  g_assert_cmpuint(ROW(single, 0)->line, ==, 4);
  /* separators inside quotes do not count */
  g_assert_cmpint(comma_in_quotes->separator, ==, ',');
  g_assert_cmpuint(comma_in_quotes->n_columns, ==, 3);
}

static void
test_short_and_long_rows(void)
{
  g_autoptr(WaCsv) csv = parse_ok("to,1,2\n4915112345678\n14155550123,a,b,,,\n");

  /* missing fields are empty; empty ones beyond the header are dropped */
  g_assert_cmpstr(ROW(csv, 0)->fields[1], ==, "");
  g_assert_cmpstr(ROW(csv, 0)->fields[2], ==, "");
  g_assert_null(ROW(csv, 0)->fields[3]);
  g_assert_cmpstr(ROW(csv, 1)->fields[2], ==, "b");
  parse_fails("to,1\na,b\nc,d,e\n", 15, NULL, WA_CSV_ERROR_SYNTAX, 3);
}

static void
test_broken_files(void)
{
  static const char nul[] = "to\n491511\0"
                            "2345678\n";
  static const char latin1[] = "to,1\n4915112345678,ok\n14155550123,M\xFCller\n";

  /* an unterminated quote names the line it opened on */
  parse_fails("to,1\n4915112345678,ok\n14155550123,\"open\nand never closed\n", 57, NULL, WA_CSV_ERROR_SYNTAX, 3);
  parse_fails("to,1\n4915112345678,\"closed\"then text\n", 37, NULL, WA_CSV_ERROR_SYNTAX, 2);
  parse_fails(latin1, strlen(latin1), NULL, WA_CSV_ERROR_ENCODING, 3);
  parse_fails(nul, sizeof nul - 1, NULL, WA_CSV_ERROR_ENCODING, 2);
  parse_fails("to,1,TO\n", 8, NULL, WA_CSV_ERROR_HEADER, 1);
  parse_fails("", 0, NULL, WA_CSV_ERROR_HEADER, 0);
  parse_fails("\xEF\xBB\xBF\r\n\r\n", 7, NULL, WA_CSV_ERROR_HEADER, 0);
}

static void
test_utf8_and_edges(void)
{
  static const char overlong[] = "to\n\xC0\xAF\n";
  static const char surrogate[] = "to\n1\n\xED\xA0\x80\n";
  g_autoptr(WaCsv) csv = parse_ok("\"to\",\"1\"\r\n"
                                  "4915112345678,\"M\xC3\xBCller \xF0\x9F\x93\xA6\"\r\n"
                                  "14155550123,\"cr\ronly\"\r\n"
                                  "447700900123,\r\n"
                                  "449,\"\"\"quoted at the start\"\r\n");

  /* quoted header names, multibyte text kept byte for byte */
  g_assert_cmpint(wa_csv_column(csv, "1"), ==, 1);
  g_assert_cmpstr(ROW(csv, 0)->fields[1], ==, "M\xC3\xBCller \xF0\x9F\x93\xA6");
  /* a lone CR inside quotes is a line break for the line count too */
  g_assert_cmpstr(ROW(csv, 1)->fields[1], ==, "cr\ronly");
  g_assert_cmpuint(ROW(csv, 2)->line, ==, 5);
  /* a separator right before the line end gives an empty last field */
  g_assert_cmpstr(ROW(csv, 2)->fields[1], ==, "");
  g_assert_cmpstr(ROW(csv, 3)->fields[1], ==, "\"quoted at the start");
  /* overlong encodings and surrogates are not UTF-8 */
  parse_fails(overlong, sizeof overlong - 1, NULL, WA_CSV_ERROR_ENCODING, 2);
  parse_fails(surrogate, sizeof surrogate - 1, NULL, WA_CSV_ERROR_ENCODING, 3);
  parse_fails("t\xFFo\n", 4, NULL, WA_CSV_ERROR_ENCODING, 1);
}

static void
test_limits(void)
{
  WaCsvLimits field = {.max_field_bytes = 8};
  WaCsvLimits row = {.max_row_bytes = 10}; /* field bytes: 10 on line 2, 11 on line 3 */
  WaCsvLimits rows = {.max_rows = 2};
  WaCsvLimits columns = {.max_columns = 3};
  const char *text = "to,1\n12345678,ok\n123456789,ok\n";
  g_autoptr(WaCsv) fits = NULL;

  parse_fails(text, strlen(text), &field, WA_CSV_ERROR_LIMIT, 3);
  parse_fails(text, strlen(text), &row, WA_CSV_ERROR_LIMIT, 3);
  parse_fails("to\n1\n2\n3\n", 9, &rows, WA_CSV_ERROR_LIMIT, 4);
  parse_fails("a,b,c,d\n", 8, &columns, WA_CSV_ERROR_LIMIT, 1);
  /* a quoted field is limited as well, even one that spans lines */
  parse_fails("to\n\"1234\n5678\n9\"\n", 17, &field, WA_CSV_ERROR_LIMIT, 2);
  /* exactly at the limits: accepted */
  fits = wa_csv_parse("to\n1\n2\n", 7, &rows, NULL);
  g_assert_nonnull(fits);
  g_assert_cmpuint(fits->rows->len, ==, 2);
}

static void
test_writer(void)
{
  const char *fields[] = {"4915112345678", "a,b",     "say \"hi\"", "two\nlines", NULL,  " padded",
                          "=SUM(A1:A9)",   "+491511", "-5",         "@cmd",       "\tx", "plain"};
  g_autoptr(GString) out = g_string_new(NULL);
  g_autoptr(GString) semi = g_string_new(NULL);
  g_autoptr(WaCsv) back = NULL;
  g_autoptr(GError) error = NULL;
  const char *header[G_N_ELEMENTS(fields)] = {"to", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"};

  wa_csv_append_row(out, header, G_N_ELEMENTS(header), ',');
  wa_csv_append_row(out, fields, G_N_ELEMENTS(fields), ',');
  g_assert_cmpstr(out->str, ==,
                  "to,b,c,d,e,f,g,h,i,j,k,l\r\n"
                  "4915112345678,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,\" padded\",'=SUM(A1:A9),'+491511,'-5,"
                  "'@cmd,'\tx,plain\r\n");
  /* what it writes reads back; formulas stay text */
  back = wa_csv_parse(out->str, out->len, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(back->rows->len, ==, 1);
  for (guint i = 0; i < 6; i++)
    g_assert_cmpstr(ROW(back, 0)->fields[i], ==, fields[i] != NULL ? fields[i] : "");
  g_assert_cmpstr(ROW(back, 0)->fields[6], ==, "'=SUM(A1:A9)");
  g_assert_cmpstr(ROW(back, 0)->fields[11], ==, "plain");
  /* with ';' a comma needs no quotes, a ';' does */
  {
    const char *two[] = {"1,5", "a;b"};

    wa_csv_append_row(semi, two, 2, ';');
    g_assert_cmpstr(semi->str, ==, "1,5;\"a;b\"\r\n");
  }
}

/* ---- recipients ---- */

#define REC(list, i) ((WaCsvRecipient *) (list)->rows->pdata[i])
#define PROBLEM(list, i) ((WaCsvProblem *) (list)->problems->pdata[i])

static WaCsvRecipients *
recipients_ok(const char *text, const char *const *placeholders, guint n)
{
  g_autoptr(GError) error = NULL;
  WaCsvRecipients *list = wa_csv_recipients_parse(text, strlen(text), placeholders, n, "49", NULL, &error);

  g_assert_no_error(error);
  g_assert_nonnull(list);
  return list;
}

static void
test_recipients(void)
{
  const char *const positional[] = {"1", "2"};
  g_autoptr(WaCsvRecipients) list = recipients_ok("To;2;1;consent;name (ignored)\n"
                                                  "+49 151 1234 5678;10:00;Ada;opt-in;x\n"
                                                  "0151 12345679;11:00;Bruno;;x\n"
                                                  "US.13491208655302741918;12:00;Cleo;OPT-OUT;x\n"
                                                  "004915112345678;13:00;Ada again;;x\n"
                                                  ";14:00;Nobody;;x\n"
                                                  "12ab;15:00;Letters;;x\n"
                                                  "14155550123;;Dana;;x\n"
                                                  "14155550124;16:00;Emil;maybe;x\n"
                                                  "14155550125;17:00;Finn;yes;x\n",
                                                  positional, 2);

  g_assert_cmpint(list->separator, ==, ';');
  g_assert_cmpuint(list->rows->len, ==, 4);
  g_assert_cmpstr(REC(list, 0)->to, ==, "4915112345678");
  g_assert_cmpuint(REC(list, 0)->line, ==, 2);
  /* placeholders in the template's order, whatever the column order */
  g_assert_cmpstr(REC(list, 0)->params[0], ==, "Ada");
  g_assert_cmpstr(REC(list, 0)->params[1], ==, "10:00");
  g_assert_null(REC(list, 0)->params[2]);
  g_assert_cmpint(REC(list, 0)->consent, ==, WA_CSV_CONSENT_OPT_IN);
  /* a national number takes the default country code */
  g_assert_cmpstr(REC(list, 1)->to, ==, "4915112345679");
  g_assert_cmpint(REC(list, 1)->consent, ==, WA_CSV_CONSENT_NONE);
  g_assert_cmpstr(REC(list, 2)->to, ==, "US.13491208655302741918");
  g_assert_cmpint(REC(list, 2)->consent, ==, WA_CSV_CONSENT_OPT_OUT);
  g_assert_cmpstr(REC(list, 3)->to, ==, "14155550125");
  g_assert_cmpuint(REC(list, 3)->line, ==, 10);

  g_assert_cmpuint(list->problems->len, ==, 5);
  /* the same number written another way is a duplicate of line 2 */
  g_assert_cmpuint(PROBLEM(list, 0)->line, ==, 5);
  g_assert_cmpint(PROBLEM(list, 0)->kind, ==, WA_CSV_PROBLEM_DUPLICATE);
  g_assert_cmpuint(PROBLEM(list, 0)->first_line, ==, 2);
  g_assert_nonnull(strstr(PROBLEM(list, 0)->description, "line 2"));
  g_assert_cmpint(PROBLEM(list, 1)->kind, ==, WA_CSV_PROBLEM_EMPTY);
  g_assert_cmpuint(PROBLEM(list, 1)->line, ==, 6);
  g_assert_cmpint(PROBLEM(list, 2)->kind, ==, WA_CSV_PROBLEM_INVALID_NUMBER);
  g_assert_cmpuint(PROBLEM(list, 2)->line, ==, 7);
  g_assert_cmpint(PROBLEM(list, 3)->kind, ==, WA_CSV_PROBLEM_EMPTY_PARAM);
  g_assert_cmpstr(PROBLEM(list, 3)->param, ==, "2");
  g_assert_cmpuint(PROBLEM(list, 3)->line, ==, 8);
  g_assert_cmpint(PROBLEM(list, 4)->kind, ==, WA_CSV_PROBLEM_BAD_CONSENT);
  g_assert_cmpuint(PROBLEM(list, 4)->line, ==, 9);
}

static void
test_recipients_named(void)
{
  const char *const named[] = {"first_name", "order"};
  g_autoptr(WaCsvRecipients) list = recipients_ok("to,{{order}},First_Name\n"
                                                  "4915112345678,A-17,Ada\n"
                                                  "14155550123,\"B-18, urgent\",Bruno\n",
                                                  named, 2);

  g_assert_cmpuint(list->rows->len, ==, 2);
  g_assert_cmpuint(list->problems->len, ==, 0);
  g_assert_cmpstr(REC(list, 1)->params[0], ==, "Bruno");
  g_assert_cmpstr(REC(list, 1)->params[1], ==, "B-18, urgent");
}

static void
test_recipients_refused(void)
{
  const char *const one[] = {"1"};
  g_autoptr(GError) error = NULL;
  g_autoptr(WaCsvRecipients) no_to = wa_csv_recipients_parse("phone,1\n1,2\n", 12, one, 1, NULL, NULL, &error);
  g_autoptr(WaCsvRecipients) no_param = NULL;
  g_autoptr(WaCsvRecipients) broken = NULL;
  g_autoptr(WaCsvRecipients) none = NULL;

  g_assert_null(no_to);
  g_assert_error(error, WA_CSV_ERROR, WA_CSV_ERROR_HEADER);
  g_assert_nonnull(strstr(error->message, "“to”"));
  g_clear_error(&error);
  no_param = wa_csv_recipients_parse("to,2\n1,2\n", 9, one, 1, NULL, NULL, &error);
  g_assert_null(no_param);
  g_assert_error(error, WA_CSV_ERROR, WA_CSV_ERROR_HEADER);
  g_assert_nonnull(strstr(error->message, "{{1}}"));
  g_clear_error(&error);
  broken = wa_csv_recipients_parse("to,1\n\"4915112345678,a\n", 21, one, 1, NULL, NULL, &error);
  g_assert_null(broken);
  g_assert_error(error, WA_CSV_ERROR, WA_CSV_ERROR_SYNTAX);
  g_clear_error(&error);
  /* no placeholders, no rows: an empty list, not an error */
  none = wa_csv_recipients_parse("to\n", 3, NULL, 0, NULL, NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(none->rows->len, ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/csv/rfc4180", test_rfc4180);
  g_test_add_func("/csv/separators-and-line-ends", test_separators_and_line_ends);
  g_test_add_func("/csv/short-and-long-rows", test_short_and_long_rows);
  g_test_add_func("/csv/broken-files", test_broken_files);
  g_test_add_func("/csv/utf8-and-edges", test_utf8_and_edges);
  g_test_add_func("/csv/limits", test_limits);
  g_test_add_func("/csv/writer", test_writer);
  g_test_add_func("/csv/recipients", test_recipients);
  g_test_add_func("/csv/recipients-named", test_recipients_named);
  g_test_add_func("/csv/recipients-refused", test_recipients_refused);
  return g_test_run();
}
