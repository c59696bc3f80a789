/* wa-loop.h: the event loop plugin/core runs on, injected by its host.
 *
 * The plugin passes libpurple's purple_timeout_add / purple_input_add (hosts such
 * as bitlbee replace the loop); tests and the receiver pass the GLib loop.
 * A watch's condition cannot be changed: remove it and add a new one. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  WA_IO_READ = 1 << 0,
  WA_IO_WRITE = 1 << 1,
} WaIoCondition;

typedef void (*WaIoFunc)(gpointer data, int fd, WaIoCondition cond);

typedef struct _WaLoop WaLoop;
struct _WaLoop {
  /* One-shot or repeating as @func returns; 0 ms means "on the next iteration". */
  guint (*timeout_add)(WaLoop *loop, guint ms, GSourceFunc func, gpointer data);
  void (*timeout_remove)(WaLoop *loop, guint id);
  guint (*input_add)(WaLoop *loop, int fd, WaIoCondition cond, WaIoFunc func, gpointer data);
  void (*input_remove)(WaLoop *loop, guint id);
};

/* The default GLib main context; never freed. */
WaLoop *wa_loop_glib(void);

static inline guint
wa_loop_timeout_add(WaLoop *loop, guint ms, GSourceFunc func, gpointer data)
{
  return loop->timeout_add(loop, ms, func, data);
}

/* Removes the timeout whose id is in *@id (if any) and sets *@id to 0. */
static inline void
wa_loop_timeout_clear(WaLoop *loop, guint *id)
{
  if (*id != 0) {
    loop->timeout_remove(loop, *id);
    *id = 0;
  }
}

static inline guint
wa_loop_input_add(WaLoop *loop, int fd, WaIoCondition cond, WaIoFunc func, gpointer data)
{
  return loop->input_add(loop, fd, cond, func, data);
}

static inline void
wa_loop_input_clear(WaLoop *loop, guint *id)
{
  if (*id != 0) {
    loop->input_remove(loop, *id);
    *id = 0;
  }
}

G_END_DECLS
