/*
 * test_accept.c - accepting when the worker is out of file descriptors:
 * it pauses accepting instead of spinning on EMFILE, logs at most once a
 * second (with the count of errors not logged), and resumes once fds are
 * free again. The fd limit is set on the running worker from the test
 * (prlimit), a little above what it already holds.
 */
#include "harness.h"

#include <dirent.h>
#include <sys/resource.h>

TestSuite(accept, .init = h_setup, .fini = h_teardown, .timeout = 60);

static int open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

#define FLOOD 200

Test(accept, out_of_fds_pauses_accepting_logs_rarely_and_recovers)
{
    h_raise_nofile(4096);
    h_start(H_ARGS("--workers", "1", "--header-timeout", "30s"));
    pid_t worker = h_only_worker();
    int have = open_fds(worker);
    struct rlimit rl = {.rlim_cur = (rlim_t)have + 8,
                        .rlim_max = (rlim_t)have + 8};
    cr_assert_eq(prlimit(worker, RLIMIT_NOFILE, &rl, NULL), 0, "prlimit: %s",
                 strerror(errno));

    /* More clients than the worker has fds: all connect (the kernel's
     * backlog takes them), a few are accepted, the rest hit EMFILE. */
    static struct h_conn *flood[FLOOD];
    for (int i = 0; i < FLOOD; i++)
        flood[i] = h_connect();
    h_sleep_ms(2500); /* out of fds all along: before the fix, ~10^5 lines */

    int lines = h_stderr_count("accept: Too many open files");
    cr_assert_geq(lines, 1, "the EMFILE was never reported:\n%s",
                  h_stderr_tail(2000));
    /* one report a second at most, over ~2.5 s */
    cr_assert_leq(lines, 4, "%d accept error lines in 2.5 s", lines);
    cr_assert(h_alive());

    for (int i = 0; i < FLOOD; i++)
        h_close(flood[i]);
    /* fds come back as the server sees the closes; then it serves again
     * (the request waits in the backlog until then, within the guard) */
    struct h_resp *r =
        h_request("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 0, 200);
    h_resp_free(r);
    cr_assert_null(h_log_problem(), "server log: %s", h_stderr_tail(2000));
}
