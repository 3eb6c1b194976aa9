/*
 * test_cli.c - the command line and the logs (server/options.c,
 * server/listeners.c, server/core/errcap.c, server/http/accesslog_json.c):
 * --help generated from the option table, one-line errors with exit 2,
 * the short forms, several --listen addresses, a missing --apps folder,
 * app stderr as error log lines, and the JSON access log.
 */
#include "deploy_util.h"

#include <jansson.h>
#include <regex.h>

TestSuite(cli, .fini = du_teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------ */

/* Runs coserve with args to its exit; its stdout and stderr in *out and
 * *err (the caller frees). Returns the exit status (-1: did not exit). */
static int cli_run(const char *const *args, char **out, char **err)
{
    du_setup();
    const char *argv[64];
    int argc = 0;
    argv[argc++] = h_env("COSERVE_BIN", "build/plain/coserve");
    for (int i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    const char *o = du_path("run.out"), *e = du_path("run.err");
    char opath[300], epath[300];
    snprintf(opath, sizeof opath, "%s", o);
    snprintf(epath, sizeof epath, "%s", e);
    du_truncate(opath);
    du_truncate(epath);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fo = open(opath, O_WRONLY | O_TRUNC);
        int fe = open(epath, O_WRONLY | O_TRUNC);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    du_track(pid, DU_COSERVE);
    if (!du_wait_exit(pid, DU_STOP_MS, &status)) {
        du_kill_tree(pid);
        return -1;
    }
    *out = h_read_file(opath, NULL);
    *err = h_read_file(epath, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int cli_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The option table's rows, read from server/options.c: each .name = "X"
 * with the .dflt = "Y" of the same row (NULL: none). */
struct cli_row {
    char name[64];
    char dflt[128];
    int has_dflt;
};

static int cli_table(struct cli_row *rows, int max)
{
    char *src = h_read_file("server/options.c", NULL);
    cr_assert_not_null(src, "server/options.c: run from the repository root");
    char *table = strstr(src, "opt_table[] = {");
    cr_assert_not_null(table);
    int n = 0;
    for (char *p = table; (p = strstr(p, ".name = \"")) && n < max;) {
        p += 9;
        char *end = strchr(p, '"');
        snprintf(rows[n].name, sizeof rows[n].name, "%.*s", (int)(end - p), p);
        char *next = strstr(end, ".name = \"");
        char *d = strstr(end, ".dflt = \"");
        rows[n].has_dflt = d && (!next || d < next);
        if (rows[n].has_dflt) {
            d += 9;
            snprintf(rows[n].dflt, sizeof rows[n].dflt, "%.*s",
                     (int)(strchr(d, '"') - d), d);
        }
        n++;
        p = end;
    }
    free(src);
    return n;
}

/* help with runs of whitespace made one space: wrapped text compares. */
static char *cli_squeeze(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            if (o > out && o[-1] != ' ')
                *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* Starts coserve with argv (after the binary) and waits for `workers`
 * "serving on" lines in log. Returns the master's pid. */
static pid_t cli_start(const char *const *args, const char *log, int workers)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = h_env("COSERVE_BIN", "build/plain/coserve");
    for (int i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    du_truncate(log);
    pid_t pid = du_spawn(argv, log, NULL, DU_COSERVE);
    cr_assert(du_wait_in_file(log, "serving on", workers, DU_START_MS),
              "coserve did not serve; its log:\n%s", du_tail(log, 3000));
    return pid;
}

static void cli_stop(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    int status;
    cr_assert(du_wait_exit(pid, DU_STOP_MS, &status), "no stop:\n%s",
              du_tail(log, 3000));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "status 0x%x; log:\n%s", status, du_tail(log, 3000));
}

/* ---- --help ------------------------------------------------------------- */

/* Where "--NAME" heads an option line of --help ("  -x, --NAME ARG" or
 * "      --NAME ARG"), or NULL. */
static const char *cli_head(const char *line, const char *name)
{
    const char *s;
    if (strncmp(line, "      --", 8) == 0)
        s = line + 6;
    else if (strncmp(line, "  -", 3) == 0 && line[3] != '-' &&
             strncmp(line + 4, ", --", 4) == 0)
        s = line + 6;
    else
        return NULL; /* a continuation line may start with a flag too */
    size_t k = strlen(name);
    if (strncmp(s + 2, name, k) == 0 && (s[2 + k] == ' ' || s[2 + k] == '\n'))
        return s;
    return NULL;
}

Test(cli, help_lists_every_option_of_the_table_once_with_its_default)
{
    struct cli_row rows[80];
    int n = cli_table(rows, 80);
    cr_assert_gt(n, 30, "the table parsed to %d rows", n);
    char *out, *err;
    cr_assert_eq(cli_run(DU_ARGS("--help"), &out, &err), 0);
    for (int i = 0; i < n; i++) {
        int heads = 0;
        const char *block = NULL;
        for (const char *l = out; l && *l; l = strchr(l, '\n')) {
            if (*l == '\n')
                l++;
            if (cli_head(l, rows[i].name)) {
                heads++;
                block = l;
            }
        }
        cr_expect_eq(heads, 1, "--%s heads %d lines of --help:\n%s",
                     rows[i].name, heads, out);
        if (!block || !rows[i].has_dflt)
            continue;
        /* the option's block: its head line and the indented lines after */
        const char *end = strchr(block, '\n');
        while (end && strncmp(end + 1, "        ", 8) == 0)
            end = strchr(end + 1, '\n');
        char *text =
            strndup(block, end ? (size_t)(end - block) : strlen(block));
        char *flat = cli_squeeze(text);
        char want[200];
        snprintf(want, sizeof want, "(default: %s)", rows[i].dflt);
        char *flat_want = cli_squeeze(want);
        cr_expect(strstr(flat, flat_want), "--%s: '%s' not in its help: %s",
                  rows[i].name, want, flat);
        free(flat_want);
        free(flat);
        free(text);
    }
    free(out);
    free(err);
}

/* ---- errors ------------------------------------------------------------- */

Test(cli, a_bad_value_of_each_kind_is_one_line_and_exit_2)
{
    static const char *const cases[][4] = {
        {"--workers", "x", "--workers", NULL},
        {"-w", "0", "--workers", NULL},
        {"--max-url-bytes", "1M", "--max-url-bytes", NULL},
        {"--max-body-bytes", "-5", "--max-body-bytes", NULL},
        {"--header-timeout", "5x", "--header-timeout", NULL},
        {"--timeout", "soon", "--timeout", NULL},
        {"--socket-mode", "9", "--socket-mode", NULL},
        {"--log-level", "loud", "--log-level", NULL},
        {"--access-log-format", "xml", "--access-log-format", NULL},
        {"--stream-listen", "nameless", "--stream-listen", NULL},
        {"--forwarded-allow-ips", "10.0.0.0/99", "--forwarded-allow-ips", NULL},
        {"--listen", "nocolon", "--listen", NULL},
        {"--no-hooks=1", NULL, "--no-hooks", NULL},
        {"--no-such-flag", NULL, "--no-such-flag", NULL},
        {"--apps", NULL, "--apps", NULL},
        {"stray", NULL, "stray", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[3] = {cases[i][0], cases[i][1], NULL};
        char *out, *err;
        int rc = cli_run(args, &out, &err);
        cr_expect_eq(rc, 2, "%s %s: exit %d", cases[i][0],
                     cases[i][1] ? cases[i][1] : "", rc);
        cr_expect_eq(cli_lines(err), 1, "%s: not one line:\n%s", cases[i][0],
                     err);
        cr_expect(strncmp(err, "coserve: ", 9) == 0 && strstr(err, cases[i][2]),
                  "%s: the line does not name it: %s", cases[i][0], err);
        cr_expect_eq(out[0], '\0', "%s: stdout: %s", cases[i][0], out);
        free(out);
        free(err);
    }
}

Test(cli, a_missing_apps_folder_exits_2_with_one_line)
{
    char *out, *err;
    int port = h_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    int rc = cli_run(DU_ARGS("--listen", listen, "--apps",
                             "/nonexistent/coserve-apps", "--www", "off"),
                     &out, &err);
    cr_assert_eq(rc, 2, "exit %d:\n%s", rc, err);
    cr_assert_eq(cli_lines(err), 1, "not one line:\n%s", err);
    cr_assert(strstr(err, "coserve: --apps /nonexistent/coserve-apps: "), "%s",
              err);
    free(out);
    free(err);
}

/* ---- serving ------------------------------------------------------------ */

Test(cli, short_forms_b_and_w_serve)
{
    du_setup();
    char listen[64], port_text[16];
    int port = h_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(port_text, sizeof port_text, "%d", port);
    const char *log = du_path("short.log");
    char logp[300];
    snprintf(logp, sizeof logp, "%s", log);
    pid_t pid =
        cli_start(DU_ARGS("-b", listen, "-w", "2", "--apps", du_apps_src(),
                          "--www", "off", "--access-log", "off"),
                  logp, 2);
    cr_assert_eq(du_wait_children(pid, 2, DU_START_MS), 2);
    struct du_target t = {.port = port};
    struct h_resp *r = du_get(&t, "/hello", NULL, 200);
    h_resp_free(r);
    cli_stop(pid, logp);
}

Test(cli, two_listen_addresses_tcp_and_unix_both_serve_hello)
{
    du_setup();
    int port = h_free_port();
    char tcp[64], sock[300], unix_spec[320], logp[300];
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", port);
    snprintf(sock, sizeof sock, "%s", du_path("two.sock"));
    snprintf(unix_spec, sizeof unix_spec, "unix:%s", sock);
    snprintf(logp, sizeof logp, "%s", du_path("two.log"));
    pid_t pid = cli_start(DU_ARGS("--listen", tcp, "--listen", unix_spec,
                                  "--workers", "2", "--apps", du_apps_src(),
                                  "--www", "off", "--access-log", "off"),
                          logp, 2);
    /* one "serving on" line per worker, naming both */
    char *log = h_read_file(logp, NULL);
    cr_assert(strstr(log, tcp) && strstr(log, unix_spec), "%s", log);
    free(log);
    struct du_target t_tcp = {.port = port}, t_unix = {.unix_path = sock};
    for (int i = 0; i < 4; i++) {
        struct h_resp *r = du_get(&t_tcp, "/hello", NULL, 200);
        h_resp_free(r);
        r = du_get(&t_unix, "/hello", NULL, 200);
        h_resp_free(r);
    }
    cli_stop(pid, logp);
    /* the master removed the unix socket it made */
    cr_assert(!du_file_exists(sock), "%s is still there", sock);
}

/* ---- app stderr --------------------------------------------------------- */

/* The log's line holding text, which must read "TIME coserve[PID] warn:
 * SOURCE: text" (the whole line). */
static void cli_expect_line(const char *log, const char *source,
                            const char *text)
{
    char pattern[512];
    snprintf(pattern, sizeof pattern,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "
             "coserve\\[[0-9]+\\] warn: %s: %s$",
             source, text);
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    int found = regexec(&re, log, 0, NULL, 0) == 0;
    regfree(&re);
    cr_expect(found, "no line '%s: %s' in the log:\n%s", source, text, log);
}

Test(cli, app_stderr_lines_carry_time_level_and_the_app_name)
{
    du_setup();
    du_mkdir("errapps");
    du_link_app(du_test_apps_src(), "errout", du_path("errapps"));
    char apps[300];
    snprintf(apps, sizeof apps, "%s", du_path("errapps"));
    struct du_coserve s;
    du_coserve_start(&s, "err", 0, 1, apps, NULL, NULL);
    struct du_target t = du_at(&s);
    const char *paths[] = {"/errout/fprintf", "/errout/partial",
                           "/errout/perror", "/errout/write", "/errout/child"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        struct h_resp *r = du_get(&t, paths[i], NULL, 200);
        h_resp_free(r);
    }
    cr_assert(du_wait_in_file(s.err, "errout child line", 1, DU_START_MS));
    du_coserve_stop(&s);
    char *log = h_read_file(s.err, NULL);
    cli_expect_line(log, "stderr", "errout init");
    cli_expect_line(log, "app errout", "errout fprintf line 42");
    cli_expect_line(log, "app errout", "errout part one, part two");
    cli_expect_line(log, "app errout",
                    "errout perror line: No such file or directory");
    cli_expect_line(log, "app errout", "errout write one");
    cli_expect_line(log, "app errout", "errout write two");
    cli_expect_line(log, "app errout", "errout child line");
    /* the server's own lines are unchanged */
    cr_expect(strstr(log, "] info: serving on "), "%s", log);
    cr_expect(!strstr(log, "warn: app errout: 20"), "a log line captured");
    free(log);
}

/* ---- the JSON access log ------------------------------------------------ */

Test(cli, the_json_access_log_parses_for_every_line_even_hostile_requests)
{
    struct du_coserve s;
    du_coserve_start(&s, "json", 0, 1, NULL,
                     DU_ARGS("--access-log-format", "json"), NULL);
    struct du_target t = du_at(&s);
    static const char *const raw[] = {
        "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: plain\r\n\r\n",
        /* quotes, backslashes, UTF-8 and not-UTF-8 in the target */
        "GET /hello?q=%22\"\\\xc3\xa9\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        /* hostile headers: quotes, backslashes, tabs, high bytes */
        "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\\c\td "
        "\xc3\xa9 \xff \xed\xa0\x80 \xf4\x90\x80\x80\r\nReferer: "
        "\"\\\"\r\n\r\n",
        /* a control byte in the target: refused, still logged */
        "GET /he\x01llo HTTP/1.1\r\nHost: x\r\n\r\n",
        /* not HTTP at all */
        "\x16\x03\x01\x02\x00 \"\\\xff\r\n\r\n",
        "GET /nowhere\"x HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    size_t n = sizeof raw / sizeof *raw;
    for (size_t i = 0; i < n; i++) {
        struct h_conn *c = du_connect(&t);
        cr_assert_not_null(c);
        struct h_resp r;
        char why[256];
        du_exchange(c, raw[i], strlen(raw[i]), &r, 0, H_GUARD_MS, why,
                    sizeof why);
        du_resp_clear(&r);
        h_close(c);
    }
    du_coserve_stop(&s);
    char *text = h_read_file(s.access, NULL);
    cr_assert_not_null(text);
    size_t lines = 0;
    int saw_ffd = 0, saw_e_acute = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        cr_assert_not_null(j, "line %zu is not JSON (%s): %s", lines + 1,
                           e.text, line);
        static const char *const strs[] = {"time", "remote", "method"};
        for (size_t k = 0; k < 3; k++)
            cr_expect(json_is_string(json_object_get(j, strs[k])), "%s: %s",
                      strs[k], line);
        /* null: not sent, or a head refused before it was parsed */
        static const char *const maybe[] = {"target", "referer", "user_agent",
                                            "app"};
        for (size_t k = 0; k < 4; k++) {
            json_t *v = json_object_get(j, maybe[k]);
            cr_expect(v && (json_is_string(v) || json_is_null(v)), "%s: %s",
                      maybe[k], line);
        }
        cr_expect(json_is_integer(json_object_get(j, "status")), "%s", line);
        cr_expect(json_is_integer(json_object_get(j, "bytes")), "%s", line);
        cr_expect(json_is_number(json_object_get(j, "duration")), "%s", line);
        const char *ua = json_string_value(json_object_get(j, "user_agent"));
        if (ua && strstr(ua, "a\"b\\c\td ")) {
            saw_ffd = strstr(ua, "\xef\xbf\xbd") != NULL;
            saw_e_acute = strstr(ua, "\xc3\xa9") != NULL;
            /* a surrogate and a code point past U+10FFFF are not UTF-8 */
            cr_expect(!strstr(ua, "\xed\xa0\x80") && !strstr(ua, "\xf4\x90"),
                      "%s", line);
        }
        json_decref(j);
        lines++;
    }
    cr_expect_eq(lines, n, "%zu lines for %zu requests:\n%s", lines, n, text);
    cr_expect(saw_ffd && saw_e_acute, "user agent escaping:\n%s", text);
    free(text);
}
