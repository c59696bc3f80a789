/* wabiz-loop.c: WaLoop on libpurple's event loop (purple_timeout_add,
 * purple_input_add), so hosts that replace the loop (bitlbee) drive us too. */
#include "wabiz.h"

typedef struct {
  WaIoFunc func;
  gpointer data;
} PurpleWatch;

static GHashTable *watches; /* input handle -> PurpleWatch* */

static guint
p_timeout_add(WaLoop *loop, guint ms, GSourceFunc func, gpointer data)
{
  return purple_timeout_add(ms, func, data);
}

static void
p_timeout_remove(WaLoop *loop, guint id)
{
  purple_timeout_remove(id);
}

static void
p_input_cb(gpointer data, gint fd, PurpleInputCondition cond)
{
  PurpleWatch *w = data;
  WaIoCondition c = 0;

  if (cond & PURPLE_INPUT_READ)
    c |= WA_IO_READ;
  if (cond & PURPLE_INPUT_WRITE)
    c |= WA_IO_WRITE;
  w->func(w->data, fd, c);
}

static guint
p_input_add(WaLoop *loop, int fd, WaIoCondition cond, WaIoFunc func, gpointer data)
{
  PurpleInputCondition pc = 0;
  PurpleWatch *w = g_new0(PurpleWatch, 1);
  guint id;

  if (cond & WA_IO_READ)
    pc |= PURPLE_INPUT_READ;
  if (cond & WA_IO_WRITE)
    pc |= PURPLE_INPUT_WRITE;
  w->func = func;
  w->data = data;
  id = purple_input_add(fd, pc, p_input_cb, w);
  if (watches == NULL)
    watches = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  g_hash_table_insert(watches, GUINT_TO_POINTER(id), w);
  return id;
}

static void
p_input_remove(WaLoop *loop, guint id)
{
  purple_input_remove(id);
  if (watches != NULL)
    g_hash_table_remove(watches, GUINT_TO_POINTER(id));
}

static WaLoop purple_loop = {
  .timeout_add = p_timeout_add,
  .timeout_remove = p_timeout_remove,
  .input_add = p_input_add,
  .input_remove = p_input_remove,
};

WaLoop *
wabiz_loop(void)
{
  return &purple_loop;
}
