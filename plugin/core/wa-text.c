/* wa-text.c: HTML to WhatsApp markup, splitting, and escaping for libpurple. */
#include "wa-text.h"

#include <string.h>

/* ---- HTML entities ------------------------------------------------------ */

/* Decodes the entity at @p (pointing at '&'); on success appends the character
 * to @out and returns the number of bytes consumed, else 0. */
static gsize
decode_entity(const char *p, GString *out)
{
  static const struct {
    const char *name;
    const char *text;
  } named[] = {
    {"amp;", "&"},  {"lt;", "<"},   {"gt;", ">"},          {"quot;", "\""},
    {"apos;", "'"}, {"nbsp;", " "}, {"copy;", "\xc2\xa9"}, {"reg;", "\xc2\xae"},
  };

  if (p[1] == '#') {
    const char *q = p + 2;
    gunichar c = 0;
    int base = 10;
    int digits = 0;

    if (*q == 'x' || *q == 'X') {
      base = 16;
      q++;
    }
    while (g_ascii_isxdigit(*q) && (base == 16 || g_ascii_isdigit(*q)) && digits < 8) {
      c = c * base + (gunichar) g_ascii_xdigit_value(*q);
      q++;
      digits++;
    }
    if (digits == 0 || *q != ';' || c == 0 || !g_unichar_validate(c))
      return 0;
    g_string_append_unichar(out, c);
    return (gsize) (q + 1 - p);
  }
  for (gsize i = 0; i < G_N_ELEMENTS(named); i++) {
    gsize n = strlen(named[i].name);
    if (g_ascii_strncasecmp(p + 1, named[i].name, n) == 0) {
      g_string_append(out, named[i].text);
      return n + 1;
    }
  }
  return 0;
}

/* ---- HTML to WhatsApp ----------------------------------------------------- */

typedef struct {
  char *tag;          /* lower-case tag name */
  const char *marker; /* WhatsApp marker, or NULL */
  gsize start;        /* offset in the output where the element's text starts */
  char *href;         /* for <a> */
} OpenElement;

static void
open_element_free(gpointer p)
{
  OpenElement *e = p;
  g_free(e->tag);
  g_free(e->href);
  g_free(e);
}

static const char *
marker_for(const char *tag)
{
  if (g_str_equal(tag, "b") || g_str_equal(tag, "strong"))
    return "*";
  if (g_str_equal(tag, "i") || g_str_equal(tag, "em"))
    return "_";
  if (g_str_equal(tag, "s") || g_str_equal(tag, "strike") || g_str_equal(tag, "del"))
    return "~";
  if (g_str_equal(tag, "tt") || g_str_equal(tag, "code") || g_str_equal(tag, "pre"))
    return "```";
  return NULL;
}

/* Extracts attribute @name from the inside of a tag ("a href='x' ..."),
 * entities decoded; newly allocated, or NULL. */
static char *
tag_attribute(const char *inside, const char *name)
{
  gsize n = strlen(name);

  for (const char *p = inside; *p != '\0'; p++) {
    const char *v;
    char quote;
    const char *end;
    GString *value;

    if (!g_ascii_isspace(*p) || g_ascii_strncasecmp(p + 1, name, n) != 0)
      continue;
    v = p + 1 + n;
    while (*v == ' ')
      v++;
    if (*v != '=')
      continue;
    v++;
    while (*v == ' ')
      v++;
    quote = (*v == '"' || *v == '\'') ? *v++ : '\0';
    end = v;
    while (*end != '\0' && (quote ? *end != quote : !g_ascii_isspace(*end)))
      end++;
    value = g_string_new(NULL);
    for (const char *c = v; c < end; c++) {
      gsize used = (*c == '&') ? decode_entity(c, value) : 0;
      if (used > 0)
        c += used - 1;
      else
        g_string_append_c(value, *c);
    }
    return g_string_free(value, FALSE);
  }
  return NULL;
}

/* Closes @e: wraps the text written since e->start in its marker, moving
 * surrounding white space outside the markers (WhatsApp needs "*x*" to touch
 * the text), or writes a link's address after its text. */
static void
close_element(GString *out, OpenElement *e)
{
  if (e->marker != NULL) {
    gsize len = out->len - e->start;
    char *inner = g_strndup(out->str + e->start, len);
    const char *lead_end = inner;
    const char *trail_start;

    while (*lead_end != '\0' && g_ascii_isspace(*lead_end))
      lead_end++;
    trail_start = inner + len;
    while (trail_start > lead_end && g_ascii_isspace(trail_start[-1]))
      trail_start--;
    g_string_truncate(out, e->start);
    g_string_append_len(out, inner, lead_end - inner);
    if (trail_start > lead_end) {
      g_string_append(out, e->marker);
      g_string_append_len(out, lead_end, trail_start - lead_end);
      g_string_append(out, e->marker);
    }
    g_string_append(out, trail_start);
    g_free(inner);
  } else if (e->href != NULL && *e->href != '\0') {
    const char *text = out->str + e->start;
    const char *href = e->href;

    if (g_ascii_strncasecmp(href, "mailto:", 7) == 0 && g_str_equal(text, href + 7))
      return;
    if (g_str_equal(text, href))
      return;
    if (out->len == e->start)
      g_string_append(out, href);
    else
      g_string_append_printf(out, " (%s)", href);
  }
}

char *
wa_html_to_whatsapp(const char *html)
{
  GString *out = g_string_new(NULL);
  GPtrArray *stack = g_ptr_array_new_with_free_func(open_element_free);
  const char *p = html;

  if (html == NULL)
    html = p = "";
  while (*p != '\0') {
    if (*p == '<') {
      const char *end = strchr(p, '>');
      g_autofree char *inside = NULL;
      g_autofree char *name = NULL;
      gboolean closing;
      const char *n;
      gsize name_len = 0;

      if (end == NULL) {
        g_string_append(out, p); /* a lone '<' is text */
        break;
      }
      inside = g_strndup(p + 1, end - p - 1);
      p = end + 1;
      closing = inside[0] == '/';
      n = inside + (closing ? 1 : 0);
      while (g_ascii_isalnum(n[name_len]))
        name_len++;
      if (name_len == 0) {
        /* "<!-- -->", "< 3" and the like: keep text that is not a tag */
        if (!(inside[0] == '!' || inside[0] == '?' || closing)) {
          g_string_append_c(out, '<');
          g_string_append(out, inside);
          g_string_append_c(out, '>');
        }
        continue;
      }
      name = g_ascii_strdown(n, (gssize) name_len);

      if (g_str_equal(name, "br")) {
        g_string_append_c(out, '\n');
        continue;
      }
      if (g_str_equal(name, "p") || g_str_equal(name, "div") || g_str_equal(name, "li")) {
        if (out->len > 0 && out->str[out->len - 1] != '\n')
          g_string_append_c(out, '\n');
        continue;
      }
      if (closing) {
        /* close the innermost open element with this name, and any inside it */
        for (guint i = stack->len; i > 0; i--) {
          OpenElement *e = g_ptr_array_index(stack, i - 1);
          if (g_str_equal(e->tag, name)) {
            while (stack->len >= i) {
              OpenElement *top = g_ptr_array_index(stack, stack->len - 1);
              close_element(out, top);
              g_ptr_array_remove_index(stack, stack->len - 1);
            }
            break;
          }
        }
        continue;
      }
      if (inside[strlen(inside) - 1] == '/')
        continue; /* self-closing: <img/>, <hr/> */
      if (marker_for(name) != NULL || g_str_equal(name, "a")) {
        OpenElement *e = g_new0(OpenElement, 1);
        e->tag = g_steal_pointer(&name);
        e->marker = marker_for(e->tag);
        e->start = out->len;
        if (e->marker == NULL)
          e->href = tag_attribute(inside, "href");
        g_ptr_array_add(stack, e);
      }
      /* other tags (font, span, u, img, ...) carry nothing WhatsApp can show */
      continue;
    }
    if (*p == '&') {
      gsize used = decode_entity(p, out);
      if (used > 0) {
        p += used;
        continue;
      }
    }
    g_string_append_c(out, *p);
    p++;
  }
  /* unclosed elements: keep their text, without markers */
  g_ptr_array_free(stack, TRUE);

  if (!g_utf8_validate(out->str, (gssize) out->len, NULL)) {
    char *valid = g_utf8_make_valid(out->str, (gssize) out->len);
    g_string_free(out, TRUE);
    return valid;
  }
  return g_string_free(out, FALSE);
}

/* ---- splitting ------------------------------------------------------------ */

gsize
wa_text_utf16_length(const char *text)
{
  gsize units = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p))
    units += g_utf8_get_char(p) > 0xFFFF ? 2 : 1;
  return units;
}

/* Returns the byte length of the longest prefix of @text within @budget
 * UTF-16 units, preferring to end after a paragraph break, a line break or a
 * space in the last third of the budget. *@skip receives how many separator
 * bytes after the cut to drop. */
static gsize
find_cut(const char *text, gsize budget, gsize *skip)
{
  gsize units = 0;
  const char *p = text;
  const char *last_para = NULL, *last_line = NULL, *last_space = NULL;
  const char *floor_at = NULL;

  *skip = 0;
  while (*p != '\0') {
    gunichar c = g_utf8_get_char(p);
    gsize u = c > 0xFFFF ? 2 : 1;

    if (units + u > budget)
      break;
    units += u;
    if (floor_at == NULL && units * 3 >= budget * 2)
      floor_at = p;
    if (c == '\n' && p[1] == '\n')
      last_para = p;
    else if (c == '\n')
      last_line = p;
    else if (c == ' ')
      last_space = p;
    p = g_utf8_next_char(p);
  }
  if (*p == '\0')
    return (gsize) (p - text);
  if (floor_at != NULL) {
    if (last_para != NULL && last_para >= floor_at) {
      *skip = 2;
      return (gsize) (last_para - text);
    }
    if (last_line != NULL && last_line >= floor_at) {
      *skip = 1;
      return (gsize) (last_line - text);
    }
    if (last_space != NULL && last_space >= floor_at) {
      *skip = 1;
      return (gsize) (last_space - text);
    }
  }
  return (gsize) (p - text);
}

static GPtrArray *
split_with_prefix_units(const char *text, gsize max_units, gsize prefix_units)
{
  GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
  const char *p = text;

  while (*p != '\0') {
    gsize skip;
    gsize cut = find_cut(p, max_units - prefix_units, &skip);

    if (cut == 0) /* cannot happen with a sane budget; avoid looping */
      cut = (gsize) (g_utf8_next_char(p) - p);
    g_ptr_array_add(parts, g_strndup(p, cut));
    p += cut + skip;
  }
  return parts;
}

static guint
count_digits(guint n)
{
  guint d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

char **
wa_text_split(const char *text, gsize max_units)
{
  GPtrArray *parts = NULL;
  guint digits = 1;

  g_return_val_if_fail(max_units >= 32, NULL);
  if (wa_text_utf16_length(text) <= max_units) {
    char **one = g_new0(char *, 2);
    one[0] = g_strdup(text);
    return one;
  }
  /* "(i/n) " costs 4 + 2 * digits(n) units; grow the digit count until stable */
  for (;;) {
    if (parts != NULL)
      g_ptr_array_free(parts, TRUE);
    parts = split_with_prefix_units(text, max_units, 4 + 2 * digits);
    if (count_digits(parts->len) <= digits)
      break;
    digits = count_digits(parts->len);
  }
  {
    char **result = g_new0(char *, parts->len + 1);
    for (guint i = 0; i < parts->len; i++)
      result[i] = g_strdup_printf("(%u/%u) %s", i + 1, parts->len, (char *) g_ptr_array_index(parts, i));
    g_ptr_array_free(parts, TRUE);
    return result;
  }
}

/* ---- escaping for libpurple ----------------------------------------------- */

/* TRUE when @marker at @c (inside @html, not at its start) may close a
 * pair: no white space just inside, and white space, punctuation or the end
 * just after. */
static gboolean
closes_at(const char *c, const char *marker, gsize mlen)
{
  const char *after = c + mlen;

  return strncmp(c, marker, mlen) == 0 && !g_ascii_isspace(c[-1]) &&
         (*after == '\0' || g_ascii_isspace(*after) || g_ascii_ispunct(*after));
}

/* Applies one WhatsApp marker pair (@marker) to already escaped @html: a marker
 * opens at the start or after white space / punctuation and closes before white
 * space, punctuation or the end, with no white space just inside; a pair
 * never spans a line break, and the first closing marker after an opening
 * one wins.
 *
 * One pass: where a marker may close does not depend on where it opened, so
 * the next closing position and the next line break are cursors that only
 * move forward as the openings do (a customer's text of thousands of
 * unmatched markers used to cost a scan of the rest of the text for each). */
static char *
apply_marker(const char *html, const char *marker, const char *open_tag, const char *close_tag)
{
  GString *out = g_string_new(NULL);
  gsize mlen = strlen(marker);
  const char *end = html + strlen(html);
  const char *p = html;
  const char *close = html;    /* the first closing position at or after inner + 1, or end */
  const char *line_end = html; /* the first '\n' at or after p + mlen, or end */

  while (*p != '\0') {
    gboolean at_boundary = (p == html) || g_ascii_isspace(p[-1]) || g_ascii_ispunct(p[-1]);
    if (at_boundary && strncmp(p, marker, mlen) == 0 && p[mlen] != '\0' && !g_ascii_isspace(p[mlen])) {
      const char *inner = p + mlen;

      /* a closing marker needs at least one character inside */
      if (close < inner + 1) {
        for (close = inner + 1; close < end && !closes_at(close, marker, mlen); close++)
          ;
      }
      if (line_end < inner) {
        line_end = memchr(inner, '\n', (gsize) (end - inner));
        if (line_end == NULL)
          line_end = end;
      }
      if (close < line_end) {
        g_string_append(out, open_tag);
        g_string_append_len(out, inner, close - inner);
        g_string_append(out, close_tag);
        p = close + mlen;
        continue;
      }
    }
    g_string_append_c(out, *p);
    p++;
  }
  return g_string_free(out, FALSE);
}

char *
wa_text_to_html(const char *text, gboolean whatsapp_markup)
{
  g_autofree char *valid = NULL;
  g_autofree char *escaped = NULL;
  GString *out;

  if (text == NULL)
    return g_strdup("");
  valid = g_utf8_make_valid(text, -1);
  escaped = g_markup_escape_text(valid, -1);

  if (whatsapp_markup) {
    static const struct {
      const char *marker, *open, *close;
    } marks[] = {
      {"```", "<tt>", "</tt>"},
      {"*", "<b>", "</b>"},
      {"_", "<i>", "</i>"},
      {"~", "<s>", "</s>"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(marks); i++) {
      char *next = apply_marker(escaped, marks[i].marker, marks[i].open, marks[i].close);
      g_free(escaped);
      escaped = next;
    }
  }

  out = g_string_sized_new(strlen(escaped) + 16);
  for (const char *p = escaped; *p != '\0'; p++) {
    if (*p == '\r' && p[1] == '\n')
      continue;
    if (*p == '\n')
      g_string_append(out, "<br>");
    else
      g_string_append_c(out, *p);
  }
  return g_string_free(out, FALSE);
}

gboolean
wa_text_has_url(const char *text)
{
  const char *p = text;

  while ((p = strstr(p, "http")) != NULL) {
    if (g_ascii_strncasecmp(p, "http://", 7) == 0 || g_ascii_strncasecmp(p, "https://", 8) == 0) {
      const char *host = p + (p[4] == ':' ? 7 : 8);
      if (g_ascii_isalnum(*host))
        return TRUE;
    }
    p += 4;
  }
  return FALSE;
}
