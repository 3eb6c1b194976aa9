/*
 * app.h - turning a folder of .so files into the http layer's router.
 *
 * loader.c opens every NAME.so of a folder (RTLD_NOW | RTLD_LOCAL), checks
 * its descriptor and mount, and (once the worker's hub runs) its init; a
 * module that fails any of these is refused with one log line naming the file
 * and the reason, and the others keep serving. router.c picks an app by longest
 * mount prefix.
 */
#ifndef COSERVE_APP_APP_H
#define COSERVE_APP_APP_H

#include <stddef.h>

#include "coserve.h"
#include "http/http.h"

#define APP_MOUNT_MAX 256

struct app {
    char *file; /* path of the .so */
    /* The file's name without ".so" (heap, like file): the name of an app
     * whose descriptor has none, which route.name then points to. */
    char *file_name;
    void *dl;
    const struct co_app *desc;
    char mount[APP_MOUNT_MAX]; /* "" for "/", else "/x" with no trailing / */
    struct http_route route;
    int initialized;
};

struct app_table {
    struct app *apps; /* sorted by mount length, longest first */
    size_t count;
};

/* Loads every .so in dir (in name order) and checks its descriptor and
 * mount. Returns how many were refused, or -1 with errno if dir cannot be
 * read. */
int app__load_dir(struct app_table *table, const char *dir);

/* Runs each app's init, in the worker's hub (inside a coroutine, so init
 * may use the cooperative API); an app whose init fails is refused and
 * dropped. Returns how many were refused. */
int app__init_all(struct app_table *table);

/* Runs every fini, in reverse order, in the hub. */
void app__fini_all(struct app_table *table);

/* Runs fini where not yet done and closes the modules. */
void app__unload_all(struct app_table *table);

/* The http router: the app whose mount is the longest prefix of path (on a
 * segment boundary), or NULL. ctx is the struct app_table. */
const struct http_route *app__route(void *ctx, const char *path);

#endif
