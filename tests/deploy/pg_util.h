/*
 * pg_util.h - a private PostgreSQL 15 cluster per test: initdb into a temp
 * dir, listening only on a unix socket in that dir, no system service.
 *
 * PostgreSQL refuses to run as root, and the suites run as root on CI, so
 * then initdb and pg_ctl run as `nobody` (runuser) in a dir it owns; the
 * test (root) still reaches the socket. fsync is off: no test crashes the
 * database machine, and a clean stop (pg_ctl -m fast) writes everything.
 * Queries from the test go through psql (-At: one row per line, fields
 * split by '|'), so no test binary links libpq.
 *
 *   pg_start(&pg)            initdb + start; pg.uri is a libpq URI
 *   pg_stop(&pg) / pg_restart_start(&pg)   stop (fast) / start again
 *   pg_psql(&pg, sql)        runs sql, returns its output (free it)
 *   pg_destroy(&pg)          stops and removes it (the suite's .fini)
 *
 * Skips the test where PostgreSQL is not installed.
 */
#ifndef COSERVE_TESTS_PG_UTIL_H
#define COSERVE_TESTS_PG_UTIL_H

#include "../http/harness.h"

#include <ftw.h>
#include <pwd.h>

#define PG_BIN "/usr/lib/postgresql/15/bin"

struct pg {
    char dir[128]; /* owns data/, the socket and pg.log */
    char uri[300]; /* postgresql:///notes?host=DIR&user=postgres */
    int running;
};

/* argv (NULL-terminated), as `nobody` when we are root; waits, returns the
 * exit status; output appended to DIR/pg.log. */
static inline int pg_run(const struct pg *p, const char *const *argv)
{
    const char *av[32];
    int n = 0;
    if (geteuid() == 0) {
        av[n++] = "/usr/sbin/runuser";
        av[n++] = "-u";
        av[n++] = "nobody";
        av[n++] = "--";
    }
    for (int i = 0; argv[i] && n < 31; i++)
        av[n++] = argv[i];
    av[n] = NULL;
    char log[200];
    snprintf(log, sizeof log, "%s/pg.log", p->dir);
    pid_t pid = h_spawn(av, log, 1, NULL);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static inline void pg_ctl(struct pg *p, const char *action)
{
    char data[200], log[200], opts[300];
    snprintf(data, sizeof data, "%s/data", p->dir);
    snprintf(log, sizeof log, "%s/server.log", p->dir);
    snprintf(opts, sizeof opts,
             "-c listen_addresses='' -c unix_socket_directories='%s' "
             "-c fsync=off -c max_connections=200",
             p->dir);
    int st = pg_run(p, (const char *const[]){PG_BIN "/pg_ctl", "-D", data, "-l",
                                             log, "-o", opts, "-m", "fast",
                                             "-w", "-t", "60", action, NULL});
    char path[200];
    snprintf(path, sizeof path, "%s/pg.log", p->dir);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pg_ctl %s: 0x%x\n%s",
              action, st, h_read_file(path, NULL));
    p->running = strcmp(action, "stop") != 0;
}

/* Runs sql with psql; returns its stdout (rows, '|' between fields). */
static inline char *pg_psql(const struct pg *p, const char *sql)
{
    char *cmd = h_fmt("psql -X -q -At -v ON_ERROR_STOP=1 -h '%s' -U postgres "
                      "-d notes -c \"%s\" 2>&1",
                      p->dir, sql);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "popen psql");
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, got, m);
    fclose(m);
    int st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "psql %s: %s", sql, out);
    free(cmd);
    return out;
}

/* SELECT of one integer. */
static inline long pg_count(const struct pg *p, const char *sql)
{
    char *out = pg_psql(p, sql);
    long n = strtol(out, NULL, 10);
    free(out);
    return n;
}

static inline void pg_start(struct pg *p)
{
    if (access(PG_BIN "/initdb", X_OK) != 0)
        cr_skip_test("no PostgreSQL 15 at " PG_BIN
                     " (apt-get install postgresql)");
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/coserve-pg.XXXXXX");
    cr_assert_not_null(mkdtemp(p->dir), "mkdtemp: %s", strerror(errno));
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        cr_assert_not_null(pw, "no user nobody to run PostgreSQL as");
        cr_assert_eq(chown(p->dir, pw->pw_uid, pw->pw_gid), 0, "chown: %s",
                     strerror(errno));
    }
    char data[200];
    snprintf(data, sizeof data, "%s/data", p->dir);
    int st = pg_run(p, (const char *const[]){PG_BIN "/initdb", "-D", data, "-A",
                                             "trust", "-U", "postgres", "-E",
                                             "UTF8", "--locale=C", "-N", NULL});
    char log[200];
    snprintf(log, sizeof log, "%s/pg.log", p->dir);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "initdb: 0x%x\n%s", st,
              h_read_file(log, NULL));
    pg_ctl(p, "start");
    char *cmd = h_fmt("psql -X -q -h '%s' -U postgres -d postgres -c "
                      "'CREATE DATABASE notes' >/dev/null",
                      p->dir);
    cr_assert_eq(system(cmd), 0, "CREATE DATABASE failed");
    free(cmd);
    snprintf(p->uri, sizeof p->uri, "postgresql:///notes?host=%s&user=postgres",
             p->dir);
}

static inline void pg_stop(struct pg *p)
{
    pg_ctl(p, "stop");
}

static inline void pg_restart_start(struct pg *p)
{
    pg_ctl(p, "start");
}

static inline int pg_rm_entry(const char *path, const struct stat *st, int flag,
                              struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Stops the cluster (immediate: nothing to keep) and removes its dir. */
static inline void pg_destroy(struct pg *p)
{
    if (!p->dir[0])
        return;
    if (p->running) {
        char data[200];
        snprintf(data, sizeof data, "%s/data", p->dir);
        pg_run(p, (const char *const[]){PG_BIN "/pg_ctl", "-D", data, "-m",
                                        "immediate", "-w", "stop", NULL});
        p->running = 0;
    }
    if (!getenv("COSERVE_TEST_KEEP"))
        nftw(p->dir, pg_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    p->dir[0] = '\0';
}

#endif
