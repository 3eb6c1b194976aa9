/*
 * list.h - intrusive circular doubly-linked lists.
 *
 * The link lives in the object that is listed (a coroutine's run-queue link,
 * a waiter's link), so putting something on a list never allocates. An
 * unlinked node points at itself, which makes "is it on a list?" a test and
 * removing an unlinked node harmless.
 */
#ifndef COSERVE_CORE_LIST_H
#define COSERVE_CORE_LIST_H

#include <stddef.h>

struct list {
    struct list *prev, *next;
};

#define list_entry(node, type, member)                                         \
    ((type *)((char *)(node)-offsetof(type, member)))

static inline void list_init(struct list *l)
{
    l->prev = l->next = l;
}

static inline int list_empty(const struct list *l)
{
    return l->next == l;
}

static inline int list_linked(const struct list *n)
{
    return n->next != n;
}

static inline void list_push_back(struct list *l, struct list *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Unlinks and returns the first node, or NULL when l is empty. */
static inline struct list *list_pop_front(struct list *l)
{
    if (list_empty(l))
        return NULL;
    struct list *n = l->next;
    list_remove(n);
    return n;
}

#endif
