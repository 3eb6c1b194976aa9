/* Coroutine stacks (see stack.h). */
#include "core/stack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"

#if defined(__has_include) && __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

/* 256 KiB: deep enough for app code that keeps a few buffers on the stack
 * and for libc calls like getaddrinfo-free formatting; it costs only address
 * space, since memory is what the coroutine touches (usually one or two
 * pages). 100,000 coroutines reserve 25 GiB of address space, nothing more. */
#define STACK_DEFAULT (256 * 1024)
#define STACK_MIN (16 * 1024)
#define STACK_POOL_LIMIT 1024

static size_t stack_size_bytes;

size_t stack__page(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static size_t stack_round(size_t bytes)
{
    size_t page = stack__page();
    if (bytes < STACK_MIN)
        bytes = STACK_MIN;
    return (bytes + page - 1) & ~(page - 1);
}

int stack__set_size(size_t bytes)
{
    if (bytes == 0 || bytes > ((size_t)1 << 30)) {
        errno = EINVAL;
        return -1;
    }
    stack_size_bytes = stack_round(bytes);
    return 0;
}

size_t stack__size(void)
{
    if (stack_size_bytes)
        return stack_size_bytes;
    size_t bytes = STACK_DEFAULT;
    const char *env = getenv("COSERVE_STACK_SIZE");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == 'k' || *end == 'K')
            v <<= 10, end++;
        else if (*end == 'm' || *end == 'M')
            v <<= 20, end++;
        if (*end || v == 0 || v > (1ull << 30))
            log_warn("COSERVE_STACK_SIZE=%s is not a size; using %d KiB", env,
                     STACK_DEFAULT / 1024);
        else
            bytes = (size_t)v;
    }
    stack_size_bytes = stack_round(bytes);
    return stack_size_bytes;
}

void stack__pool_init(struct stack_pool *pool)
{
    memset(pool, 0, sizeof *pool);
    pool->limit = STACK_POOL_LIMIT;
}

static void stack_unmap(const struct stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    munmap(s->map, s->size + stack__page());
}

void stack__pool_destroy(struct stack_pool *pool)
{
    for (size_t i = 0; i < pool->count; i++)
        stack_unmap(&pool->free[i]);
    free(pool->free);
    memset(pool, 0, sizeof *pool);
}

/* A guarded stack costs two memory mappings, and Linux caps a process at
 * vm.max_map_count (65,530 by default: about 32,000 stacks). When we hit it
 * and may raise it (root, writable /proc), we do so once per doubling and say
 * so; otherwise the caller gets ENOMEM and the log says what to change. */
static int stack_raise_map_limit(void)
{
    static int warned;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long cur = 0;
    if (f) {
        if (fscanf(f, "%ld", &cur) != 1)
            cur = 0;
        fclose(f);
    }
    long want = cur < 131072 ? 262144 : cur * 2;
    if (cur > 0 && want <= 16 * 1024 * 1024) {
        f = fopen("/proc/sys/vm/max_map_count", "w");
        if (f) {
            int ok = fprintf(f, "%ld\n", want) > 0;
            ok &= fclose(f) == 0;
            if (ok) {
                log_warn("coroutine stacks reached vm.max_map_count=%ld (each "
                         "guarded stack takes two mappings); raised it to %ld",
                         cur, want);
                return 0;
            }
        }
    }
    if (!warned++)
        log_error("cannot map another coroutine stack: vm.max_map_count=%ld "
                  "reached (each guarded stack takes two mappings); raise it "
                  "with: sysctl vm.max_map_count=%ld",
                  cur, want);
    return -1;
}

static int stack_map(struct stack *out, size_t size)
{
    size_t page = stack__page();
    for (int attempt = 0;; attempt++) {
        void *map = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map != MAP_FAILED) {
            if (mprotect(map, page, PROT_NONE) == 0) {
                out->map = map;
                out->lo = (char *)map + page;
                out->size = size;
                out->vg_id =
                    VALGRIND_STACK_REGISTER(out->lo, (char *)out->lo + size);
                return 0;
            }
            munmap(map, size + page);
        }
        if (errno != ENOMEM || attempt > 0 || stack_raise_map_limit() < 0) {
            errno = ENOMEM;
            return -1;
        }
    }
}

int stack__get(struct stack_pool *pool, struct stack *out)
{
    size_t size = stack__size();
    while (pool->count) {
        *out = pool->free[--pool->count];
        if (pool->count < pool->low)
            pool->low = pool->count;
        if (out->size == size)
            return 0;
        stack_unmap(out); /* the size was changed since it was pooled */
    }
    return stack_map(out, size);
}

void stack__put(struct stack_pool *pool, const struct stack *s)
{
    if (pool->count == pool->limit || s->size != stack__size()) {
        stack_unmap(s);
        return;
    }
    if (pool->count == pool->cap) {
        size_t cap = pool->cap ? pool->cap * 2 : 64;
        struct stack *grown = realloc(pool->free, cap * sizeof *grown);
        if (!grown) {
            stack_unmap(s);
            return;
        }
        pool->free = grown;
        pool->cap = cap;
    }
    pool->free[pool->count++] = *s;
}

/* At most this many unmaps per trim beyond half the excess: each one is a
 * system call with a TLB shootdown across the process's threads. */
#define STACK_TRIM_STEP 64

size_t stack__pool_trim(struct stack_pool *pool, size_t keep)
{
    size_t excess = pool->low > keep ? pool->low - keep : 0;
    size_t n = excess <= STACK_TRIM_STEP      ? excess
               : excess / 2 > STACK_TRIM_STEP ? excess / 2
                                              : STACK_TRIM_STEP;
    /* the bottom of the pool is the coldest: nobody reached it lately */
    size_t freed = 0;
    for (size_t i = 0; i < n; i++) {
        freed += pool->free[i].size + stack__page();
        stack_unmap(&pool->free[i]);
    }
    if (n) {
        pool->count -= n;
        memmove(pool->free, pool->free + n, pool->count * sizeof *pool->free);
    }
    pool->low = pool->count;
    return freed;
}
