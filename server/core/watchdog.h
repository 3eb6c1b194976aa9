/*
 * watchdog.h - noticing a hub that does not come back to its loop.
 *
 * A coroutine that spins in a CPU loop, or calls something that blocks the
 * thread (a syscall no hook made cooperative), stalls every other request
 * of its worker. gevent's answer is a monitor thread; this is ours.
 *
 * The hub keeps a heartbeat: a counter it bumps when it switches into a
 * coroutine, when a coroutine switches out, and around the loop's poll
 * (an ev_prepare / ev_check pair), and stamps each even value with the
 * time it reached it. An odd value means "asleep in the poll", which is
 * not blocking. One watchdog thread per process looks at every hub's
 * counter; a value that stays even and unchanged for the threshold from
 * its stamp is a blocked episode. An awake hub is looked at again when its
 * beat would turn into a block (so a block is reported one threshold after
 * it began, to a clock tick), a sleeping one every 2 thresholds (a block
 * that begins just after such a look is reported at most 2 thresholds
 * after it began). The thread has an fd table of its own,
 * holding stdio, its eventfd and log__fd only: log__fd must be set
 * before the first hub is created. The watchdog then
 * signals the hub's thread (SIGURG, on the alternate signal stack
 * overflow.c sets up), whose handler, doing only async-signal-safe work,
 * takes backtrace() of the interrupted code and a description of the
 * running coroutine into this struct. The watchdog thread names the
 * frames (symtab.c) and logs one warning, then one line when the hub moves
 * on. At most one warning per second per hub: further episodes are counted
 * and the next warning says how many were not logged.
 *
 * The signal interrupts the blocked call: a nanosleep or poll that it
 * interrupts returns EINTR early, once per episode, as with any signal.
 *
 * --timeout: a hub can publish its heartbeat in shared memory (struct
 * watchdog_shared) for a supervisor in another process, which kills the
 * process when the beat stands still too long (master.c). Before that,
 * the watchdog logs a last report at the timeout: the backtrace, the
 * request running and every other request the process holds, then marks
 * the episode reported so the supervisor need not wait longer.
 *
 * Crash reports: overflow.c's handler for fatal signals (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGABRT) calls watchdog__crash(), which records the
 * signal, the fault address, the backtrace, the running coroutine's request
 * and the other requests in flight into static buffers, wakes the watchdog
 * thread to name the frames and log the report, and waits for it a bounded
 * time (the fault may have happened inside malloc, which the formatting
 * needs): past that, it writes raw addresses itself (backtrace_symbols_fd).
 */
#ifndef COSERVE_CORE_WATCHDOG_H
#define COSERVE_CORE_WATCHDOG_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/heartbeat.h"

/* Sets the threshold in ms for hubs created from now on; 0 (the library's
 * default) turns the block warnings off. */
void watchdog__set_threshold(int64_t ms);

/* Sets --timeout in ms (0: off): a hub that publishes its heartbeat
 * (watchdog__set_shared) and stays blocked this long gets a last report,
 * "being killed", before its supervisor kills the process. */
void watchdog__set_timeout(int64_t ms);

/* The next hub created publishes its heartbeat and request count in
 * shared (which must outlive it). For a worker process's one hub. */
void watchdog__set_shared(struct watchdog_shared *shared);

/* Turns symbolized crash reports on (off by default): the watchdog thread
 * then runs while a hub exists even with no threshold and no timeout.
 * Without it, a crash report is written with raw addresses. */
void watchdog__set_crash_reports(int on);

/* Lets the watchdog list the requests in flight on hub (in --timeout and
 * crash reports). fn NULL: none. Call on the hub's thread. */
void watchdog__set_requests_fn(struct hub *hub, watchdog_requests_fn fn,
                               void *arg);

/* Called by hub__create on the hub's thread: starts the heartbeat watchers
 * and registers the hub with the watchdog thread (started on first use).
 * Does nothing when the watchdog is off. Returns 0, or -1 with errno. */
int watchdog__hub_init(struct hub *hub);

/* Unregisters the hub (waiting for a report in progress) and stops its
 * watchers; the last hub out stops the watchdog thread. Logs how many
 * blocked episodes the hub had, if any. A published beat turns odd for
 * good: a process past its hub is not blocked. */
void watchdog__hub_fini(struct hub *hub);

/* From a fatal signal's handler (overflow.c), on the crashing thread:
 * records the crash and has it reported (see above); returns once the
 * report is out, or abandoned. The caller then lets the signal kill. */
void watchdog__crash(int sig, siginfo_t *si, void *uctx);

#endif
