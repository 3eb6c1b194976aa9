/*
 * app.h - turning a folder of .so files into the http layer's router.
 *
 * loader.c opens every NAME.so of a folder (RTLD_NOW | RTLD_LOCAL), checks
 * its descriptor and mount, and runs its init; a module that fails any of
 * these is refused with one log line naming the file and the reason, and the
 * others keep serving. router.c picks an app by longest mount prefix.
 */
#ifndef COSERVE_APP_APP_H
#define COSERVE_APP_APP_H

#include <stddef.h>

#include "coserve.h"
#include "http/http.h"

#define APP_MOUNT_MAX 256

struct app {
    char *file;                 /* path of the .so */
    void *dl;
    const struct co_app *desc;
    char mount[APP_MOUNT_MAX];  /* "" for "/", else "/x" with no trailing / */
    struct http_route route;
    int initialized;
};

struct app_table {
    struct app *apps;           /* sorted by mount length, longest first */
    size_t count;
};

/* Loads and initialises every .so in dir (in name order). Returns how many
 * were refused, or -1 with errno if dir cannot be read. */
int app__load_dir(struct app_table *table, const char *dir);

/* Runs every fini (in reverse order) and closes the modules. */
void app__unload_all(struct app_table *table);

/* The http router: the app whose mount is the longest prefix of path (on a
 * segment boundary), or NULL. ctx is the struct app_table. */
const struct http_route *app__route(void *ctx, const char *path);

#endif
