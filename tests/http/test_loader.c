/*
 * test_loader.c - loading a folder of apps: every module that cannot serve
 * (wrong ABI, failing init, no descriptor, a mount already taken, not a
 * shared object at all) is refused with a log line naming the file and the
 * reason, and the others serve. Also: a handler that fails before responding
 * gets the client a 500; one that fails mid-response gets the connection
 * closed.
 *
 * The test apps live in tests/apps/NAME/ and are built by `make apps` into
 * $COSERVE_TEST_APPS (build/test-apps). Each test links the modules it wants
 * into its own temp apps folder.
 */
#include "harness.h"

TestSuite(loader, .fini = h_teardown, .timeout = 60);

#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"

/* Symlinks DIR/NAME.so (DIR: $COSERVE_APPS or $COSERVE_TEST_APPS) into the
 * test's apps folder as link_name. */
static void link_app(int test_app, const char *name, const char *link_name)
{
    h_setup();
    const char *dir = test_app ? h_env("COSERVE_TEST_APPS", "build/test-apps")
                               : h_env("COSERVE_APPS", "build/apps");
    char rel[PATH_MAX], target[PATH_MAX], link[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/%s.so", dir, name);
    cr_assert_not_null(realpath(rel, target), "%s: %s (run `make apps` first)",
                       rel, strerror(errno));
    snprintf(link, sizeof link, "%s/%s", h_srv.apps, link_name);
    cr_assert_eq(symlink(target, link), 0, "symlink %s: %s", link,
                 strerror(errno));
}

/* Asserts stderr has a refusal line for apps/file that contains reason. */
static void assert_refused(const char *file, const char *reason)
{
    char want[PATH_MAX];
    snprintf(want, sizeof want, "app %s/%s refused", h_srv.apps, file);
    char *log = h_stderr();
    const char *line = strstr(log, want);
    cr_assert_not_null(line, "no refusal of %s in the log:\n%s", file, log);
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    cr_assert_not_null(memmem(line, len, reason, strlen(reason)),
                       "the refusal of %s does not say '%s': %.*s", file,
                       reason, (int)len, line);
    free(log);
}

static void start_with_apps(const char *const *extra)
{
    const char *args[32];
    int n = 0;
    args[n++] = "--apps";
    args[n++] = h_srv.apps;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    h_start(args);
}

Test(loader, broken_apps_are_refused_by_name_and_reason_and_the_rest_serve)
{
    link_app(0, "hello", "hello.so");
    link_app(1, "badabi", "badabi.so");
    link_app(1, "failinit", "failinit.so");
    link_app(1, "noapp", "noapp.so");
    /* named to load after hello.so (the folder loads in name order) */
    link_app(1, "dupmount", "zz-dupmount.so");
    start_with_apps(NULL);

    assert_refused("badabi.so", "ABI version");
    assert_refused("failinit.so", "init failed");
    assert_refused("noapp.so", "coserve_app");
    assert_refused("zz-dupmount.so", "mount '/hello' is taken");
    char by[PATH_MAX];
    snprintf(by, sizeof by, "is taken by %s/hello.so", h_srv.apps);
    cr_assert(h_stderr_has(by), "the refusal names who holds the mount");
    cr_assert(!h_stderr_has("app hello.so refused") &&
                  !h_stderr_has("/hello.so refused"),
              "hello itself was refused:\n%s", h_stderr_tail(3000));

    /* hello serves, and it is hello, not dupmount */
    h_assert_serving();
    /* the refused ones are not routed */
    struct h_resp *r =
        h_request("GET /badabi HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    r = h_request("GET /failinit HTTP/1.1\r\nHost: t\r\n\r\n", 0, 404);
    h_resp_free(r);
    h_stop();
}

/* Regression: the name of an app without .name pointed at the loader's
 * freed copy of the file name (ASan: heap-use-after-free in app init; the
 * harness fails the test on the server's sanitizer report at h_stop). */
Test(loader, an_app_without_a_name_is_named_after_its_file)
{
    link_app(1, "noname", "noname.so");
    start_with_apps(NULL);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "app noname: %s/noname.so mounted at /noname",
             h_srv.apps);
    cr_assert(h_stderr_has(want), "no '%s' in the log:\n%s", want,
              h_stderr_tail(3000));
    struct h_resp *r =
        h_request("GET /noname HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    cr_assert_str_eq(r->body, "nameless\n");
    h_resp_free(r);
    /* the name is read again per request, long after loading */
    r = h_request("GET /noname/fail HTTP/1.1\r\nHost: t\r\n\r\n", 0, 500);
    h_resp_free(r);
    cr_assert(
        h_wait_stderr("app noname failed on GET /noname/fail", H_GUARD_MS),
        "the failure is not logged under the derived name:\n%s",
        h_stderr_tail(3000));
    h_stop();
}

Test(loader, the_first_app_in_name_order_keeps_a_contested_mount)
{
    /* "dupmount.so" sorts before "hello.so": it takes /hello */
    link_app(1, "dupmount", "dupmount.so");
    link_app(0, "hello", "hello.so");
    start_with_apps(NULL);
    assert_refused("hello.so", "mount '/hello' is taken");
    struct h_resp *r = h_request(GET_HELLO, 0, 200);
    cr_assert_str_eq(r->body, "dupmount answered\n");
    h_resp_free(r);
    h_stop();
}

Test(loader, files_that_are_not_shared_objects_are_refused)
{
    link_app(0, "hello", "hello.so");
    h_write_file(h_path("apps/junk.so"), "not an ELF file\n", 16);
    h_write_file(h_path("apps/readme.txt"), "ignored: not .so\n", 17);
    h_write_file(h_path("apps/.hidden.so"), "ignored: dotfile\n", 17);
    start_with_apps(NULL);
    assert_refused("junk.so", "cannot load");
    cr_assert(!h_stderr_has("readme.txt"), "a .txt file was looked at");
    cr_assert(!h_stderr_has(".hidden.so"), "a dotfile was looked at");
    h_assert_serving();
    h_stop();
}

Test(loader, an_empty_apps_folder_still_serves_static_files)
{
    start_with_apps(NULL); /* the temp apps folder is empty */
    struct h_resp *r = h_request(GET_HELLO, 0, 404);
    h_resp_free(r);
    r = h_request("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    h_resp_free(r);
    h_stop();
}

/* A missing --apps folder is fatal at startup: tests/deploy/test_cli.c. */

Test(loader, a_handler_failing_before_responding_gets_a_500)
{
    link_app(0, "hello", "hello.so");
    link_app(1, "fail", "fail.so");
    start_with_apps(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 500, "got %d:\n%s", r->status, r->head);
    h_resp_free(r);
    /* the app's failure is the app's: the connection is still good */
    h_sends(c, GET_HELLO);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    h_resp_free(r);
    h_close(c);
    /* the error log names the app and the request */
    cr_assert(h_wait_stderr("app fail failed on GET /fail", H_GUARD_MS),
              "no log line for the failure:\n%s", h_stderr_tail(3000));
    h_stop();
}

Test(loader, a_failed_handler_leaves_no_trace_of_its_unsent_response)
{
    link_app(1, "fail", "fail.so");
    start_with_apps(NULL);
    struct h_resp *r =
        h_request("GET /fail/headers HTTP/1.1\r\nHost: t\r\n\r\n", 0, 500);
    cr_assert_null(h_header(r, "X-Fail"), "the failed app's header was sent");
    cr_assert_null(strstr(r->body, "half"), "the failed app's body was sent");
    h_resp_free(r);
    h_stop();
}

Test(loader,
     a_handler_failing_after_its_response_started_gets_the_connection_closed)
{
    link_app(1, "fail", "fail.so");
    start_with_apps(NULL);
    struct h_conn *c = h_connect();
    h_sends(c, "GET /fail/started HTTP/1.1\r\nHost: t\r\n\r\n" GET_HELLO);
    struct h_resp r;
    char why[512];
    int rc = h_read_response(c, &r, 0, H_GUARD_MS, why, sizeof why);
    /* the head went out as 200; the body must end without its terminator,
     * so the client knows it is cut short, and nothing follows */
    cr_assert_eq(rc, -1, "the broken response looked complete");
    cr_assert(c->eof, "the connection stayed open: %s", why);
    cr_assert(strncmp(c->buf, "HTTP/1.1 200", 12) == 0, "%.200s", c->buf);
    cr_assert_not_null(strstr(c->buf, "partial body"));
    cr_assert_null(strstr(c->buf, "Hello, World!"),
                   "the pipelined request was served after the failure");
    h_close(c);
    /* and the server serves on */
    struct h_resp *again =
        h_request("GET /fail/headers HTTP/1.1\r\nHost: t\r\n\r\n", 0, 500);
    h_resp_free(again);
    h_stop();
}
