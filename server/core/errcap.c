/* App stderr into the error log (see errcap.h). */
#include "core/errcap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/coro.h"
#include "core/log.h"

int errcap__on;

/* The partial line, shared by every thread of the worker. Its writer
 * never parks while it holds the lock: the stdio stream's lock is
 * recursive per thread, so a coroutine that parked inside fprintf would
 * let another coroutine of its thread into the same FILE. */
static struct {
    pthread_mutex_t lock;
    const struct co *owner; /* whose bytes line holds */
    char source[64];
    char line[ERRCAP_LINE];
    size_t len;
} ec = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The coroutine whose work this is: the running one, or its nearest
 * ancestor with a description. NULL: none (the hub, another thread). */
static const struct co *errcap_owner(void)
{
    struct hub *hub = hub__self;
    const struct co *co = hub ? hub->current : NULL;
    for (int depth = 0; co && !co->describe && depth < 16; depth++)
        co = co->parent;
    return co && co->describe ? co : NULL;
}

static void errcap_source(const struct co *owner, char *buf, size_t len)
{
    if (!owner) {
        snprintf(buf, len, "stderr");
        return;
    }
    char raw[256];
    size_t n = owner->describe(owner->describe_arg, raw, sizeof raw);
    raw[n < sizeof raw ? n : sizeof raw - 1] = '\0';
    char *sep = strstr(raw, ": ");
    if (sep)
        *sep = '\0';
    snprintf(buf, len, "%.*s", (int)(len - 1), raw[0] ? raw : "stderr");
}

/* With the lock held. */
static void errcap_emit(void)
{
    size_t n = ec.len;
    if (n && ec.line[n - 1] == '\r')
        n--;
    log__source_line(LOG_WARN, ec.source, ec.line, n);
    ec.len = 0;
}

static void errcap_feed(const char *p, size_t n)
{
    const struct co *owner = errcap_owner();
    pthread_mutex_lock(&ec.lock);
    if (ec.len && ec.owner != owner)
        errcap_emit();
    if (!ec.len && n) {
        ec.owner = owner;
        errcap_source(owner, ec.source, sizeof ec.source);
    }
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        while (take) {
            size_t room = sizeof ec.line - ec.len;
            size_t k = take < room ? take : room;
            memcpy(ec.line + ec.len, p, k);
            ec.len += k;
            p += k;
            n -= k;
            take -= k;
            if (ec.len == sizeof ec.line)
                errcap_emit(); /* a very long line: in pieces */
        }
        if (!nl)
            break;
        errcap_emit();
        p++;
        n--;
    }
    pthread_mutex_unlock(&ec.lock);
}

ssize_t errcap__write(const void *buf, size_t n)
{
    errcap_feed(buf, n);
    return (ssize_t)n;
}

static ssize_t errcap_cookie_write(void *cookie, const char *buf, size_t n)
{
    (void)cookie;
    errcap_feed(buf, n);
    return (ssize_t)n;
}

/* A line the process never ended still reaches the log. */
static void errcap_at_exit(void)
{
    pthread_mutex_lock(&ec.lock);
    if (ec.len)
        errcap_emit();
    pthread_mutex_unlock(&ec.lock);
}

int errcap__start(void)
{
    if (errcap__on)
        return 0;
    cookie_io_functions_t io = {.write = errcap_cookie_write};
    FILE *f = fopencookie(NULL, "w", io);
    if (!f)
        return -1;
    /* unbuffered: each fprintf is one call here, made by its writer, so
     * the partial line above knows whose bytes it holds */
    setvbuf(f, NULL, _IONBF, 0);
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
        int e = errno;
        fclose(f);
        errno = e;
        return -1;
    }
    log__fd = fd;
    stderr = f;
    atexit(errcap_at_exit);
    errcap__on = 1;
    return 0;
}
