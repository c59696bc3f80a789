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
