/* rx-confine.c: wabiz-receiver's confinement, defence in depth for the one
 * process of purple-wabiz that listens on the internet.
 *
 * - A monitor: the process started splits in two before it opens anything.
 *   The parent (unconfined, it never reads input) forwards stop signals,
 *   waits, and reports how the confined child ended: a SIGSYS (a system call
 *   outside the allow-list) is logged and left as DIR/RX_CONFINE_STOPPED_NAME
 *   for the plugin; exit status RX_EXIT_RESTART makes it execute itself again
 *   with the same arguments (a running process's confinement cannot widen).
 * - In the child, while it is still single-threaded: no new privileges and,
 *   where the kernel has it, a Landlock ruleset (files: its directory, the
 *   directories of the configured TLS files, and read-only what GLib and
 *   GnuTLS need; no outgoing TCP connection).
 * - Once started (journal, listeners, socket up): a seccomp filter that lets
 *   through only the system calls the receiver makes; anything else kills it.
 *
 * Must not: be active in sanitizer or valgrind runs (meson -Dconfine=false, or
 * WABIZ_RECEIVER_CONFINE=off in the environment); carry a test hook in an
 * installed binary (RX_CONFINE_TEST_HOOKS is only defined for
 * wabiz-receiver-hooks, which is never installed). */
#include "rx.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if RX_CONFINE
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#endif
#ifdef RX_CONFINE_TEST_HOOKS
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

/* The directories a registration needed and the running confinement did
 * not cover: the next start adds them. One per line: a TLS file's directory
 * (read), or SOCK_PREFIX and a UNIX socket listener's directory (read, make
 * and remove the socket). */
#define DIRS_NAME "confinement-dirs"
#define SOCK_PREFIX "sock:"

static struct {
  gboolean on;         /* a monitor watches this process: confine it */
  gboolean landlock;   /* a Landlock ruleset is in force */
  int landlock_abi;    /* 0: unavailable */
  char *landlock_why;  /* why not, when unavailable */
  GPtrArray *readable; /* canonical directories Landlock lets it read */
  GPtrArray *sockable; /* canonical directories it may make UNIX sockets in */
  GPtrArray *asked;    /* directories asked for in DIRS_NAME */
  gboolean restarting;
} confine;

gboolean
rx_confine_enabled(void)
{
#if RX_CONFINE
  const char *env = g_getenv("WABIZ_RECEIVER_CONFINE");

  return env == NULL || (g_strcmp0(env, "off") != 0 && g_strcmp0(env, "0") != 0);
#else
  return FALSE;
#endif
}

/* ---- the directories it may read ------------------------------------ */

static gboolean
path_under(const char *path, const char *dir)
{
  gsize len = strlen(dir);

  if (g_str_equal(dir, "/"))
    return TRUE;
  return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

static gboolean
under_any(GPtrArray *dirs, const char *dir)
{
  for (guint i = 0; dirs != NULL && i < dirs->len; i++)
    if (path_under(dir, g_ptr_array_index(dirs, i)))
      return TRUE;
  return FALSE;
}

/* Whether the confinement in force allows @want (a line of DIRS_NAME). */
static gboolean
allowed_dir(const char *want)
{
  if (g_str_has_prefix(want, SOCK_PREFIX))
    return under_any(confine.sockable, want + strlen(SOCK_PREFIX));
  return under_any(confine.readable, want);
}

static void
add_unique(GPtrArray *dirs, const char *dir)
{
  for (guint i = 0; i < dirs->len; i++)
    if (g_str_equal(g_ptr_array_index(dirs, i), dir))
      return;
  g_ptr_array_add(dirs, g_strdup(dir));
}

/* The directories a TLS file at @path is read from: the one it is named in
 * and, when it is a symbolic link (Let's Encrypt's live/ into archive/), the
 * one it resolves to. */
static void
tls_dirs(const char *path, GPtrArray *dirs)
{
  g_autofree char *canonical = NULL;
  g_autofree char *named = NULL;
  char *resolved;

  if (path == NULL)
    return;
  canonical = g_canonicalize_filename(path, NULL);
  named = g_path_get_dirname(canonical);
  add_unique(dirs, named);
  resolved = realpath(canonical, NULL);
  if (resolved != NULL) {
    g_autofree char *dir = g_path_get_dirname(resolved);

    add_unique(dirs, dir);
    free(resolved);
  }
}

static gboolean
save_asked(const char *state_dir, GPtrArray *dirs, GError **error)
{
  g_autofree char *path = g_build_filename(state_dir, DIRS_NAME, NULL);
  g_autoptr(GString) text = g_string_new(NULL);

  for (guint i = 0; i < dirs->len; i++)
    g_string_append_printf(text, "%s\n", (const char *) g_ptr_array_index(dirs, i));
  return g_file_set_contents_full(path, text->str, (gssize) text->len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

static gboolean
on_restart(gpointer data)
{
  rx_receiver_stop(data, "restarting to widen its confinement to new TLS files");
  return G_SOURCE_REMOVE;
}

gboolean
rx_confine_covers(RxReceiver *rx, const RxRegistration *reg)
{
  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *list = NULL;
  g_autofree char *message = NULL;

  if (!confine.landlock)
    return TRUE;
  tls_dirs(reg->tls_cert, dirs);
  tls_dirs(reg->tls_key, dirs);
  if (reg->bind != NULL && g_str_has_prefix(reg->bind, RX_UNIX_PREFIX)) {
    g_autofree char *socket_path = g_canonicalize_filename(reg->bind + strlen(RX_UNIX_PREFIX), NULL);
    g_autofree char *dir = g_path_get_dirname(socket_path);

    if (!path_under(dir, rx->opt.dir)) /* its own directory allows sockets */
      g_ptr_array_add(dirs, g_strconcat(SOCK_PREFIX, dir, NULL));
  }
  for (guint i = 0; i < dirs->len; i++) {
    const char *dir = g_ptr_array_index(dirs, i);
    gboolean asked = FALSE;

    for (guint j = 0; j < confine.asked->len && !asked; j++)
      asked = g_str_equal(g_ptr_array_index(confine.asked, j), dir);
    /* asked for and still not allowed (it did not exist at the start):
     * opening the file fails with a clear error, no restart loop */
    if (!allowed_dir(dir) && !asked)
      add_unique(missing, dir);
  }
  if (missing->len == 0)
    return TRUE;
  if (confine.restarting)
    return FALSE;
  for (guint i = 0; i < missing->len; i++)
    add_unique(confine.asked, g_ptr_array_index(missing, i));
  if (!save_asked(rx->opt.dir, confine.asked, &error)) {
    rx_log("cannot widen the confinement to new TLS files: %s", error->message);
    return TRUE; /* opening them fails and says why */
  }
  for (guint i = 0; i < missing->len; i++) {
    char *dir = g_ptr_array_index(missing, i);

    if (g_str_has_prefix(dir, SOCK_PREFIX)) /* shown without the prefix */
      memmove(dir, dir + strlen(SOCK_PREFIX), strlen(dir) - strlen(SOCK_PREFIX) + 1);
  }
  g_ptr_array_add(missing, NULL);
  list = g_strjoinv(", ", (char **) missing->pdata);
  rx_log("restarting: the TLS files or UNIX socket of a registration are in %s, outside what "
         "its confinement allows",
         list);
  message = g_strdup_printf("the receiver restarts to reach %s (TLS files or a UNIX socket's "
                            "directory; a running receiver's confinement cannot widen); register "
                            "again in a moment",
                            list);
  rx_notice(rx, NULL, "restart", message);
  confine.restarting = TRUE;
  rx->exit_status = RX_EXIT_RESTART;
  if (g_main_loop_is_running(rx->loop))
    rx_receiver_stop(rx, "restarting to widen its confinement to new TLS files");
  else
    g_idle_add(on_restart, rx);
  return FALSE;
}

#if RX_CONFINE

/* ---- the monitor ---------------------------------------------------- */

static volatile sig_atomic_t worker_pid;
static volatile sig_atomic_t stop_asked;

static void
forward_signal(int sig)
{
  if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
    stop_asked = 1; /* a worker exiting to restart meanwhile is not restarted */
  if (worker_pid > 0)
    kill((pid_t) worker_pid, sig);
}

static void
note_stopped(const char *state_dir, pid_t pid)
{
  g_autofree char *path = g_build_filename(state_dir, RX_CONFINE_STOPPED_NAME, NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
  g_autofree char *text = g_strdup_printf("%s pid %d\n", stamp, (int) pid);

  if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL))
    rx_log("cannot write %s", path);
}

/* Ends the monitor the way the worker ended (a signal stays a signal, so
 * that systemd and the tests see the same as without a monitor). */
static G_GNUC_NORETURN void
end_like(int status)
{
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  int sig;

  if (WIFEXITED(status))
    _exit(WEXITSTATUS(status));
  sig = WTERMSIG(status);
  prctl(PR_SET_DUMPABLE, 0); /* the worker's fault is not worth a core of the monitor */
  sigaction(sig, &dfl, NULL);
  sigprocmask(SIG_SETMASK, &dfl.sa_mask, NULL);
  raise(sig);
  _exit(128 + sig);
}

void
rx_confine_supervise(RxReceiver *rx, char **args, int *ready_fd)
{
  static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  struct sigaction sa = {.sa_handler = forward_signal};
  sigset_t block, old;
  pid_t monitor = getpid();
  pid_t pid;
  int status;

  if (!rx_confine_enabled())
    return;
  fflush(NULL);
  /* no signal is lost between fork() and the handlers */
  sigemptyset(&block);
  for (guint i = 0; i < G_N_ELEMENTS(forwarded); i++)
    sigaddset(&block, forwarded[i]);
  sigprocmask(SIG_BLOCK, &block, &old);
  pid = fork();
  if (pid < 0) {
    rx_log("cannot start the confined receiver (fork: %s); running unconfined", g_strerror(errno));
    sigprocmask(SIG_SETMASK, &old, NULL);
    return;
  }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* the monitor's death (kill -9) takes the worker with it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != monitor)
      _exit(1);
    confine.on = TRUE;
    return;
  }

  worker_pid = pid;
  if (*ready_fd >= 0) {
    /* the worker tells the waiting parent of --daemon */
    close(*ready_fd);
    *ready_fd = -1;
  }
  sigemptyset(&sa.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS(forwarded); i++)
    sigaction(forwarded[i], &sa, NULL);
  sigprocmask(SIG_SETMASK, &old, NULL);
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      rx_log("lost the confined receiver (pid %d): %s", (int) pid, g_strerror(errno));
      _exit(1);
    }
  worker_pid = 0;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
    rx_log("pid %d was stopped by its confinement: it made a system call outside its "
           "allow-list (SIGSYS)",
           (int) pid);
    note_stopped(rx->opt.dir, pid);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == RX_EXIT_RESTART && stop_asked) {
    rx_log("not restarting pid %d: asked to stop", (int) pid);
    _exit(0);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == RX_EXIT_RESTART) {
    g_autoptr(GPtrArray) again = g_ptr_array_new();
    /* its path rather than /proc/self/exe, which would name the process "exe" */
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    const char *exe = self != NULL && g_file_test(self, G_FILE_TEST_IS_EXECUTABLE) ? self : "/proc/self/exe";

    /* the same arguments; --dir once more as an absolute path, since
     * --daemon changed to / */
    for (guint i = 0; args[i] != NULL; i++)
      g_ptr_array_add(again, args[i]);
    if (again->len < 2 || g_strcmp0(again->pdata[again->len - 2], "--dir") != 0 ||
        g_strcmp0(again->pdata[again->len - 1], rx->opt.dir) != 0) {
      g_ptr_array_add(again, (char *) "--dir");
      g_ptr_array_add(again, rx->opt.dir);
    }
    g_ptr_array_add(again, NULL);
    rx_log("restarting (pid %d exited to widen its confinement)", (int) pid);
    fflush(NULL);
    execv(exe, (char **) again->pdata);
    rx_log("cannot restart: %s", g_strerror(errno));
    _exit(1);
  }
  end_like(status);
}

/* ---- Landlock ------------------------------------------------------- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_RIGHTS                                                                         \
  (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
   LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* What each ABI version knows: a ruleset handles all of it. */
static guint64
fs_handled(int abi)
{
  guint64 all = (1ULL << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */

  if (abi >= 2)
    all |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3)
    all |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5)
    all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return all;
}

/* Allows @rights beneath @path; a directory is recorded in @remember (may
 * be NULL) under its canonical name. */
static gboolean
add_path_rule(int ruleset, const char *path, guint64 rights, guint64 handled, GPtrArray *remember)
{
  struct landlock_path_beneath_attr rule = {0};
  struct stat st;
  int fd = open(path, O_PATH | O_CLOEXEC);

  if (fd < 0)
    return FALSE; /* absent here: nothing to allow */
  if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
    rights &= FS_FILE_RIGHTS;
  rule.allowed_access = rights & handled;
  rule.parent_fd = fd;
  if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
    rx_log("Landlock: cannot allow %s: %s", path, g_strerror(errno));
    close(fd);
    return FALSE;
  }
  close(fd);
  if (remember != NULL && S_ISDIR(st.st_mode)) {
    char *resolved = realpath(path, NULL);

    if (resolved != NULL) {
      add_unique(remember, resolved);
      free(resolved);
    }
  }
  return TRUE;
}

/* Read-only, found by running the suites confined: shared libraries and GIO
 * modules loaded late, GnuTLS's configuration and trust store, time zones,
 * random devices, and this process's /proc entries. */
static const char *const system_readable[] = {
  "/usr",           "/etc/ssl",           "/etc/gnutls", "/etc/crypto-policies", "/etc/ld.so.cache",
  "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",           "/sys/devices/system/cpu",
  "/dev/urandom",   "/dev/random",
};

/* struct landlock_ruleset_attr as of ABI 4, which adds network rights
 * (Debian 12's kernel headers stop at handled_access_fs); the kernel reads
 * only as much as the size given. */
typedef struct {
  guint64 handled_access_fs;
  guint64 handled_access_net;
} RulesetAttr;
#define NET_CONNECT_TCP (1ULL << 1) /* LANDLOCK_ACCESS_NET_CONNECT_TCP */

static void
landlock_start(const RxReceiver *rx, GPtrArray *asked)
{
  RulesetAttr attr = {0};
  gsize attr_size = sizeof attr.handled_access_fs;
  guint64 handled, own;
  int abi, ruleset;
  char self[64];

  abi = (int) syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) {
    confine.landlock_why = g_strdup_printf("Landlock is unavailable (%s): files are not confined",
                                           errno == ENOSYS       ? "the kernel has no Landlock"
                                           : errno == EOPNOTSUPP ? "Landlock is disabled at boot"
                                                                 : g_strerror(errno));
    return;
  }
  confine.landlock_abi = abi;
  handled = fs_handled(abi);
  attr.handled_access_fs = handled;
  /* the receiver never connects out over TCP: ABI 4 can say so (binding,
   * not handled, stays free) */
  if (abi >= 4) {
    attr.handled_access_net = NET_CONNECT_TCP;
    attr_size = sizeof attr;
  }
  ruleset = (int) syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
  if (ruleset < 0) {
    confine.landlock_why = g_strdup_printf("Landlock is unavailable (%s): files are not confined", g_strerror(errno));
    return;
  }
  /* its own directory: the journal, its -wal and -shm, rx.sock, the log
   * and its rotation */
  own = FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_REMOVE_FILE |
        LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK;
  add_path_rule(ruleset, rx->opt.dir, own, handled, confine.readable);
  for (guint i = 0; i < asked->len; i++) {
    const char *want = g_ptr_array_index(asked, i);

    if (g_str_has_prefix(want, SOCK_PREFIX))
      /* a UNIX socket listener's directory: make, replace and remove it */
      add_path_rule(ruleset, want + strlen(SOCK_PREFIX),
                    FS_READ | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE, handled, confine.sockable);
    else
      add_path_rule(ruleset, want, FS_READ, handled, confine.readable);
  }
  for (guint i = 0; i < G_N_ELEMENTS(system_readable); i++)
    add_path_rule(ruleset, system_readable[i], FS_READ, handled, confine.readable);
  add_path_rule(ruleset, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE, handled, NULL);
  g_snprintf(self, sizeof self, "/proc/%d", (int) getpid());
  add_path_rule(ruleset, self, FS_READ, handled, NULL);
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    confine.landlock_why = g_strdup_printf("Landlock is unavailable (%s): files are not confined", g_strerror(errno));
    close(ruleset);
    return;
  }
  close(ruleset);
  confine.landlock = TRUE;
}

static GPtrArray *
load_asked(const char *state_dir)
{
  g_autofree char *path = g_build_filename(state_dir, DIRS_NAME, NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);

  if (!g_file_get_contents(path, &text, NULL, NULL))
    return dirs;
  lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *dir = g_str_has_prefix(lines[i], SOCK_PREFIX) ? lines[i] + strlen(SOCK_PREFIX) : lines[i];

    if (g_path_is_absolute(dir))
      add_unique(dirs, lines[i]);
  }
  return dirs;
}

void
rx_confine_start(RxReceiver *rx)
{
  if (!confine.on)
    return;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    rx_log("cannot set no_new_privs: %s; running unconfined", g_strerror(errno));
    confine.on = FALSE;
    return;
  }
  confine.readable = g_ptr_array_new_with_free_func(g_free);
  confine.sockable = g_ptr_array_new_with_free_func(g_free);
  confine.asked = load_asked(rx->opt.dir);
  landlock_start(rx, confine.asked);
}

/* ---- seccomp -------------------------------------------------------- */

/* The system calls of a running receiver, found with strace -f -c over the
 * receiver and hostile suites, plus those of features used only now and then
 * (TLS reload, extra listeners, journal checks). By group: */
static const char *const allowed[] = {
  /* memory: malloc, thread stacks, GLib slices, SQLite's mmap I/O, and
   * libsodium's guarded, locked key memory */
  "brk",
  "mmap",
  "munmap",
  "mremap",
  "mprotect",
  "madvise",
  "mlock",
  "mlock2",
  "munlock",
  /* threads (clone is checked below) and their synchronisation */
  "futex",
  "set_robust_list",
  "rseq",
  "sched_yield",
  "sched_getaffinity",
  "gettid",
  /* a new GLib thread takes its creator's scheduling settings (by thread id) */
  "sched_getattr",
  "sched_setattr",
  "exit",
  "exit_group",
  "restart_syscall",
  "nanosleep",
  "clock_nanosleep",
  /* the event loop: poll, GLib's wakeup eventfd, g_unix_signal_add (a pipe
   * and signal handlers), timers */
  "poll",
  "ppoll",
  "epoll_create1",
  "epoll_ctl",
  "epoll_wait",
  "epoll_pwait",
  "eventfd2",
  "pipe",
  "pipe2",
  "signalfd4",
  "rt_sigaction",
  "rt_sigprocmask",
  "rt_sigreturn",
  "sigaltstack",
  "tgkill",
  "getpid",
  "getppid",
  "clock_gettime",
  "gettimeofday",
  "time",
  "clock_getres",
  /* sockets: HTTP(S) listeners on TCP, the control socket and UNIX
   * listeners (socket() is checked below), their options and transfers;
   * connect() only to tell a stale UNIX socket from a live one (Landlock
   * refuses outgoing TCP where it can) */
  "bind",
  "listen",
  "connect",
  "accept",
  "accept4",
  "getsockname",
  "getpeername",
  "getsockopt",
  "setsockopt",
  "shutdown",
  "sendto",
  "recvfrom",
  "sendmsg",
  "recvmsg",
  "sendmmsg",
  "recvmmsg",
  /* reading and writing fds: journal, log, sockets */
  "read",
  "write",
  "readv",
  "writev",
  "pread64",
  "pwrite64",
  "lseek",
  "close",
  "dup",
  "dup2",
  "dup3",
  "fcntl",
  "fsync",
  "fdatasync",
  "ftruncate",
  "fallocate",
  /* files in its directory, TLS files, GnuTLS's configuration: open, stat,
   * create, rename (log rotation, atomic saves), unlink (the socket, SQLite),
   * chmod/chown of the socket file, free space of the journal's file system */
  "open",
  "openat",
  "stat",
  "fstat",
  "lstat",
  "newfstatat",
  "statx",
  "access",
  "faccessat",
  "faccessat2",
  "readlink",
  "readlinkat",
  "getdents64",
  "getcwd",
  "rename",
  "renameat",
  "renameat2",
  "unlink",
  "unlinkat",
  "mkdir",
  "mkdirat",
  "fchmod",
  "fchmodat",
  "chmod",
  "fchown",
  "fchownat",
  "chown",
  "lchown",
  "statfs",
  "fstatfs",
  "umask",
  "flock",
  /* GFileMonitor (TLS files reloaded when they change) */
  "inotify_init1",
  "inotify_add_watch",
  "inotify_rm_watch",
  /* identity and limits: the peer credential check, GLib's user lookups */
  "getuid",
  "geteuid",
  "getgid",
  "getegid",
  "getgroups",
  "getresuid",
  "getresgid",
  "getrlimit",
  "prlimit64",
  "uname",
  "sysinfo",
  "getrusage",
  /* randomness for libsodium, GnuTLS and SQLite */
  "getrandom",
};

static gboolean
seccomp_start(GError **error)
{
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  int rc = 0;

  if (ctx == NULL) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "seccomp_init failed");
    return FALSE;
  }
  /* the journal and the GLib worker threads exist already */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  for (guint i = 0; i < G_N_ELEMENTS(allowed) && rc == 0; i++) {
    int nr = seccomp_syscall_resolve_name(allowed[i]);

    if (nr == __NR_SCMP_ERROR)
      continue; /* not on this architecture */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  /* threads only: a clone without CLONE_THREAD (fork) kills; glibc falls
   * back from clone3, whose flags a filter cannot see, to clone */
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  /* sockets of the three families it listens on */
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
  /* ioctls: non-blocking mode and bytes waiting (GSocket), a terminal check
   * on stderr; nothing else */
  for (guint i = 0; i < 4 && rc == 0; i++) {
    static const unsigned long requests[] = {FIONBIO, FIONREAD, FIOCLEX, TCGETS};

    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, requests[i]));
  }
  /* thread names (g_thread_new); reading the capability bounding set, which
   * glibc's systemd NSS module does when a group name is not in /etc/group
   * (a UNIX socket listener's group) */
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_CAPBSET_READ));
  if (rc == 0)
    rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot load the seccomp filter: %s", g_strerror(-rc));
    return FALSE;
  }
  return TRUE;
}

/* GIO loads its TLS backend (dlopen) and GnuTLS reads its configuration the
 * first time they are used: make that happen now, while files and system
 * calls are still allowed. */
static void
warm_up_tls(void)
{
  GTlsBackend *backend = g_tls_backend_get_default();
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) cert = NULL;

  if (!g_tls_backend_supports_tls(backend))
    return;
  g_type_class_unref(g_type_class_ref(g_tls_backend_get_server_connection_type(backend)));
  g_type_class_unref(g_type_class_ref(g_tls_backend_get_certificate_type(backend)));
  /* a parse that fails still initialises the certificate code */
  cert = g_tls_certificate_new_from_pem("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", -1, &error);
}

#ifdef RX_CONFINE_TEST_HOOKS
/* Test builds only (wabiz-receiver-hooks): WABIZ_RX_TEST_ESCAPE, a list of
 * execve, fork, open:PATH, create:PATH and connect:PORT (TCP to 127.0.0.1)
 * separated by ';', makes the confined receiver try each once it is ready,
 * logging what happened. */
static gboolean
test_escape(gpointer data)
{
  g_auto(GStrv) steps =
    g_strsplit(g_getenv("WABIZ_RX_TEST_ESCAPE") != NULL ? g_getenv("WABIZ_RX_TEST_ESCAPE") : "", ";", -1);

  for (guint i = 0; steps[i] != NULL; i++) {
    const char *what = steps[i];

    if (g_str_equal(what, "execve")) {
      char *argv[] = {(char *) "/bin/true", NULL};

      rx_log("test hook: execve /bin/true");
      execve("/bin/true", argv, environ);
      rx_log("test hook: execve /bin/true: %s", g_strerror(errno));
    } else if (g_str_equal(what, "fork")) {
      pid_t pid;

      rx_log("test hook: fork");
      pid = fork();
      if (pid == 0)
        _exit(0);
      rx_log("test hook: fork: %s", pid > 0 ? "allowed" : g_strerror(errno));
      if (pid > 0)
        waitpid(pid, NULL, 0);
    } else if (g_str_has_prefix(what, "connect:")) {
      struct sockaddr_in addr = {.sin_family = AF_INET,
                                 .sin_port = htons((guint16) atoi(what + 8)),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

      if (fd >= 0 && connect(fd, (struct sockaddr *) &addr, sizeof addr) == 0)
        rx_log("test hook: connect %s: allowed", what + 8);
      else
        rx_log("test hook: connect %s: refused (%s)", what + 8, g_strerror(errno));
      if (fd >= 0)
        close(fd);
    } else if (g_str_has_prefix(what, "open:") || g_str_has_prefix(what, "create:")) {
      gboolean create = g_str_has_prefix(what, "create:");
      const char *path = strchr(what, ':') + 1;
      int fd = create ? open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : open(path, O_RDONLY | O_CLOEXEC);

      if (fd >= 0) {
        rx_log("test hook: %s %s: allowed", create ? "create" : "open", path);
        close(fd);
      } else {
        rx_log("test hook: %s %s: refused (%s)", create ? "create" : "open", path, g_strerror(errno));
      }
    }
  }
  return G_SOURCE_REMOVE;
}
#endif

gboolean
rx_confine_apply(RxReceiver *rx, GError **error)
{
  g_autoptr(GString) dirs = g_string_new(NULL);

  if (!confine.on) {
    rx_log("confinement is off (%s)", rx_confine_enabled() ? "no monitor" : "WABIZ_RECEIVER_CONFINE=off");
    return TRUE;
  }
  warm_up_tls();
  if (!seccomp_start(error))
    return FALSE;
  if (!confine.landlock) {
    rx_log("confined: no new privileges, seccomp allow-list; %s", confine.landlock_why);
  } else {
    for (guint i = 0; i < confine.readable->len; i++)
      g_string_append_printf(dirs, "%s%s", i > 0 ? " " : "", (const char *) g_ptr_array_index(confine.readable, i));
    rx_log("confined: no new privileges, seccomp allow-list, Landlock ABI %d (files: %s)", confine.landlock_abi,
           dirs->str);
  }
#ifdef RX_CONFINE_TEST_HOOKS
  g_idle_add(test_escape, NULL);
#endif
  return TRUE;
}

#else /* !RX_CONFINE */

void
rx_confine_supervise(RxReceiver *rx, char **args, int *ready_fd)
{
}

void
rx_confine_start(RxReceiver *rx)
{
}

gboolean
rx_confine_apply(RxReceiver *rx, GError **error)
{
  rx_log("confinement is off in this build (meson -Dconfine=false)");
  return TRUE;
}

#endif
