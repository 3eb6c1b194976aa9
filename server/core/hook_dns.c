/*
 * Monkey patching, part four: name lookups (see hook.h). glibc's resolver
 * calls its own socket functions without going through the symbols the
 * hooks replace, so a lookup cannot be made cooperative piece by piece: in
 * a coroutine it runs whole on a name-lookup thread, with copies of its
 * arguments and its own output buffers, so a coroutine that stops waiting
 * (cancelled) leaves the thread nothing of its stack to touch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/coro.h"
#include "core/hook.h"
#include "core/hook_libc.h"
#include "core/offload.h"

#define REAL(name)                                                             \
    (hook__libc.name ? hook__libc.name : (hook__init(), hook__libc.name))

struct hook_lookup {
    char *node, *service; /* getaddrinfo / gethostbyname's name */
    struct addrinfo hints;
    int has_hints;
    struct addrinfo *res;
    struct sockaddr_storage sa; /* getnameinfo */
    socklen_t salen;
    char *host, *serv;
    socklen_t hostlen, servlen;
    int flags;
    struct hostent he; /* gethostbyname_r */
    char *buf;
    size_t buflen;
    struct hostent *he_res;
    int h_err;
    int rc, err;
};

static void hook_lookup_free(void *p)
{
    struct hook_lookup *l = p;
    if (l->res)
        freeaddrinfo(l->res);
    free(l->node);
    free(l->service);
    free(l->host);
    free(l->serv);
    free(l->buf);
    free(l);
}

static char *hook_strdup(const char *s, int *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

/* Runs fn(l) on a name-lookup thread (offload.h: never behind the app's
 * offloaded work). Returns 0, or -1 with errno (ECANCELED, ENOMEM); on -1,
 * l is freed once the thread is done with it. */
static int hook_offload(const char *caller, void (*fn)(void *),
                        struct hook_lookup *l)
{
    return offload__run(OFFLOAD_NAMES, caller, fn, l, hook_lookup_free, -1);
}

static void hook_getaddrinfo_work(void *p)
{
    struct hook_lookup *l = p;
    l->rc = REAL(getaddrinfo)(l->node, l->service,
                              l->has_hints ? &l->hints : NULL, &l->res);
    l->err = errno;
}

HOOK_PUBLIC int getaddrinfo(const char *node, const char *service,
                            const struct addrinfo *hints, struct addrinfo **res)
{
    struct co *co = hook__co;
    if (!co)
        return REAL(getaddrinfo)(node, service, hints, res);
    int ok = 1;
    struct hook_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return EAI_MEMORY;
    l->node = hook_strdup(node, &ok);
    l->service = hook_strdup(service, &ok);
    if (hints) { /* only the fields getaddrinfo reads from hints */
        l->hints.ai_flags = hints->ai_flags;
        l->hints.ai_family = hints->ai_family;
        l->hints.ai_socktype = hints->ai_socktype;
        l->hints.ai_protocol = hints->ai_protocol;
        l->has_hints = 1;
    }
    if (!ok) {
        hook_lookup_free(l);
        return EAI_MEMORY;
    }
    if (hook_offload("getaddrinfo", hook_getaddrinfo_work, l) < 0)
        return EAI_SYSTEM; /* errno: ECANCELED or ENOMEM */
    int rc = l->rc;
    *res = l->res;
    l->res = NULL;
    if (rc == EAI_SYSTEM)
        errno = l->err;
    hook_lookup_free(l);
    return rc;
}

static void hook_getnameinfo_work(void *p)
{
    struct hook_lookup *l = p;
    l->rc = REAL(getnameinfo)((struct sockaddr *)&l->sa, l->salen, l->host,
                              l->hostlen, l->serv, l->servlen, l->flags);
    l->err = errno;
}

HOOK_PUBLIC int getnameinfo(const struct sockaddr *sa, socklen_t salen,
                            char *host, socklen_t hostlen, char *serv,
                            socklen_t servlen, int flags)
{
    struct co *co = hook__co;
    if (!co || !sa || salen > sizeof(struct sockaddr_storage))
        return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen,
                                 flags);
    struct hook_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return EAI_MEMORY;
    memcpy(&l->sa, sa, salen);
    l->salen = salen;
    l->flags = flags;
    if ((host && hostlen && !(l->host = malloc(hostlen))) ||
        (serv && servlen && !(l->serv = malloc(servlen)))) {
        hook_lookup_free(l);
        return EAI_MEMORY;
    }
    l->hostlen = l->host ? hostlen : 0;
    l->servlen = l->serv ? servlen : 0;
    if (hook_offload("getnameinfo", hook_getnameinfo_work, l) < 0)
        return EAI_SYSTEM;
    int rc = l->rc;
    if (rc == 0) {
        if (l->host)
            memcpy(host, l->host, hostlen);
        if (l->serv)
            memcpy(serv, l->serv, servlen);
    } else if (rc == EAI_SYSTEM) {
        errno = l->err;
    }
    hook_lookup_free(l);
    return rc;
}

static void hook_gethostbyname_work(void *p)
{
    struct hook_lookup *l = p;
    l->rc = REAL(gethostbyname_r)(l->node, &l->he, l->buf, l->buflen,
                                  &l->he_res, &l->h_err);
}

/* Moves a hostent whose pointers all point into from (a buflen buffer)
 * to the same layout in to. */
static void hook_hostent_move(struct hostent *he, const char *from, char *to,
                              size_t buflen)
{
#define HOOK_MOVE(p)                                                           \
    ((p) && (const char *)(p) >= from && (const char *)(p) < from + buflen     \
         ? (void *)(to + ((const char *)(p)-from))                             \
         : (void *)(p))
    memcpy(to, from, buflen);
    he->h_name = HOOK_MOVE(he->h_name);
    he->h_aliases = HOOK_MOVE(he->h_aliases);
    he->h_addr_list = HOOK_MOVE(he->h_addr_list);
    for (char **a = he->h_aliases; a && *a; a++)
        *a = HOOK_MOVE(*a);
    for (char **a = he->h_addr_list; a && *a; a++)
        *a = HOOK_MOVE(*a);
#undef HOOK_MOVE
}

HOOK_PUBLIC int gethostbyname_r(const char *name, struct hostent *ret,
                                char *buf, size_t buflen,
                                struct hostent **result, int *h_errnop)
{
    struct co *co = hook__co;
    if (!co)
        return REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
    *result = NULL;
    int ok = 1;
    struct hook_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return ENOMEM;
    l->node = hook_strdup(name, &ok);
    l->buflen = buflen;
    if (!ok || !(l->buf = malloc(buflen ? buflen : 1))) {
        hook_lookup_free(l);
        return ENOMEM;
    }
    if (hook_offload("gethostbyname_r", hook_gethostbyname_work, l) < 0) {
        *h_errnop = NO_RECOVERY;
        return errno;
    }
    int rc = l->rc;
    *h_errnop = l->h_err;
    if (rc == 0 && l->he_res) {
        *ret = l->he;
        hook_hostent_move(ret, l->buf, buf, buflen);
        *result = ret;
    }
    hook_lookup_free(l);
    return rc;
}

/* gethostbyname's static result, one per hub thread, as glibc's is per
 * thread. */
static __thread struct hostent hook_he;
static __thread char *hook_he_buf;

HOOK_PUBLIC struct hostent *gethostbyname(const char *name)
{
    struct co *co = hook__co;
    if (!co)
        return REAL(gethostbyname)(name);
    size_t len = 8192;
    if (!hook_he_buf && !(hook_he_buf = malloc(len))) {
        h_errno = NO_RECOVERY;
        return NULL;
    }
    struct hostent *res = NULL;
    int herr = 0;
    int rc = gethostbyname_r(name, &hook_he, hook_he_buf, len, &res, &herr);
    if (rc != 0 || !res) {
        h_errno = herr ? herr : NO_RECOVERY;
        return NULL;
    }
    return res;
}
