/* rx-main.c: wabiz-receiver's entry point: the command line, the state
 * directory, --daemon (fork, setsid, log file, and a pipe that tells the
 * parent once everything is ready), start-up (journal, saved registrations
 * and their listeners, the UNIX socket), the daily dedupe expiry, a clean exit
 * on SIGTERM/SIGINT/STOP, TLS certificates read again on SIGHUP, and the small clients behind --status and --stop.
 *
 * Must not: change the process umask, print a secret or a registration, or
 * report "ready" before the journal, the listeners and the socket are up. */
#include "rx.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "wabiz-config.h"
#include "wa-json.h"
#include "wa-rxline.h"

#define CLIENT_TIMEOUT_MS 10000
#define STOP_WAIT_S 60
/* How long a stop waits for POSTs that are being committed. */
#define STOP_GRACE_S 30

/* --daemon: the log file, rotated when it passes RX_LOG_MAX_BYTES (the
 * previous one is kept as DIR/receiver.log.1), so that it never takes more
 * than twice that. */
#define RX_LOG_MAX_BYTES (1024 * 1024)
static char *log_path;

static int open_log(const char *path, GError **error);

static void
rotate_log(void)
{
  struct stat st;
  g_autofree char *old = NULL;
  int fd;

  if (log_path == NULL || fstat(STDERR_FILENO, &st) != 0 || st.st_size < RX_LOG_MAX_BYTES)
    return;
  old = g_strconcat(log_path, ".1", NULL);
  if (rename(log_path, old) != 0 || (fd = open_log(log_path, NULL)) < 0)
    return; /* go on appending: a log is not worth stopping for */
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
}

void
rx_log(const char *format, ...)
{
  g_autofree char *text = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
  va_list args;

  va_start(args, format);
  text = g_strdup_vprintf(format, args);
  va_end(args);
  rotate_log();
  fprintf(stderr, "%s %s[%d]: %s\n", stamp, RX_PROGRAM, (int) getpid(), text);
  fflush(stderr);
}

/* ---- stopping ------------------------------------------------------- */

static gboolean
on_quit(gpointer data)
{
  RxReceiver *rx = data;

  rx->quit_source = 0;
  /* a POST that came in meanwhile calls rx_receiver_stop() again when done */
  if (rx->posts_in_flight == 0)
    g_main_loop_quit(rx->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_stop_grace(gpointer data)
{
  RxReceiver *rx = data;

  rx->grace_source = 0;
  rx_log("%d deliveries were still being stored when the stop grace time ran out", rx->posts_in_flight);
  g_main_loop_quit(rx->loop);
  return G_SOURCE_REMOVE;
}

void
rx_receiver_stop(RxReceiver *rx, const char *why)
{
  if (!rx->stopping) {
    rx->stopping = TRUE;
    rx_log("stopping: %s", why != NULL ? why : "asked to");
    rx_http_stop_listening(rx);
    rx->grace_source = g_timeout_add_seconds(STOP_GRACE_S, on_stop_grace, rx);
  }
  /* answers already unpaused are written first (low priority) */
  if (rx->posts_in_flight == 0 && rx->quit_source == 0 && g_main_loop_is_running(rx->loop))
    rx->quit_source = g_idle_add_full(G_PRIORITY_LOW, on_quit, rx, NULL);
}

static gboolean
on_signal(gpointer data)
{
  rx_receiver_stop(data, "received a signal to stop");
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup(gpointer data)
{
  rx_log("SIGHUP: reading the TLS certificates again");
  rx_http_reload_tls(data);
  return G_SOURCE_CONTINUE;
}

/* ---- the state directory -------------------------------------------- */

static gboolean
ensure_dir(const char *dir, GError **error)
{
  struct stat st;

  if (stat(dir, &st) != 0) {
    if (errno != ENOENT) {
      int err = errno;

      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot use %s: %s", dir, g_strerror(err));
      return FALSE;
    }
    if (g_mkdir_with_parents(dir, 0700) != 0 || stat(dir, &st) != 0) {
      int err = errno;

      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot create %s: %s", dir, g_strerror(err));
      return FALSE;
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY, "%s is not a directory", dir);
    return FALSE;
  }
  if (st.st_uid != getuid()) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                "%s belongs to another user; the receiver keeps its state only in a "
                "directory of its own user",
                dir);
    return FALSE;
  }
  if ((st.st_mode & 0777) != 0700) {
    if (chmod(dir, 0700) != 0) {
      int err = errno;

      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                  "%s is open to other users (mode %03o) and cannot be made private: %s", dir,
                  (unsigned) (st.st_mode & 0777), g_strerror(err));
      return FALSE;
    }
    if ((st.st_mode & 077) != 0)
      rx_log("made %s private (mode 0700, was %03o)", dir, (unsigned) (st.st_mode & 0777));
  }
  return TRUE;
}

/* ---- the client side: --status, --stop, "already running" ------------ */

typedef enum {
  CALL_OK,
  CALL_NOT_RUNNING, /* no socket, or nobody listens on it */
  CALL_FAILED,
} CallResult;

static gboolean
write_all(int fd, const char *data, gsize len)
{
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= (gsize) n;
  }
  return TRUE;
}

/* The next OK or ERR line (NOTICE and EVENT lines are skipped). */
static gboolean
read_answer(int fd, WaRxlineBuf *buf, char **verb, JsonNode **payload, GError **error)
{
  gint64 deadline = g_get_monotonic_time() + CLIENT_TIMEOUT_MS * 1000;

  for (;;) {
    gsize len;
    g_autofree char *line = wa_rxline_buf_pop(buf, &len);
    char chunk[65536];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    gint64 left;
    ssize_t n;

    if (line != NULL) {
      if (!wa_rxline_parse(line, len, verb, payload, error))
        return FALSE;
      if (g_str_equal(*verb, "OK") || g_str_equal(*verb, "ERR"))
        return TRUE;
      g_clear_pointer(verb, g_free);
      g_clear_pointer(payload, json_node_unref);
      continue;
    }
    left = (deadline - g_get_monotonic_time()) / 1000;
    if (left <= 0 || poll(&pfd, 1, (int) left) <= 0) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "the receiver did not answer");
      return FALSE;
    }
    n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "the receiver closed the connection");
      return FALSE;
    }
    if (!wa_rxline_buf_append(buf, chunk, (gsize) n, error))
      return FALSE;
  }
}

/* HELLO, then @verb (if not NULL). *@pid gets the receiver's pid, *@answer
 * the payload of @verb's OK. */
static CallResult
call_receiver(const char *socket_path, const char *verb, int *pid, JsonNode **answer, GError **error)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  g_autoptr(WaRxlineBuf) buf = wa_rxline_buf_new();
  g_autofree char *hello = NULL;
  g_autoptr(JsonObject) hello_obj = json_object_new();
  int fd;
  CallResult result = CALL_FAILED;

  g_strlcpy(addr.sun_path, socket_path, sizeof addr.sun_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "socket: %s", g_strerror(errno));
    return CALL_FAILED;
  }
  if (connect(fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
    int err = errno;

    close(fd);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot reach %s: %s", socket_path, g_strerror(err));
    return err == ENOENT || err == ECONNREFUSED ? CALL_NOT_RUNNING : CALL_FAILED;
  }
  json_object_set_int_member(hello_obj, "proto", WA_RXLINE_PROTO);
  json_object_set_string_member(hello_obj, "client", RX_PROGRAM " " WABIZ_VERSION);
  hello = wa_rxline_format("HELLO", hello_obj);
  if (!write_all(fd, hello, strlen(hello))) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot talk to the receiver");
    goto out;
  }
  for (int round = 0; round < (verb != NULL ? 2 : 1); round++) {
    g_autofree char *got = NULL;
    g_autoptr(JsonNode) payload = NULL;
    JsonObject *obj;

    if (round == 1) {
      g_autofree char *line = wa_rxline_format(verb, NULL);

      if (!write_all(fd, line, strlen(line))) {
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot talk to the receiver");
        goto out;
      }
    }
    if (!read_answer(fd, buf, &got, &payload, error))
      goto out;
    obj = payload != NULL ? json_node_get_object(payload) : NULL;
    if (g_str_equal(got, "ERR")) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the receiver refused: %s",
                  obj != NULL && wa_json_get_string(obj, "message") != NULL ? wa_json_get_string(obj, "message")
                                                                            : "(no reason given)");
      goto out;
    }
    if (round == 0 && pid != NULL)
      *pid = (int) wa_json_get_int(obj, "pid", 0);
    if (round == 1 && answer != NULL)
      *answer = g_steal_pointer(&payload);
  }
  result = CALL_OK;
out:
  close(fd);
  return result;
}

static int
run_status(const char *socket_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) answer = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autofree char *text = NULL;
  CallResult result = call_receiver(socket_path, "STATUS", NULL, &answer, &error);

  if (result == CALL_NOT_RUNNING) {
    g_printerr("%s: not running (%s)\n", RX_PROGRAM, socket_path);
    return 1;
  }
  if (result != CALL_OK) {
    g_printerr("%s: %s\n", RX_PROGRAM, error->message);
    return 1;
  }
  generator = json_generator_new();
  json_generator_set_pretty(generator, TRUE);
  json_generator_set_root(generator, answer);
  text = json_generator_to_data(generator, NULL);
  printf("%s\n", text);
  return 0;
}

static int
run_stop(const char *socket_path)
{
  g_autoptr(GError) error = NULL;
  int pid = 0;
  CallResult result = call_receiver(socket_path, "STOP", &pid, NULL, &error);
  gint64 deadline = g_get_monotonic_time() + (gint64) STOP_WAIT_S * G_USEC_PER_SEC;

  if (result == CALL_NOT_RUNNING) {
    g_printerr("%s: not running (%s)\n", RX_PROGRAM, socket_path);
    return 1;
  }
  if (result != CALL_OK) {
    g_printerr("%s: %s\n", RX_PROGRAM, error->message);
    return 1;
  }
  /* wait until the process is gone (it finishes pending commits first) */
  while (pid > 0 && kill(pid, 0) == 0) {
    if (g_get_monotonic_time() > deadline) {
      g_printerr("%s: pid %d was asked to stop but is still running\n", RX_PROGRAM, pid);
      return 1;
    }
    g_usleep(20000);
  }
  printf("stopped (pid %d)\n", pid);
  return 0;
}

/* Refuses to start next to a running receiver. With @remove_stale (only
 * once the journal's exclusive lock is held, so no other receiver can be
 * between bind() and listen() on this directory) a socket nobody listens on
 * is removed. */
static gboolean
check_socket(const char *socket_path, gboolean remove_stale, GError **error)
{
  struct stat st;
  g_autoptr(GError) local = NULL;
  int pid = 0;
  CallResult result;

  if (lstat(socket_path, &st) != 0)
    return TRUE;
  if (!S_ISSOCK(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "%s exists and is not a socket; move it away", socket_path);
    return FALSE;
  }
  result = call_receiver(socket_path, NULL, &pid, NULL, &local);
  if (result == CALL_OK) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "already running (pid %d)", pid);
    return FALSE;
  }
  if (result == CALL_FAILED) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "something answers on %s but not as a receiver: %s", socket_path,
                local->message);
    return FALSE;
  }
  /* nobody listens: a stale socket from a receiver that did not exit cleanly */
  if (!remove_stale)
    return TRUE;
  if (unlink(socket_path) != 0 && errno != ENOENT) {
    int err = errno;

    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot remove the stale %s: %s", socket_path,
                g_strerror(err));
    return FALSE;
  }
  return TRUE;
}

/* ---- start-up ------------------------------------------------------- */

static void
on_saved_at_start(const GError *error, gpointer data)
{
  if (error != NULL)
    rx_log("cannot save the new port of a registration: %s", error->message);
}

static void
load_registrations(RxReceiver *rx, GHashTable *saved)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init(&iter, saved);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    const char *account_id = key;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) node = wa_json_parse_object(value, strlen(value), &error);
    g_autoptr(RxRegistration) reg = NULL;
    RxAccount *account;
    RxListener *listener;
    const char *code;
    char *down = NULL;
    gboolean taken = FALSE;
    int port;

    if (node != NULL)
      reg = rx_registration_from_json(json_node_get_object(node), &code, &error);
    if (reg == NULL || !g_str_equal(reg->account, account_id)) {
      rx_log("ignoring the saved registration of account %s: %s", account_id,
             error != NULL ? error->message : "it names another account");
      continue;
    }
    port = reg->port;
    account = g_new0(RxAccount, 1);
    /* TLS files its confinement cannot read: it restarts once started */
    if (rx_confine_covers(rx, reg))
      listener = rx_account_open_listener(rx, reg, FALSE, &down, &taken, &code, NULL);
    else {
      listener = NULL;
      down = g_strdup("waiting for the receiver to restart with access to its TLS files");
    }
    if (reg->port != port) {
      g_autofree char *json = rx_registration_to_json(reg);

      rx_journal_save_account(rx->journal, account_id, json, on_saved_at_start, NULL);
      sodium_memzero(json, strlen(json));
    }
    account->reg = g_steal_pointer(&reg);
    g_hash_table_insert(rx->accounts, g_strdup(account_id), account);
    /* a listener that cannot be opened is tried again on a timer */
    rx_account_set_listener(rx, account, listener, down, taken);
  }
}

static void
on_expired(const GError *error, gpointer data)
{
  if (error != NULL)
    rx_log("cannot expire old dedupe keys: %s", error->message);
}

static gboolean
on_expire_timer(gpointer data)
{
  RxReceiver *rx = data;

  rx_journal_expire(rx->journal, g_get_real_time() / G_USEC_PER_SEC, (gint64) rx->opt.dedupe_days * 86400, on_expired,
                    NULL);
  return G_SOURCE_CONTINUE;
}

static void
write_pipe(int fd, const char *data)
{
  gsize len = strlen(data);

  while (len > 0) {
    ssize_t n = write(fd, data, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* the parent is gone: nothing to tell */
    data += n;
    len -= (gsize) n;
  }
}

static void
tell_parent(int *ready_fd, const char *message)
{
  if (*ready_fd < 0)
    return;
  write_pipe(*ready_fd, message);
  close(*ready_fd);
  *ready_fd = -1;
}

static int
run(RxReceiver *rx, int ready_fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) saved = NULL;
  guint sigterm = 0, sigint = 0, sighup = 0;
  guint64 received = 0, duplicates = 0, unclaimed = 0;
  g_autofree char *ready = NULL;
  GHashTableIter iter;
  gpointer value;

  signal(SIGPIPE, SIG_IGN);
  if (!wa_sodium_init(&error) || !check_socket(rx->socket_path, FALSE, &error))
    goto failed;
  rx->journal = rx_journal_open(rx->opt.dir, g_main_context_default(), rx->opt.max_pages, &error);
  if (rx->journal == NULL) {
    g_prefix_error(&error, "cannot open the journal (is another receiver starting on %s?): ", rx->opt.dir);
    goto failed;
  }
  if (!check_socket(rx->socket_path, TRUE, &error))
    goto failed;
  rx_journal_set_min_free(rx->journal, rx->opt.min_free);
  rx_journal_set_new_func(rx->journal, rx_control_new_events, rx);
  saved = rx_journal_load_accounts(rx->journal, &error);
  if (saved == NULL)
    goto failed;
  rx_http_init(rx);
  load_registrations(rx, saved);
  if (!rx_control_start(rx, &error)) {
    g_prefix_error(&error, "cannot listen on %s: ", rx->socket_path);
    goto failed;
  }
  if (!rx_confine_apply(rx, &error))
    goto failed;
  on_expire_timer(rx);
  rx->expire_source = g_timeout_add_seconds(86400, on_expire_timer, rx);
  sigterm = g_unix_signal_add(SIGTERM, on_signal, rx);
  sigint = g_unix_signal_add(SIGINT, on_signal, rx);
  sighup = g_unix_signal_add(SIGHUP, on_sighup, rx);

  rx_log("ready: version %s, %u registered accounts, %u listeners, socket %s", WABIZ_VERSION,
         g_hash_table_size(rx->accounts), rx->listeners->len, rx->socket_path);
  /* the parent of --daemon prints this pid (not its child's: with
   * confinement that one is the monitor) */
  ready = g_strdup_printf("OK %d", (int) getpid());
  tell_parent(&ready_fd, ready);
  g_main_loop_run(rx->loop);

  g_source_remove(sigterm);
  g_source_remove(sigint);
  g_source_remove(sighup);
  g_source_remove(rx->expire_source);
  g_clear_handle_id(&rx->grace_source, g_source_remove);
  g_clear_handle_id(&rx->listen_retry_source, g_source_remove);
  g_clear_handle_id(&rx->quit_source, g_source_remove);
  rx_control_stop(rx);
  rx_http_shutdown(rx);
  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RxAccount *account = value;

    received += account->received;
    duplicates += account->duplicates;
    unclaimed += account->unclaimed;
  }
  g_clear_pointer(&rx->journal, rx_journal_close);
  /* answers of the last requests, queued on the context by the journal */
  while (g_main_context_iteration(NULL, FALSE))
    ;
  rx_log("stopped: %" G_GUINT64_FORMAT " requests, %" G_GUINT64_FORMAT " changes journalled, %" G_GUINT64_FORMAT
         " duplicates, %" G_GUINT64_FORMAT " unclaimed, %" G_GUINT64_FORMAT
         " connections refused over the limit (%" G_GUINT64_FORMAT " per address), %" G_GUINT64_FORMAT
         " dropped for a new one, %" G_GUINT64_FORMAT " too slow, %" G_GUINT64_FORMAT " for body memory",
         rx->requests, received, duplicates, unclaimed, rx->refused_connections, rx->peer_refused,
         rx->evicted_connections, rx->slow_connections, rx->body_memory_evictions);
  return rx->exit_status;

failed:
  rx_log("cannot start: %s", error->message);
  if (ready_fd >= 0) {
    g_autofree char *message = g_strdup_printf("%s\n", error->message);

    tell_parent(&ready_fd, message);
  }
  rx_control_stop(rx);
  if (rx->server != NULL)
    rx_http_shutdown(rx);
  g_clear_pointer(&rx->journal, rx_journal_close);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  return 1;
}

/* ---- --daemon ------------------------------------------------------- */

/* The log file at @path, 0600, for appending; -1 on failure. */
static int
open_log(const char *path, GError **error)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

  if (fd < 0 || fchmod(fd, 0600) != 0) {
    int err = errno;

    if (fd >= 0)
      close(fd);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot open %s: %s", path, g_strerror(err));
    return -1;
  }
  return fd;
}

static gboolean
redirect_to_log(const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename(dir, RX_LOG_NAME, NULL);
  int null_fd;
  int fd = open_log(path, error);

  if (fd < 0)
    return FALSE;
  g_free(log_path);
  log_path = g_steal_pointer(&path);
  null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    close(null_fd);
  }
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
  return TRUE;
}

/* Forks. The parent returns its exit status through *@parent_status (TRUE
 * returned); the child returns FALSE with *@ready_fd set. */
static gboolean
daemonize(const char *dir, int *ready_fd, int *parent_status)
{
  int fds[2];
  pid_t pid;
  GString *message;
  char chunk[512];
  ssize_t n;

  if (pipe2(fds, O_CLOEXEC) != 0) {
    g_printerr("%s: pipe: %s\n", RX_PROGRAM, g_strerror(errno));
    *parent_status = 1;
    return TRUE;
  }
  pid = fork();
  if (pid < 0) {
    g_printerr("%s: fork: %s\n", RX_PROGRAM, g_strerror(errno));
    *parent_status = 1;
    return TRUE;
  }
  if (pid == 0) {
    g_autoptr(GError) error = NULL;

    close(fds[0]);
    setsid();
    if (chdir("/") != 0 || !redirect_to_log(dir, &error)) {
      g_autofree char *text = g_strdup_printf("%s\n", error != NULL ? error->message : "cannot chdir to /");

      write_pipe(fds[1], text);
      _exit(1);
    }
    *ready_fd = fds[1];
    return FALSE;
  }
  close(fds[1]);
  message = g_string_new(NULL);
  while ((n = read(fds[0], chunk, sizeof chunk)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    g_string_append_len(message, chunk, n);
  }
  close(fds[0]);
  if (g_str_has_prefix(message->str, "OK")) {
    int started = (int) pid;

    sscanf(message->str, "OK %d", &started);
    printf("started (pid %d)\n", started);
    *parent_status = 0;
  } else {
    g_strchomp(message->str);
    g_printerr("%s: %s\n", RX_PROGRAM, message->len > 0 ? message->str : "the receiver exited while starting");
    *parent_status = 1;
  }
  g_string_free(message, TRUE);
  return TRUE;
}

/* ---- main ----------------------------------------------------------- */

static gboolean
check_range(const char *name, gint64 value, gint64 min, gint64 max)
{
  if (value >= min && value <= max)
    return TRUE;
  g_printerr("%s: --%s must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT "\n", RX_PROGRAM, name, min, max);
  return FALSE;
}

int
main(int argc, char **argv)
{
  RxReceiver rx = {0};
  gboolean status = FALSE, stop = FALSE, version = FALSE;
  g_autofree char *dir = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  struct sockaddr_un addr;
  g_auto(GStrv) args = g_strdupv(argv); /* as started, for a restart */
  int ready_fd = -1;
  int exit_status;
  const GOptionEntry entries[] = {
    {"dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "State directory (journal, socket, log); created 0700", "DIR"},
    {"daemon", 0, 0, G_OPTION_ARG_NONE, &rx.opt.daemon, "Run in the background once ready; log to DIR/" RX_LOG_NAME,
     NULL},
    {"max-connections", 0, 0, G_OPTION_ARG_INT, &rx.opt.max_connections,
     "Open HTTP connections at most; when full, the slowest one still sending makes room "
     "(default 64)",
     "N"},
    {"max-per-address", 0, 0, G_OPTION_ARG_INT, &rx.opt.max_per_address,
     "Open HTTP connections at most from one address other than 127.0.0.1 and ::1 "
     "(default 16; 0: no cap)",
     "N"},
    {"min-rate", 0, 0, G_OPTION_ARG_INT64, &rx.opt.min_rate,
     "Bytes per second a request must average once --rate-grace has passed (default 1024; "
     "0: no minimum)",
     "BYTES"},
    {"rate-grace", 0, 0, G_OPTION_ARG_INT, &rx.opt.rate_grace_s, "Seconds before --min-rate applies (default 5)", "S"},
    {"max-body-memory", 0, 0, G_OPTION_ARG_INT64, &rx.opt.max_body_memory,
     "Request body bytes held for all connections at most (default 33554432)", "BYTES"},
    {"header-timeout", 0, 0, G_OPTION_ARG_INT, &rx.opt.header_timeout_s, "Seconds for a request's headers (default 10)",
     "S"},
    {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &rx.opt.idle_timeout_s,
     "Seconds a connection may make no progress (default 60)", "S"},
    {"body-timeout", 0, 0, G_OPTION_ARG_INT, &rx.opt.body_timeout_s, "Seconds for a request's body (default 30)", "S"},
    {"max-body", 0, 0, G_OPTION_ARG_INT64, &rx.opt.max_body, "Largest request body in bytes (default 3145728)",
     "BYTES"},
    {"max-pages", 0, 0, G_OPTION_ARG_INT64, &rx.opt.max_pages,
     "Cap the journal at this many database pages (default 0: no cap; for tests)", "N"},
    {"dedupe-days", 0, 0, G_OPTION_ARG_INT, &rx.opt.dedupe_days,
     "Days a message id is remembered to drop duplicates (default 30)", "N"},
    {"min-free-disk", 0, 0, G_OPTION_ARG_INT64, &rx.opt.min_free,
     "Refuse deliveries (500, Meta retries) while the journal's disk has less free "
     "(default 268435456; 0: no floor)",
     "BYTES"},
    {"listen-retry", 0, 0, G_OPTION_ARG_INT, &rx.opt.listen_retry_s,
     "Seconds between tries of a listener that cannot be opened (default 10)", "S"},
    {"status", 0, 0, G_OPTION_ARG_NONE, &status, "Print the running receiver's status as JSON", NULL},
    {"stop", 0, 0, G_OPTION_ARG_NONE, &stop, "Stop the running receiver", NULL},
    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL},
    {NULL}};

  rx.opt.max_connections = 64;
  rx.opt.max_per_address = 16;
  rx.opt.min_rate = 1024;
  rx.opt.rate_grace_s = 5;
  rx.opt.max_body_memory = 32 * 1024 * 1024;
  rx.opt.header_timeout_s = 10;
  rx.opt.idle_timeout_s = 60;
  rx.opt.body_timeout_s = 30;
  rx.opt.max_body = 3145728;
  rx.opt.max_pages = 0;
  rx.opt.dedupe_days = 30;
  rx.opt.min_free = RX_DEFAULT_MIN_FREE_BYTES;
  rx.opt.listen_retry_s = RX_LISTEN_RETRY_S;

  context = g_option_context_new("- receive WhatsApp Business webhooks for purple-wabiz");
  g_option_context_set_summary(context, "Listens for the Cloud API's webhooks, checks their signatures, "
                                        "journals each change sealed to its account's key, and serves "
                                        "the journal to Pidgin or Finch over DIR/" RX_SOCKET_NAME ".");
  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    g_printerr("%s: %s\n", RX_PROGRAM, error->message);
    return 2;
  }
  if (version) {
    printf("%s %s\n", RX_PROGRAM, WABIZ_VERSION);
    return 0;
  }
  if (argc > 1) {
    g_printerr("%s: unexpected argument \"%s\"\n", RX_PROGRAM, argv[1]);
    return 2;
  }
  if (dir == NULL || *dir == '\0') {
    g_printerr("%s: --dir DIR is required (the plugin uses ~/.purple/wabiz/receiver)\n", RX_PROGRAM);
    return 2;
  }
  if (status + stop + rx.opt.daemon > 1) {
    g_printerr("%s: --status, --stop and --daemon do not go together\n", RX_PROGRAM);
    return 2;
  }
  if (!check_range("max-connections", rx.opt.max_connections, 1, 100000) ||
      !check_range("header-timeout", rx.opt.header_timeout_s, 1, 86400) ||
      !check_range("idle-timeout", rx.opt.idle_timeout_s, 1, 86400) ||
      !check_range("body-timeout", rx.opt.body_timeout_s, 1, 86400) ||
      !check_range("max-body", rx.opt.max_body, 1, 1024 * 1024 * 1024) ||
      !check_range("max-per-address", rx.opt.max_per_address, 0, 100000) ||
      !check_range("min-rate", rx.opt.min_rate, 0, 1024 * 1024 * 1024) ||
      !check_range("rate-grace", rx.opt.rate_grace_s, 1, 86400) ||
      !check_range("max-body-memory", rx.opt.max_body_memory, rx.opt.max_body, G_MAXINT64 / 2) ||
      !check_range("max-pages", rx.opt.max_pages, 0, G_MAXINT32) ||
      !check_range("dedupe-days", rx.opt.dedupe_days, 1, 3650) ||
      !check_range("min-free-disk", rx.opt.min_free, 0, G_MAXINT64) ||
      !check_range("listen-retry", rx.opt.listen_retry_s, 1, 86400))
    return 2;

  rx.opt.dir = g_canonicalize_filename(dir, NULL);
  rx.socket_path = g_build_filename(rx.opt.dir, RX_SOCKET_NAME, NULL);
  if (strlen(rx.socket_path) >= sizeof addr.sun_path) {
    g_printerr("%s: the socket path %s is %zu bytes long; UNIX sockets allow at most %zu: "
               "choose a shorter --dir\n",
               RX_PROGRAM, rx.socket_path, strlen(rx.socket_path), sizeof addr.sun_path - 1);
    exit_status = 2;
    goto out;
  }
  if (status || stop) {
    exit_status = status ? run_status(rx.socket_path) : run_stop(rx.socket_path);
    goto out;
  }
  if (!ensure_dir(rx.opt.dir, &error)) {
    g_printerr("%s: %s\n", RX_PROGRAM, error->message);
    exit_status = 1;
    goto out;
  }
  if (rx.opt.daemon && daemonize(rx.opt.dir, &ready_fd, &exit_status))
    goto out;
  rx_confine_supervise(&rx, args, &ready_fd);
  rx_confine_start(&rx);

  rx.loop = g_main_loop_new(NULL, FALSE);
  rx.accounts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) rx_account_free);
  rx.notices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  rx_log("starting: %s", rx.opt.dir);
  exit_status = run(&rx, ready_fd);
  g_hash_table_unref(rx.accounts);
  g_hash_table_unref(rx.notices);
  if (rx.listeners != NULL)
    g_ptr_array_unref(rx.listeners);
  if (rx.conns != NULL)
    g_hash_table_unref(rx.conns);
  if (rx.peers != NULL)
    g_hash_table_unref(rx.peers);
  g_main_loop_unref(rx.loop);
out:
  g_free(rx.opt.dir);
  g_free(rx.socket_path);
  return exit_status;
}
