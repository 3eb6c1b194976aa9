/*
 * test_static.c - static files from a www root: index.html at "/", MIME
 * types, validators (Last-Modified / If-Modified-Since, ETag /
 * If-None-Match: 304), byte ranges (206, 416), and the escape attempts that
 * must never read a file outside the root (.., encoded .., backslashes, NUL,
 * symlinks leaving the root).
 */
#include "harness.h"

TestSuite(static_files, .fini = h_teardown, .timeout = 60);

/* A file in the temp www. */
static void put(const char *rel, const char *content)
{
    char rel2[256];
    snprintf(rel2, sizeof rel2, "www/%s", rel);
    h_write_file(h_path(rel2), content, strlen(content));
}

static struct h_resp *get(const char *target, int want)
{
    char *raw = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    struct h_resp *r = h_request(raw, 0, want);
    free(raw);
    return r;
}

/* GET target with one extra header line ("Name: value"). */
static struct h_resp *get_with(const char *target, const char *header, int want)
{
    char *raw =
        h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n", target, header);
    struct h_resp *r = h_request(raw, 0, want);
    free(raw);
    return r;
}

Test(static_files, the_project_index_html_is_served_at_the_root)
{
    size_t len;
    char *want = h_read_file("www/index.html", &len);
    cr_assert_not_null(want, "www/index.html (run from the repository root)");
    h_start(H_ARGS("--www", "www"));
    struct h_resp *r = get("/", 200);
    cr_assert_eq(r->body_len, len);
    cr_assert(memcmp(r->body, want, len) == 0, "/ is not www/index.html");
    const char *type = h_header(r, "Content-Type");
    cr_assert_not_null(type);
    cr_assert(strncmp(type, "text/html", 9) == 0, "Content-Type %s", type);
    h_resp_free(r);
    /* and by its name */
    r = get("/index.html", 200);
    cr_assert_eq(r->body_len, len);
    cr_assert(memcmp(r->body, want, len) == 0);
    h_resp_free(r);
    free(want);
    h_stop();
}

Test(static_files,
     a_directory_without_slash_redirects_and_with_slash_serves_its_index)
{
    h_start(NULL);
    cr_assert_eq(mkdir(h_path("www/sub"), 0755), 0);
    put("sub/index.html", "sub index\n");
    struct h_resp *r = get("/sub/", 200);
    cr_assert_str_eq(r->body, "sub index\n");
    h_resp_free(r);
    r = get("/sub?x=1", 301);
    cr_assert_str_eq(h_header(r, "Location"), "/sub/?x=1");
    h_resp_free(r);
    /* a folder without index.html */
    cr_assert_eq(mkdir(h_path("www/empty"), 0755), 0);
    r = get("/empty/", 404);
    h_resp_free(r);
    /* a file asked for as a folder */
    r = get("/hello.txt/", 404);
    h_resp_free(r);
    h_stop();
}

Test(static_files, content_types_follow_the_file_extension)
{
    h_start(NULL);
    struct {
        const char *file, *type;
    } cases[] = {
        {"a.html", "text/html"},
        {"a.css", "text/css"},
        {"a.js", "text/javascript"},
        {"a.json", "application/json"},
        {"a.txt", "text/plain"},
        {"a.svg", "image/svg+xml"},
        {"a.png", "image/png"},
        {"a.jpg", "image/jpeg"},
        {"a.gif", "image/gif"},
        {"a.wasm", "application/wasm"},
        {"UPPER.PNG", "image/png"},
        {"no-extension", "application/octet-stream"},
        {"a.unknown-ext", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        put(cases[i].file, "content\n");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char target[128];
        snprintf(target, sizeof target, "/%s", cases[i].file);
        struct h_resp *r = get(target, 200);
        const char *type = h_header(r, "Content-Type");
        cr_assert_not_null(type, "%s has no Content-Type", target);
        cr_assert(strncmp(type, cases[i].type, strlen(cases[i].type)) == 0 &&
                      (type[strlen(cases[i].type)] == '\0' ||
                       type[strlen(cases[i].type)] == ';'),
                  "%s: Content-Type %s, want %s", target, type, cases[i].type);
        cr_assert_str_eq(r->body, "content\n");
        h_resp_free(r);
    }
    h_stop();
}

Test(static_files, last_modified_and_if_modified_since_give_304)
{
    h_start(NULL);
    put("page.txt", "some page\n");
    /* a modification time well in the past, so "now" is after it */
    struct timespec times[2] = {{1600000000, 0}, {1600000000, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, h_path("www/page.txt"), times, 0), 0);
    struct h_resp *r = get("/page.txt", 200);
    const char *lm = h_header(r, "Last-Modified");
    cr_assert_not_null(lm, "no Last-Modified:\n%s", r->head);
    cr_assert_str_eq(lm, "Sun, 13 Sep 2020 12:26:40 GMT");
    char *ims = h_fmt("If-Modified-Since: %s", lm);
    h_resp_free(r);

    struct h_conn *c = h_connect();
    char *raw = h_fmt("GET /page.txt HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n", ims);
    h_sends(c, raw);
    r = h_response(c, 0);
    cr_assert_eq(r->status, 304, "got %d", r->status);
    cr_assert_eq(r->body_len, 0);
    cr_assert_not_null(h_header(r, "ETag"));
    h_resp_free(r);
    /* 304 has no body: the connection carries on */
    h_sends(c, "GET /page.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    r = h_response(c, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body, "some page\n");
    h_resp_free(r);
    h_close(c);
    free(raw);
    free(ims);

    /* a later date is also "not modified"; an earlier one is */
    r = get_with("/page.txt",
                 "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT", 304);
    h_resp_free(r);
    r = get_with("/page.txt",
                 "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT", 200);
    cr_assert_str_eq(r->body, "some page\n");
    h_resp_free(r);
    /* an invalid date is ignored */
    r = get_with("/page.txt", "If-Modified-Since: yesterday-ish", 200);
    h_resp_free(r);
    /* the file changes: the old date no longer matches */
    struct timespec later[2] = {{1700000000, 0}, {1700000000, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, h_path("www/page.txt"), later, 0), 0);
    r = get_with("/page.txt",
                 "If-Modified-Since: Sun, 13 Sep 2020 12:26:40 GMT", 200);
    h_resp_free(r);
    h_stop();
}

Test(static_files, etag_and_if_none_match_give_304)
{
    h_start(NULL);
    put("doc.txt", "document\n");
    struct h_resp *r = get("/doc.txt", 200);
    const char *etag = h_header(r, "ETag");
    cr_assert_not_null(etag, "no ETag:\n%s", r->head);
    cr_assert(etag[0] == '"' || strncmp(etag, "W/\"", 3) == 0,
              "ETag %s is not quoted", etag);
    char *tag = strdup(etag);
    h_resp_free(r);

    char *hdr = h_fmt("If-None-Match: %s", tag);
    r = get_with("/doc.txt", hdr, 304);
    cr_assert_eq(r->body_len, 0);
    cr_assert_str_eq(h_header(r, "ETag"), tag);
    h_resp_free(r);
    free(hdr);
    /* in a list, and "*" */
    hdr = h_fmt("If-None-Match: \"nope\", %s", tag);
    r = get_with("/doc.txt", hdr, 304);
    h_resp_free(r);
    free(hdr);
    r = get_with("/doc.txt", "If-None-Match: *", 304);
    h_resp_free(r);
    /* HEAD too */
    char *raw = h_fmt("HEAD /doc.txt HTTP/1.1\r\nHost: t\r\n"
                      "If-None-Match: %s\r\n\r\n",
                      tag);
    r = h_request(raw, H_HEAD, 304);
    h_resp_free(r);
    free(raw);
    /* another tag: the full file */
    r = get_with("/doc.txt", "If-None-Match: \"something-else\"", 200);
    cr_assert_str_eq(r->body, "document\n");
    h_resp_free(r);
    /* If-None-Match wins over If-Modified-Since */
    r = get_with("/doc.txt",
                 "If-None-Match: \"something-else\"\r\n"
                 "If-Modified-Since: Mon, 01 Jan 2035 00:00:00 GMT",
                 200);
    h_resp_free(r);
    /* the content changes: the old tag no longer matches */
    put("doc.txt", "document, revised\n");
    hdr = h_fmt("If-None-Match: %s", tag);
    r = get_with("/doc.txt", hdr, 200);
    cr_assert_str_eq(r->body, "document, revised\n");
    cr_assert_str_neq(h_header(r, "ETag"), tag);
    h_resp_free(r);
    free(hdr);
    free(tag);
    h_stop();
}

Test(static_files, a_byte_range_gets_206_and_an_unsatisfiable_one_416)
{
    h_start(NULL);
    put("digits.txt", "0123456789abcdefghij"); /* 20 bytes */
    struct h_resp *r = get("/digits.txt", 200);
    cr_assert_str_eq(h_header(r, "Accept-Ranges"), "bytes");
    h_resp_free(r);

    r = get_with("/digits.txt", "Range: bytes=2-5", 206);
    cr_assert_str_eq(r->body, "2345");
    cr_assert_str_eq(h_header(r, "Content-Range"), "bytes 2-5/20");
    cr_assert_str_eq(h_header(r, "Content-Length"), "4");
    h_resp_free(r);
    r = get_with("/digits.txt", "Range: bytes=15-", 206);
    cr_assert_str_eq(r->body, "fghij");
    cr_assert_str_eq(h_header(r, "Content-Range"), "bytes 15-19/20");
    h_resp_free(r);
    r = get_with("/digits.txt", "Range: bytes=-3", 206);
    cr_assert_str_eq(r->body, "hij");
    cr_assert_str_eq(h_header(r, "Content-Range"), "bytes 17-19/20");
    h_resp_free(r);
    r = get_with("/digits.txt", "Range: bytes=18-1000", 206);
    cr_assert_str_eq(r->body, "ij");
    cr_assert_str_eq(h_header(r, "Content-Range"), "bytes 18-19/20");
    h_resp_free(r);

    r = get_with("/digits.txt", "Range: bytes=20-", 416);
    cr_assert_str_eq(h_header(r, "Content-Range"), "bytes */20");
    h_resp_free(r);
    r = get_with("/digits.txt", "Range: bytes=100-200", 416);
    h_resp_free(r);

    /* syntax it ignores: the whole file */
    r = get_with("/digits.txt", "Range: items=0-3", 200);
    cr_assert_eq(r->body_len, 20);
    h_resp_free(r);
    r = get_with("/digits.txt", "Range: bytes=5-2", 200);
    cr_assert_eq(r->body_len, 20);
    h_resp_free(r);

    /* ranges on one keep-alive connection, back to back */
    struct h_conn *c = h_connect();
    for (int i = 0; i < 5; i++) {
        char *raw = h_fmt("GET /digits.txt HTTP/1.1\r\nHost: t\r\n"
                          "Range: bytes=%d-%d\r\n\r\n",
                          i, i + 1);
        h_sends(c, raw);
        free(raw);
        r = h_response(c, 0);
        cr_assert_eq(r->status, 206);
        cr_assert_eq(r->body_len, 2);
        cr_assert(memcmp(r->body, &"0123456789"[i], 2) == 0);
        h_resp_free(r);
    }
    h_close(c);
    h_stop();
}

Test(static_files, a_large_file_is_sent_whole_and_exact)
{
    h_start(NULL);
    size_t n = 3 * 1024 * 1024 + 11;
    char *data = malloc(n);
    h_fill_random(data, n, 42);
    h_write_file(h_path("www/big.bin"), data, n);
    struct h_resp *r = get("/big.bin", 200);
    cr_assert_eq(r->body_len, n);
    cr_assert(memcmp(r->body, data, n) == 0);
    h_resp_free(r);
    char range[64];
    snprintf(range, sizeof range, "Range: bytes=%zu-%zu", n / 2, n / 2 + 99999);
    r = get_with("/big.bin", range, 206);
    cr_assert_eq(r->body_len, 100000);
    cr_assert(memcmp(r->body, data + n / 2, 100000) == 0);
    h_resp_free(r);
    free(data);
    h_stop();
}

/* ---- escapes ---------------------------------------------------------- */

#define SECRET "TOP-SECRET-OUTSIDE-THE-ROOT"

/* Asserts target is refused (400, 403 or 404) without leaking the secret
 * or /etc/passwd. The server may also close (a refused head). */
static void assert_refused(const char *target)
{
    struct h_conn *c = h_connect();
    char *raw = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    h_sends(c, raw);
    struct h_resp *r = h_response(c, 0);
    cr_assert(r->status == 400 || r->status == 403 || r->status == 404,
              "%s: status %d\n%s%s", target, r->status, r->head, r->body);
    cr_assert_null(h_memmem(r->body, r->body_len, SECRET),
                   "%s leaked the file outside the root", target);
    cr_assert_null(h_memmem(r->body, r->body_len, "root:"),
                   "%s leaked /etc/passwd", target);
    h_resp_free(r);
    free(raw);
    h_close(c);
}

Test(static_files, traversal_attempts_never_leave_the_root)
{
    h_start(NULL);
    h_write_file(h_path("secret.txt"), SECRET "\n", strlen(SECRET) + 1);
    const char *targets[] = {
        "/../etc/passwd",
        "/../../../../../../../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2fetc/passwd",
        "/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/a%5c..%5cb",
        "/..%5c..%5cetc%5cpasswd",
        "/..\\..\\etc\\passwd",
        "/%00",
        "/hello.txt%00.png",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/./../secret.txt",
        "/sub/../../secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/.%2fsecret.txt",
        "/.git/config",
        "/.env",
        "/..",
        "/.",
    };
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++)
        assert_refused(targets[i]);
    /* and the server is fine */
    struct h_resp *r = get("/hello.txt", 200);
    cr_assert_str_eq(r->body, "hello, static\n");
    h_resp_free(r);
    h_stop();
}

Test(static_files, absolute_form_and_relative_targets_never_leave_the_root)
{
    h_start(NULL);
    h_write_file(h_path("secret.txt"), SECRET "\n", strlen(SECRET) + 1);
    const char *reqs[] = {
        "GET ../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET http://t/../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET http://t/%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET ..%2fsecret.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        struct h_conn *c = h_connect();
        h_sends(c, reqs[i]);
        struct h_resp *r = h_response(c, 0);
        cr_assert(r->status >= 400 && r->status < 500, "%s-> %d", reqs[i],
                  r->status);
        cr_assert_null(h_memmem(r->body, r->body_len, SECRET));
        cr_assert_null(h_memmem(r->body, r->body_len, "root:"));
        h_resp_free(r);
        h_close(c);
    }
    h_stop();
}

Test(static_files, symlinks_leading_outside_the_root_are_refused)
{
    h_start(NULL);
    h_write_file(h_path("secret.txt"), SECRET "\n", strlen(SECRET) + 1);
    cr_assert_eq(mkdir(h_path("outside"), 0755), 0);
    h_write_file(h_path("outside/inner.txt"), SECRET "\n", strlen(SECRET) + 1);
    char abs_secret[512];
    snprintf(abs_secret, sizeof abs_secret, "%s", h_path("secret.txt"));
    char abs_outside[512];
    snprintf(abs_outside, sizeof abs_outside, "%s", h_path("outside"));
    /* absolute and relative links to a file, a link to a folder outside,
     * a link to /etc/passwd, a link to / */
    cr_assert_eq(symlink(abs_secret, h_path("www/abs-link.txt")), 0);
    cr_assert_eq(symlink("../secret.txt", h_path("www/rel-link.txt")), 0);
    cr_assert_eq(symlink(abs_outside, h_path("www/outdir")), 0);
    cr_assert_eq(symlink("../outside", h_path("www/outdir-rel")), 0);
    cr_assert_eq(symlink("/etc/passwd", h_path("www/passwd")), 0);
    cr_assert_eq(symlink("/", h_path("www/rootdir")), 0);
    /* a chain: inside link -> inside link -> outside */
    cr_assert_eq(symlink("rel-link.txt", h_path("www/chain.txt")), 0);
    cr_assert_eq(mkdir(h_path("www/deep"), 0755), 0);
    cr_assert_eq(symlink("../../secret.txt", h_path("www/deep/up.txt")), 0);
    const char *targets[] = {
        "/abs-link.txt",         "/rel-link.txt",
        "/outdir/inner.txt",     "/outdir/",
        "/outdir-rel/inner.txt", "/passwd",
        "/rootdir/etc/passwd",   "/chain.txt",
        "/deep/up.txt",          "/outdir",
    };
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        struct h_conn *c = h_connect();
        char *raw = h_fmt("GET %s HTTP/1.1\r\nHost: t\r\n\r\n", targets[i]);
        h_sends(c, raw);
        struct h_resp *r = h_response(c, 0);
        /* "/outdir" alone may redirect to "/outdir/" (that, too, refused) */
        cr_assert(r->status == 400 || r->status == 403 || r->status == 404 ||
                      (r->status == 301 && strcmp(targets[i], "/outdir") == 0),
                  "%s: status %d\n%s%s", targets[i], r->status, r->head,
                  r->body);
        cr_assert_null(h_memmem(r->body, r->body_len, SECRET),
                       "%s leaked the file outside the root", targets[i]);
        cr_assert_null(h_memmem(r->body, r->body_len, "root:"),
                       "%s leaked /etc/passwd", targets[i]);
        h_resp_free(r);
        free(raw);
        h_close(c);
    }
    h_stop();
}

Test(static_files, non_regular_files_are_never_opened)
{
    h_start(NULL);
    cr_assert_eq(mkfifo(h_path("www/fifo.txt"), 0644), 0);
    struct h_resp *r = get("/fifo.txt", 0);
    cr_assert(r->status == 403 || r->status == 404, "fifo: %d", r->status);
    h_resp_free(r);
    /* the server did not block on the FIFO: it still serves */
    r = get("/hello.txt", 200);
    h_resp_free(r);
    h_stop();
}

Test(static_files, only_get_and_head_are_allowed)
{
    h_start(NULL);
    struct h_resp *r =
        h_request("DELETE /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 0, 405);
    cr_assert_not_null(h_header(r, "Allow"));
    h_resp_free(r);
    r = h_request("PUT /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                  "\r\nabc",
                  0, 405);
    h_resp_free(r);
    /* the file is untouched */
    r = get("/hello.txt", 200);
    cr_assert_str_eq(r->body, "hello, static\n");
    h_resp_free(r);
    h_stop();
}

Test(static_files, percent_encoded_names_are_decoded)
{
    h_start(NULL);
    put("with space.txt", "spaced\n");
    struct h_resp *r = get("/with%20space.txt", 200);
    cr_assert_str_eq(r->body, "spaced\n");
    h_resp_free(r);
    r = get("/hello%2Etxt", 200);
    cr_assert_str_eq(r->body, "hello, static\n");
    h_resp_free(r);
    /* a query string is not part of the name */
    r = get("/hello.txt?v=3", 200);
    cr_assert_str_eq(r->body, "hello, static\n");
    h_resp_free(r);
    h_stop();
}
