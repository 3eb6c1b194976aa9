/*
 * test_downloads.c - big responses: a file goes out in capped sendfile()
 * calls with a poll of the hub between them (--sendfile-max-chunk), the
 * write timeout is time without progress (a slow but steady reader gets
 * every byte, a stalled one is cut), and the access log records the body
 * bytes that actually left. No timing thresholds: the assertions are on
 * bytes, log lines and the system calls strace saw.
 */
#include "harness.h"

TestSuite(downloads, .fini = h_teardown, .timeout = 120);

#define BIG_SIZE (24u << 20)

/* www/NAME: size bytes of pseudo-random data (returned, caller frees), or a
 * sparse file of zeros when data is not wanted. */
static char *big_file(const char *name, size_t size, int data)
{
    char rel[128];
    h_setup();
    snprintf(rel, sizeof rel, "www/%s", name);
    if (!data) {
        int fd = open(h_path(rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "%s: %s", rel,
                  strerror(errno));
        close(fd);
        return NULL;
    }
    char *buf = malloc(size);
    h_fill_random(buf, size, 7);
    h_write_file(h_path(rel), buf, size);
    return buf;
}

/* A client whose receive buffer is small and fixed (no autotuning), so the
 * server can park only a few MB in the sockets and must wait for it. */
static int small_window_client(const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    int rcv = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)h_srv.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect: %s", strerror(errno));
    size_t n = strlen(request);
    cr_assert_eq(send(fd, request, n, MSG_NOSIGNAL), (ssize_t)n);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Reads up to max bytes of what is there now into buf (grown as needed).
 * Returns 1 while the connection is open, 0 at its end. */
static int read_some(int fd, char **buf, size_t *len, size_t *cap, size_t max)
{
    size_t got = 0;
    while (got < max) {
        if (*cap - *len < 65536) {
            *cap = *cap ? *cap * 2 : 1 << 20;
            *buf = realloc(*buf, *cap);
        }
        size_t want = *cap - *len < max - got ? *cap - *len : max - got;
        ssize_t r = recv(fd, *buf + *len, want, 0);
        if (r > 0) {
            *len += (size_t)r;
            got += (size_t)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 1;
        } else {
            return 0; /* end of file, or reset: the end either way */
        }
    }
    return 1;
}

/* The body byte count of the access log line for `target` (waits, bounded,
 * for the line: it is written when the request ends). */
static long long logged_bytes(const char *target)
{
    char *needle = h_fmt("\"GET %s HTTP/1.1\" ", target);
    int64_t end = h_now_ms() + H_GUARD_MS;
    long long bytes = -1;
    for (;;) {
        char *log = h_read_file(h_srv.log_path, NULL);
        const char *line = log ? strstr(log, needle) : NULL;
        int status = 0;
        if (line &&
            sscanf(line + strlen(needle), "%d %lld", &status, &bytes) == 2) {
            free(log);
            break;
        }
        free(log);
        cr_assert(h_now_ms() < end, "no access log line for %s", target);
        h_sleep_ms(20);
    }
    free(needle);
    return bytes;
}

/* The start of the body in a raw response (after CRLF CRLF). */
static size_t body_start(const char *buf, size_t len)
{
    const char *blank = h_memmem(buf, len, "\r\n\r\n");
    cr_assert_not_null(blank, "no response head in %zu bytes", len);
    cr_assert(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%.80s", buf);
    return (size_t)(blank - buf) + 4;
}

Test(downloads, a_slow_steady_reader_gets_the_whole_file_past_the_timeout)
{
    char *want = big_file("big.bin", BIG_SIZE, 1);
    h_start(H_ARGS("--write-timeout", "1s", "--workers", "1"));
    /* 2 MiB every 200 ms: 24 MiB take over 2 s, twice the write timeout,
     * and the sockets cannot hold the difference; yet the server never
     * waits long for room. A whole-response deadline cut it at 1 s. */
    int fd = small_window_client(
        "GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t guard = h_now_ms() + 60000;
    while (read_some(fd, &buf, &len, &cap, 2u << 20)) {
        cr_assert(h_now_ms() < guard, "still reading after 60 s");
        h_sleep_ms(200);
    }
    close(fd);
    size_t start = body_start(buf, len);
    cr_assert_eq(len - start, (size_t)BIG_SIZE,
                 "got %zu of %u body bytes: the download was cut", len - start,
                 BIG_SIZE);
    cr_assert(memcmp(buf + start, want, BIG_SIZE) == 0, "body differs");
    cr_assert_eq(logged_bytes("/big.bin"), (long long)BIG_SIZE);
    free(buf);
    free(want);
    h_stop();
}

Test(downloads, a_stalled_reader_is_cut_and_the_log_has_the_bytes_that_left)
{
    big_file("big.bin", BIG_SIZE, 0);
    h_start(H_ARGS("--write-timeout", "1s", "--workers", "1"));
    int fd = small_window_client("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    /* read nothing: after 1 s without progress the server gives up, logs
     * the request and closes */
    long long logged = logged_bytes("/big.bin");
    cr_assert(logged > 0 && logged < (long long)BIG_SIZE,
              "logged %lld bytes of a cut %u-byte download", logged, BIG_SIZE);
    /* what the kernel took still arrives, then the end of the connection */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t guard = h_now_ms() + H_GUARD_MS;
    while (read_some(fd, &buf, &len, &cap, SIZE_MAX)) {
        cr_assert(h_now_ms() < guard, "the server left the connection open");
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
    }
    close(fd);
    size_t start = body_start(buf, len);
    cr_assert_eq((long long)(len - start), logged,
                 "the client got %zu body bytes, the log says %lld",
                 len - start, logged);
    free(buf);
    h_stop();
}

Test(downloads, the_log_counts_body_bytes_of_every_response_kind)
{
    size_t n = 5u << 20; /* over echo's 4 MiB hold: echoed chunked */
    char *data = malloc(n);
    h_fill_random(data, n, 3);
    h_start(NULL);
    /* chunked: the payload, not the framing */
    struct h_conn *c = h_connect();
    h_sends(c, "POST /echo?chunked HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < n; off += 1u << 20) {
        char *size = h_fmt("%x\r\n", 1u << 20);
        h_sends(c, size);
        free(size);
        h_send(c, data + off, 1u << 20);
        h_sends(c, "\r\n");
    }
    h_sends(c, "0\r\n\r\n");
    struct h_resp *r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert(r->chunked, "a 5 MiB chunked upload is echoed chunked");
    cr_assert_eq(r->body_len, n);
    h_resp_free(r);
    h_close(c);
    /* gathered, and a file */
    r = h_request("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    h_resp_free(r);
    r = h_request("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    h_resp_free(r);
    r = h_request("HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", H_HEAD, 200);
    h_resp_free(r);
    h_stop(); /* flushes the log */
    char *log = h_read_file(h_srv.log_path, NULL);
    char *want = h_fmt("\"POST /echo?chunked HTTP/1.1\" 200 %zu ", n);
    cr_assert(strstr(log, want), "log:\n%s", log);
    cr_assert(strstr(log, "\"GET /hello HTTP/1.1\" 200 14 "), "log:\n%s", log);
    cr_assert(strstr(log, "\"GET /hello.txt HTTP/1.1\" 200 14 "), "log:\n%s",
              log);
    cr_assert(strstr(log, "\"HEAD /hello.txt HTTP/1.1\" 200 0 "), "log:\n%s",
              log);
    free(want);
    free(log);
    free(data);
}

/* ---- sendfile in chunks (under strace) ---------------------------------- */

/* Makes COSERVE_BIN a script that runs the real binary under strace,
 * tracing sendfile and the loop's polls into `trace`. LeakSanitizer cannot
 * run under ptrace, so leak checks are off for this one server. */
static void run_under_strace(const char *trace)
{
    cr_assert_eq(system("strace -V >/dev/null 2>&1"), 0,
                 "strace is needed by this test (apt-get install strace)");
    const char *bin = h_env("COSERVE_BIN", "build/plain/coserve");
    char real[PATH_MAX];
    cr_assert_not_null(realpath(bin, real), "%s: %s", bin, strerror(errno));
    char *script = h_fmt(
        "#!/bin/sh\n"
        "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\"\n"
        "export ASAN_OPTIONS\n"
        "exec strace -f -qq -e 'trace=/^(sendfile|epoll_p?wait)$' -o '%s' "
        "'%s' \"$@\"\n",
        trace, real);
    const char *path = h_path("coserve-strace.sh");
    h_write_file(path, script, strlen(script));
    chmod(path, 0755);
    setenv("COSERVE_BIN", path, 1);
    free(script);
}

/* The pid of the only child of pid (strace's tracee: the master). */
static pid_t only_child(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid,
             (int)pid);
    char *s = h_read_file(path, NULL);
    cr_assert_not_null(s, "%s", path);
    pid_t child = (pid_t)atoi(s);
    free(s);
    cr_assert(child > 0, "strace has no child");
    return child;
}

Test(downloads, a_big_file_goes_out_in_capped_sendfile_calls_with_polls_between)
{
    size_t size = 16u << 20, chunk = 256u << 10;
    big_file("big.bin", size, 0);
    h_setup();
    char trace[256];
    snprintf(trace, sizeof trace, "%s", h_path("strace.txt"));
    run_under_strace(trace);
    h_start(H_ARGS("--workers", "1", "--sendfile-max-chunk", "256K"));
    /* the client reads as fast as it can: the socket rarely fills */
    struct h_resp *r =
        h_request("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", 0, 200);
    cr_assert_eq(r->body_len, size);
    h_resp_free(r);
    h_assert_serving();
    /* strace ignores SIGTERM while it runs a command: stop the master */
    kill(only_child(h_srv.pid), SIGTERM);
    h_stop();

    /* Each sendfile asks at most a chunk, and after a call that sent a
     * full chunk the worker polls its loop before the next sendfile. */
    char *log = h_read_file(trace, NULL);
    cr_assert_not_null(log);
    int calls = 0, full = 0, polled = 1;
    size_t total = 0;
    pid_t worker = -1;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        pid_t pid = (pid_t)atoi(line);
        if (strstr(line, "epoll")) {
            if (pid == worker)
                polled = 1;
            continue;
        }
        const char *eq = strstr(line, ") = ");
        if (!strstr(line, "sendfile") || !eq || strstr(line, "unfinished"))
            continue;
        const char *arg = eq;
        while (arg > line && arg[-1] != ' ')
            arg--;
        size_t asked = strtoull(arg, NULL, 10);
        long long ret = atoll(eq + 4);
        cr_assert(worker < 0 || pid == worker, "two processes sent files");
        worker = pid;
        cr_assert(asked <= chunk, "a sendfile asked %zu bytes: %s", asked,
                  line);
        cr_assert(polled, "two sendfile calls with no poll between: %s", line);
        calls++;
        if (ret > 0)
            total += (size_t)ret;
        if (ret == (long long)chunk) {
            full++;
            polled = 0;
        }
    }
    cr_assert_eq(total, size, "sendfile sent %zu of %zu bytes", total, size);
    cr_assert(calls >= (int)(size / chunk), "%d sendfile calls", calls);
    cr_assert(full > 0, "no full chunk was sent");
    free(log);
}

Test(downloads, a_bad_sendfile_max_chunk_is_refused)
{
    h_setup();
    const char *argv[] = {h_env("COSERVE_BIN", "build/plain/coserve"),
                          "--sendfile-max-chunk", "1", NULL};
    pid_t pid = h_spawn(argv, h_srv.err_path, 0, NULL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2,
              "status 0x%x; stderr:\n%s", status, h_stderr_tail(2000));
    cr_assert(h_stderr_has("--sendfile-max-chunk"), "%s", h_stderr_tail(2000));
}
