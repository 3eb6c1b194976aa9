/*
 * test_ws_interop.c - the WebSocket server against a reference client:
 * python3-websockets (Debian's package) runs tests/http/ws_interop.py
 * against the real server and must finish with "all ok".
 */
#include <sys/wait.h>

#include "harness.h"

TestSuite(ws_interop, .init = h_setup, .fini = h_teardown, .timeout = 120);

#define WSI_PYTHON "/usr/bin/python3"

Test(ws_interop, python3_websockets_echoes_closes_and_compresses_with_us)
{
    cr_assert_eq(access(WSI_PYTHON, X_OK), 0, "no %s", WSI_PYTHON);
    char src[PATH_MAX], dst[300];
    mkdir(h_srv.apps, 0755);
    cr_assert_not_null(realpath(h_env("COSERVE_APPS", "build/apps"), src));
    strcat(src, "/wsecho.so");
    snprintf(dst, sizeof dst, "%s/wsecho.so", h_srv.apps);
    cr_assert_eq(symlink(src, dst), 0);
    cr_assert_not_null(
        realpath(h_env("COSERVE_TEST_APPS", "build/test-apps"), src));
    strcat(src, "/wstest.so");
    snprintf(dst, sizeof dst, "%s/wstest.so", h_srv.apps);
    cr_assert_eq(symlink(src, dst), 0);
    h_start(H_ARGS("--workers", "2", "--apps", h_srv.apps));

    char port[16], script[PATH_MAX], out[PATH_MAX];
    snprintf(port, sizeof port, "%d", h_srv.port);
    cr_assert_not_null(realpath("tests/http/ws_interop.py", script),
                       "run from the repository's root");
    snprintf(out, sizeof out, "%s/interop.log", h_srv.dir);
    const char *argv[] = {WSI_PYTHON, script, port, NULL};
    pid_t pid = h_spawn(argv, out, 0, NULL);
    int status;
    int64_t end = h_now_ms() + 90000;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (h_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        h_sleep_ms(20);
    }
    size_t len;
    char *log = h_read_file(out, &len);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0 && log &&
                  strstr(log, "all ok"),
              "ws_interop.py failed:\n%s", log ? log : "(no output)");
    free(log);
    h_stop();
}
