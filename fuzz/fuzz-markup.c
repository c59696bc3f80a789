/* fuzz-markup.c: libFuzzer target for plugin/core/wa-text.h: HTML from
 * libpurple to WhatsApp text, WhatsApp text to libpurple HTML, the splitter.
 *
 * Input: one flags byte, then the text (a C string: a NUL ends it). Checked:
 * - wa_text_to_html(): the only markup in the output is what it generates
 *   (<br>, and <b> <i> <s> <tt> with their end tags when markup is on); every
 *   '&' starts an entity g_markup_escape_text writes; without markup, the
 *   output decodes back to the (repaired) input, "\r\n" read as "\n";
 * - wa_html_to_whatsapp(): valid UTF-8;
 * - wa_text_split() of both the input and the converted text: every part
 *   within the budget (prefix included), never cut inside a character, and
 *   the parts without their "(i/n) " prefixes give back the text, with at
 *   most a "\n\n", "\n" or " " dropped at each cut (and at the end);
 * - wa_text_utf16_length() agrees with g_utf8_to_utf16().
 * Must not: print the input. */
#include "fuzz-common.h"

#include "wa-text.h"

static const char *const generated[] = {
  "<br>", "<b>", "</b>", "<i>", "</i>", "<s>", "</s>", "<tt>", "</tt>",
};

/* Length of the generated tag at @p, or 0. */
static gsize
generated_tag(const char *p, gboolean markup)
{
  for (gsize i = 0; i < G_N_ELEMENTS(generated); i++) {
    gsize n = strlen(generated[i]);

    if ((markup || i == 0) && strncmp(p, generated[i], n) == 0)
      return n;
  }
  return 0;
}

/* Length of the entity at @p ('&'), or 0 when it is not one that
 * g_markup_escape_text() writes; its character goes to @out. */
static gsize
entity(const char *p, GString *out)
{
  static const struct {
    const char *name;
    char c;
  } named[] = {
    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''},
  };
  const char *q;
  gunichar c = 0;

  for (gsize i = 0; i < G_N_ELEMENTS(named); i++) {
    gsize n = strlen(named[i].name);

    if (strncmp(p, named[i].name, n) == 0) {
      g_string_append_c(out, named[i].c);
      return n;
    }
  }
  if (strncmp(p, "&#x", 3) != 0)
    return 0;
  for (q = p + 3; g_ascii_isxdigit(*q) && q - p < 9; q++)
    c = c * 16 + (gunichar) g_ascii_xdigit_value(*q);
  if (q == p + 3 || *q != ';')
    return 0;
  g_string_append_unichar(out, c);
  return (gsize) (q + 1 - p);
}

static void
check_to_html(const char *text, gboolean markup)
{
  g_autofree char *html = wa_text_to_html(text, markup);
  g_autofree char *valid = g_utf8_make_valid(text, -1);
  g_autoptr(GString) decoded = g_string_new(NULL);
  g_autoptr(GString) expected = g_string_new(NULL);

  fuzz_check(html != NULL && g_utf8_validate(html, -1, NULL));
  for (const char *p = html; *p != '\0';) {
    gsize n;

    if (*p == '<') {
      n = generated_tag(p, markup);
      fuzz_check(n > 0); /* a '<' that is not ours came from the text */
      if (n == 4 && p[1] == 'b' && p[2] == 'r')
        g_string_append_c(decoded, '\n');
      p += n;
    } else if (*p == '&') {
      n = entity(p, decoded);
      fuzz_check(n > 0);
      p += n;
    } else {
      fuzz_check(*p != '>' && *p != '"' && *p != '\'');
      g_string_append_c(decoded, *p);
      p++;
    }
  }
  if (markup)
    return;
  for (const char *p = valid; *p != '\0'; p++) {
    if (!(*p == '\r' && p[1] == '\n'))
      g_string_append_c(expected, *p);
  }
  fuzz_check(g_str_equal(decoded->str, expected->str));
}

/* Whether @pieces[i..n) rebuild @text from byte @start, each cut having
 * dropped nothing, "\n\n", "\n" or " " (also after the last part, when that
 * cut was the last). @failed remembers the (start, i) pairs that cannot, so
 * the search stays polynomial: without it, texts of many line breaks cut
 * into many parts took exponential time (a timeout the fuzzer found). */
static gboolean
rebuilt_from(const char *text, gsize start, char **pieces, guint i, guint n, guint8 *failed)
{
  const char *rest = text + start;
  gsize len, pos;
  gboolean ok;

  if (i == n)
    return *rest == '\0';
  if (failed[start * n + i])
    return FALSE;
  len = strlen(pieces[i]);
  pos = start + len;
  rest += len;
  if (strncmp(text + start, pieces[i], len) != 0)
    ok = FALSE;
  else if (i + 1 == n)
    ok = *rest == '\0' || g_str_equal(rest, "\n\n") || g_str_equal(rest, "\n") || g_str_equal(rest, " ");
  else
    ok = rebuilt_from(text, pos, pieces, i + 1, n, failed) ||
         (rest[0] == '\n' && rest[1] == '\n' && rebuilt_from(text, pos + 2, pieces, i + 1, n, failed)) ||
         ((rest[0] == '\n' || rest[0] == ' ') && rebuilt_from(text, pos + 1, pieces, i + 1, n, failed));
  if (!ok)
    failed[start * n + i] = 1;
  return ok;
}

static gboolean
rebuilt(const char *text, char **pieces, guint n)
{
  g_autofree guint8 *failed = g_malloc0((strlen(text) + 1) * n);

  return rebuilt_from(text, 0, pieces, 0, n, failed);
}

static void
check_split(const char *text, gsize max_units)
{
  g_auto(GStrv) parts = wa_text_split(text, max_units);
  guint n = g_strv_length(parts);
  g_autofree char **pieces = g_new0(char *, n + 1);

  fuzz_check(n >= 1);
  if (n == 1) {
    fuzz_check(g_str_equal(parts[0], text));
    fuzz_check(wa_text_utf16_length(text) <= max_units);
    return;
  }
  for (guint i = 0; i < n; i++) {
    g_autofree char *prefix = g_strdup_printf("(%u/%u) ", i + 1, n);

    fuzz_check(g_utf8_validate(parts[i], -1, NULL));
    fuzz_check(wa_text_utf16_length(parts[i]) <= max_units);
    fuzz_check(g_str_has_prefix(parts[i], prefix));
    pieces[i] = parts[i] + strlen(prefix);
    fuzz_check(*pieces[i] != '\0');
  }
  fuzz_check(rebuilt(text, pieces, n));
}

static void
check_utf16_length(const char *text)
{
  glong units = 0;
  g_autofree gunichar2 *utf16 = g_utf8_to_utf16(text, -1, NULL, &units, NULL);

  fuzz_check(utf16 != NULL && wa_text_utf16_length(text) == (gsize) units);
}

FUZZ_DEFAULT_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *text = NULL;
  g_autofree char *valid = NULL;
  g_autofree char *whatsapp = NULL;
  gsize max_units;

  if (size == 0)
    return 0;
  max_units = 32 + (gsize) (data[0] >> 1) * 8;
  text = fuzz_strndup(data + 1, size - 1);
  valid = g_utf8_make_valid(text, -1);

  check_to_html(text, (data[0] & 1) != 0);
  check_utf16_length(valid);
  check_split(valid, max_units);
  wa_text_has_url(text);

  whatsapp = wa_html_to_whatsapp(text);
  fuzz_check(whatsapp != NULL && g_utf8_validate(whatsapp, -1, NULL));
  check_split(whatsapp, max_units);
  return 0;
}
