/*
 * test_stream - stream apps (gevent's StreamServer): a descriptor's
 * .listen/.stream served by the real server over real sockets.
 *
 * The listeners are unix sockets in the test's temp dir (no port to lose
 * to a parallel test), except the echo test, which serves TCP. Every wait
 * is bounded by a guard; nothing asserts how long something took.
 */
#include "deploy_util.h"

TestSuite(stream, .fini = du_teardown, .timeout = 120);

/* ---- clients ---------------------------------------------------------- */

/* A blocking client socket connected to the unix socket path, or -1. */
static int st_connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof un) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int st_connect_tcp(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Reads one line (with its '\n') into buf within timeout_ms, a byte at a
 * time (so nothing after the line is consumed). Returns its length, 0 at
 * end of file (or a reset) before a whole line, -1 on timeout. */
static ssize_t st_line_within(int fd, char *buf, size_t size, int timeout_ms)
{
    size_t n = 0;
    int64_t end = h_now_ms() + timeout_ms;
    while (n + 1 < size) {
        int64_t left = end - h_now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1) {
            buf[n] = '\0';
            return -1;
        }
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0) {
            buf[n] = '\0';
            return 0;
        }
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

static ssize_t st_line(int fd, char *buf, size_t size)
{
    return st_line_within(fd, buf, size, H_GUARD_MS);
}

static void st_send(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n, "send: %s",
                 strerror(errno));
}

/* Sends line and asserts the answer is it in upper case. */
static void st_echo(int fd, const char *line, const char *who)
{
    char want[256], got[256];
    snprintf(want, sizeof want, "%s", line);
    for (char *p = want; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    st_send(fd, line);
    ssize_t n = st_line(fd, got, sizeof got);
    cr_assert_gt(n, 0, "%s: no answer to '%s' (%s)", who, line,
                 n == 0 ? "closed" : "timed out");
    cr_assert_str_eq(got, want, "%s", who);
}

/* Reads everything until end of file; returns the byte count, or -1 if
 * the guard passed first. */
static long st_drain(int fd)
{
    char buf[65536];
    long total = 0;
    int64_t end = h_now_ms() + 30000;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = end - h_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return -1;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            return total;
        total += r;
    }
}

/* streamtest's greeting: "hello PID"; returns the PID. */
static pid_t st_hello(int fd)
{
    char line[128];
    cr_assert_gt(st_line(fd, line, sizeof line), 0, "no greeting");
    int pid = 0;
    cr_assert_eq(sscanf(line, "hello %d", &pid), 1, "greeting '%s'", line);
    return (pid_t)pid;
}

/* The crash is the test's: AddressSanitizer must let the signal kill (its
 * own handler would turn it into exit status 1), as in test_crash.c. */
#define ST_CRASH_ENV                                                           \
    DU_ARGS("ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1:"     \
            "handle_segv=0")

/* Starts coserve with streamtest alone, its stream on NAME.stream.sock. */
static const char *st_start_streamtest(struct du_coserve *s, int workers,
                                       const char *const *more,
                                       const char *const *env)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_test_apps_src(), "streamtest", du_path("apps"));
    char *sock = h_fmt("%s/st.sock", du.dir);
    char *flag = h_fmt("streamtest=unix:%s", sock);
    const char *argv[16] = {"--stream-listen", flag};
    int n = 2;
    for (int i = 0; more && more[i]; i++)
        argv[n++] = more[i];
    argv[n] = NULL;
    du_coserve_start(s, "cs", 0, workers, du_path("apps"), argv, env);
    static char path[512];
    snprintf(path, sizeof path, "%s", sock);
    free(sock);
    free(flag);
    return path;
}

/* ---- the demos -------------------------------------------------------- */

Test(stream, echo_upper_answers_every_line_in_upper_case_over_tcp)
{
    du_setup();
    int port = h_free_port();
    char *flag = h_fmt("echo_upper=127.0.0.1:%d", port);
    struct du_coserve s;
    du_coserve_start(
        &s, "cs", 0, 2, NULL,
        DU_ARGS("--stream-listen", flag, "--stream-listen", "chat=off"), NULL);
    int fd = st_connect_tcp(port);
    cr_assert_geq(fd, 0, "connect: %s\n%s", strerror(errno),
                  du_tail(s.err, 3000));
    char line[256];
    cr_assert_gt(st_line(fd, line, sizeof line), 0);
    cr_assert(strstr(line, "Welcome"), "greeting '%s'", line);
    st_echo(fd, "hello world\n", "client");
    st_echo(fd, "Mixed Case 123 !?\n", "client");
    st_send(fd, "quit\n");
    cr_assert_eq(st_drain(fd), 0, "quit did not end the session");
    close(fd);
    /* the HTTP side serves as before */
    struct du_target t = du_at(&s);
    h_resp_free(du_get(&t, "/hello", NULL, 200));
    du_coserve_stop(&s);
    free(flag);
}

/* Connects n clients to the chat; each is in the room once it has read
 * its own "joined" line back. */
static void st_chat_join(const char *sock, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = st_connect_unix(sock);
        cr_assert_geq(fds[i], 0, "connect: %s", strerror(errno));
        char me[64], line[256];
        snprintf(me, sizeof me, "joined %d\n", i);
        st_send(fds[i], me);
        for (;;) {
            cr_assert_gt(st_line(fds[i], line, sizeof line), 0,
                         "client %d never heard itself join", i);
            if (strcmp(line, me) == 0)
                break;
        }
    }
}

static const char *st_start_chat(struct du_coserve *s)
{
    du_setup();
    char *sock = h_fmt("%s/chat.sock", du.dir);
    char *flag = h_fmt("chat=unix:%s", sock);
    du_coserve_start(
        s, "cs", 0, 1, NULL,
        DU_ARGS("--stream-listen", flag, "--stream-listen", "echo_upper=off"),
        NULL);
    static char path[512];
    snprintf(path, sizeof path, "%s", sock);
    free(sock);
    free(flag);
    return path;
}

Test(stream, chat_broadcasts_every_line_to_every_client)
{
    struct du_coserve s;
    const char *sock = st_start_chat(&s);
    enum { N = 6 };
    int fds[N];
    st_chat_join(sock, fds, N);
    for (int i = 0; i < N; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "message from %d\n", i);
        st_send(fds[i], msg);
    }
    for (int i = 0; i < N; i++) {
        int seen[N] = {0}, got = 0;
        while (got < N) {
            char line[256];
            cr_assert_gt(st_line(fds[i], line, sizeof line), 0,
                         "client %d got %d of %d messages", i, got, N);
            int from;
            if (sscanf(line, "message from %d", &from) != 1)
                continue; /* a later client's "joined" */
            cr_assert(from >= 0 && from < N && !seen[from], "client %d: '%s'",
                      i, line);
            seen[from] = 1;
            got++;
        }
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    du_coserve_stop(&s);
}

static long st_sysctl_max(const char *path)
{
    char *s = h_read_file(path, NULL);
    long a = 0, b = 0, c = 0;
    if (s)
        sscanf(s, "%ld %ld %ld", &a, &b, &c);
    free(s);
    return c > 0 ? c : 8 << 20;
}

Test(stream, a_chat_client_that_stops_reading_does_not_hold_up_the_others)
{
    struct du_coserve s;
    const char *sock = st_start_chat(&s);
    int fds[3];
    st_chat_join(sock, fds, 3);
    /* fds[0] reads no more. More than the kernel can buffer for it goes by
     * (its socket's send buffer may grow to tcp_wmem's max; unix sockets
     * buffer far less): the others must get every line, in order. */
    long total = 2 * st_sysctl_max("/proc/sys/net/ipv4/tcp_wmem") + (1 << 20);
    char big[1000];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\n';
    long lines = total / (long)sizeof big;
    for (long k = 0; k < lines; k++) {
        char num[24];
        snprintf(num, sizeof num, "%09ld", k % 1000000000);
        memcpy(big, num, 9);
        cr_assert_eq(send(fds[1], big, sizeof big, MSG_NOSIGNAL),
                     (ssize_t)sizeof big);
        for (int j = 1; j < 3; j++) {
            char line[1100];
            ssize_t n;
            do /* skip the "joined" of a client after this one */
                n = st_line(fds[j], line, sizeof line);
            while (n > 0 && strncmp(line, "joined ", 7) == 0);
            cr_assert_eq(n, (ssize_t)sizeof big,
                         "client %d: line %ld of %ld missing (%zd)", j, k,
                         lines, n);
            cr_assert_eq(memcmp(line, big, sizeof big), 0,
                         "client %d: line %ld wrong", j, k);
        }
    }
    /* the silent one was dropped: it reads what was buffered, then EOF */
    long got = st_drain(fds[0]);
    cr_assert_geq(got, 0, "the client that stopped reading was never dropped");
    cr_assert_lt(got, lines * (long)sizeof big);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    du_coserve_stop(&s);
}

/* ---- reload and stop -------------------------------------------------- */

Test(stream,
     hup_keeps_every_connected_client_and_new_ones_go_to_the_new_workers)
{
    struct du_coserve s;
    const char *sock =
        st_start_streamtest(&s, 2, DU_ARGS("--graceful-timeout", "60s"), NULL);
    enum { N = 20 };
    int fds[N];
    pid_t old[N];
    for (int i = 0; i < N; i++) {
        fds[i] = st_connect_unix(sock);
        cr_assert_geq(fds[i], 0, "connect: %s", strerror(errno));
        old[i] = st_hello(fds[i]);
    }
    kill(s.pid, SIGHUP);
    /* the new generation serves, and both old workers stopped accepting */
    cr_assert(du_wait_in_file(s.err, "serving on", 4, DU_START_MS),
              "no new generation:\n%s", du_tail(s.err, 3000));
    cr_assert(
        du_wait_in_file(s.err, "stream: stopped accepting", 2, DU_START_MS),
        "the old workers were not retired:\n%s", du_tail(s.err, 3000));
    /* every old connection still works... */
    for (int i = 0; i < N; i++) {
        char line[64], who[32];
        snprintf(line, sizeof line, "ping %d\n", i);
        snprintf(who, sizeof who, "old client %d", i);
        st_echo(fds[i], line, who);
    }
    /* ...and new clients are served by the new workers */
    for (int i = 0; i < 4; i++) {
        int fd = st_connect_unix(sock);
        cr_assert_geq(fd, 0, "connect after HUP: %s", strerror(errno));
        pid_t pid = st_hello(fd);
        cr_assert(!du_pid_in(pid, old, N),
                  "a new client went to an old worker %d", (int)pid);
        st_echo(fd, "new\n", "new client");
        close(fd);
    }
    /* the old workers exit once their clients leave, none cut */
    for (int i = 0; i < N; i++) {
        st_send(fds[i], "quit\n");
        cr_assert_eq(st_drain(fds[i]), 0);
        close(fds[i]);
    }
    cr_assert_eq(du_wait_children(s.pid, 2, DU_STOP_MS), 2,
                 "the old workers did not exit:\n%s", du_tail(s.err, 3000));
    cr_assert_eq(du_count_in_file(s.err, "grace period over"), 0,
                 "connections were cut:\n%s", du_tail(s.err, 3000));
    cr_assert_eq(du_count_in_file(s.err, "streamtest: read:"), 0);
    du_coserve_stop(&s);
}

Test(stream, term_serves_connected_clients_in_the_grace_and_refuses_new_ones)
{
    struct du_coserve s;
    const char *sock =
        st_start_streamtest(&s, 1, DU_ARGS("--graceful-timeout", "60s"), NULL);
    int fd = st_connect_unix(sock);
    cr_assert_geq(fd, 0);
    st_hello(fd);
    kill(s.pid, SIGTERM);
    cr_assert(
        du_wait_in_file(s.err, "stream: stopped accepting", 1, DU_STOP_MS),
        "%s", du_tail(s.err, 3000));
    int late = st_connect_unix(sock);
    cr_assert_lt(late, 0, "a connection was accepted after TERM");
    st_echo(fd, "still here\n", "connected client");
    st_send(fd, "quit\n");
    cr_assert_eq(st_drain(fd), 0);
    close(fd);
    /* the worker ends when its last client does, well before the grace */
    du_coserve_wait_stopped(&s, DU_STOP_MS, 0);
    cr_assert_eq(du_count_in_file(s.err, "grace period over"), 0);
}

Test(stream, term_cancels_the_connections_still_open_when_the_grace_ends)
{
    struct du_coserve s;
    const char *sock = st_start_streamtest(
        &s, 1, DU_ARGS("--graceful-timeout", "300ms"), NULL);
    int fd = st_connect_unix(sock);
    cr_assert_geq(fd, 0);
    st_hello(fd);
    kill(s.pid, SIGTERM);
    /* the client says nothing: at the grace's end its handler's read
     * fails with ECANCELED and the connection closes */
    cr_assert_eq(st_drain(fd), 0, "the connection was never closed");
    close(fd);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 0);
    cr_assert_eq(du_count_in_file(s.err, "grace period over: cancelling 1 "
                                         "connections"),
                 1, "%s", du_tail(s.err, 3000));
    cr_assert_eq(
        du_count_in_file(s.err, "streamtest: read: Operation canceled"), 1,
        "%s", du_tail(s.err, 3000));
}

/* ---- hostile ---------------------------------------------------------- */

Test(stream, connections_beyond_the_cap_wait_in_the_backlog_until_one_ends)
{
    struct du_coserve s;
    const char *sock =
        st_start_streamtest(&s, 1, DU_ARGS("--max-connections", "2"), NULL);
    int a = st_connect_unix(sock), b = st_connect_unix(sock);
    cr_assert(a >= 0 && b >= 0);
    st_hello(a);
    st_hello(b);
    /* a third is queued by the kernel, not served, not refused */
    int c = st_connect_unix(sock);
    cr_assert_geq(c, 0, "connect beyond the cap: %s", strerror(errno));
    char line[128];
    cr_assert_eq(st_line_within(c, line, sizeof line, 300), -1,
                 "served beyond --max-connections 2: '%s'", line);
    st_echo(b, "b works\n", "b");
    st_send(a, "quit\n");
    cr_assert_eq(st_drain(a), 0);
    close(a);
    st_hello(c); /* a's slot went to c */
    st_echo(c, "c works\n", "c");
    close(b);
    close(c);
    du_coserve_stop(&s);
}

Test(stream, a_worker_whose_stream_handler_crashes_is_replaced)
{
    struct du_coserve s;
    const char *sock = st_start_streamtest(&s, 1, NULL, ST_CRASH_ENV);
    int fd = st_connect_unix(sock);
    cr_assert_geq(fd, 0);
    pid_t first = st_hello(fd);
    st_send(fd, "crash\n");
    cr_assert_geq(st_drain(fd), 0, "the crashed worker's client hangs");
    close(fd);
    /* the socket is the master's: the next client waits for the new
     * worker instead of being refused */
    fd = st_connect_unix(sock);
    cr_assert_geq(fd, 0, "connect after the crash: %s", strerror(errno));
    pid_t second = st_hello(fd);
    cr_assert_neq(second, first);
    st_echo(fd, "after the crash\n", "client");
    close(fd);
    cr_assert(du_count_in_file(s.err, "stream streamtest"),
              "the crash report does not name the connection:\n%s",
              du_tail(s.err, 4000));
    kill(s.pid, SIGTERM);
    du_coserve_wait_stopped(&s, DU_STOP_MS, 1);
}

/* ---- the descriptor --------------------------------------------------- */

Test(stream, an_app_built_for_abi_1_still_loads_and_serves)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_test_apps_src(), "abi1", du_path("apps"));
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 1, du_path("apps"), NULL, NULL);
    struct du_target t = du_at(&s);
    struct h_resp *r = du_get(&t, "/abi1", NULL, 200);
    cr_assert_str_eq(r->body, "abi1\n");
    h_resp_free(r);
    cr_assert_eq(du_count_in_file(s.err, "refused"), 0, "%s",
                 du_tail(s.err, 3000));
    du_coserve_stop(&s);
}

Test(stream, a_stream_app_without_an_address_is_refused_and_http_serves_on)
{
    du_setup();
    du_mkdir("apps");
    du_link_app(du_test_apps_src(), "streamtest", du_path("apps"));
    struct du_coserve s;
    du_coserve_start(&s, "cs", 0, 1, du_path("apps"), NULL, NULL);
    cr_assert(du_count_in_file(s.err, "app streamtest: stream refused: no "
                                      "address"),
              "%s", du_tail(s.err, 3000));
    struct du_target t = du_at(&s);
    h_resp_free(du_get(&t, "/streamtest", NULL, 200));
    du_coserve_stop(&s);
}
