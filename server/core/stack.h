/*
 * stack.h - coroutine stacks: mmap'd, guarded, pooled.
 *
 * Each stack is one private anonymous mapping: a PROT_NONE guard page at the
 * low end, then the usable stack. Memory is only what the coroutine touches.
 * Released stacks go back to a per-hub pool (LIFO, so the warm ones are
 * reused) up to a cap, so spawning usually costs no system call.
 */
#ifndef COSERVE_CORE_STACK_H
#define COSERVE_CORE_STACK_H

#include <stddef.h>

struct stack {
    void *map;      /* start of the mapping (the guard page) */
    void *lo;       /* lowest usable byte: map + page size */
    size_t size;    /* usable bytes */
    unsigned vg_id; /* valgrind's id for this stack */
};

struct stack_pool {
    struct stack *free; /* released stacks, most recent last */
    size_t count, cap;
    size_t limit; /* how many to keep at most */
    size_t low;   /* fewest pooled since the last trim: the unneeded ones */
};

/* Usable stack size in bytes: COSERVE_STACK_SIZE (accepts K and M suffixes)
 * or stack__set_size(), else 256 KiB. */
size_t stack__size(void);

/* Sets the size of stacks mapped from now on (rounded up to pages, at least
 * 16 KiB). Returns 0, or -1 with EINVAL. */
int stack__set_size(size_t bytes);

void stack__pool_init(struct stack_pool *pool);
/* Unmaps every pooled stack. */
void stack__pool_destroy(struct stack_pool *pool);

/* Takes a stack from the pool or maps a new one. Returns 0, or -1 with
 * ENOMEM (after trying to raise vm.max_map_count once, when allowed). */
int stack__get(struct stack_pool *pool, struct stack *out);

/* Returns s to the pool, or unmaps it when the pool is full. */
void stack__put(struct stack_pool *pool, const struct stack *s);

/* Called periodically: unmaps part of the stacks that stayed pooled since
 * the last call, beyond `keep` (the oldest first), so a burst of
 * coroutines does not pin its peak. Returns the bytes unmapped. */
size_t stack__pool_trim(struct stack_pool *pool, size_t keep);

/* The page size, cached. */
size_t stack__page(void);

#endif
