/*
 * Static files from the www root. Everything here goes through the public
 * co_req_* / co_res_* calls, so the module is also a worked example of the app
 * API; the security rules are listed in static.h.
 *
 * A request becomes a path relative to the root ("" for the root itself, no
 * leading or trailing slash), checked segment by segment before any syscall.
 * The kernel then does the rest: openat2(RESOLVE_BENEATH) refuses any lookup,
 * symlinks included, that would leave the root's fd, so a race with someone
 * renaming directories cannot escape it either.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "http/static.h"

#define STATIC_TEXT "text/plain; charset=utf-8"
#define STATIC_INDEX "index.html"

/* Cleared (once, by any thread) when the kernel has no openat2. */
static int static_have_openat2 = 1;

int static__open(struct static_root *root, const char *dir)
{
    root->fd = -1;
    root->dir = NULL;
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char *copy = strdup(dir);
    if (!copy) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    root->fd = fd;
    root->dir = copy;
    return 0;
}

void static__close(struct static_root *root)
{
    if (root->fd >= 0)
        close(root->fd);
    free(root->dir);
    root->fd = -1;
    root->dir = NULL;
}

/* ---- answers ---------------------------------------------------------- */

/* A small text/plain error naming the problem: "404 not found: ...". */
static int static_error(co_response_t *res, int status, const char *what)
{
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s\n", status, what);
    if (n < 0 || (size_t)n >= sizeof body)
        n = (int)strlen(body);
    return co_res_send(res, status, STATIC_TEXT, body, (size_t)n);
}

/* Maps the errno of a failed open to an answer. EXDEV is openat2's "the path
 * leaves the root", ELOOP a symlink refused (magic link, O_NOFOLLOW walk). */
static int static_open_error(co_response_t *res, int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return static_error(res, 404, "not found");
    case EXDEV:
    case ELOOP:
        return static_error(res, 403, "forbidden: link leaves the root");
    case EACCES:
    case EPERM:
        return static_error(res, 403, "forbidden: permission denied");
    default:
        return static_error(res, 500, "internal error: cannot open file");
    }
}

/* ---- the path --------------------------------------------------------- */

/* A 400 found anywhere wins over a dotfile's 404, so the answer does not
 * depend on which segment comes first. */
int static__check_path(const char *path, char *rel, size_t size, int *slash,
                       const char **why)
{
    *slash = 0;
    rel[0] = '\0';
    if (path[0] == '\0')
        return 0; /* the mount itself, without its slash */
    if (path[0] != '/') {
        *why = "bad path: must start with '/'";
        return 400;
    }
    if (strchr(path, '\\')) {
        *why = "bad path: backslash";
        return 400;
    }
    int dotfile = 0;
    const char *p = path + 1;
    while (*p) {
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len == 0) {
            *why = "bad path: empty segment";
            return 400;
        }
        if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.'))) {
            *why = "bad path: '.' or '..' segment";
            return 400;
        }
        if (p[0] == '.')
            dotfile = 1;
        if (*end == '\0')
            break;
        p = end + 1; /* a trailing '/' ends the loop here */
    }
    if (dotfile) {
        *why = "not found";
        return 404;
    }
    size_t len = strlen(path + 1);
    if (len > 0 && path[len] == '/') {
        *slash = 1;
        len--;
    } else if (len == 0) {
        *slash = 1; /* "/" */
    }
    if (len + sizeof "/" STATIC_INDEX > size) {
        *why = "path too long";
        return 414;
    }
    memcpy(rel, path + 1, len);
    rel[len] = '\0';
    return 0;
}

/* The fallback for kernels without openat2: one openat per segment, never
 * following a symlink (O_NOFOLLOW; O_DIRECTORY on a link fails ENOTDIR).
 * Segments were checked, so none is "." or "..". */
static int static_walk(int rootfd, const char *rel, int flags)
{
    if (rel[0] == '\0')
        return openat(rootfd, ".", flags | O_CLOEXEC);
    char buf[PATH_MAX];
    size_t len = strlen(rel);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, rel, len + 1);
    int dir = rootfd;
    char *seg = buf;
    for (;;) {
        char *slash = strchr(seg, '/');
        int fd;
        if (slash) {
            *slash = '\0';
            fd =
                openat(dir, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            fd = openat(dir, seg, flags | O_NOFOLLOW | O_CLOEXEC);
        }
        if (dir != rootfd) {
            int err = errno;
            close(dir);
            errno = err;
        }
        if (fd < 0 || !slash)
            return fd;
        dir = fd;
        seg = slash + 1;
    }
}

/* Opens rel (see static__check_path) below the root with flags (O_PATH, or
 * O_RDONLY | ...). Returns the fd, or -1 with errno. */
static int static_resolve(const struct static_root *root, const char *rel,
                          int flags)
{
    if (__atomic_load_n(&static_have_openat2, __ATOMIC_RELAXED)) {
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        const char *path = rel[0] ? rel : ".";
        for (int tries = 0; tries < 8; tries++) {
            long fd = syscall(SYS_openat2, root->fd, path, &how, sizeof how);
            if (fd >= 0)
                return (int)fd;
            /* EAGAIN: a concurrent rename raced a ".." in a symlink. */
            if (errno != EINTR && errno != EAGAIN)
                break;
        }
        if (errno != ENOSYS)
            return -1;
        __atomic_store_n(&static_have_openat2, 0, __ATOMIC_RELAXED);
    }
    return static_walk(root->fd, rel, flags);
}

/* ---- types and dates -------------------------------------------------- */

static const struct {
    const char *ext, *type;
} static_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
};

/* The Content-Type for a file name, by its extension (any case). */
static const char *static_mime(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) {
        for (size_t i = 0; i < sizeof static_types / sizeof *static_types; i++)
            if (strcasecmp(dot + 1, static_types[i].ext) == 0)
                return static_types[i].type;
    }
    return "application/octet-stream";
}

static const char static_days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
static const char static_months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), not locale dependent. */
static void static_http_date(time_t t, char *out, size_t size)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, size, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             static_days[tm.tm_wday % 7], tm.tm_mday,
             static_months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

static int static_month(const char *name)
{
    for (int i = 0; i < 12; i++)
        if (strcmp(name, static_months[i]) == 0)
            return i;
    return -1;
}

/* Parses the three HTTP date forms (IMF-fixdate, RFC 850, asctime). Returns
 * 0 with *t set, or -1: an invalid date is ignored, as RFC 9110 says. */
static int static_parse_date(const char *s, time_t *t)
{
    struct tm tm = {0};
    char mon[4];
    int end = -1;
    const char *rest = strpbrk(s, ", ");
    if (!rest)
        return -1;
    if (rest[0] == ',') {
        rest++;
        if (sscanf(rest, " %2d %3s %4d %2d:%2d:%2d GMT%n", &tm.tm_mday, mon,
                   &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                   &end) == 6 &&
            end > 0) {
            tm.tm_year -= 1900;
        } else if (sscanf(rest, " %2d-%3s-%2d %2d:%2d:%2d GMT%n", &tm.tm_mday,
                          mon, &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
                          &end) == 6 &&
                   end > 0) {
            if (tm.tm_year < 70)
                tm.tm_year += 100;
        } else {
            return -1;
        }
    } else if (sscanf(rest, " %3s %2d %2d:%2d:%2d %4d%n", mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &tm.tm_year,
                      &end) == 6 &&
               end > 0) {
        tm.tm_year -= 1900;
    } else {
        return -1;
    }
    rest += end;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    tm.tm_mon = static_month(mon);
    if (*rest || tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 70)
        return -1;
    *t = timegm(&tm);
    return *t == (time_t)-1 ? -1 : 0;
}

/* ---- validators and ranges -------------------------------------------- */

/* Does the If-None-Match list match etag? Weak comparison: "W/" is ignored,
 * "*" matches anything. A malformed list stops matching where it breaks. */
static int static_etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return 0;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            return 0;
        const char *close = strchr(p + 1, '"');
        if (!close)
            return 0;
        size_t len = (size_t)(close - p) + 1;
        if (len == elen && memcmp(p, etag, len) == 0)
            return 1;
        p = close + 1;
    }
}

/* Is If-Range's validator still current? An entity tag matches only strongly
 * (never "W/"), a date only if it is exactly the Last-Modified. */
static int static_if_range_holds(const char *v, const char *etag, time_t mtime)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (v[0] == '"')
        return strcmp(v, etag) == 0;
    if (strncmp(v, "W/", 2) == 0)
        return 0;
    time_t t;
    return static_parse_date(v, &t) == 0 && t == mtime;
}

enum { STATIC_WHOLE, STATIC_PART, STATIC_UNSATISFIABLE };

/* Digits as a number saturating at UINT64_MAX. Returns 1 if there were any. */
static int static_number(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        s++;
    }
    int any = s != *p;
    *p = s;
    *out = v;
    return any;
}

/* Parses a Range header against a file of size bytes. One range only:
 * several ranges, another unit or bad syntax mean STATIC_WHOLE (RFC 9110 lets
 * a server ignore Range). Sets [*first, *last] for STATIC_PART. */
static int static_parse_range(const char *h, uint64_t size, uint64_t *first,
                              uint64_t *last)
{
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "bytes", 5) != 0)
        return STATIC_WHOLE;
    h += 5;
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h++ != '=' || strchr(h, ','))
        return STATIC_WHOLE;
    while (*h == ' ' || *h == '\t')
        h++;
    uint64_t a = 0, b = 0;
    int has_a = static_number(&h, &a);
    if (*h++ != '-')
        return STATIC_WHOLE;
    int has_b = static_number(&h, &b);
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h != '\0' || (!has_a && !has_b))
        return STATIC_WHOLE;
    if (!has_a) { /* "-n": the last n bytes */
        if (b == 0 || size == 0)
            return STATIC_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return STATIC_PART;
    }
    if (has_b && b < a)
        return STATIC_WHOLE; /* invalid, so ignored */
    if (a >= size)
        return STATIC_UNSATISFIABLE;
    *first = a;
    *last = has_b && b < size - 1 ? b : size - 1;
    return STATIC_PART;
}

/* ---- serving ---------------------------------------------------------- */

/* 301 to the same URL with a slash appended. The Location is the decoded path
 * encoded again (so a CR or a space in a name cannot break the header), plus
 * the raw query. */
static int static_redirect(co_request_t *req, co_response_t *res)
{
    static const char keep[] = "-._~!$&'()*+,;=:@/";
    static const char hex[] = "0123456789ABCDEF";
    const char *path = co_req_path(req);
    const char *query = co_req_query(req);
    size_t plen = strlen(path), qlen = strlen(query);
    if (plen > PATH_MAX || qlen > 8192)
        return static_error(res, 414, "path too long");
    char *loc = malloc(plen * 3 + qlen + 3);
    if (!loc)
        return static_error(res, 500, "internal error: out of memory");
    char *o = loc;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || (*p && strchr(keep, *p))) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o++ = '/';
    if (qlen) {
        *o++ = '?';
        memcpy(o, query, qlen);
        o += qlen;
    }
    *o = '\0';
    int rc = co_res_header(res, "Location", loc);
    free(loc);
    if (rc < 0)
        return errno == EINVAL ? static_error(res, 400, "bad query") : -1;
    return static_error(res, 301, "moved permanently: add a slash");
}

/* The headers every answer about the file carries (200, 206, 304). */
static int static_file_headers(co_response_t *res, const char *etag,
                               const char *modified)
{
    if (co_res_header(res, "ETag", etag) < 0 ||
        co_res_header(res, "Last-Modified", modified) < 0 ||
        co_res_header(res, "Accept-Ranges", "bytes") < 0)
        return -1;
    return 0;
}

/* Answers with the open regular file fd (st its stat, name for the type):
 * conditionals first (304), then Range (206/416), else the whole file. */
static int static_send_file(co_request_t *req, co_response_t *res, int fd,
                            const struct stat *st, const char *name)
{
    uint64_t size = (uint64_t)st->st_size;
    uint64_t mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
                        (uint64_t)st->st_mtim.tv_nsec;
    char etag[48], modified[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)mtime_ns,
             (unsigned long long)size);
    static_http_date(st->st_mtim.tv_sec, modified, sizeof modified);

    /* If-None-Match, when present, decides alone (RFC 9110 13.2.2). */
    const char *inm = co_req_header(req, "If-None-Match");
    const char *ims = co_req_header(req, "If-Modified-Since");
    time_t since;
    int fresh = inm ? static_etag_listed(inm, etag)
                    : ims && static_parse_date(ims, &since) == 0 &&
                          st->st_mtim.tv_sec <= since;
    if (fresh) {
        if (static_file_headers(res, etag, modified) < 0 ||
            co_res_status(res, 304) < 0)
            return -1;
        return 0;
    }

    /* Range is defined for GET only; If-Range can veto it. */
    uint64_t first = 0, last = size ? size - 1 : 0;
    int kind = STATIC_WHOLE;
    const char *range = co_req_header(req, "Range");
    const char *if_range = co_req_header(req, "If-Range");
    if (range && strcmp(co_req_method(req), "GET") == 0 &&
        (!if_range ||
         static_if_range_holds(if_range, etag, st->st_mtim.tv_sec)))
        kind = static_parse_range(range, size, &first, &last);

    char content_range[80];
    if (kind == STATIC_UNSATISFIABLE) {
        snprintf(content_range, sizeof content_range, "bytes */%llu",
                 (unsigned long long)size);
        if (co_res_header(res, "Content-Range", content_range) < 0)
            return -1;
        return static_error(res, 416, "range not satisfiable");
    }
    if (static_file_headers(res, etag, modified) < 0 ||
        co_res_header(res, "Content-Type", static_mime(name)) < 0 ||
        co_res_header(res, "X-Content-Type-Options", "nosniff") < 0)
        return -1;
    if (kind == STATIC_PART) {
        snprintf(content_range, sizeof content_range, "bytes %llu-%llu/%llu",
                 (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)size);
        if (co_res_status(res, 206) < 0 ||
            co_res_header(res, "Content-Range", content_range) < 0)
            return -1;
        return co_res_sendfile(res, fd, (off_t)first,
                               (size_t)(last - first + 1));
    }
    return co_res_sendfile(res, fd, 0, (size_t)size);
}

/* Opens rel for reading and checks it is the regular file found by the O_PATH
 * lookup (same device and inode), so what is read is what was checked. */
static int static_open_checked(const struct static_root *root, const char *rel,
                               const struct stat *want, struct stat *st)
{
    int fd = static_resolve(root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) ||
        st->st_dev != want->st_dev || st->st_ino != want->st_ino) {
        close(fd);
        errno = ENOENT; /* replaced between the two opens */
        return -1;
    }
    return fd;
}

int static__serve(const struct static_root *root, co_request_t *req,
                  co_response_t *res)
{
    const char *method = co_req_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        if (co_res_header(res, "Allow", "GET, HEAD") < 0)
            return -1;
        return static_error(res, 405, "method not allowed: use GET or HEAD");
    }

    char rel[PATH_MAX];
    const char *why = "";
    int slash;
    int status = static__check_path(co_req_path_info(req), rel, sizeof rel,
                                    &slash, &why);
    if (status)
        return static_error(res, status, why);

    struct stat st;
    int pfd = static_resolve(root, rel, O_PATH);
    if (pfd < 0)
        return static_open_error(res, errno);
    int rc = fstat(pfd, &st);
    close(pfd);
    if (rc < 0)
        return static_error(res, 500, "internal error: cannot stat file");

    if (S_ISDIR(st.st_mode)) {
        if (!slash)
            return static_redirect(req, res);
        size_t len = strlen(rel); /* room was checked by static__check_path */
        snprintf(rel + len, sizeof rel - len, "%s%s", len ? "/" : "",
                 STATIC_INDEX);
        pfd = static_resolve(root, rel, O_PATH);
        if (pfd < 0)
            return errno == ENOENT
                       ? static_error(res, 404, "not found: no index.html")
                       : static_open_error(res, errno);
        rc = fstat(pfd, &st);
        close(pfd);
        if (rc < 0)
            return static_error(res, 500, "internal error: cannot stat file");
    } else if (S_ISREG(st.st_mode) && slash) {
        return static_error(res, 404, "not found: not a directory");
    }
    if (!S_ISREG(st.st_mode))
        return static_error(res, 403, "forbidden: not a regular file");

    struct stat fst;
    int fd = static_open_checked(root, rel, &st, &fst);
    if (fd < 0)
        return static_open_error(res, errno);
    rc = static_send_file(req, res, fd, &fst, rel);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}
