/*
 * hook.h - monkey patching: blocking libc calls made cooperative.
 *
 * The server binary defines read, connect, poll, sleep, getaddrinfo... and
 * exports them (coserve.dynlist), so every library loaded later resolves
 * them here first. Each hook asks one thread-local question, "is a
 * coroutine with hooks on running on this thread?" (hook__co): if not, it
 * calls libc's own function, found with dlsym(RTLD_NEXT). If so, a call
 * that would block parks the coroutine instead, with the result and errno
 * the blocking call would give.
 *
 * Each fd keeps the semantics its user gave it in a table indexed by fd
 * (hook_fd.c): O_NONBLOCK as the user set it, SO_RCVTIMEO / SO_SNDTIMEO,
 * and whether the hooks turned O_NONBLOCK on behind the user's back.
 */
#ifndef COSERVE_CORE_HOOK_H
#define COSERVE_CORE_HOOK_H

#include <stdint.h>

#include "core/hub.h"

/* hook__co and hook__enabled, which every hook asks, are the scheduler's
 * (hub.h): hub__resume sets them. */

/* Resolves libc's functions. Runs as a constructor and again on first use
 * if a library's constructor called a hook earlier. */
void hook__init(void);

/* The fd closed, or handed to a new owner: wakes every coroutine waiting
 * on it with EBADF and forgets what the table knew. */
void hook__fd_forget(int fd);

#endif
