/*
 * log.h - the error log: one line per event on stderr, with a level.
 *
 * Every layer logs through here so the server's --log-level applies to all.
 * Lines look like "2026-11-23T09:00:00Z coserve[123] error: message".
 */
#ifndef COSERVE_CORE_LOG_H
#define COSERVE_CORE_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; LOG_INFO by default. */
extern enum log_level log__level;

/* Where lines go: stderr, or in a worker a copy of it (errcap.h), so that
 * what apps write to stderr can be captured and these lines are not.
 * Crash and block reports written without this module use it too. */
extern int log__fd;

/* Writes one line (printf format; a trailing newline is added). */
void log__write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "TIME coserve[PID] LEVEL: SOURCE: TEXT", len bytes of text (no
 * newline in it), if level is not above log__level. */
void log__source_line(enum log_level level, const char *source,
                      const char *text, size_t len);

/* Parses "error", "warn", "info" or "debug"; -1 if it is none of them. */
int log__parse_level(const char *name);

/* Logs the message at level "fatal" and aborts: for broken invariants and
 * misuse of the API that cannot be reported through errno. */
_Noreturn void log__fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#define log_error(...) log__write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log__write(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                                          \
    do {                                                                       \
        if (log__level >= LOG_INFO)                                            \
            log__write(LOG_INFO, __VA_ARGS__);                                 \
    } while (0)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (log__level >= LOG_DEBUG)                                           \
            log__write(LOG_DEBUG, __VA_ARGS__);                                \
    } while (0)

#endif
