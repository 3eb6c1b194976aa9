/*
 * outcome.h - how a coroutine finished (co_fail, co_error...) and the
 * callbacks run then (co_link): gevent's Greenlet value, exception and
 * rawlink, for C.
 *
 * Module: core/sched. hub, coro, deadline, wait and outcome are one module
 * in five files, the scheduler: a coroutine parks (coro) with a deadline
 * (deadline) or on several objects (wait), the hub wakes and resumes it,
 * and its end runs its links (outcome); they call one another.
 * scripts/include_cycles.sh treats them as one.
 */
#ifndef COSERVE_CORE_OUTCOME_H
#define COSERVE_CORE_OUTCOME_H

struct co;

/* Runs co's links, in the order they were made, and frees them: called by
 * the hub once co finished (coro__finished), outside any coroutine. */
void outcome__run_links(struct co *co);

/* Frees links that never ran (co freed before finishing: never, today;
 * kept so a freed struct holds nothing). */
void outcome__drop_links(struct co *co);

#endif
