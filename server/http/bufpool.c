/*
 * Block pools (bufpool.h).
 *
 * Connections, request records and buffers are pooled so the hot path does
 * not call malloc, but a burst (thousands of slow clients) must not pin
 * its peak for ever: once a second (the server's timer), blocks that
 * stayed idle for the whole second beyond BUFPOOL_KEEP are freed, half of
 * them (at least BUFPOOL_TRIM_STEP) per tick, so a big burst is given back
 * over a few seconds rather than in one free storm, and steady load (which
 * takes its blocks back within the second) is never trimmed.
 */
#include "http/bufpool.h"

#include <stdlib.h>
#include <string.h>

#define BUFPOOL_KEEP 64
#define BUFPOOL_TRIM_STEP 256

void bufpool__init(struct bufpool *pool, size_t size)
{
    memset(pool, 0, sizeof *pool);
    pool->size = size;
}

void *bufpool__get(struct bufpool *pool)
{
    void *block = pool->head;
    if (!block)
        return malloc(pool->size);
    memcpy(&pool->head, block, sizeof pool->head);
    if (--pool->count < pool->low)
        pool->low = pool->count;
    return block;
}

void bufpool__put(struct bufpool *pool, void *block)
{
    memcpy(block, &pool->head, sizeof pool->head);
    pool->head = block;
    pool->count++;
}

size_t bufpool__free(struct bufpool *pool, size_t n)
{
    size_t freed = 0;
    while (n-- && pool->head) {
        void *block = pool->head;
        memcpy(&pool->head, block, sizeof pool->head);
        free(block);
        pool->count--;
        freed += pool->size;
    }
    return freed;
}

size_t bufpool__trim(struct bufpool *pool)
{
    size_t excess = pool->low > BUFPOOL_KEEP ? pool->low - BUFPOOL_KEEP : 0;
    size_t n = excess <= BUFPOOL_TRIM_STEP      ? excess
               : excess / 2 > BUFPOOL_TRIM_STEP ? excess / 2
                                                : BUFPOOL_TRIM_STEP;
    size_t freed = bufpool__free(pool, n);
    pool->low = pool->count;
    return freed;
}
