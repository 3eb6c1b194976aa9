/*
 * options.h - coserve's command line: one table drives parsing, validation
 * and --help.
 *
 * Each row of the table (options.c) names a flag (long, and a short form
 * for the common ones, as gunicorn spells them: -b, -w, -t...), the kind
 * of its value (size, duration, count, octal mode, word from a list,
 * string, repeatable list, flag), the range it accepts, the field of
 * struct options it sets, its default and its help text. The parser
 * applies every row's default before reading argv, so the default --help
 * prints is the one in force. A bad value is one line on stderr,
 * "coserve: --workers: want 1..256, not 'x'", and exit status 2.
 */
#ifndef COSERVE_OPTIONS_H
#define COSERVE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "http/http.h"
#include "privs.h"
#include "worker.h"

#define OPTIONS_LIST_MAX 64

/* A repeatable option's values, in the order given. */
struct options_list {
    const char *items[OPTIONS_LIST_MAX];
    size_t count;
};

enum options_access_format { OPTIONS_ACCESS_COMBINED, OPTIONS_ACCESS_JSON };

/* Everything the command line sets; the limits land in http directly, the
 * stop's grace and recycling in worker. */
struct options {
    struct http_config http;
    struct worker_config worker;
    struct options_list listen;  /* --listen, every one served */
    struct options_list streams; /* COSERVE_STREAM_LISTEN's, then flags' */
    const char *apps, *www, *access_log, *pid_file, *metrics_listen;
    unsigned access_format; /* enum options_access_format */
    unsigned log_level;     /* enum log_level */
    unsigned workers;
    unsigned socket_mode;
    struct privs privs; /* --socket-owner/-group, --user, --group */
    int no_hooks;
    int64_t block_ms, timeout_ms; /* 0: off */
    /* applied only when given: the runtime has its own defaults (and
     * environment variables) otherwise */
    uint64_t stack_size, offload_threads, sendfile_chunk;
    int stack_size_set, offload_threads_set, sendfile_chunk_set;
};

/* Fills o from the table's defaults, COSERVE_STREAM_LISTEN and argv.
 * Returns -1 to go on serving; otherwise the exit status: 0 after --help
 * or --version (printed on stdout), 2 after one line on stderr. */
int options__parse(struct options *o, int argc, char **argv);

/* Writes --help, generated from the table. */
void options__usage(FILE *out);

#endif
