/*
 * co_lock: gevent.lock's Lock and RLock, a mutex owned by a coroutine.
 *
 * A release with waiters hands the lock to the longest of them (it owns it
 * before it runs), so the lock is never free while anyone waits and a
 * newcomer cannot barge in. The owner is remembered by pointer and id:
 * coroutine structs are recycled, and a new coroutine in the struct of a
 * finished owner must not inherit its lock.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "core/coro.h"
#include "core/log.h"

struct co_lock {
    struct co *owner; /* NULL: free */
    uint64_t owner_id;
    unsigned count; /* holds by the owner (1 unless recursive) */
    int recursive;
    struct list waiters;
};

static co_lock_t *lock_new(int recursive)
{
    co_lock_t *lock = malloc(sizeof *lock);
    if (!lock)
        return NULL;
    lock->owner = NULL;
    lock->owner_id = 0;
    lock->count = 0;
    lock->recursive = recursive;
    list_init(&lock->waiters);
    return lock;
}

co_lock_t *co_lock_new(void)
{
    return lock_new(0);
}

co_lock_t *co_rlock_new(void)
{
    return lock_new(1);
}

void co_lock_free(co_lock_t *lock)
{
    if (!lock)
        return;
    if (!list_empty(&lock->waiters))
        log__fatal("co_lock_free: coroutines still wait on the lock");
    free(lock);
}

static int lock_owned_by(const co_lock_t *lock, const struct co *co)
{
    return co && lock->owner == co && lock->owner_id == co->id;
}

static void lock_take(co_lock_t *lock, struct co *co)
{
    lock->owner = co;
    lock->owner_id = co->id;
    lock->count = 1;
}

int co_lock_acquire(co_lock_t *lock, int64_t deadline)
{
    struct co *self = coro__self("co_lock_acquire");
    if (coro__cancel_pending(self)) {
        errno = ECANCELED;
        return -1;
    }
    if (lock_owned_by(lock, self)) {
        if (!lock->recursive) {
            errno = EDEADLK;
            return -1;
        }
        if (lock->count == UINT_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
        lock->count++;
        return 0;
    }
    if (!lock->owner) {
        if (!list_empty(&lock->waiters))
            log__fatal("co_lock_acquire: a free lock has waiters");
        lock_take(lock, self);
        return 0;
    }
    /* co_lock_release makes us the owner before it wakes us */
    return coro__wait_on(self, &lock->waiters, deadline);
}

int co_lock_release(co_lock_t *lock)
{
    /* the hub's own context owns nothing: EPERM, not an abort */
    struct co *self = hub__require("co_lock_release")->current;
    if (!lock_owned_by(lock, self)) {
        errno = EPERM;
        return -1;
    }
    if (--lock->count)
        return 0;
    lock->owner = NULL;
    lock->owner_id = 0;
    if (!list_empty(&lock->waiters)) {
        struct co *next = list_entry(lock->waiters.next, struct co, wait_link);
        lock_take(lock, next);
        coro__wake(next, 0);
    }
    return 0;
}

int co_lock_locked(const co_lock_t *lock)
{
    return lock->owner != NULL;
}
