/* Loading apps from a folder (see app.h). */
#include "app/app.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static int loader_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int loader_cmp_mounts(const void *a, const void *b)
{
    const struct app *x = a, *y = b;
    size_t lx = strlen(x->mount), ly = strlen(y->mount);
    return lx < ly ? 1 : lx > ly ? -1 : strcmp(x->mount, y->mount);
}

/* Normalises a mount: must start with '/', no "//", no dot segments, no
 * trailing slash (except "/" itself, stored as ""). Returns 0 or -1. */
static int loader_mount(const char *in, char *out, size_t size)
{
    size_t n = strlen(in);
    if (n == 0 || in[0] != '/' || n >= size)
        return -1;
    if (strstr(in, "//") || strstr(in, "/./") || strstr(in, "/../"))
        return -1;
    for (const char *p = in; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == '%' ||
            *p == '\\')
            return -1;
    memcpy(out, in, n + 1);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    if ((n >= 2 && strcmp(out + n - 2, "/.") == 0) ||
        (n >= 3 && strcmp(out + n - 3, "/..") == 0))
        return -1;
    return 0;
}

/* The descriptor versions this server loads: the current one, and 1,
 * whose struct is the current one's without the stream fields at its end. */
static int loader_abi_ok(uint32_t v)
{
    return v == COSERVE_ABI_VERSION || v == 1;
}

/* Opens one module and checks its descriptor. Returns 0, or -1 after
 * logging why the file is refused. */
static int loader_open(struct app *app, const char *path, const char *base,
                       const struct app_table *table)
{
    app->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!app->dl) {
        log_error("app %s refused: cannot load: %s", path, dlerror());
        return -1;
    }
    const struct co_app *d = dlsym(app->dl, COSERVE_APP_SYMBOL);
    const char *why = NULL;
    char mount[APP_MOUNT_MAX];
    if (!d)
        why = "no '" COSERVE_APP_SYMBOL "' descriptor (use COSERVE_APP)";
    else if (!loader_abi_ok(d->abi_version))
        why = "built for another ABI version";
    /* A version-1 descriptor ends before the stream fields: never read
     * them from one (they would be whatever follows it in the module). */
    co_stream_fn stream =
        d && d->abi_version == COSERVE_ABI_VERSION ? d->stream : NULL;
    if (!why && !d->handler && !stream)
        why = "descriptor has no handler (nor stream)";
    if (!why && !d->handler) {
        mount[0] = '\0'; /* a stream-only app mounts nothing over HTTP */
    } else if (!why) {
        char def[APP_MOUNT_MAX];
        snprintf(def, sizeof def, "/%.*s", (int)(strlen(base) - 3), base);
        if (loader_mount(d->mount ? d->mount : def, mount, sizeof mount) < 0)
            why = "invalid mount (must be an absolute path like /name)";
    }
    if (!why && d->handler)
        for (size_t i = 0; i < table->count; i++)
            if (table->apps[i].desc->handler &&
                strcmp(table->apps[i].mount, mount) == 0) {
                log_error("app %s refused: mount '%s' is taken by %s", path,
                          mount[0] ? mount : "/", table->apps[i].file);
                dlclose(app->dl);
                return -1;
            }
    if (why) {
        if (d && !loader_abi_ok(d->abi_version))
            log_error("app %s refused: %s (it has %u, this server %u)", path,
                      why, d->abi_version, COSERVE_ABI_VERSION);
        else
            log_error("app %s refused: %s", path, why);
        dlclose(app->dl);
        return -1;
    }
    app->desc = d;
    app->stream = stream;
    app->listen = stream ? d->listen : NULL;
    memcpy(app->mount, mount, sizeof mount);
    return 0;
}

int app__load_dir(struct app_table *table, const char *dir)
{
    table->apps = NULL;
    table->count = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    char **names = NULL;
    size_t nnames = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".so") != 0 ||
            de->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (nnames + 1) * sizeof *names);
        if (!grown)
            break;
        names = grown;
        names[nnames++] = strdup(de->d_name);
    }
    closedir(dp);
    if (nnames) /* qsort(NULL, 0) is undefined */
        qsort(names, nnames, sizeof *names, loader_cmp_names);
    table->apps = calloc(nnames ? nnames : 1, sizeof *table->apps);
    int refused = 0;
    for (size_t i = 0; i < nnames; i++) {
        struct app *app = &table->apps[table->count];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!names[i] || loader_open(app, path, names[i], table) < 0) {
            refused++;
            free(names[i]);
            continue;
        }
        app->file = strdup(path);
        /* names[i] is freed below: a nameless app is named by a copy */
        app->file_name = strndup(names[i], strlen(names[i]) - 3);
        app->route.name = app->desc->name && app->desc->name[0]
                              ? app->desc->name
                              : app->file_name ? app->file_name : "?";
        app->route.handler = app->desc->handler;
        table->count++;
        free(names[i]);
    }
    free(names);
    if (table->count)
        qsort(table->apps, table->count, sizeof *table->apps,
              loader_cmp_mounts);
    for (size_t i = 0; i < table->count; i++)
        table->apps[i].route.mount = table->apps[i].mount;
    return refused;
}

int app__init_all(struct app_table *table)
{
    int refused = 0;
    size_t kept = 0;
    for (size_t i = 0; i < table->count; i++) {
        struct app *app = &table->apps[i];
        if (app->desc->init && app->desc->init() != 0) {
            log_error("app %s refused: its init failed", app->file);
            dlclose(app->dl);
            free(app->file);
            free(app->file_name);
            refused++;
            continue;
        }
        app->initialized = 1;
        if (!app->desc->handler)
            log_info("app %s: %s (stream only)", app->route.name, app->file);
        else
            log_info("app %s: %s mounted at %s", app->route.name, app->file,
                     app->mount[0] ? app->mount : "/");
        if (kept != i) {
            table->apps[kept] = *app;
            table->apps[kept].route.mount = table->apps[kept].mount;
        }
        kept++;
    }
    table->count = kept;
    return refused;
}

void app__fini_all(struct app_table *table)
{
    for (size_t i = table->count; i-- > 0;) {
        struct app *app = &table->apps[i];
        if (app->initialized && app->desc->fini)
            app->desc->fini();
        app->initialized = 0;
    }
}

void app__unload_all(struct app_table *table)
{
    app__fini_all(table);
    for (size_t i = table->count; i-- > 0;) {
        struct app *app = &table->apps[i];
        dlclose(app->dl);
        free(app->file);
        free(app->file_name);
    }
    free(table->apps);
    table->apps = NULL;
    table->count = 0;
}
