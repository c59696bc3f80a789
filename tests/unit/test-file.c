/* test-file.c: plugin/core/wa-file.c as the disk sees it: the modes of what it
 * creates (under umasks that would strip bits; the umask left alone), modes
 * it tightens, what it refuses (symbolic links, other file types, another
 * user's files, short files), atomic replacement leaving no temporary file,
 * and errno set for callers that word their own messages.
 *
 * Each test runs in a fresh temporary directory. Must not: rely on missing
 * permissions to provoke failures (CI runs as root); another user's file is
 * made with chown when running as root, and the owner check is also driven
 * with a made-up struct stat so that it runs for everyone. */
#include "test-util.h"
#include "wa-file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OTHER_UID 65534 /* nobody */

typedef struct {
  char *tmp;
  mode_t umask_before;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp("test-file-XXXXXX", NULL);
  g_assert_nonnull(f->tmp);
  f->umask_before = umask(022);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  umask(f->umask_before);
  test_remove_tree(f->tmp);
  g_free(f->tmp);
}

static char *
path_in(Fixture *f, const char *name)
{
  return g_build_filename(f->tmp, name, NULL);
}

static mode_t
mode_of(const char *path)
{
  struct stat st;

  g_assert_cmpint(lstat(path, &st), ==, 0);
  return st.st_mode & 07777;
}

static void
put_file(const char *path, const char *text, mode_t mode)
{
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  g_assert_cmpint(chmod(path, mode), ==, 0);
}

static void
assert_contents(const char *path, const char *text)
{
  g_autofree char *got = NULL;

  g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
  g_assert_cmpstr(got, ==, text);
}

static gint
by_name(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *) a, *(char *const *) b);
}

/* The names in @dir, sorted and joined by spaces. */
static char *
listing(const char *dir)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;

  g_assert_nonnull(d);
  while ((name = g_dir_read_name(d)) != NULL)
    g_ptr_array_add(names, g_strdup(name));
  g_dir_close(d);
  g_ptr_array_sort(names, by_name);
  g_ptr_array_add(names, NULL);
  return g_strjoinv(" ", (char **) names->pdata);
}

/* wa_file_private_file(@path, @optional) succeeds; an existing file is then
 * exactly 0600. */
static void
private_file_ok(const char *path, gboolean optional)
{
  g_autoptr(GError) error = NULL;

  g_assert_true(wa_file_private_file(path, optional, &error));
  g_assert_no_error(error);
  if (g_file_test(path, G_FILE_TEST_EXISTS))
    g_assert_cmpuint(mode_of(path), ==, 0600);
}

/* ---- directories ---------------------------------------------------------- */

static void
test_dir_created_private(Fixture *f, gconstpointer data)
{
  g_autofree char *dir = path_in(f, "a/b/c");
  g_autoptr(GError) error = NULL;

  umask(0377); /* would strip the owner's write and search bits */
  g_assert_true(wa_file_private_dir(dir, "the test directory", &error));
  g_assert_no_error(error);
  g_assert_cmpuint(umask(022), ==, 0377);
  g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
  g_assert_cmpuint(mode_of(dir), ==, 0700);

  /* an existing one opened to others is tightened */
  g_assert_cmpint(chmod(dir, 0755), ==, 0);
  g_assert_true(wa_file_private_dir(dir, "the test directory", &error));
  g_assert_no_error(error);
  g_assert_cmpuint(mode_of(dir), ==, 0700);
}

static void
test_dir_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *file = path_in(f, "plain");
  g_autofree char *other = path_in(f, "other");
  g_autoptr(GError) error = NULL;

  put_file(file, "x", 0600);
  g_assert_false(wa_file_private_dir(file, "the test directory", &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR);
  g_assert_nonnull(strstr(error->message, file));
  assert_contents(file, "x");
  g_clear_error(&error);

  if (geteuid() != 0) {
    g_test_message("not root: another user's directory is not made");
    return;
  }
  g_assert_cmpint(g_mkdir(other, 0755), ==, 0);
  g_assert_cmpint(chown(other, OTHER_UID, OTHER_UID), ==, 0);
  g_assert_false(wa_file_private_dir(other, "the test directory", &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM);
  g_assert_nonnull(strstr(error->message, "belongs to another user"));
  /* refused, not repaired */
  g_assert_cmpuint(mode_of(other), ==, 0755);
}

/* ---- files ------------------------------------------------------------------ */

static void
test_file_created_private(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "new.db");
  g_autofree char *loose = path_in(f, "loose.db");

  umask(0277); /* open(..., 0600) alone would make it 0400 */
  private_file_ok(path, FALSE);
  g_assert_cmpuint(umask(022), ==, 0277);
  g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
  /* a second call finds it and keeps it */
  private_file_ok(path, FALSE);

  /* an existing file open to others is tightened, required or optional */
  put_file(loose, "data", 0644);
  private_file_ok(loose, FALSE);
  assert_contents(loose, "data");
  g_assert_cmpint(chmod(loose, 0660), ==, 0);
  private_file_ok(loose, TRUE);
}

static void
test_file_optional_missing(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "missing.db-wal");
  g_autofree char *deeper = path_in(f, "no/such.db");
  g_autoptr(GError) error = NULL;

  private_file_ok(path, TRUE);
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS)); /* not created */

  g_assert_false(wa_file_private_file(deeper, FALSE, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull(strstr(error->message, deeper));
}

static void
test_file_refuses_symlink(Fixture *f, gconstpointer data)
{
  g_autofree char *target = path_in(f, "target");
  g_autofree char *link = path_in(f, "link.db");
  g_autofree char *nowhere = path_in(f, "nowhere");
  g_autofree char *dangling = path_in(f, "dangling.db");
  g_autofree char *dir = path_in(f, "dir.db");
  g_autoptr(GError) error = NULL;

  put_file(target, "secret", 0644);
  g_assert_cmpint(symlink(target, link), ==, 0);
  for (int optional = 0; optional < 2; optional++) {
    g_assert_false(wa_file_private_file(link, optional, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_assert_nonnull(strstr(error->message, "not a regular file"));
    g_clear_error(&error);
  }
  /* the link's target is neither changed nor tightened */
  g_assert_cmpuint(mode_of(target), ==, 0644);
  assert_contents(target, "secret");

  /* a link to nothing is not followed to create its target */
  g_assert_cmpint(symlink(nowhere, dangling), ==, 0);
  g_assert_false(wa_file_private_file(dangling, FALSE, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_clear_error(&error);
  g_assert_false(g_file_test(nowhere, G_FILE_TEST_EXISTS));

  g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
  g_assert_false(wa_file_private_file(dir, FALSE, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_clear_error(&error);

  /* errno says why, for callers that pass no GError */
  errno = 0;
  g_assert_false(wa_file_private_file(link, FALSE, NULL));
  g_assert_cmpint(errno, ==, EINVAL);
}

static void
test_file_other_user(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "theirs.db");
  g_autoptr(GError) error = NULL;
  struct stat st;
  gboolean fix = TRUE;
  int fd;

  /* the check itself, on a made-up stat: runs for every user */
  put_file(path, "theirs", 0600);
  g_assert_cmpint(lstat(path, &st), ==, 0);
  g_assert_true(wa_file_check_private(&st, path, &fix, &error));
  g_assert_no_error(error);
  g_assert_false(fix);
  st.st_mode = (st.st_mode & ~07777) | 0640;
  g_assert_true(wa_file_check_private(&st, path, &fix, &error));
  g_assert_true(fix);
  st.st_uid = geteuid() + 1;
  g_assert_false(wa_file_check_private(&st, path, &fix, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM);
  g_assert_nonnull(strstr(error->message, "belongs to another user"));
  g_clear_error(&error);

  if (geteuid() != 0) {
    g_test_message("not root: another user's file is not made");
    return;
  }
  /* a real one, by path and by descriptor: refused and left as it was */
  g_assert_cmpint(chmod(path, 0644), ==, 0);
  g_assert_cmpint(chown(path, OTHER_UID, OTHER_UID), ==, 0);
  for (int optional = 0; optional < 2; optional++) {
    g_assert_false(wa_file_private_file(path, optional, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM);
    g_clear_error(&error);
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  g_assert_false(wa_file_private_fd(fd, path, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM);
  close(fd);
  g_assert_cmpuint(mode_of(path), ==, 0644);
}

static void
test_fd_tightened(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "key");
  g_autoptr(GError) error = NULL;
  int fd;

  put_file(path, "k", 0664);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  g_assert_true(wa_file_private_fd(fd, path, &error));
  g_assert_no_error(error);
  close(fd);
  g_assert_cmpuint(mode_of(path), ==, 0600);
}

/* ---- reading and writing --------------------------------------------------- */

static void
test_read_write(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "data");
  g_autoptr(GError) error = NULL;
  guint8 out[5000];
  guint8 in[5000];
  guint8 more[8];
  int fd;

  for (gsize i = 0; i < sizeof out; i++)
    out[i] = (guint8) (i * 7 + 1);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  g_assert_cmpint(fd, >=, 0);
  g_assert_true(wa_file_write_all(fd, path, out, sizeof out, &error));
  g_assert_no_error(error);
  close(fd);

  fd = open(path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  memset(in, 0, sizeof in);
  g_assert_true(wa_file_read_exact(fd, path, in, sizeof in, &error));
  g_assert_no_error(error);
  g_assert_cmpmem(in, sizeof in, out, sizeof out);
  /* past the end: a short file is an error (EIO), errno set as well */
  g_assert_false(wa_file_read_exact(fd, path, more, sizeof more, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_IO);
  g_assert_nonnull(strstr(error->message, path));
  g_clear_error(&error);
  errno = 0;
  g_assert_false(wa_file_read_exact(fd, path, more, sizeof more, NULL));
  g_assert_cmpint(errno, ==, EIO);
  /* writing to a read-only descriptor fails with its errno */
  errno = 0;
  g_assert_false(wa_file_write_all(fd, path, out, 1, &error));
  g_assert_cmpint(errno, ==, EBADF);
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_BADF);
  close(fd);
}

static void
test_sync_dir(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "file");
  g_autofree char *missing = path_in(f, "no/file");
  g_autoptr(GError) error = NULL;

  g_assert_true(wa_file_sync_dir_of(path, &error));
  g_assert_no_error(error);
  g_assert_false(wa_file_sync_dir_of(missing, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

/* ---- atomic replacement ------------------------------------------------------ */

/* Replaces @path with @text; then the file holds @text, 0600, and the
 * directory holds exactly @names (no temporary file left). */
static void
replace_and_check(Fixture *f, const char *path, const char *text, const char *names)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *got = NULL;

  g_assert_true(wa_file_replace_private(path, text, strlen(text), &error));
  g_assert_no_error(error);
  assert_contents(path, text);
  g_assert_cmpuint(mode_of(path), ==, 0600);
  got = listing(f->tmp);
  g_assert_cmpstr(got, ==, names);
}

static void
test_replace(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "journal.key");

  umask(0277); /* open(..., 0600) alone would make it 0400 */
  replace_and_check(f, path, "first", "journal.key");
  g_assert_cmpuint(umask(022), ==, 0277);

  /* an existing file is replaced whole, and made 0600 */
  g_assert_cmpint(chmod(path, 0644), ==, 0);
  replace_and_check(f, path, "second!", "journal.key");
}

static void
test_replace_stale_tmp(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "journal.key");
  g_autofree char *tmp = path_in(f, "journal.key.tmp");
  g_autofree char *victim = path_in(f, "victim");

  /* a crash left the temporary file behind: it is replaced, not appended to */
  put_file(tmp, "stale stale stale", 0644);
  replace_and_check(f, path, "key", "journal.key");

  /* a symbolic link in its place is removed, its target untouched */
  put_file(victim, "victim", 0644);
  g_assert_cmpint(symlink(victim, tmp), ==, 0);
  replace_and_check(f, path, "again", "journal.key victim");
  assert_contents(victim, "victim");
  g_assert_cmpuint(mode_of(victim), ==, 0644);
}

static void
test_replace_failures(Fixture *f, gconstpointer data)
{
  g_autofree char *path = path_in(f, "target");
  g_autofree char *inside = path_in(f, "target/x");
  g_autofree char *tmp = path_in(f, "other.tmp");
  g_autofree char *tmp_inside = path_in(f, "other.tmp/y");
  g_autofree char *other = path_in(f, "other");
  g_autofree char *missing = path_in(f, "no/file");
  g_autofree char *names = NULL;
  g_autoptr(GError) error = NULL;

  /* rename over a non-empty directory fails: the temporary file goes away */
  g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
  put_file(inside, "x", 0600);
  g_assert_false(wa_file_replace_private(path, "data", 4, &error));
  g_assert_nonnull(error);
  g_assert_true(error->domain == G_FILE_ERROR);
  g_assert_nonnull(strstr(error->message, path));
  g_clear_error(&error);
  g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
  names = listing(f->tmp);
  g_assert_cmpstr(names, ==, "target");
  g_clear_pointer(&names, g_free);

  /* a temporary name that cannot be removed (a non-empty directory): the
   * target is not touched */
  put_file(other, "old", 0600);
  g_assert_cmpint(g_mkdir(tmp, 0700), ==, 0);
  g_assert_cmpint(g_mkdir(tmp_inside, 0700), ==, 0);
  g_assert_false(wa_file_replace_private(other, "new", 3, &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "cannot remove"));
  g_clear_error(&error);
  assert_contents(other, "old");

  /* a missing directory is an error, and nothing is created */
  g_assert_false(wa_file_replace_private(missing, "data", 4, &error));
  g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);

#define ADD(name, func) g_test_add("/file/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD("dir-created-private", test_dir_created_private);
  ADD("dir-refused", test_dir_refused);
  ADD("file-created-private", test_file_created_private);
  ADD("file-optional-missing", test_file_optional_missing);
  ADD("file-refuses-symlink", test_file_refuses_symlink);
  ADD("file-other-user", test_file_other_user);
  ADD("fd-tightened", test_fd_tightened);
  ADD("read-write", test_read_write);
  ADD("sync-dir", test_sync_dir);
  ADD("replace", test_replace);
  ADD("replace-stale-tmp", test_replace_stale_tmp);
  ADD("replace-failures", test_replace_failures);
#undef ADD
  return g_test_run();
}
