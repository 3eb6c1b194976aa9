/*
 * The router: longest mount prefix wins. Mounts are sorted longest first
 * at load, so the first match is the answer; a handful of apps makes a
 * linear scan cheaper than any tree.
 */
#include <string.h>

#include "app/app.h"

const struct http_route *app__route(void *ctx, const char *path)
{
    const struct app_table *table = ctx;
    for (size_t i = 0; i < table->count; i++) {
        const struct app *app = &table->apps[i];
        size_t n = strlen(app->mount);
        if (!app->route.handler) /* stream only: nothing over HTTP */
            continue;
        /* "/hello" matches "/hello" and "/hello/x", not "/helloworld" */
        if (strncmp(path, app->mount, n) == 0 &&
            (path[n] == '\0' || path[n] == '/'))
            return &app->route;
    }
    return NULL;
}
