/*
 * The access log as JSON lines (--access-log-format json): one object per
 * request, for log shippers that would otherwise parse the combined
 * format with a regular expression.
 *
 * {"time":"2026-11-23T09:00:00.123Z","remote":"10.0.0.1","method":"GET",
 *  "target":"/hello","status":200,"bytes":5,"referer":null,
 *  "user_agent":"curl/8.0","duration":0.001,"app":"hello"}
 *
 * Every string is valid JSON whatever the client sent: quotes, backslashes
 * and control bytes are escaped, bytes that are not UTF-8 become U+FFFD,
 * and a field that does not fit is cut on a character boundary. As in the
 * combined format, a client's bytes are copied by their length, never past
 * it: the pooled buffer behind a refused head holds other requests.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/accesslog.h"
#include "http/date.h"
#include "http/forwarded.h"
#include "http/http.h"
#include "http/request.h"

/* Room kept for the fixed parts of a line (names, numbers, time). */
#define ACCESSLOG_JSON_FIXED 512

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0:
 * no overlongs, no surrogates, nothing past U+10FFFF (RFC 3629). */
static size_t json_utf8(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n > len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* Appends s (len bytes; NULL: null) as a JSON string, within room bytes
 * of out (which must have room for at least "null"). */
static size_t json_str(char *out, size_t room, const char *s, size_t len)
{
    if (!s)
        return (size_t)snprintf(out, room, "null");
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t k = 0, used = 1;
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, k = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2), k = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2), k = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2), k = 2;
        } else if (c < 0x20 || c == 0x7f) {
            k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else if (c < 0x80) {
            esc[0] = (char)c, k = 1;
        } else if ((used = json_utf8(p + i, len - i)) > 0) {
            memcpy(esc, p + i, used), k = used;
        } else {
            used = 1;
            memcpy(esc, "\\ufffd", 6), k = 6;
        }
        if (n + k + 2 > room)
            break; /* cut here: the closing quote still fits */
        memcpy(out + n, esc, k);
        n += k;
        i += used;
    }
    out[n++] = '"';
    out[n] = '\0';
    return n;
}

/* "2026-11-23T09:00:00.123Z": the seconds part formatted once a second. */
static size_t json_time(char *out, size_t room)
{
    static __thread time_t at = -1;
    static __thread char secs[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != at) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
        at = ts.tv_sec;
    }
    return (size_t)snprintf(out, room, "\"%s.%03dZ\"", secs,
                            (int)(ts.tv_nsec / 1000000));
}

/* A header, only from a head the front end accepted (whose slices are
 * complete and NUL-terminated). */
static const char *json_header(co_request_t *req, const char *name)
{
    return req->error_reason ? NULL : request__header(req, name);
}

size_t accesslog__json(co_request_t *req, char *out, size_t room, double secs)
{
    if (room < 2 * ACCESSLOG_JSON_FIXED)
        return 0;
    if (!(secs >= 0 && secs < 1e9)) /* a clock step: keep the field short */
        secs = 0;
    /* the client's strings share what the fixed parts leave, the target
     * first (it says most about the request) */
    size_t share = room - ACCESSLOG_JSON_FIXED;
    size_t budget[] = {share / 2, share / 4, share / 4};
    const char *ref = json_header(req, "referer");
    const char *ua = json_header(req, "user-agent");
    const char *remote = co_req_remote_addr(req);
    const char *app = req->route ? req->route->name : NULL;
    size_t n = 0;
    n += (size_t)snprintf(out + n, room - n, "{\"time\":");
    n += json_time(out + n, room - n);
    n += (size_t)snprintf(out + n, room - n, ",\"remote\":");
    n += json_str(out + n, 64, remote, strlen(remote));
    n += (size_t)snprintf(out + n, room - n, ",\"method\":");
    n += json_str(out + n, 40, req->method,
                  req->method ? strlen(req->method) : 0);
    n += (size_t)snprintf(out + n, room - n, ",\"target\":");
    n += json_str(out + n, budget[0], req->target,
                  req->target ? req->target_len : 0);
    n += (size_t)snprintf(out + n, room - n,
                          ",\"status\":%d,\"bytes\":%" PRIu64 ",\"referer\":",
                          req->res.status, req->res.body_out);
    n += json_str(out + n, budget[1], ref, ref ? strlen(ref) : 0);
    n += (size_t)snprintf(out + n, room - n, ",\"user_agent\":");
    n += json_str(out + n, budget[2], ua, ua ? strlen(ua) : 0);
    n += (size_t)snprintf(out + n, room - n,
                          ",\"duration\":%.3f,\"app\":", secs);
    n += json_str(out + n, 40, app, app ? strlen(app) : 0);
    n += (size_t)snprintf(out + n, room - n, "}\n");
    return n < room ? n : room - 1;
}
