/* fuzz-common.h: what every libFuzzer target in fuzz/ shares.
 *
 * fuzz_init() sets GLib up for fuzzing: GSlice off, so AddressSanitizer and
 * LeakSanitizer see every allocation (GLib reads G_SLICE before any of our
 * code runs, so a target started without G_SLICE=always-malloc starts itself
 * again with it); a warning or critical (a failed g_return_if_fail, a
 * json-glib complaint) aborts, because each one is a bug the fuzzer found;
 * debug and info messages are dropped. fuzz_check() is an
 * assertion that stays on in every build type.
 *
 * Must not: print the input or anything derived from it (a failed check
 * names only the condition; libFuzzer saves the input itself). */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_check(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void
fuzz_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
  if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0)
    return;
  /* warnings and criticals name code or an error, never message content */
  fprintf(stderr, "GLib %s in domain %s: %s\n", (level & G_LOG_LEVEL_WARNING) != 0 ? "warning" : "critical",
          domain != NULL ? domain : "-", message);
  abort();
}

static GLogWriterOutput
fuzz_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  const char *domain = NULL;
  const char *message = "";

  for (gsize i = 0; i < n_fields; i++) {
    if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
    else if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  }
  fuzz_log_handler(domain, level, message, NULL);
  return G_LOG_WRITER_HANDLED;
}

static inline void
fuzz_init(int *argc, char ***argv)
{
  if (g_strcmp0(g_getenv("G_SLICE"), "always-malloc") != 0) {
    g_setenv("G_SLICE", "always-malloc", TRUE);
    execv("/proc/self/exe", *argv);
    fprintf(stderr, "cannot start again with G_SLICE=always-malloc: set it yourself\n");
    abort();
  }
  g_log_set_default_handler(fuzz_log_handler, NULL);
  g_log_set_writer_func(fuzz_log_writer, NULL, NULL);
}

/* LLVMFuzzerInitialize for a target that needs nothing but fuzz_init(). */
#define FUZZ_DEFAULT_INITIALIZE                     \
  int LLVMFuzzerInitialize(int *argc, char ***argv) \
  {                                                 \
    fuzz_init(argc, argv);                          \
    return 0;                                       \
  }

/* A NUL-terminated copy of @len bytes (which may hold NUL bytes of their own:
 * C-string consumers then see a prefix). */
static inline char *
fuzz_strndup(const uint8_t *data, size_t len)
{
  char *s = g_malloc(len + 1);

  if (len > 0)
    memcpy(s, data, len);
  s[len] = '\0';
  return s;
}
