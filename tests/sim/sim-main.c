/* sim-main.c: wabiz-sim's entry point: command line, the SoupServer that
 * serves Graph routes and /_sim/ control routes, the READY line and ready
 * file, and a clean exit on SIGTERM/SIGINT. Test tool only: never installed,
 * never linked into the plugin. */
#include "sim.h"
#include "sim-webhook.h"

#include <glib-unix.h>
#include <signal.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

static gboolean
on_signal (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_CONTINUE;
}

static void
on_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  Sim *sim = data;

  if (g_str_has_prefix (path, "/_sim/") || g_strcmp0 (path, "/_sim") == 0)
    {
      sim_control_handle (sim, msg, path);
      g_printerr ("sim: control %s %s -> %u\n", soup_server_message_get_method (msg), path,
                  soup_server_message_get_status (msg));
    }
  else if (g_str_has_prefix (path, "/_media/"))
    sim_media_download (sim, msg, path);
  else
    sim_graph_handle (sim, msg, path);
}

/* Connections the kernel completes before the simulator accepts them. A
 * client starting many sends at once (a campaign at 1,000/s) opens dozens of
 * connections together; GLib's default backlog of 10 made the kernel drop
 * the others' handshakes, and their requests waited unanswered, never seen
 * here (test_sim.py, test_connection_burst_waits_in_the_backlog). */
#define LISTEN_BACKLOG 1024

/* libsoup 3.2's own listener leaks a socket reference per connection, so
 * connections are accepted here and handed to the server (docs/ARCHITECTURE.md,
 * Rules: SoupServer). */
static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  Sim *sim = data;
  g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (connection, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  g_autoptr (GError) error = NULL;

  if (!soup_server_accept_iostream (sim->server, G_IO_STREAM (connection), local, remote, &error))
    g_printerr ("sim: cannot accept a connection: %s\n", error->message);
  return TRUE;
}

/* ---- the Graph port ----
 * A second listener for Graph clients. A "refuse" fault closes its listening
 * socket, so connecting fails at once ("connection refused": the client
 * provably sent nothing), and shuts its open connections down, so a client
 * cannot carry on over a kept-alive one. A bound socket that never listens
 * holds the port meanwhile (both use SO_REUSEPORT), so the listener comes
 * back on the same port and nobody else can take it. */

static void
graph_conns_prune (Sim *sim)
{
  for (guint i = sim->graph_conns->len; i > 0; i--)
    if (g_io_stream_is_closed (g_ptr_array_index (sim->graph_conns, i - 1)))
      g_ptr_array_remove_index_fast (sim->graph_conns, i - 1);
}

static gboolean
graph_accept (GSocket *listener, GIOCondition condition, gpointer data)
{
  Sim *sim = data;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) socket = g_socket_accept (listener, NULL, &error);
      g_autoptr (GSocketConnection) connection = NULL;
      g_autoptr (GSocketAddress) local = NULL;
      g_autoptr (GSocketAddress) remote = NULL;

      if (socket == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_printerr ("sim: graph port: cannot accept: %s\n", error->message);
          return G_SOURCE_CONTINUE;
        }
      connection = g_socket_connection_factory_create_connection (socket);
      local = g_socket_connection_get_local_address (connection, NULL);
      remote = g_socket_connection_get_remote_address (connection, NULL);
      graph_conns_prune (sim);
      g_ptr_array_add (sim->graph_conns, g_object_ref (connection));
      if (!soup_server_accept_iostream (sim->server, G_IO_STREAM (connection), local, remote,
                                        &error))
        g_printerr ("sim: graph port: cannot accept a connection: %s\n", error->message);
    }
}

static GSocket *
graph_socket_new (GSocketFamily family, GError **error)
{
  GSocket *socket = g_socket_new (family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);

  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, LISTEN_BACKLOG);
  return socket;
}

/* bind() with SO_REUSEADDR and SO_REUSEPORT (g_socket_bind turns
 * SO_REUSEPORT off for TCP). */
static gboolean
graph_bind (GSocket *socket, GSocketAddress *address, GError **error)
{
  struct sockaddr_storage native;
  gssize len = g_socket_address_get_native_size (address);
  int fd = g_socket_get_fd (socket);
  int on = 1;

  if (len < 0 || !g_socket_address_to_native (address, &native, sizeof native, error))
    return FALSE;
  if (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0
      || setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0
      || bind (fd, (struct sockaddr *)&native, (socklen_t)len) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot bind the Graph port: %s", g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/* Listens on the Graph port (the first time on port 0, then on the same
 * port again). */
static gboolean
graph_listen (Sim *sim, GSocketAddress *address, GError **error)
{
  g_autoptr (GSocket) socket = graph_socket_new (g_socket_address_get_family (address), error);

  if (socket == NULL || !graph_bind (socket, address, error) || !g_socket_listen (socket, error))
    return FALSE;
  if (sim->graph_address == NULL)
    {
      sim->graph_address = g_socket_get_local_address (socket, error);
      if (sim->graph_address == NULL)
        return FALSE;
    }
  sim->graph_socket = g_steal_pointer (&socket);
  sim->graph_source = g_socket_create_source (sim->graph_socket, G_IO_IN, NULL);
  g_source_set_callback (sim->graph_source, G_SOURCE_FUNC (graph_accept), sim, NULL);
  g_source_attach (sim->graph_source, NULL);
  return TRUE;
}

static gboolean
graph_port_open (Sim *sim, GInetAddress *address, GError **error)
{
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (address, 0);
  g_autofree char *ip = g_inet_address_to_string (address);
  int port;

  sim->graph_conns = g_ptr_array_new_with_free_func (g_object_unref);
  if (!graph_listen (sim, any, error))
    return FALSE;
  sim->graph_holder = graph_socket_new (g_inet_address_get_family (address), error);
  if (sim->graph_holder == NULL || !graph_bind (sim->graph_holder, sim->graph_address, error))
    return FALSE;
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (sim->graph_address));
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    sim->graph_url = g_strdup_printf ("http://[%s]:%d", ip, port);
  else
    sim->graph_url = g_strdup_printf ("http://%s:%d", ip, port);
  return TRUE;
}

static void
graph_unlisten (Sim *sim)
{
  if (sim->graph_source != NULL)
    {
      g_source_destroy (sim->graph_source);
      g_clear_pointer (&sim->graph_source, g_source_unref);
    }
  if (sim->graph_socket != NULL)
    {
      g_socket_close (sim->graph_socket, NULL);
      g_clear_object (&sim->graph_socket);
    }
}

static void
graph_port_close (Sim *sim)
{
  if (sim->refuse_timer != 0)
    g_source_remove (sim->refuse_timer);
  sim->refuse_timer = 0;
  graph_unlisten (sim);
  if (sim->graph_holder != NULL)
    g_socket_close (sim->graph_holder, NULL);
  g_clear_object (&sim->graph_holder);
  g_clear_object (&sim->graph_address);
  g_clear_pointer (&sim->graph_conns, g_ptr_array_unref);
  g_clear_pointer (&sim->graph_url, g_free);
}

static gboolean
refuse_over (gpointer data)
{
  Sim *sim = data;

  sim->refuse_timer = 0;
  sim_refuse_stop (sim);
  return G_SOURCE_REMOVE;
}

/* Refuses connections to the Graph port for @duration_ms (a new call
 * replaces the end time). */
void
sim_refuse_start (Sim *sim, guint duration_ms)
{
  if (sim->refuse_timer != 0)
    g_source_remove (sim->refuse_timer);
  sim->refuse_timer = g_timeout_add (duration_ms, refuse_over, sim);
  sim->refuse_until_us = g_get_monotonic_time () + (gint64)duration_ms * 1000;
  if (sim->graph_socket == NULL)
    return;
  graph_unlisten (sim);
  /* a request in flight on them gets no answer: the outage cut it */
  for (guint i = 0; i < sim->graph_conns->len; i++)
    {
      GSocketConnection *connection = g_ptr_array_index (sim->graph_conns, i);

      if (!g_io_stream_is_closed (G_IO_STREAM (connection)))
        g_socket_shutdown (g_socket_connection_get_socket (connection), TRUE, TRUE, NULL);
    }
  g_ptr_array_set_size (sim->graph_conns, 0);
  g_printerr ("sim: graph port refuses connections for %u ms\n", duration_ms);
}

void
sim_refuse_stop (Sim *sim)
{
  g_autoptr (GError) error = NULL;

  if (sim->refuse_timer != 0)
    g_source_remove (sim->refuse_timer);
  sim->refuse_timer = 0;
  sim->refuse_until_us = 0;
  if (sim->graph_socket != NULL || sim->graph_address == NULL)
    return;
  if (!graph_listen (sim, sim->graph_address, &error))
    g_printerr ("sim: graph port: cannot listen again: %s\n", error->message);
  else
    g_printerr ("sim: graph port accepts connections again\n");
}

guint
sim_refuse_remaining_ms (Sim *sim)
{
  gint64 left = sim->refuse_until_us - g_get_monotonic_time ();

  return sim->refuse_until_us != 0 && left > 0 ? (guint)((left + 999) / 1000) : 0;
}

static gboolean
write_ready_file (const char *path, const char *base_url, GError **error)
{
  g_autofree char *contents = g_strconcat (base_url, "\n", NULL);

  /* g_file_set_contents writes a temporary file and renames it over path */
  return g_file_set_contents (path, contents, -1, error);
}

static void
set_default (char **value, const char *fallback)
{
  if (*value == NULL)
    *value = g_strdup (fallback);
}

static void
sim_number_free (SimNumber *number)
{
  g_free (number->pnid);
  g_free (number->display_number);
  g_free (number);
}

static SimNumber *
sim_number_new (const char *pnid, const char *display_number)
{
  SimNumber *number = g_new0 (SimNumber, 1);

  number->pnid = g_strdup (pnid);
  number->display_number = g_strdup (display_number);
  return number;
}

/* The first number, then each --number ID=DISPLAY (a phone number id of
 * digits, not given twice). */
static gboolean
numbers_init (Sim *sim, char **more, GError **error)
{
  sim->numbers = g_ptr_array_new_with_free_func ((GDestroyNotify)sim_number_free);
  g_ptr_array_add (sim->numbers, sim_number_new (sim->pnid, sim->display_number));
  for (guint i = 0; more != NULL && more[i] != NULL; i++)
    {
      g_auto (GStrv) parts = g_strsplit (more[i], "=", 2);
      g_autofree char *digits = NULL;

      if (g_strv_length (parts) != 2 || *parts[0] == '\0' || *parts[1] == '\0')
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--number needs ID=DISPLAY, got \"%s\"", more[i]);
          return FALSE;
        }
      digits = sim_digits_only (parts[0]);
      if (strcmp (digits, parts[0]) != 0 || sim_number (sim, parts[0]) != NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--number: \"%s\" is not a new phone number id of digits", parts[0]);
          return FALSE;
        }
      g_ptr_array_add (sim->numbers, sim_number_new (parts[0], parts[1]));
    }
  return TRUE;
}

static void
sim_cli_clear (Sim *sim)
{
  g_clear_pointer (&sim->numbers, g_ptr_array_unref);
  g_clear_pointer (&sim->bind, g_free);
  g_clear_pointer (&sim->pnid, g_free);
  g_clear_pointer (&sim->display_number, g_free);
  g_clear_pointer (&sim->verified_name, g_free);
  g_clear_pointer (&sim->waba_id, g_free);
  g_clear_pointer (&sim->token, g_free);
  g_clear_pointer (&sim->token_noperm, g_free);
  g_clear_pointer (&sim->app_secret, g_free);
  g_clear_pointer (&sim->webhook_url, g_free);
  g_clear_pointer (&sim->base_url, g_free);
}

/* Listens on the address asked for (port 0 = the kernel picks one) and
 * reads the port back: never picks a free port first and binds it later. */
static GSocketService *
listen_on (Sim *sim, GInetAddress *address, int port, int *bound_port, GError **error)
{
  g_autoptr (GSocketAddress) wanted = g_inet_socket_address_new (address, (guint16)port);
  g_autoptr (GSocketAddress) effective = NULL;
  GSocketService *service = g_socket_service_new ();

  g_socket_listener_set_backlog (G_SOCKET_LISTENER (service), LISTEN_BACKLOG);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), wanted, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &effective, error))
    {
      g_object_unref (service);
      return NULL;
    }
  *bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), sim);
  g_socket_service_start (service);
  return service;
}

int
main (int argc, char **argv)
{
  Sim sim = { 0 };
  int port = 0;
  char *ready_file = NULL;
  g_auto (GStrv) more_numbers = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GInetAddress) address = NULL;
  GSocketService *service = NULL;
  guint sigterm, sigint;
  int status = 0;
  const GOptionEntry entries[]
      = { { "bind", 0, 0, G_OPTION_ARG_STRING, &sim.bind,
            "Address to listen on (default 127.0.0.1)", "ADDR" },
          { "port", 0, 0, G_OPTION_ARG_INT, &port, "Port (default 0: any free port)", "N" },
          { "ready-file", 0, 0, G_OPTION_ARG_FILENAME, &ready_file,
            "Write the base URL here once listening", "PATH" },
          { "pnid", 0, 0, G_OPTION_ARG_STRING, &sim.pnid, "Phone number ID", "ID" },
          { "display-number", 0, 0, G_OPTION_ARG_STRING, &sim.display_number,
            "Display phone number", "NUMBER" },
          { "number", 0, 0, G_OPTION_ARG_STRING_ARRAY, &more_numbers,
            "Another phone number of the business (repeatable)", "ID=DISPLAY" },
          { "verified-name", 0, 0, G_OPTION_ARG_STRING, &sim.verified_name,
            "Verified business name", "NAME" },
          { "waba-id", 0, 0, G_OPTION_ARG_STRING, &sim.waba_id, "WhatsApp Business Account ID",
            "ID" },
          { "token", 0, 0, G_OPTION_ARG_STRING, &sim.token, "Access token with all permissions",
            "TOKEN" },
          { "token-no-permission", 0, 0, G_OPTION_ARG_STRING, &sim.token_noperm,
            "Valid token without the WhatsApp permissions", "TOKEN" },
          { "app-secret", 0, 0, G_OPTION_ARG_STRING, &sim.app_secret,
            "App secret that signs webhooks", "SECRET" },
          { "webhook-url", 0, 0, G_OPTION_ARG_STRING, &sim.webhook_url, "Where webhooks are POSTed",
            "URL" },
          { NULL } };

  context = g_option_context_new ("- WhatsApp Cloud API simulator for tests");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("wabiz-sim: %s\n", error->message);
      status = 2;
      goto out_cli;
    }
  if (port < 0 || port > 65535)
    {
      g_printerr ("wabiz-sim: --port must be between 0 and 65535\n");
      status = 2;
      goto out_cli;
    }
  set_default (&sim.bind, "127.0.0.1");
  set_default (&sim.pnid, "106540352242922");
  set_default (&sim.display_number, "+1 555-078-3881");
  set_default (&sim.verified_name, "Jaspers Market");
  set_default (&sim.waba_id, "102290129340398");
  set_default (&sim.token, "TEST-TOKEN-OK");
  set_default (&sim.token_noperm, "TEST-TOKEN-NOPERM");
  set_default (&sim.app_secret, "test-app-secret");
  if (!numbers_init (&sim, more_numbers, &error))
    {
      g_printerr ("wabiz-sim: %s\n", error->message);
      status = 2;
      goto out_cli;
    }

  address = g_inet_address_new_from_string (sim.bind);
  if (address == NULL)
    {
      g_printerr ("wabiz-sim: --bind needs an IP address, got \"%s\"\n", sim.bind);
      status = 2;
      goto out_cli;
    }

  sim_state_init (&sim);
  sim.webhook = sim_webhook_new (&sim.clock, sim.webhook_url, sim.app_secret);
  sim.loop = g_main_loop_new (NULL, FALSE);
  sim.server = soup_server_new ("server-header", "wabiz-sim", NULL);
  soup_server_add_handler (sim.server, NULL, on_request, &sim, NULL);

  service = listen_on (&sim, address, port, &port, &error);
  if (service == NULL)
    {
      g_printerr ("wabiz-sim: cannot listen on %s: %s\n", sim.bind, error->message);
      status = 1;
      goto out;
    }
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    sim.base_url = g_strdup_printf ("http://[%s]:%d", sim.bind, port);
  else
    sim.base_url = g_strdup_printf ("http://%s:%d", sim.bind, port);
  if (!graph_port_open (&sim, address, &error))
    {
      g_printerr ("wabiz-sim: cannot open the Graph port on %s: %s\n", sim.bind, error->message);
      status = 1;
      goto out;
    }

  if (ready_file != NULL && !write_ready_file (ready_file, sim.base_url, &error))
    {
      g_printerr ("wabiz-sim: cannot write %s: %s\n", ready_file, error->message);
      status = 1;
      goto out;
    }
  printf ("WABIZ_SIM_READY %s\n", sim.base_url);
  fflush (stdout);
  g_printerr ("sim: listening on %s, Graph port %s (phone number id %s)\n", sim.base_url,
              sim.graph_url, sim.pnid);

  sigterm = g_unix_signal_add (SIGTERM, on_signal, sim.loop);
  sigint = g_unix_signal_add (SIGINT, on_signal, sim.loop);
  g_main_loop_run (sim.loop);
  g_source_remove (sigterm);
  g_source_remove (sigint);
  g_printerr ("sim: shutting down\n");

out:
  if (service != NULL)
    {
      g_socket_service_stop (service);
      g_socket_listener_close (G_SOCKET_LISTENER (service));
      g_object_unref (service);
    }
  graph_port_close (&sim);
  soup_server_disconnect (sim.server);
  sim_graph_shutdown (&sim);
  sim_status_timers_cancel (&sim);
  sim_webhook_shutdown (sim.webhook);
  {
    /* let cancelled deliveries and closed connections finish before freeing */
    gint64 deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;

    while (sim_webhook_pending (sim.webhook) > 0 && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, FALSE);
    while (g_main_context_iteration (NULL, FALSE))
      ;
  }
  sim_webhook_free (sim.webhook);
  g_clear_object (&sim.server);
  g_main_loop_unref (sim.loop);
  sim_state_clear (&sim);
out_cli:
  sim_cli_clear (&sim);
  g_free (ready_file);
  return status;
}
