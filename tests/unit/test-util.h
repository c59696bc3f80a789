/* test-util.h: small helpers shared by unit tests (header-only). */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

/* Removes @path and everything below it (a test's temporary directory). */
static inline void
test_remove_tree(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  const char *name;

  if (dir == NULL) {
    g_remove(path);
    return;
  }
  while ((name = g_dir_read_name(dir)) != NULL) {
    char *child = g_build_filename(path, name, NULL);

    test_remove_tree(child);
    g_free(child);
  }
  g_dir_close(dir);
  g_rmdir(path);
}

/* ---- waiting on a main context -------------------------------------------------- */

/* How much longer every deadline is: HOSTCTL_TIMEOUT_FACTOR when set (3 under
 * `meson test --setup asan`), else 3 when WABIZ_SANITIZED=1, else 1. */
static inline double
test_timeout_factor(void)
{
  const char *env = g_getenv("HOSTCTL_TIMEOUT_FACTOR");

  if (env != NULL) {
    char *end = NULL;
    double factor = g_ascii_strtod(env, &end);

    if (end != env && *end == '\0' && factor >= 1.0)
      return factor;
  }
  return g_strcmp0(g_getenv("WABIZ_SANITIZED"), "1") == 0 ? 3.0 : 1.0;
}

/* One wait in progress; only the test_wait_* macros below use it. */
typedef struct {
  GMainContext *context; /* NULL: the default main context */
  GSource *deadline;
  gboolean late;
  double timeout_s; /* already scaled */
  const char *what;
  gboolean counting; /* report @have with the failure */
  gint64 have;
  const char *file;
  int line;
  const char *func;
} TestWait;

static inline gboolean
test_wait_deadline_cb_(gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static inline void
test_wait_begin_(TestWait *w, GMainContext *context, double timeout_s, const char *what, gboolean counting,
                 const char *file, int line, const char *func)
{
  *w = (TestWait){
    .context = context,
    .timeout_s = timeout_s * test_timeout_factor(),
    .what = what,
    .counting = counting,
    .file = file,
    .line = line,
    .func = func,
  };
  w->deadline = g_timeout_source_new((guint) (w->timeout_s * 1000));
  g_source_set_callback(w->deadline, test_wait_deadline_cb_, &w->late, NULL);
  g_source_attach(w->deadline, context);
}

/* Runs one blocking iteration; once the deadline has passed, fails the test
 * (naming what it waited for and where) and returns FALSE instead. */
static inline gboolean
test_wait_iterate_(TestWait *w)
{
  if (w->late) {
    g_autofree char *message = w->counting
                                 ? g_strdup_printf("timed out after %g s waiting for %s (it is %" G_GINT64_FORMAT ")",
                                                   w->timeout_s, w->what, w->have)
                                 : g_strdup_printf("timed out after %g s waiting for %s", w->timeout_s, w->what);

    g_assertion_message(G_LOG_DOMAIN, w->file, w->line, w->func, message);
    return FALSE;
  }
  g_main_context_iteration(w->context, TRUE);
  return TRUE;
}

static inline void
test_wait_end_(TestWait *w)
{
  g_source_destroy(w->deadline);
  g_source_unref(w->deadline);
}

/* Iterates @context (NULL: the default one) until the expression @cond holds,
 * evaluating it before each iteration; fails the test naming @cond once
 * @timeout_s seconds (times test_timeout_factor()) have passed, so that a wait
 * on broken code ends with a message instead of hanging until meson's
 * timeout. */
#define test_wait_until_in(context, cond, timeout_s)                                                    \
  G_STMT_START                                                                                          \
  {                                                                                                     \
    TestWait test_wait_;                                                                                \
    test_wait_begin_(&test_wait_, (context), (timeout_s), #cond, FALSE, __FILE__, __LINE__, G_STRFUNC); \
    while (!(cond) && test_wait_iterate_(&test_wait_))                                                  \
      ;                                                                                                 \
    test_wait_end_(&test_wait_);                                                                        \
  }                                                                                                     \
  G_STMT_END

#define test_wait_until(cond, timeout_s) test_wait_until_in(NULL, cond, timeout_s)

/* The same until the counter @counter (an lvalue) reaches @n; the failure
 * says how far it got. */
#define test_wait_count_in(context, counter, n, timeout_s)                                                    \
  G_STMT_START                                                                                                \
  {                                                                                                           \
    TestWait test_wait_;                                                                                      \
    test_wait_begin_(&test_wait_, (context), (timeout_s), #counter " to reach " #n, TRUE, __FILE__, __LINE__, \
                     G_STRFUNC);                                                                              \
    while ((test_wait_.have = (gint64) (counter)) < (gint64) (n) && test_wait_iterate_(&test_wait_))          \
      ;                                                                                                       \
    test_wait_end_(&test_wait_);                                                                              \
  }                                                                                                           \
  G_STMT_END

#define test_wait_count(counter, n, timeout_s) test_wait_count_in(NULL, counter, n, timeout_s)
