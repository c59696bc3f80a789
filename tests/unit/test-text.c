/* test-text.c: HTML to WhatsApp markup, splitting, escaping for libpurple. */
#include "wa-text.h"

#include <string.h>

static void
conv(const char *html, const char *want)
{
  g_autofree char *got = wa_html_to_whatsapp(html);
  g_assert_cmpstr(got, ==, want);
}

static void
test_markup(void)
{
  conv("plain text", "plain text");
  conv("<b>bold</b> and <i>it</i>", "*bold* and _it_");
  conv("<strong>x</strong><em>y</em>", "*x*_y_");
  conv("<s>gone</s> <strike>a</strike> <del>b</del>", "~gone~ ~a~ ~b~");
  conv("<tt>code</tt>", "```code```");
  conv("<B>Upper</B>", "*Upper*");
  /* white space moves outside the markers, or WhatsApp shows the stars */
  conv("<b> bold </b>x", " *bold* x");
  conv("<b> </b>", " ");
  conv("<b>a<i>b</i></b>", "*a_b_*");
  conv("line<br>next<BR/>last", "line\nnext\nlast");
  conv("<font color=\"#ff0000\"><span style='x'>red</span></font><u>u</u>", "redu");
  conv("a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; &#x263A; &nbsp;", "a & b <c> \"d\" 'e' \xe2\x98\xba  ");
  conv("Tom & Jerry &unknown; &#0; &#xZZ;", "Tom & Jerry &unknown; &#0; &#xZZ;");
  conv("<a href=\"https://shop.example/o?id=1&amp;x=2\">your order</a>",
       "your order (https://shop.example/o?id=1&x=2)");
  conv("<a href='https://a.example'>https://a.example</a>", "https://a.example");
  conv("<a href=\"mailto:x@y.example\">x@y.example</a>", "x@y.example");
  conv("<a href=\"https://a.example\"></a>", "https://a.example");
  conv("1 < 2 and 3 > 2", "1 < 2 and 3 > 2");
  conv("unclosed <b>bold", "unclosed bold");
  conv("<!-- note -->text", "text");
  conv("<p>one</p><p>two</p>", "one\ntwo\n");
  conv("", "");
}

static void
test_utf16_length(void)
{
  g_assert_cmpuint(wa_text_utf16_length("abc"), ==, 3);
  g_assert_cmpuint(wa_text_utf16_length("caf\xc3\xa9"), ==, 4);
  g_assert_cmpuint(wa_text_utf16_length("\xf0\x9f\x98\x80"), ==, 2); /* U+1F600 */
}

static void
test_split_short(void)
{
  g_auto(GStrv) parts = wa_text_split("hello", 4096);

  g_assert_cmpuint(g_strv_length(parts), ==, 1);
  g_assert_cmpstr(parts[0], ==, "hello");
}

static void
test_split_numbered(void)
{
  GString *text = g_string_new(NULL);
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) joined = g_string_new(NULL);

  /* 10,000 characters of words: three parts, each within the limit */
  while (text->len < 10000)
    g_string_append(text, "word ");
  g_string_truncate(text, 10000);
  parts = wa_text_split(text->str, 4096);
  g_assert_cmpuint(g_strv_length(parts), ==, 3);
  for (guint i = 0; parts[i] != NULL; i++) {
    g_autofree char *prefix = g_strdup_printf("(%u/3) ", i + 1);
    g_assert_true(g_str_has_prefix(parts[i], prefix));
    g_assert_cmpuint(wa_text_utf16_length(parts[i]), <=, 4096);
    /* split at a word break: no part ends inside "word" */
    g_assert_false(g_str_has_suffix(parts[i], "wo"));
    if (joined->len > 0)
      g_string_append_c(joined, ' ');
    g_string_append(joined, parts[i] + strlen(prefix));
  }
  /* nothing lost but the separators at the cuts */
  g_assert_cmpstr(joined->str, ==, text->str);
  g_string_free(text, TRUE);
}

static void
test_split_no_spaces_and_emoji(void)
{
  GString *text = g_string_new(NULL);
  g_auto(GStrv) parts = NULL;
  guint total_chars = 0;

  /* 3,000 emoji = 6,000 UTF-16 units, no break opportunity: hard cuts between characters */
  for (int i = 0; i < 3000; i++)
    g_string_append(text, "\xf0\x9f\x98\x80");
  parts = wa_text_split(text->str, 4096);
  g_assert_cmpuint(g_strv_length(parts), ==, 2);
  for (guint i = 0; parts[i] != NULL; i++) {
    const char *body = strchr(parts[i], ' ') + 1;
    g_assert_true(g_utf8_validate(parts[i], -1, NULL));
    g_assert_cmpuint(wa_text_utf16_length(parts[i]), <=, 4096);
    total_chars += (guint) g_utf8_strlen(body, -1);
  }
  g_assert_cmpuint(total_chars, ==, 3000);
  g_string_free(text, TRUE);
}

static void
test_split_many_parts(void)
{
  /* 12 parts: the prefix grows to "(10/12) " and every part still fits */
  GString *text = g_string_new(NULL);
  g_auto(GStrv) parts = NULL;

  while (text->len < 100 * 11 + 50)
    g_string_append(text, "abcdefghi ");
  parts = wa_text_split(text->str, 100);
  g_assert_cmpuint(g_strv_length(parts), >=, 12);
  for (guint i = 0; parts[i] != NULL; i++)
    g_assert_cmpuint(wa_text_utf16_length(parts[i]), <=, 100);
  g_assert_true(g_str_has_prefix(parts[9], "(10/"));
  g_string_free(text, TRUE);
}

static void
test_to_html(void)
{
  g_autofree char *a = wa_text_to_html("<img id=\"7\"> & <b>x</b>\nnext", FALSE);
  g_autofree char *b = wa_text_to_html("*bold* _it_ ~s~ ```m``` snake_case_name 2*3*4", TRUE);
  g_autofree char *c = wa_text_to_html("bad \xff utf8", FALSE);
  g_autofree char *d = wa_text_to_html("*<script>*", TRUE);

  g_assert_cmpstr(a, ==, "&lt;img id=&quot;7&quot;&gt; &amp; &lt;b&gt;x&lt;/b&gt;<br>next");
  g_assert_cmpstr(b, ==, "<b>bold</b> <i>it</i> <s>s</s> <tt>m</tt> snake_case_name 2*3*4");
  g_assert_true(g_utf8_validate(c, -1, NULL));
  g_assert_null(strchr(c, '\xff'));
  g_assert_cmpstr(d, ==, "<b>&lt;script&gt;</b>");
}

/* A text of @len characters: @head repeated over the first half, then @mid,
 * then @tail repeated (or @head all along when @tail is NULL). */
static char *
adversarial_text(const char *head, const char *mid, const char *tail, gsize len)
{
  GString *s = g_string_sized_new(len + 16);

  while (s->len < (tail != NULL ? len / 2 : len))
    g_string_append(s, head);
  if (tail != NULL) {
    g_string_append(s, mid);
    while (s->len < len)
      g_string_append(s, tail);
  }
  g_string_truncate(s, len);
  return g_string_free(s, FALSE);
}

/* The best of up to @runs conversions of @text, in microseconds; it stops
 * retrying once 2 s went by (a run that slow is not noise). */
static gint64
best_time_us(const char *text, guint runs)
{
  gint64 best = G_MAXINT64;
  gint64 started = g_get_monotonic_time();

  for (guint i = 0; i < runs && g_get_monotonic_time() - started < 2 * G_USEC_PER_SEC; i++) {
    gint64 t0 = g_get_monotonic_time();
    g_autofree char *html = wa_text_to_html(text, TRUE);
    gint64 t = g_get_monotonic_time() - t0;

    g_assert_nonnull(html);
    best = MIN(best, t);
  }
  return best;
}

/* Markers that never pair must not make the conversion slow: each opening
 * marker used to search the rest of the text for its closing one (and the
 * text before it for a line break), seconds for a 64 K text from a customer,
 * on arrival and again in the history when the conversation opens. The
 * conversion is linear: 64 K characters well under 50 ms, and 4 times the
 * text (16 K to 64 K, both small enough to stay in the processor's caches,
 * whose sharing with other processes would be measured otherwise) at most
 * about 4 times the time (6 allowed for noise). Each figure is
 * the best of several runs, and a ratio over the limit is measured again
 * (twice) before it counts: other processes share the machine. Under the
 * sanitizers, whose allocator is slow and uneven, 500 ms and a ratio of 12
 * (a quadratic conversion would show 16). */
static void
test_markup_linear(void)
{
  static const struct {
    const char *head, *mid, *tail;
  } shapes[] = {
    {" _x", "\n", "x_ "},
    {" *x", "\n", "x* "},
    {" ~x", "\n", "x~ "},
    {" ```x", "\n", "x``` "},
    {" *_~```x", "\n", "x```~_* "}, /* nested */
    {" _x", NULL, NULL},            /* unclosed */
    {" ```*x", NULL, NULL},
    {"_ _", "x", " _"}, /* openers that close only across a break */
  };
  gboolean sanitized = g_strcmp0(g_getenv("WABIZ_SANITIZED"), "1") == 0;
  gint64 bound_us = (sanitized ? 500 : 50) * 1000;
  gint64 ratio = sanitized ? 12 : 6;

  for (gsize i = 0; i < G_N_ELEMENTS(shapes); i++) {
    g_autofree char *quarter = adversarial_text(shapes[i].head, shapes[i].mid, shapes[i].tail, 16384);
    g_autofree char *text = adversarial_text(shapes[i].head, shapes[i].mid, shapes[i].tail, 65536);
    gint64 t_quarter = 0, t = 0;

    for (guint attempt = 0; attempt < 3; attempt++) {
      t = best_time_us(text, 5);
      if (t >= bound_us)
        g_error("shape %" G_GSIZE_FORMAT " (\"%s\"...): 64 K characters took %" G_GINT64_FORMAT " ms", i,
                shapes[i].head, t / 1000);
      t_quarter = best_time_us(quarter, 9);
      g_test_message("shape %" G_GSIZE_FORMAT ": 16 K characters in %" G_GINT64_FORMAT " us, 64 K in %" G_GINT64_FORMAT
                     " us",
                     i, t_quarter, t);
      /* below 50 us a measurement is mostly noise */
      if (t <= ratio * MAX(t_quarter, 50))
        break;
    }
    if (t > ratio * MAX(t_quarter, 50))
      g_error("shape %" G_GSIZE_FORMAT ": 16 K characters took %" G_GINT64_FORMAT " us, 64 K %" G_GINT64_FORMAT
              " us: not linear",
              i, t_quarter, t);
  }
}

static void
test_has_url(void)
{
  g_assert_true(wa_text_has_url("see https://example.com/x"));
  g_assert_true(wa_text_has_url("http://a.b"));
  g_assert_false(wa_text_has_url("no link here"));
  g_assert_false(wa_text_has_url("https:// nothing"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/text/markup", test_markup);
  g_test_add_func("/text/utf16-length", test_utf16_length);
  g_test_add_func("/text/split-short", test_split_short);
  g_test_add_func("/text/split-numbered", test_split_numbered);
  g_test_add_func("/text/split-no-spaces-emoji", test_split_no_spaces_and_emoji);
  g_test_add_func("/text/split-many-parts", test_split_many_parts);
  g_test_add_func("/text/to-html", test_to_html);
  g_test_add_func("/text/markup-linear", test_markup_linear);
  g_test_add_func("/text/has-url", test_has_url);
  return g_test_run();
}
