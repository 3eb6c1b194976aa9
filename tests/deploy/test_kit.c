/*
 * test_kit - the deployment kit (deploy/), each piece as written:
 *
 *   - deploy/nginx/coserve.conf passes `nginx -t` unchanged, in a minimal
 *     main config and in Debian's own nginx.conf;
 *   - --socket-group lets nginx's user (www-data) connect to the unix
 *     socket, and without it that user gets EACCES (nginx: 502);
 *   - --user/--group: master and workers run as that user, with none of
 *     root's groups left;
 *   - deploy/logrotate/coserve, run by logrotate itself: after the
 *     rotation new lines go to the new file (USR1 through --pid-file),
 *     and without its postrotate they would not;
 *   - deploy/systemd: `systemd-analyze verify` and systemd-sysusers accept
 *     the units, and coserve started exactly as the two units say (the
 *     socket made, owned and moded as coserve.socket says, passed as fd 3
 *     with LISTEN_FDS, the service's user, directories and command line)
 *     serves nginx, the notes app and fanout, reloads and stops;
 *   - the notes app creates its data directory, or says in one line why
 *     it cannot; fanout calls its own server over a unix socket;
 *   - --version.
 *
 * The tests that change users need root (they skip otherwise); systemd's
 * tools, logrotate and nginx are skipped when missing.
 */
#include <criterion/criterion.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "deploy_util.h"

TestSuite(kit, .fini = du_teardown, .timeout = 90);

/* ---- helpers ------------------------------------------------------------ */

/* Runs argv to completion (bounded), its output into log_rel in the temp
 * dir; returns its exit status (-1: killed or did not finish). */
static int kit_run(const char *const *argv, const char *log_rel)
{
    const char *log = du_path(log_rel);
    pid_t pid = h_spawn(argv, log, 0, NULL);
    du_track(pid, DU_NGINX); /* killed by du_teardown if it hangs */
    int status;
    if (!du_wait_exit(pid, 60000, &status)) {
        du_kill_tree(pid);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int kit_have(const char *bin)
{
    return access(bin, X_OK) == 0;
}

#define KIT_REQUIRE_ROOT()                                                     \
    do {                                                                       \
        if (geteuid() != 0) {                                                  \
            cr_skip_test("needs root (users, groups, socket owners)");         \
            return;                                                            \
        }                                                                      \
    } while (0)

static void kit_ids(const char *user, const char *group, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(user);
    cr_assert_not_null(pw, "no user %s", user);
    struct group *gr = getgrnam(group);
    cr_assert_not_null(gr, "no group %s", group);
    *uid = pw->pw_uid;
    *gid = gr->gr_gid;
}

/* Connects to the unix socket at path as uid/gid (no supplementary
 * groups), as nginx's worker would: 0, or the errno of connect(). */
static int kit_connect_as(const char *path, uid_t uid, gid_t gid)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            _exit(200);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
        if (connect(fd, (struct sockaddr *)&un, sizeof un) < 0)
            _exit(errno & 0x7f);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 200,
              "could not become uid %d gid %d", (int)uid, (int)gid);
    return WEXITSTATUS(status);
}

/* The Uid:/Gid:/Groups: lines of /proc/PID/status, joined. */
static char *kit_creds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *s = h_read_file(path, NULL);
    cr_assert_not_null(s, "%s: %s", path, strerror(errno));
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) ||
            !strncmp(line, "Groups:", 7))
            fprintf(f, "%s\n", line);
    fclose(f);
    free(s);
    return out;
}

/* Whether every id on the Uid: and Gid: lines is uid / gid, and Groups:
 * holds only gid. */
static int kit_creds_are(const char *creds, uid_t uid, gid_t gid)
{
    unsigned a[4], b[4];
    const char *u = strstr(creds, "Uid:"), *g = strstr(creds, "Gid:");
    const char *gs = strstr(creds, "Groups:");
    if (!u || !g || !gs ||
        sscanf(u, "Uid: %u %u %u %u", &a[0], &a[1], &a[2], &a[3]) != 4 ||
        sscanf(g, "Gid: %u %u %u %u", &b[0], &b[1], &b[2], &b[3]) != 4)
        return 0;
    for (int i = 0; i < 4; i++)
        if (a[i] != uid || b[i] != gid)
            return 0;
    char want[32];
    snprintf(want, sizeof want, "Groups:\t%u \n", (unsigned)gid);
    char want2[32];
    snprintf(want2, sizeof want2, "Groups:\t%u\n", (unsigned)gid);
    return strstr(creds, want) || strstr(creds, want2);
}

/* ---- --version ---------------------------------------------------------- */

Test(kit, version_prints_the_one_version)
{
    du_setup();
    const char *bin = h_env("COSERVE_BIN", "build/plain/coserve");
    const char *argv[] = {bin, "--version", NULL};
    cr_assert_eq(kit_run(argv, "version.out"), 0, "%s",
                 du_tail(du_path("version.out"), 500));
    char *hdr = h_read_file("server/version.h", NULL);
    cr_assert_not_null(hdr, "server/version.h (run from the repository root)");
    const char *q = strstr(hdr, "#define COSERVE_VERSION \"");
    cr_assert_not_null(q);
    q += strlen("#define COSERVE_VERSION \"");
    char *want = h_fmt("coserve %.*s\n", (int)strcspn(q, "\""), q);
    char *out = h_read_file(du_path("version.out"), NULL);
    cr_assert_str_eq(out, want);
    int x, y, z;
    cr_assert_eq(sscanf(out, "coserve %d.%d.%d", &x, &y, &z), 3, "%s", out);
    free(hdr);
    free(want);
    free(out);
}

/* ---- nginx -t on the shipped site --------------------------------------- */

/* `nginx -t` on main (a file in the temp dir): its exit status. */
/* `nginx -t` on main (a file in the temp dir) with the temp dir as its
 * prefix, or nginx's own (Debian's nginx.conf names modules relative to
 * it): its exit status. */
static int kit_nginx_t(const char *main_conf, int own_prefix,
                       const char *log_rel)
{
    char *err = h_fmt("%s/nginx-t.error.log", du.dir);
    const char *argv[] = {du_nginx_bin(), "-t",   "-c", main_conf, "-e", err,
                          "-p",           du.dir, NULL};
    if (own_prefix)
        argv[6] = NULL;
    int rc = kit_run(argv, log_rel);
    free(err);
    return rc;
}

Test(kit, nginx_site_passes_nginx_t_as_shipped)
{
    DU_REQUIRE_NGINX();
    du_setup();
    char *site = du_abs("deploy/nginx/coserve.conf");
    /* a minimal main config including the shipped file unchanged */
    char *conf = h_fmt("pid %s/nginx-t.pid;\n"
                       "error_log %s/nginx-t.error.log;\n"
                       "events {}\n"
                       "http {\n    include %s;\n}\n",
                       du.dir, du.dir, site);
    h_write_file(du_path("nginx-t.conf"), conf, strlen(conf));
    int rc = kit_nginx_t(du_path("nginx-t.conf"), 0, "nginx-t.out");
    cr_assert_eq(rc, 0, "nginx -t refuses %s as shipped:\n%s", site,
                 du_tail(du_path("nginx-t.out"), 2000));
    free(conf);
    /* and as Debian's site: its own nginx.conf, sites-enabled/ being this
     * file (the distribution's http {} context: mime types, gzip...) */
    char *deb = h_read_file("/etc/nginx/nginx.conf", NULL);
    const char *inc = "include /etc/nginx/sites-enabled/*;";
    if (deb && strstr(deb, inc)) {
        char *line = h_fmt("include %s;", site);
        const char *keys[] = {inc, line, NULL};
        char *mine = du_substitute(deb, keys);
        h_write_file(du_path("nginx-deb.conf"), mine, strlen(mine));
        rc = kit_nginx_t(du_path("nginx-deb.conf"), 1, "nginx-deb.out");
        cr_assert_eq(rc, 0, "nginx -t refuses %s in Debian's nginx.conf:\n%s",
                     site, du_tail(du_path("nginx-deb.out"), 2000));
        free(mine);
        free(line);
    }
    free(deb);
    free(site);
}

/* ---- the unix socket's group, and nginx as www-data --------------------- */

static void kit_hello_via_www_data(int with_group)
{
    du_mkdir("apps");
    du_mkdir("www");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    struct du_coserve s;
    du_coserve_start(&s, "cs", 1, 1, du_path("apps"),
                     with_group ? DU_ARGS("--socket-mode", "0660",
                                          "--socket-group", "www-data")
                                : DU_ARGS("--socket-mode", "0660"),
                     NULL);
    struct du_nginx n;
    du_nginx_user = "www-data";
    du_nginx_start(&n, s.sock, 9, du_path("www"));
    struct du_target t = du_via(&n);
    struct h_resp *r = du_get(&t, "/hello", NULL, with_group ? 200 : 502);
    if (with_group)
        cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);
    du_nginx_stop(&n);
    du_coserve_stop(&s);
    if (!with_group)
        cr_assert_geq(du_count_in_file(n.error_log, "(13: Permission denied)"),
                      1, "nginx's error log:\n%s", du_tail(n.error_log, 2000));
}

Test(kit, socket_group_lets_www_data_connect)
{
    KIT_REQUIRE_ROOT();
    du_setup();
    uid_t www_uid;
    gid_t www_gid;
    kit_ids("www-data", "www-data", &www_uid, &www_gid);
    du_mkdir("apps");
    du_link_app(du_apps_src(), "hello", du_path("apps"));

    struct du_coserve s;
    du_coserve_start(
        &s, "grp", 1, 1, du_path("apps"),
        DU_ARGS("--socket-mode", "0660", "--socket-group", "www-data"), NULL);
    struct stat st;
    cr_assert_eq(stat(s.sock, &st), 0);
    cr_assert_eq(st.st_gid, www_gid, "socket group %d", (int)st.st_gid);
    cr_assert_eq(st.st_mode & 0777, 0660, "socket mode %o", st.st_mode & 0777);
    cr_assert_eq(kit_connect_as(s.sock, www_uid, www_gid), 0,
                 "www-data cannot connect to a socket of group www-data");
    du_coserve_stop(&s);

    /* the same socket without the option: the README's old advice */
    du_coserve_start(&s, "nogrp", 1, 1, du_path("apps"),
                     DU_ARGS("--socket-mode", "0660"), NULL);
    int err = kit_connect_as(s.sock, www_uid, www_gid);
    cr_assert_eq(err, EACCES, "without --socket-group, www-data got %s",
                 err ? strerror(err) : "through");
    du_coserve_stop(&s);

    /* --socket-owner USER:GROUP does both */
    du_coserve_start(
        &s, "own", 1, 1, du_path("apps"),
        DU_ARGS("--socket-mode", "0600", "--socket-owner", "www-data:www-data"),
        NULL);
    cr_assert_eq(stat(s.sock, &st), 0);
    cr_assert(st.st_uid == www_uid && st.st_gid == www_gid, "owner %d:%d",
              (int)st.st_uid, (int)st.st_gid);
    cr_assert_eq(kit_connect_as(s.sock, www_uid, www_gid), 0);
    du_coserve_stop(&s);
}

Test(kit, nginx_as_www_data_reaches_the_socket_with_its_group)
{
    KIT_REQUIRE_ROOT();
    DU_REQUIRE_NGINX();
    du_setup();
    kit_hello_via_www_data(1);
}

/* The control: Debian's nginx and a 0660 socket of root's group, as the
 * README used to advise, is a 502. */
Test(kit, nginx_as_www_data_is_refused_without_the_group)
{
    KIT_REQUIRE_ROOT();
    DU_REQUIRE_NGINX();
    du_setup();
    kit_hello_via_www_data(0);
}

/* ---- --user / --group ---------------------------------------------------- */

Test(kit, user_and_group_drop_root_after_binding)
{
    KIT_REQUIRE_ROOT();
    du_setup();
    uid_t uid;
    gid_t gid;
    kit_ids("www-data", "www-data", &uid, &gid);
    du_mkdir("apps");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    struct du_coserve s;
    /* a port below 1024 would prove binding happened as root; a free one
     * is all a test may take */
    du_coserve_start(&s, "drop", 1, 2, du_path("apps"),
                     DU_ARGS("--user", "www-data", "--group", "www-data"),
                     NULL);
    pid_t kids[8];
    int n = du_workers(&s, kids, 8);
    cr_assert_eq(n, 2);
    char *c = kit_creds(s.pid);
    cr_assert(kit_creds_are(c, uid, gid), "the master runs as:\n%s", c);
    free(c);
    for (int i = 0; i < n; i++) {
        c = kit_creds(kids[i]);
        cr_assert(kit_creds_are(c, uid, gid), "worker %d runs as:\n%s",
                  (int)kids[i], c);
        free(c);
    }
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/hello", NULL, 200);
    h_resp_free(r);
    /* a reload forks new workers: still www-data */
    kill(s.pid, SIGHUP);
    cr_assert(du_wait_in_file(s.err, "serving on", 4, H_GUARD_MS), "%s",
              du_tail(s.err, 2000));
    n = du_wait_children(s.pid, 2, H_GUARD_MS);
    n = du_workers(&s, kids, 8);
    for (int i = 0; i < n; i++) {
        c = kit_creds(kids[i]);
        cr_assert(kit_creds_are(c, uid, gid), "new worker runs as:\n%s", c);
        free(c);
    }
    du_coserve_stop(&s);
    cr_assert_eq(du_count_in_file(s.err, "running as root"), 0);

    /* without the options, root is said out loud */
    du_coserve_start(&s, "root", 1, 1, du_path("apps"), NULL, NULL);
    c = kit_creds(s.pid);
    cr_assert(kit_creds_are(c, 0, 0) || strstr(c, "Uid:\t0\t"), "%s", c);
    free(c);
    du_coserve_stop(&s);
    cr_assert_eq(du_count_in_file(s.err, "running as root"), 1, "%s",
                 du_tail(s.err, 2000));
}

Test(kit, unknown_user_is_refused_at_start)
{
    du_setup();
    const char *bin = h_env("COSERVE_BIN", "build/plain/coserve");
    const char *argv[] = {bin,        "--user",      "no-such-user-coserve",
                          "--listen", "127.0.0.1:1", NULL};
    cr_assert_eq(kit_run(argv, "nouser.out"), 2);
    cr_assert_eq(
        du_count_in_file(du_path("nouser.out"),
                         "--user: no such user 'no-such-user-coserve'"),
        1, "%s", du_tail(du_path("nouser.out"), 500));
}

/* ---- logrotate ------------------------------------------------------------
 */

#define KIT_LOGROTATE "/usr/sbin/logrotate"

/* deploy/logrotate/coserve with the test's paths; without its postrotate
 * block if strip. Returns the config's path. */
static const char *kit_logrotate_conf(int strip)
{
    char *src = h_read_file("deploy/logrotate/coserve", NULL);
    cr_assert_not_null(src, "deploy/logrotate/coserve");
    const char *defaults[] = {"/var/log/coserve/", "/run/coserve/coserve.pid",
                              "create 0640 coserve adm", "/run/systemd/system"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_not_null(strstr(src, defaults[i]),
                           "deploy/logrotate/coserve has no \"%s\"",
                           defaults[i]);
    char *logs = h_fmt("%s/logs/", du.dir);
    char *pid = h_fmt("%s/run/coserve.pid", du.dir);
    char *nosd = h_fmt("%s/no-systemd-here", du.dir);
    /* the test has no coserve user: the files it would own go to root */
    const char *keys[] = {defaults[0], logs,        defaults[1],
                          pid,         defaults[2], "create 0640 root root",
                          defaults[3], nosd,        NULL};
    char *conf = du_substitute(src, keys);
    if (strip) {
        char *a = strstr(conf, "    postrotate");
        char *b = a ? strstr(a, "endscript\n") : NULL;
        cr_assert(a && b, "no postrotate block");
        memmove(a, b + strlen("endscript\n"),
                strlen(b + strlen("endscript\n")) + 1);
    }
    const char *path =
        du_path(strip ? "logrotate-nousr1.conf" : "logrotate.conf");
    h_write_file(path, conf, strlen(conf));
    free(src);
    free(logs);
    free(pid);
    free(nosd);
    free(conf);
    return path;
}

static void kit_hits(const struct du_target *t, const char *tag, int n)
{
    for (int i = 0; i < n; i++) {
        char *p = h_fmt("/hello?%s-%d", tag, i);
        struct h_resp *r = du_get(t, p, NULL, 200);
        h_resp_free(r);
        free(p);
    }
}

static void kit_rotate(int with_usr1)
{
    if (!kit_have(KIT_LOGROTATE)) {
        cr_skip_test("no logrotate (apt-get install logrotate)");
        return;
    }
    du_setup();
    du_mkdir("apps");
    du_mkdir("logs");
    du_mkdir("run");
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    const char *conf = kit_logrotate_conf(!with_usr1);
    char *log = h_fmt("%s/logs/access.log", du.dir);
    char *old = h_fmt("%s/logs/access.log.1", du.dir);
    char *pidf = h_fmt("%s/run/coserve.pid", du.dir);
    struct du_coserve s;
    du_coserve_start(&s, "rot", 0, 2, du_path("apps"),
                     DU_ARGS("--access-log", log, "--pid-file", pidf), NULL);
    char *pid = h_read_file(pidf, NULL);
    cr_assert_not_null(pid, "no --pid-file %s", pidf);
    cr_assert_eq(atoi(pid), (int)s.pid, "--pid-file holds %s", pid);
    free(pid);
    struct du_target t = du_at(&s);
    kit_hits(&t, "before", 3);
    cr_assert(du_wait_in_file(log, "/hello?before-", 3, H_GUARD_MS), "%s",
              du_tail(log, 2000));
    const char *argv[] = {KIT_LOGROTATE, "-f", "-s", du_path("logrotate.state"),
                          conf,          NULL};
    cr_assert_eq(kit_run(argv, "logrotate.out"), 0, "logrotate failed:\n%s",
                 du_tail(du_path("logrotate.out"), 2000));
    cr_assert(du_file_exists(old), "logrotate did not move %s:\n%s", log,
              du_tail(du_path("logrotate.out"), 2000));
    if (with_usr1)
        cr_assert(du_wait_in_file(s.err, "reopened ", 2, H_GUARD_MS),
                  "the workers did not reopen the log:\n%s",
                  du_tail(s.err, 2000));
    kit_hits(&t, "after", 3);
    const char *want = with_usr1 ? log : old;
    cr_assert(du_wait_in_file(want, "/hello?after-", 3, H_GUARD_MS),
              "the lines after the rotation are not in %s:\nnew: %s\nold: %s",
              want, du_tail(log, 1000), du_tail(old, 1000));
    du_coserve_stop(&s);
    if (with_usr1) {
        cr_assert_eq(du_count_in_file(log, "/hello?before-"), 0);
        cr_assert_eq(du_count_in_file(old, "/hello?after-"), 0);
        cr_assert_eq(du_count_in_file(old, "/hello?before-"), 3);
        cr_assert_eq(du_count_in_file(s.err, "master: reopening log files"), 1);
    } else {
        /* the control: logrotate's new file stays empty */
        cr_assert_eq(du_count_in_file(log, "/hello?"), 0, "%s",
                     du_tail(log, 1000));
    }
    free(log);
    free(old);
    free(pidf);
}

Test(kit, logrotate_snippet_moves_the_log_and_usr1_reopens_it)
{
    kit_rotate(1);
}

/* The control: the same rotation without the snippet's postrotate leaves
 * coserve writing to the moved file. */
Test(kit, logrotate_without_postrotate_keeps_writing_the_old_file)
{
    kit_rotate(0);
}

/* ---- systemd ----------------------------------------------------------------
 */

#define KIT_ANALYZE "/usr/bin/systemd-analyze"
#define KIT_SYSUSERS "/usr/bin/systemd-sysusers"
#define KIT_UNIT_BIN "/usr/local/bin/coserve"
#define KIT_UNIT_APPS "/usr/local/lib/coserve/apps"

Test(kit, systemd_units_pass_systemd_analyze_verify)
{
    if (!kit_have(KIT_ANALYZE)) {
        cr_skip_test("no systemd-analyze (apt-get install systemd)");
        return;
    }
    du_setup();
    du_mkdir("units");
    char *bin = du_abs(h_env("COSERVE_BIN", "build/plain/coserve"));
    char *svc = h_read_file("deploy/systemd/coserve.service", NULL);
    char *sock = h_read_file("deploy/systemd/coserve.socket", NULL);
    cr_assert(svc && sock, "deploy/systemd/coserve.{service,socket}");
    cr_assert_not_null(strstr(svc, "ExecStart=" KIT_UNIT_BIN " "));
    /* verify checks that ExecStart= exists: this build's binary there */
    const char *keys[] = {KIT_UNIT_BIN, bin, NULL};
    char *mine = du_substitute(svc, keys);
    h_write_file(du_path("units/coserve.service"), mine, strlen(mine));
    h_write_file(du_path("units/coserve.socket"), sock, strlen(sock));
    const char *argv[] = {KIT_ANALYZE, "verify",
                          du_path("units/coserve.socket"),
                          du_path("units/coserve.service"), NULL};
    int rc = kit_run(argv, "verify.out");
    /* an unknown key is only a warning (exit 0): any output fails */
    char *out = h_read_file(du_path("verify.out"), NULL);
    cr_assert(rc == 0 && out && !*out, "systemd-analyze verify (%d):\n%s", rc,
              out ? out : "");
    free(out);
    if (kit_have(KIT_SYSUSERS)) {
        du_mkdir("sysroot");
        du_mkdir("sysroot/etc");
        char *root = h_fmt("--root=%s", du_path("sysroot"));
        char *conf = du_abs("deploy/systemd/coserve.sysusers");
        const char *su[] = {KIT_SYSUSERS, root, conf, NULL};
        cr_assert_eq(kit_run(su, "sysusers.out"), 0, "%s",
                     du_tail(du_path("sysusers.out"), 1000));
        cr_assert_eq(
            du_count_in_file(du_path("sysroot/etc/passwd"), "coserve:x:"), 1,
            "%s", du_tail(du_path("sysusers.out"), 1000));
        free(root);
        free(conf);
    }
    free(bin);
    free(svc);
    free(sock);
    free(mine);
}

/* The value of the first "Key=" line in a unit (continuation lines
 * joined), or NULL. Static buffer. */
static const char *kit_unit_value(const char *unit, const char *key)
{
    static char val[2048];
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s=", key);
    const char *p = strstr(unit, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = 0;
    while (*p && *p != '\n' && n < sizeof val - 1) {
        if (p[0] == '\\' && p[1] == '\n') {
            p += 2;
            val[n++] = ' ';
            continue;
        }
        val[n++] = *p++;
    }
    val[n] = '\0';
    return val;
}

/* Where a unit's absolute path lands in the test's root: under T/root. */
static char *kit_rooted(const char *path)
{
    return h_fmt("%s/root%s", du.dir, path);
}

static void kit_mkdir_p(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    char *d = strdup(path);
    for (char *p = d + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char c = *p;
        *p = '\0';
        cr_assert(mkdir(d, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", d,
                  strerror(errno));
        *p = c;
        if (!c)
            break;
    }
    cr_assert_eq(chmod(d, mode), 0);
    cr_assert_eq(chown(d, uid, gid), 0);
    free(d);
}

/* Starts coserve as coserve.service says, with the socket coserve.socket
 * says (systemd's part: the socket, its owner and mode, fd 3 and
 * LISTEN_FDS, User=/Group=, the directories and their variables,
 * WorkingDirectory=). The unit's user coserve is played by `user` when the
 * machine has no coserve user. */
struct kit_unit_run {
    pid_t pid;
    int listen_fd; /* systemd's copy */
    char sock[300];
    char state[300];
    char logs[300];
    char err[300];
};

static void kit_start_as_units(struct kit_unit_run *u, const char *user,
                               const char *group)
{
    char *svc = h_read_file("deploy/systemd/coserve.service", NULL);
    char *sock = h_read_file("deploy/systemd/coserve.socket", NULL);
    cr_assert(svc && sock);
    const char *v;
    /* coserve.socket */
    cr_assert_not_null(v = kit_unit_value(sock, "ListenStream"));
    cr_assert_eq(v[0], '/', "ListenStream=%s is not a unix socket path", v);
    char *path = kit_rooted(v);
    snprintf(u->sock, sizeof u->sock, "%s", path);
    cr_assert_not_null(v = kit_unit_value(sock, "SocketMode"));
    mode_t sock_mode = (mode_t)strtol(v, NULL, 8);
    cr_assert_not_null(v = kit_unit_value(sock, "SocketUser"));
    const char *sock_user =
        strcmp(v, "coserve") == 0 && !getpwnam("coserve") ? user : v;
    char sock_user_buf[64];
    snprintf(sock_user_buf, sizeof sock_user_buf, "%s", sock_user);
    cr_assert_not_null(v = kit_unit_value(sock, "SocketGroup"));
    char sock_group[64];
    snprintf(sock_group, sizeof sock_group, "%s", v);
    uid_t suid;
    gid_t sgid;
    kit_ids(sock_user_buf, sock_group, &suid, &sgid);
    cr_assert_not_null(v = kit_unit_value(sock, "DirectoryMode"));
    mode_t dir_mode = (mode_t)strtol(v, NULL, 8);
    /* coserve.service's user */
    cr_assert_not_null(v = kit_unit_value(svc, "User"));
    const char *unit_user =
        strcmp(v, "coserve") == 0 && !getpwnam("coserve") ? user : v;
    char run_user[64];
    snprintf(run_user, sizeof run_user, "%s", unit_user);
    cr_assert_not_null(v = kit_unit_value(svc, "Group"));
    char run_group[64];
    snprintf(run_group, sizeof run_group, "%s",
             strcmp(v, "coserve") == 0 && !getgrnam("coserve") ? group : v);
    uid_t uid;
    gid_t gid;
    kit_ids(run_user, run_group, &uid, &gid);

    /* systemd's part, as root: the socket's directory and the socket */
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    kit_mkdir_p(dir, dir_mode, 0, 0);
    free(dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof un.sun_path);
    strcpy(un.sun_path, path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&un, sizeof un), 0, "bind %s: %s",
                 path, strerror(errno));
    cr_assert_eq(listen(fd, SOMAXCONN), 0);
    cr_assert_eq(chown(path, suid, sgid), 0);
    cr_assert_eq(chmod(path, sock_mode), 0);
    u->listen_fd = fd;
    free(path);

    /* StateDirectory=, LogsDirectory= (under /var/lib, /var/log) */
    cr_assert_not_null(v = kit_unit_value(svc, "StateDirectory"));
    char *p = h_fmt("/var/lib/%s", v);
    char *rooted = kit_rooted(p);
    snprintf(u->state, sizeof u->state, "%s", rooted);
    free(p);
    free(rooted);
    cr_assert_not_null(v = kit_unit_value(svc, "StateDirectoryMode"));
    kit_mkdir_p(u->state, (mode_t)strtol(v, NULL, 8), uid, gid);
    cr_assert_not_null(v = kit_unit_value(svc, "LogsDirectory"));
    p = h_fmt("/var/log/%s", v);
    rooted = kit_rooted(p);
    snprintf(u->logs, sizeof u->logs, "%s", rooted);
    free(p);
    free(rooted);
    cr_assert_not_null(v = kit_unit_value(svc, "LogsDirectoryMode"));
    kit_mkdir_p(u->logs, (mode_t)strtol(v, NULL, 8), uid, gid);
    cr_assert_not_null(v = kit_unit_value(svc, "WorkingDirectory"));
    char *cwd = kit_rooted(v);

    /* ExecStart=, its paths in the test's root; the binary and the apps
     * are this build's */
    cr_assert_not_null(v = kit_unit_value(svc, "ExecStart"));
    char *bin = du_abs(h_env("COSERVE_BIN", "build/plain/coserve"));
    char *var_log = kit_rooted("/var/log/coserve");
    const char *keys[] = {
        KIT_UNIT_BIN,       bin,     KIT_UNIT_APPS, du_path("apps"),
        "/var/log/coserve", var_log, NULL};
    char *cmd = du_substitute(v, keys);
    const char *argv[64];
    int argc = 0;
    for (char *t = strtok(cmd, " \t"); t && argc < 63; t = strtok(NULL, " \t"))
        argv[argc++] = t;
    argv[argc] = NULL;
    char *state_env = h_fmt("STATE_DIRECTORY=%s", u->state);
    char *logs_env = h_fmt("LOGS_DIRECTORY=%s", u->logs);
    snprintf(u->err, sizeof u->err, "%s/units.log", du.dir);
    int logfd = open(u->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(logfd >= 0);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (dup2(fd, 3) < 0)
            _exit(126);
        close_range(4, ~0U, 0);
        char lp[32];
        snprintf(lp, sizeof lp, "LISTEN_PID=%d", (int)getpid());
        putenv(lp);
        putenv("LISTEN_FDS=1");
        putenv("LISTEN_FDNAMES=coserve.socket");
        putenv(state_env);
        putenv(logs_env);
        if (chdir(cwd) < 0 || setgroups(1, &gid) < 0 || setgid(gid) < 0 ||
            setuid(uid) < 0)
            _exit(125);
        umask(027); /* UMask= */
        execv(argv[0], (char *const *)argv);
        _exit(124);
    }
    close(logfd);
    free(state_env); /* the child has its own copies */
    free(logs_env);
    du_track(pid, DU_COSERVE);
    u->pid = pid;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = ncpu > 0 ? (int)ncpu : 1;
    int64_t end = h_now_ms() + DU_START_MS;
    while (du_count_in_file(u->err, "serving on") < workers) {
        int status;
        cr_assert(!du_wait_exit(pid, 0, &status),
                  "coserve exited at start (0x%x):\n%s", status,
                  du_tail(u->err, 3000));
        cr_assert(h_now_ms() < end, "coserve did not serve:\n%s",
                  du_tail(u->err, 3000));
        h_sleep_ms(10);
    }
    char *c = kit_creds(pid);
    cr_assert(kit_creds_are(c, uid, gid), "coserve runs as:\n%s", c);
    free(c);
    free(svc);
    free(sock);
    free(cwd);
    free(bin);
    free(var_log);
    free(cmd);
}

Test(kit, coserve_runs_as_the_systemd_units_say)
{
    KIT_REQUIRE_ROOT();
    DU_REQUIRE_NGINX();
    du_setup();
    if (!getpwnam("nobody") || !getgrnam("nogroup") || !getgrnam("www-data")) {
        cr_skip_test("needs the users nobody and www-data");
        return;
    }
    du_mkdir("apps");
    du_mkdir("www");
    du_link_all_apps(du_apps_src(), du_path("apps"));
    struct kit_unit_run u;
    /* "nobody" plays the unit's coserve user when there is none */
    kit_start_as_units(&u, "nobody", "nogroup");

    struct du_nginx n;
    du_nginx_user = "www-data"; /* Debian's nginx */
    du_nginx_start(&n, u.sock, 9, du_path("www"));
    struct du_target t = du_via(&n);
    struct h_resp *r = du_get(&t, "/hello", NULL, 200);
    cr_assert_str_eq(r->body, "Hello, World!\n");
    h_resp_free(r);

    /* notes: its database in StateDirectory= */
    static const char body[] = "{\"text\": \"kept in the state directory\"}";
    char *raw = h_fmt("POST /notes HTTP/1.1\r\nHost: coserve.test\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    r = du_request(&t, raw, strlen(raw), 201);
    h_resp_free(r);
    free(raw);
    char *db = h_fmt("%s/notes.db", u.state);
    cr_assert(du_file_exists(db), "no %s:\n%s", db, du_tail(u.err, 2000));
    free(db);

    /* fanout: its own /sleep, over the socket systemd made */
    r = du_get(&t, "/fanout?n=3&path=/hello&show=1", NULL, 200);
    for (int i = 0; i < 3; i++) {
        char *line = h_fmt("%d 200 14 ", i);
        cr_assert_not_null(strstr(r->body, line), "%s", r->body);
        free(line);
    }
    cr_assert_not_null(strstr(r->body, "body 2: Hello, World!"), "%s", r->body);
    h_resp_free(r);

    /* ExecReload=: HUP to $MAINPID */
    kill(u.pid, SIGHUP);
    cr_assert(
        du_wait_in_file(u.err, "reload: starting generation 2", 1, H_GUARD_MS));
    r = du_get(&t, "/hello", NULL, 200);
    h_resp_free(r);
    du_nginx_stop(&n);

    /* KillSignal=SIGTERM: a clean stop, and systemd's socket stays */
    kill(u.pid, SIGTERM);
    int status;
    cr_assert(du_wait_exit(u.pid, DU_STOP_MS, &status), "no stop:\n%s",
              du_tail(u.err, 2000));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "0x%x:\n%s",
              status, du_tail(u.err, 3000));
    cr_assert_null(h_log_problem_in(u.err, 0), "%s", du_tail(u.err, 3000));
    cr_assert(du_file_exists(u.sock), "coserve removed systemd's socket");
    /* the next start's clients wait in its backlog meanwhile */
    cr_assert_eq(du_try_connect_unix_once(u.sock), 0);
    char *access = h_fmt("%s/access.log", u.logs);
    cr_assert_geq(du_count_in_file(access, "GET /hello HTTP/1.1\" 200"), 2,
                  "%s", du_tail(access, 2000));
    free(access);
    close(u.listen_fd);
}

/* ---- the notes app's data directory ---------------------------------------
 */

Test(kit, notes_creates_var_in_an_empty_working_directory)
{
    du_setup();
    du_mkdir("apps");
    du_mkdir("cwd");
    du_link_app(du_apps_src(), "notes", du_path("apps"));
    /* the suite's paths are relative to the repository: absolute first */
    char *bin = du_abs(h_env("COSERVE_BIN", "build/plain/coserve"));
    setenv("COSERVE_BIN", bin, 1);
    cr_assert_eq(chdir(du_path("cwd")), 0);
    struct du_coserve s;
    du_coserve_start(&s, "notes", 0, 1, du_path("apps"), NULL,
                     DU_ARGS("COSERVE_NOTES_DB=", "STATE_DIRECTORY="));
    struct du_target t = du_at(&s);
    static const char body[] = "{\"text\": \"var was made\"}";
    char *raw = h_fmt("POST /notes HTTP/1.1\r\nHost: coserve.test\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    struct h_resp *r = du_request(&t, raw, strlen(raw), 201);
    h_resp_free(r);
    free(raw);
    du_coserve_stop(&s);
    struct stat st;
    cr_assert_eq(stat(du_path("cwd/var"), &st), 0, "%s", du_tail(s.err, 2000));
    cr_assert_eq(st.st_mode & 0777, 0750, "var/ mode %o", st.st_mode & 0777);
    cr_assert(du_file_exists(du_path("cwd/var/notes.db")));
    free(bin);
}

Test(kit, notes_uses_state_directory_and_creates_it)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_apps_src(), "notes", du_path("apps"));
    char *env = h_fmt("STATE_DIRECTORY=%s/state/a/b", du.dir);
    struct du_coserve s;
    du_coserve_start(&s, "notes", 0, 1, du_path("apps"), NULL,
                     DU_ARGS(env, "COSERVE_NOTES_DB="));
    cr_assert_eq(du_count_in_file(s.err, "notes.so refused"), 0, "%s",
                 du_tail(s.err, 2000));
    du_coserve_stop(&s);
    cr_assert(du_file_exists(du_path("state/a/b/notes.db")), "%s",
              du_tail(s.err, 2000));
    free(env);
}

/* A directory it may not create: one line naming it and why, not four
 * "cannot open" lines and an Input/output error. */
Test(kit, notes_names_the_directory_it_cannot_create)
{
    KIT_REQUIRE_ROOT(); /* root may write anywhere: run the app as nobody */
    du_setup();
    if (!getpwnam("nobody") || !getgrnam("nogroup")) {
        cr_skip_test("no user nobody");
        return;
    }
    du_mkdir("apps");
    du_mkdir("ro");
    du_link_app(du_apps_src(), "notes", du_path("apps"));
    du_link_app(du_apps_src(), "hello", du_path("apps"));
    char *env = h_fmt("COSERVE_NOTES_DB=%s/ro/data/notes.db", du.dir);
    struct du_coserve s;
    du_coserve_start(&s, "notes", 0, 1, du_path("apps"),
                     DU_ARGS("--user", "nobody", "--group", "nogroup"),
                     DU_ARGS(env));
    du_coserve_stop(&s);
    char *want = h_fmt("notes: cannot create the data directory %s/ro/data: "
                       "Permission denied",
                       du.dir);
    cr_assert_eq(du_count_in_file(s.err, want), 1, "%s", du_tail(s.err, 3000));
    cr_assert_eq(du_count_in_file(s.err, "notes: "), 1, "%s",
                 du_tail(s.err, 3000));
    cr_assert_eq(du_count_in_file(s.err, "Input/output error"), 0);
    cr_assert_eq(du_count_in_file(s.err, "notes.so refused"), 1);
    free(want);
    free(env);
}

/* ---- fanout behind a unix socket -------------------------------------------
 */

Test(kit, fanout_calls_its_own_server_over_the_unix_socket)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_apps_src(), "fanout", du_path("apps"));
    du_link_app(du_apps_src(), "sleep", du_path("apps"));
    struct du_coserve s;
    du_coserve_start(&s, "fan", 1, 1, du_path("apps"), NULL, NULL);
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/fanout?n=3", NULL, 200);
    for (int i = 0; i < 3; i++) {
        char *line = h_fmt("%d 200 ", i);
        cr_assert_not_null(strstr(r->body, line), "%s", r->body);
        free(line);
    }
    cr_assert_null(strstr(r->body, "error"), "%s", r->body);
    h_resp_free(r);
    du_coserve_stop(&s);
    cr_assert_eq(du_count_in_file(s.access, "\"GET /sleep?ms=100 HTTP/1.1\" "
                                            "200"),
                 3, "%s", du_tail(s.access, 2000));
}
