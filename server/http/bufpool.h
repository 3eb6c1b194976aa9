/*
 * bufpool.h - pools of equal-sized blocks: connections, request records
 * and read/write buffers, so the hot path does not call malloc.
 *
 * A pool is a free list; the periodic trim (bufpool__trim) gives back what
 * stayed idle for a whole period, so a burst does not pin its peak.
 */
#ifndef COSERVE_HTTP_BUFPOOL_H
#define COSERVE_HTTP_BUFPOOL_H

#include <stddef.h>

/* Idle blocks of one size kept for reuse; an idle block's first bytes hold
 * the link. `low` is the fewest idle since the last trim: blocks nobody
 * needed for a whole period, which the trim gives back. */
struct bufpool {
    void *head;
    size_t size;  /* bytes per block */
    size_t count; /* idle blocks */
    size_t low;
};

/* An empty pool of size-byte blocks. */
void bufpool__init(struct bufpool *pool, size_t size);
/* A block from the pool, or a new one (NULL with ENOMEM). */
void *bufpool__get(struct bufpool *pool);
/* Keeps an unused block for reuse (the periodic trim frees the excess). */
void bufpool__put(struct bufpool *pool, void *block);
/* Frees up to n idle blocks ((size_t)-1: all); returns the bytes freed. */
size_t bufpool__free(struct bufpool *pool, size_t n);
/* One trim step: frees part of what stayed idle since the last one.
 * Returns the bytes freed. */
size_t bufpool__trim(struct bufpool *pool);

#endif
