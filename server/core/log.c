/* The error log (see log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log__level = LOG_INFO;
int log__fd = STDERR_FILENO;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

int log__parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

/* "TIME coserve[PID] LEVEL: " at the start of line; returns its length. */
static int log_head(char *line, size_t len, const char *level)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = (int)strftime(line, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return n + snprintf(line + n, len - (size_t)n, " coserve[%d] %s: ",
                        (int)getpid(), level);
}

/* Formats into one buffer and writes it with one write(2), so lines from
 * several workers sharing stderr do not interleave. */
static void log_vwrite(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    int n = log_head(line, sizeof line, level);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(log__fd, line, (size_t)n);
    (void)w;
}

void log__source_line(enum log_level level, const char *source,
                      const char *text, size_t len)
{
    if (level > log__level)
        return;
    char line[2400];
    int n = log_head(line, sizeof line, log_names[level]);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", source);
    if (len > sizeof line - (size_t)n - 1)
        len = sizeof line - (size_t)n - 1;
    memcpy(line + n, text, len);
    n += (int)len;
    line[n++] = '\n';
    ssize_t w = write(log__fd, line, (size_t)n);
    (void)w;
}

void log__write(enum log_level level, const char *fmt, ...)
{
    if (level > log__level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(log_names[level], fmt, ap);
    va_end(ap);
}

void log__fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite("fatal", fmt, ap);
    va_end(ap);
    abort();
}
