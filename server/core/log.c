/* The error log (see log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log__level = LOG_INFO;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

int log__parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

/* Formats into one buffer and writes it with one write(2), so lines from
 * several workers sharing stderr do not interleave. */
static void log_vwrite(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n,
                  " coserve[%d] %s: ", (int)getpid(), level);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
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
