/* wa-loop-glib.c: WaLoop on the default GLib main context (tests, receiver). */
#include "wa-loop.h"

#include <glib-unix.h>

typedef struct {
  WaIoFunc func;
  gpointer data;
} GlibWatch;

static guint
glib_timeout_add(WaLoop *loop, guint ms, GSourceFunc func, gpointer data)
{
  return g_timeout_add(ms, func, data);
}

static void
glib_timeout_remove(WaLoop *loop, guint id)
{
  g_source_remove(id);
}

static gboolean
glib_watch_cb(gint fd, GIOCondition condition, gpointer user_data)
{
  GlibWatch *watch = user_data;
  WaIoCondition cond = 0;

  if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR))
    cond |= WA_IO_READ;
  if (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR))
    cond |= WA_IO_WRITE;
  watch->func(watch->data, fd, cond);
  return G_SOURCE_CONTINUE;
}

static guint
glib_input_add(WaLoop *loop, int fd, WaIoCondition cond, WaIoFunc func, gpointer data)
{
  GIOCondition gcond = G_IO_HUP | G_IO_ERR;
  GlibWatch *watch = g_new0(GlibWatch, 1);

  if (cond & WA_IO_READ)
    gcond |= G_IO_IN;
  if (cond & WA_IO_WRITE)
    gcond |= G_IO_OUT;
  watch->func = func;
  watch->data = data;
  return g_unix_fd_add_full(G_PRIORITY_DEFAULT, fd, gcond, glib_watch_cb, watch, g_free);
}

static void
glib_input_remove(WaLoop *loop, guint id)
{
  g_source_remove(id);
}

static WaLoop glib_loop = {
  .timeout_add = glib_timeout_add,
  .timeout_remove = glib_timeout_remove,
  .input_add = glib_input_add,
  .input_remove = glib_input_remove,
};

WaLoop *
wa_loop_glib(void)
{
  return &glib_loop;
}
