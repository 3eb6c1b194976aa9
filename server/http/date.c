/*
 * Date strings, formatted at most once a second per thread: every response
 * carries a Date header and every log line a timestamp, and strftime per
 * request would be measurable.
 */
#include <time.h>

#include "http/date.h"

static __thread time_t date_http_at = -1, date_log_at = -1;
static __thread char date_http_buf[40], date_log_buf[40];

const char *date__http(void)
{
    time_t now = time(NULL);
    if (now != date_http_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date_http_buf, sizeof date_http_buf,
                 "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_http_at = now;
    }
    return date_http_buf;
}

const char *date__log(void)
{
    time_t now = time(NULL);
    if (now != date_log_at) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(date_log_buf, sizeof date_log_buf, "%d/%b/%Y:%H:%M:%S %z",
                 &tm);
        date_log_at = now;
    }
    return date_log_buf;
}
