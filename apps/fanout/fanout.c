/*
 * fanout - GET /fanout?n=N makes N outbound HTTP(S) requests at once with
 * plain, unmodified libcurl and reports each one, then the total:
 *
 *   0 200 13 101                 i, status, body bytes, ms
 *   1 0 0 0 error: Couldn't connect to server (Failed to connect to ...)
 *   total 103 ms
 *
 * Each request is a child coroutine (co_spawn) that calls curl_easy_perform
 * and nothing else. The server's hooks make libcurl's connect, poll, read
 * and write park the child instead of blocking the worker, so the N
 * requests overlap: n=10 against /sleep?ms=100 takes about 100 ms. With
 * --no-hooks libcurl blocks the worker and the requests run one after
 * another (and a request to this same worker waits for its own timeout).
 *
 * Parameters (all optional; a bad one is a 400 saying which):
 *   n=1..100           how many requests (10)
 *   url=http(s)://...  the target; only http and https, no redirects
 *   path=/p?q          this server's own address with that path
 *   timeout_ms=1..60000  per request, connect included (5000)
 *   show=1             also print the first bytes of each body
 *
 * Without url= or path= the target is COSERVE_FANOUT_URL, else this
 * server's /sleep?ms=100 at the address the request came in on. A request
 * that came in on a unix socket (behind nginx) has no address to dial:
 * then the server's own socket, which the server names in COSERVE_LISTEN
 * ("unix:PATH"), is dialled with CURLOPT_UNIX_SOCKET_PATH, the URL's host
 * being only the Host header (localhost).
 * COSERVE_FANOUT_CAINFO names a CA file for https targets (tests use their
 * own CA); certificates are always verified.
 *
 * A demo: it fetches whatever http(s) URL it is told to, so do not expose
 * it. A request from a fanout (its User-Agent) gets 508, so fanout cannot
 * call itself.
 *
 * The children share one heap record with a reference count instead of the
 * handler's stack: if the handler stops waiting (it is cancelled), children
 * still finishing must not write into a stack frame that is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "coserve.h"

#define FANOUT_TEXT "text/plain; charset=utf-8"
#define FANOUT_MAX 100
#define FANOUT_DEFAULT 10
#define FANOUT_TIMEOUT_MS 5000
#define FANOUT_TIMEOUT_MAX_MS 60000
#define FANOUT_DEFAULT_PATH "/sleep?ms=100"
#define FANOUT_AGENT "coserve-fanout"
#define FANOUT_URL_MAX 2048
#define FANOUT_KEEP 128 /* body bytes kept per request, for show=1 */

struct fanout;

/* One outbound request and what came of it. */
struct fanout_call {
    struct fanout *run;
    long status;     /* the HTTP status; 0 if none arrived */
    long long bytes; /* body bytes received */
    long long ms;
    CURLcode code;              /* CURLE_OK, or what ended the request */
    char why[CURL_ERROR_SIZE];  /* libcurl's detail for code, may be "" */
    char body[FANOUT_KEEP + 1]; /* the body's first bytes */
    size_t kept;
};

/* Everything the children touch. All of them run on the handler's hub
 * thread, one at a time, so the count needs no atomics. */
struct fanout {
    int refs; /* the handler and each child still running */
    long timeout_ms;
    int via_unix; /* dial fanout_self_sock, whatever url's host says */
    char url[FANOUT_URL_MAX];
    struct fanout_call calls[FANOUT_MAX];
};

/* Set once per worker by fanout_init from the environment. */
static char *fanout_env_url;      /* COSERVE_FANOUT_URL, checked */
static const char *fanout_cainfo; /* COSERVE_FANOUT_CAINFO, or NULL */
static char *fanout_self_sock;    /* COSERVE_LISTEN's unix socket path */

static void fanout_release(struct fanout *f)
{
    if (--f->refs == 0)
        free(f);
}

/* ---- one outbound request --------------------------------------------- */

/* libcurl's write callback: counts the body and keeps its first bytes.
 * Nothing more is stored, so a huge answer costs no memory. */
static size_t fanout_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct fanout_call *c = arg;
    size_t n = size * nmemb;
    if (c->kept < FANOUT_KEEP) {
        size_t take = n < FANOUT_KEEP - c->kept ? n : FANOUT_KEEP - c->kept;
        memcpy(c->body + c->kept, data, take);
        c->kept += take;
    }
    c->bytes += (long long)n;
    return n;
}

/* libcurl's progress callback: a cancelled coroutine (the client left, the
 * server is stopping) aborts its transfer instead of running to its
 * timeout. */
static int fanout_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                           curl_off_t ultotal, curl_off_t ulnow)
{
    (void)arg;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return co_cancelled() ? 1 : 0;
}

/* Sets up h for one GET of f->url into c. Returns CURLE_OK or the first
 * option libcurl refused. */
static CURLcode fanout_setup(CURL *h, struct fanout *f, struct fanout_call *c)
{
    CURLcode rc;
    /* NOSIGNAL: libcurl must not use alarm() for timeouts in a server.
     * PROTOCOLS / REDIR_PROTOCOLS: http and https only, even if asked for
     * file://, and no redirect is followed anywhere. PROXY "": direct, so
     * a proxy in the server's environment does not change the target. */
    if ((rc = curl_easy_setopt(h, CURLOPT_URL, f->url)) ||
        (rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) ||
        (rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https")) ||
        (rc = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")) ||
        (rc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L)) ||
        (rc = curl_easy_setopt(h, CURLOPT_PROXY, "")) ||
        (rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, f->timeout_ms)) ||
        (rc = curl_easy_setopt(h, CURLOPT_USERAGENT, FANOUT_AGENT)) ||
        (rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->why)) ||
        (rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fanout_write)) ||
        (rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, c)) ||
        (rc = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L)) ||
        (rc = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fanout_progress)))
        return rc;
    if (f->via_unix &&
        (rc = curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, fanout_self_sock)))
        return rc;
    if (fanout_cainfo)
        return curl_easy_setopt(h, CURLOPT_CAINFO, fanout_cainfo);
    return CURLE_OK;
}

/* A child coroutine's body: one plain libcurl easy request. */
static void *fanout_call_run(void *arg)
{
    struct fanout_call *c = arg;
    int64_t start = co_now();
    CURL *h = curl_easy_init();
    if (!h) {
        c->code = CURLE_OUT_OF_MEMORY;
    } else {
        c->code = fanout_setup(h, c->run, c);
        if (c->code == CURLE_OK)
            c->code = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
        curl_easy_cleanup(h);
    }
    c->ms = co_now() - start;
    fanout_release(c->run);
    return NULL;
}

/* ---- the target ------------------------------------------------------- */

/* Checks that url is an absolute http or https URL with a host and copies
 * libcurl's normalized form into out. Returns NULL or what is wrong. */
static const char *fanout_check_url(const char *url, char *out, size_t size)
{
    const char *why = NULL;
    char *scheme = NULL, *host = NULL, *norm = NULL;
    CURLU *u = curl_url();
    if (!u)
        return "out of memory";
    /* no flags: the scheme must be written out, spaces and control
     * characters are refused */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        why = "url must be an absolute http:// or https:// URL";
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        why = "url scheme refused: only http:// and https://";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        why = "url has no host";
    else if (curl_url_get(u, CURLUPART_URL, &norm, 0) != CURLUE_OK ||
             strlen(norm) >= size)
        why = "url too long";
    else
        strcpy(out, norm);
    curl_free(scheme);
    curl_free(host);
    curl_free(norm);
    curl_url_cleanup(u);
    return why;
}

/* The URL of path on this server, at the address the request came in on
 * (over the server's unix socket: f->via_unix). Returns NULL or what is
 * wrong. */
static const char *fanout_self_url(const co_request_t *req, const char *path,
                                   struct fanout *f)
{
    char *out = f->url;
    size_t size = sizeof f->url;
    if (path[0] != '/')
        return "path must start with '/'";
    int port = co_req_local_port(req);
    if (port == 0) {
        if (!fanout_self_sock)
            return "this server's unix socket is not known (COSERVE_LISTEN "
                   "is not unix:PATH): give url= (or set COSERVE_FANOUT_URL)";
        char url[FANOUT_URL_MAX];
        int n = snprintf(url, sizeof url, "http://localhost%s", path);
        if (n < 0 || (size_t)n >= sizeof url)
            return "path too long";
        f->via_unix = 1;
        return fanout_check_url(url, out, size);
    }
    const char *addr = co_req_local_addr(req);
    int v6 = strchr(addr, ':') != NULL;
    char url[FANOUT_URL_MAX];
    int n = snprintf(url, sizeof url, "http://%s%s%s:%d%s", v6 ? "[" : "", addr,
                     v6 ? "]" : "", port, path);
    if (n < 0 || (size_t)n >= sizeof url)
        return "path too long";
    return fanout_check_url(url, out, size);
}

/* Picks the target (see the top of the file) into f->url. Returns NULL or
 * what is wrong with the request. */
static const char *fanout_target(const co_request_t *req, struct fanout *f)
{
    char url[FANOUT_URL_MAX], path[FANOUT_URL_MAX];
    ssize_t ul = co_req_query_param(req, "url", url, sizeof url);
    if (ul < 0 && errno != ENOENT)
        return "url too long";
    ssize_t pl = co_req_query_param(req, "path", path, sizeof path);
    if (pl < 0 && errno != ENOENT)
        return "path too long";
    if (ul >= 0 && pl >= 0)
        return "give url or path, not both";
    if (ul >= 0)
        return fanout_check_url(url, f->url, sizeof f->url);
    if (pl >= 0)
        return fanout_self_url(req, path, f);
    if (fanout_env_url) {
        strcpy(f->url, fanout_env_url); /* checked to fit at init */
        return NULL;
    }
    return fanout_self_url(req, FANOUT_DEFAULT_PATH, f);
}

/* ---- the handler ------------------------------------------------------ */

static int fanout_answer(co_response_t *res, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s\n", status, why);
    return co_res_send(res, status, FANOUT_TEXT, body, (size_t)n);
}

/* Query parameter name as an integer in [min, max] (digits only), def when
 * absent. Returns 0, or -1 when it is malformed or out of range. */
static int fanout_int(const co_request_t *req, const char *name, long def,
                      long min, long max, long *out)
{
    char buf[16];
    ssize_t len = co_req_query_param(req, name, buf, sizeof buf);
    if (len < 0) {
        *out = def;
        return errno == ENOENT ? 0 : -1;
    }
    if (len == 0)
        return -1;
    long v = 0;
    for (ssize_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        v = v * 10 + (buf[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return v >= min ? 0 : -1;
}

/* Writes one call's line: "i status bytes ms", " error: ..." if it failed. */
static int fanout_report_call(co_response_t *res, int i,
                              const struct fanout_call *c)
{
    char line[512];
    int len;
    if (c->code == CURLE_OK)
        len = snprintf(line, sizeof line, "%d %ld %lld %lld\n", i, c->status,
                       c->bytes, c->ms);
    else
        len =
            snprintf(line, sizeof line, "%d %ld %lld %lld error: %s%s%s%s\n", i,
                     c->status, c->bytes, c->ms, curl_easy_strerror(c->code),
                     c->why[0] ? " (" : "", c->why, c->why[0] ? ")" : "");
    if (len >= (int)sizeof line) {
        len = (int)sizeof line - 1;
        line[len - 1] = '\n';
    }
    return co_res_write(res, line, (size_t)len);
}

/* Writes "body i: <first bytes>" with anything unprintable as '.'. */
static int fanout_report_body(co_response_t *res, int i,
                              const struct fanout_call *c)
{
    char line[FANOUT_KEEP + 32];
    int len = snprintf(line, sizeof line, "body %d: ", i);
    for (size_t k = 0; k < c->kept; k++) {
        unsigned char ch = (unsigned char)c->body[k];
        line[len++] = ch >= ' ' && ch < 127 ? (char)ch : '.';
    }
    line[len++] = '\n';
    return co_res_write(res, line, (size_t)len);
}

static int fanout_report(co_response_t *res, const struct fanout *f, int n,
                         int show, long long total_ms)
{
    if (co_res_header(res, "Content-Type", FANOUT_TEXT) < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (fanout_report_call(res, i, &f->calls[i]) < 0)
            return -1;
    char line[64];
    int len = snprintf(line, sizeof line, "total %lld ms\n", total_ms);
    if (co_res_write(res, line, (size_t)len) < 0)
        return -1;
    for (int i = 0; show && i < n; i++)
        if (fanout_report_body(res, i, &f->calls[i]) < 0)
            return -1;
    return 0;
}

/* Spawns the n children and waits for all of them. Returns 0, or -1 with
 * errno when the handler itself was cancelled (the children are then
 * cancelled and left to finish on their own). */
static int fanout_run(struct fanout *f, int n)
{
    co_t *cos[FANOUT_MAX] = {0};
    for (int i = 0; i < n; i++) {
        f->calls[i].run = f;
        f->refs++;
        cos[i] = co_spawn(fanout_call_run, &f->calls[i]);
        if (!cos[i]) {
            f->refs--;
            f->calls[i].code = CURLE_OUT_OF_MEMORY;
            snprintf(f->calls[i].why, sizeof f->calls[i].why,
                     "no coroutine: %s", strerror(errno));
        }
    }
    /* Every child ends by its own timeout, so no deadline is needed here. */
    if (co_join_all(cos, (size_t)n, -1) == 0)
        return 0;
    int err = errno;
    for (int i = 0; i < n; i++) {
        if (cos[i]) {
            co_cancel(cos[i]);
            co_detach(cos[i]);
        }
    }
    errno = err;
    return -1;
}

static int fanout_handler(co_request_t *req, co_response_t *res)
{
    const char *method = co_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        if (co_res_header(res, "Allow", "GET, HEAD") < 0)
            return -1;
        return fanout_answer(res, 405, "method not allowed");
    }
    /* Our own User-Agent: a fanout told to fetch /fanout would multiply. */
    const char *agent = co_req_header(req, "User-Agent");
    if (agent && strcmp(agent, FANOUT_AGENT) == 0)
        return fanout_answer(res, 508, "loop detected: fanout calling fanout");
    long n, timeout_ms, show;
    if (fanout_int(req, "n", FANOUT_DEFAULT, 1, FANOUT_MAX, &n) < 0)
        return fanout_answer(res, 400, "n must be an integer from 1 to 100");
    if (fanout_int(req, "timeout_ms", FANOUT_TIMEOUT_MS, 1,
                   FANOUT_TIMEOUT_MAX_MS, &timeout_ms) < 0)
        return fanout_answer(res, 400,
                             "timeout_ms must be an integer from 1 to 60000");
    if (fanout_int(req, "show", 0, 0, 1, &show) < 0)
        return fanout_answer(res, 400, "show must be 0 or 1");

    struct fanout *f = calloc(1, sizeof *f);
    if (!f)
        return -1; /* errno is ENOMEM: the server answers 500 */
    const char *why = fanout_target(req, f);
    if (why) {
        free(f);
        return fanout_answer(res, 400, why);
    }
    f->timeout_ms = timeout_ms;
    f->refs = 1;
    int64_t start = co_now();
    if (fanout_run(f, (int)n) < 0) {
        int err = errno;
        fanout_release(f);
        errno = err;
        return -1;
    }
    int rc = fanout_report(res, f, (int)n, (int)show, co_now() - start);
    fanout_release(f);
    return rc;
}

/* ---- per worker ------------------------------------------------------- */

/* libcurl's global state, once per worker, and the environment checked
 * here so a bad setting refuses the app at start, not on every request. */
static int fanout_init(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        fprintf(stderr, "fanout: curl_global_init: %s\n",
                curl_easy_strerror(rc));
        return -1;
    }
    const char *ca = getenv("COSERVE_FANOUT_CAINFO");
    fanout_cainfo = ca && *ca ? ca : NULL;
    if (fanout_cainfo && access(fanout_cainfo, R_OK) < 0) {
        fprintf(stderr, "fanout: COSERVE_FANOUT_CAINFO=%s: %s\n", fanout_cainfo,
                strerror(errno));
        curl_global_cleanup();
        return -1;
    }
    /* set by the server: where its HTTP listener is */
    const char *self = getenv("COSERVE_LISTEN");
    if (self && strncmp(self, "unix:", 5) == 0 && self[5] &&
        !(fanout_self_sock = strdup(self + 5))) {
        curl_global_cleanup();
        return -1;
    }
    const char *url = getenv("COSERVE_FANOUT_URL");
    if (url && *url) {
        char norm[FANOUT_URL_MAX];
        const char *why = fanout_check_url(url, norm, sizeof norm);
        if (why || !(fanout_env_url = strdup(norm))) {
            fprintf(stderr, "fanout: COSERVE_FANOUT_URL=%s: %s\n", url,
                    why ? why : strerror(errno));
            free(fanout_self_sock);
            fanout_self_sock = NULL;
            curl_global_cleanup();
            return -1;
        }
    }
    return 0;
}

static void fanout_fini(void)
{
    free(fanout_env_url);
    fanout_env_url = NULL;
    free(fanout_self_sock);
    fanout_self_sock = NULL;
    curl_global_cleanup();
}

COSERVE_APP(.name = "fanout", .mount = "/fanout", .init = fanout_init,
            .fini = fanout_fini, .handler = fanout_handler);
