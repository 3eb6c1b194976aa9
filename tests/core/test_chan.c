/*
 * test_chan.c - co_chan_t: a bounded FIFO of fixed-size messages.
 *
 * Bodies run inside co_run() and record what they saw; the assertions run
 * after co_run() returned. Nothing asserts on elapsed time.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coserve.h"
#include "util.h"

/* ---- construction ------------------------------------------------------- */

struct new_st {
    int zero_null, zero_err;
    int unbuf_ok, big_ok;
};

static void *new_main(void *arg)
{
    struct new_st *st = arg;
    errno = 0;
    co_chan_t *ch = co_chan_new(0, 4);
    st->zero_null = ch == NULL;
    st->zero_err = errno;
    if (ch)
        co_chan_free(ch);
    ch = co_chan_new(sizeof(int), 0);
    st->unbuf_ok = ch != NULL;
    if (ch)
        co_chan_free(ch);
    ch = co_chan_new(100, 1000);
    st->big_ok = ch != NULL;
    if (ch)
        co_chan_free(ch);
    return NULL;
}

Test(chan, elem_size_zero_fails_with_einval)
{
    struct new_st st = {0, 0, 0, 0};
    run(new_main, &st);
    cr_assert(st.zero_null, "co_chan_new(0, 4) returned a channel");
    cr_assert_eq(st.zero_err, EINVAL, "errno %s", strerror(st.zero_err));
    cr_assert(st.unbuf_ok, "co_chan_new(sizeof(int), 0) failed");
    cr_assert(st.big_ok, "co_chan_new(100, 1000) failed");
}

/* ---- FIFO order --------------------------------------------------------- */

struct msg {
    int seq;
    char text[20];
};

struct fifo_st {
    int send_rc[16], recv_rc[16];
    struct msg got[16];
    int ngot;
};

static void fifo_take(co_chan_t *ch, struct fifo_st *st, int n)
{
    for (int k = 0; k < n && st->ngot < 16; k++, st->ngot++)
        st->recv_rc[st->ngot] = co_chan_recv(ch, &st->got[st->ngot], -1);
}

static void *fifo_main(void *arg)
{
    struct fifo_st *st = arg;
    co_chan_t *ch = co_chan_new(sizeof(struct msg), 8);
    if (!ch)
        return NULL;
    for (int i = 0; i < 16; i++) {
        struct msg m;
        memset(&m, 0, sizeof m);
        m.seq = i;
        snprintf(m.text, sizeof m.text, "message %d", i);
        st->send_rc[i] = co_chan_send(ch, &m, -1);
        if (i == 4) /* take a few out mid-way: the ring wraps later */
            fifo_take(ch, st, 3);
        if (i == 9)
            fifo_take(ch, st, 7);
    }
    fifo_take(ch, st, 6);
    co_chan_free(ch);
    return NULL;
}

Test(chan, messages_come_out_in_fifo_order)
{
    struct fifo_st st;
    memset(&st, 0, sizeof st);
    run(fifo_main, &st);
    cr_assert_eq(st.ngot, 16);
    for (int i = 0; i < 16; i++) {
        cr_assert_eq(st.send_rc[i], 0);
        cr_assert_eq(st.recv_rc[i], 0);
        cr_assert_eq(st.got[i].seq, i, "message %d has seq %d", i,
                     st.got[i].seq);
        char want[20];
        snprintf(want, sizeof want, "message %d", i);
        cr_assert_str_eq(st.got[i].text, want);
    }
}

/* A simpler FIFO check across the wrap, message by message. */
static void *wrap_main(void *arg)
{
    int *bad = arg;
    co_chan_t *ch = co_chan_new(sizeof(int), 3);
    if (!ch)
        return NULL;
    int next_in = 0, next_out = 0;
    for (int step = 0; step < 50; step++) {
        int burst = 1 + step % 3;
        for (int i = 0; i < burst; i++)
            if (co_chan_send(ch, &next_in, -1) == 0)
                next_in++;
            else
                ++*bad;
        for (int i = 0; i < burst; i++) {
            int v = -1;
            if (co_chan_recv(ch, &v, -1) != 0 || v != next_out)
                ++*bad;
            next_out++;
        }
    }
    co_chan_free(ch);
    return NULL;
}

Test(chan, fifo_order_holds_across_the_ring_wrap)
{
    int bad = 0;
    run(wrap_main, &bad);
    cr_assert_eq(bad, 0);
}

/* ---- capacity ------------------------------------------------------------ */

struct cap_st {
    int fill_rc[4];
    int past_rc, past_err;
    int near_rc, near_err;
    int after_rc;
    int got[4];
    int empty_rc, empty_err;
};

static void *capacity_main(void *arg)
{
    struct cap_st *st = arg;
    co_chan_t *ch = co_chan_new(sizeof(int), 4);
    if (!ch)
        return NULL;
    for (int i = 0; i < 4; i++)
        st->fill_rc[i] = co_chan_send(ch, &i, -1);
    int v = 99;
    errno = 0;
    st->past_rc = co_chan_send(ch, &v, co_now() - 1000);
    st->past_err = errno;
    errno = 0;
    st->near_rc = co_chan_send(ch, &v, co_deadline(10));
    st->near_err = errno;
    for (int i = 0; i < 4; i++)
        co_chan_recv(ch, &st->got[i], -1);
    /* the timed-out sends left nothing behind */
    errno = 0;
    st->empty_rc = co_chan_recv(ch, &v, co_deadline(10));
    st->empty_err = errno;
    st->after_rc = co_chan_send(ch, &v, -1);
    co_chan_free(ch);
    return NULL;
}

Test(chan, send_into_a_full_channel_times_out)
{
    struct cap_st st;
    memset(&st, 0, sizeof st);
    st.past_rc = st.near_rc = st.after_rc = st.empty_rc = -2;
    run(capacity_main, &st);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(st.fill_rc[i], 0, "send %d into room failed", i);
        cr_assert_eq(st.got[i], i);
    }
    cr_assert_eq(st.past_rc, -1);
    cr_assert_eq(st.past_err, ETIMEDOUT, "errno %s", strerror(st.past_err));
    cr_assert_eq(st.near_rc, -1);
    cr_assert_eq(st.near_err, ETIMEDOUT, "errno %s", strerror(st.near_err));
    cr_assert_eq(st.empty_rc, -1, "a timed-out send was delivered");
    cr_assert_eq(st.empty_err, ETIMEDOUT);
    cr_assert_eq(st.after_rc, 0);
}

struct blocked_st {
    co_chan_t *ch;
    int sent;      /* sends completed */
    int sent_seen; /* `sent` after each recv + yields */
    int send_rc[3];
    int got[3];
    int snap[3];
};

static void *sender3(void *arg)
{
    struct blocked_st *st = arg;
    for (int i = 0; i < 3; i++) {
        int v = 10 + i;
        st->send_rc[i] = co_chan_send(st->ch, &v, co_deadline(SAFETY_MS));
        st->sent++;
    }
    return NULL;
}

/* capacity 1: the sender gets one message ahead, never two */
static void *buffered_block_main(void *arg)
{
    struct blocked_st *st = arg;
    st->ch = co_chan_new(sizeof(int), 1);
    if (!st->ch)
        return NULL;
    co_t *co = co_spawn(sender3, st);
    if (!co)
        return NULL;
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 5; k++)
            co_yield_now();
        st->snap[i] = st->sent;
        co_chan_recv(st->ch, &st->got[i], co_deadline(SAFETY_MS));
    }
    co_join(co, NULL, co_deadline(SAFETY_MS));
    co_chan_free(st->ch);
    return NULL;
}

Test(chan, a_full_channel_blocks_the_sender_until_a_recv)
{
    struct blocked_st st;
    memset(&st, 0, sizeof st);
    run(buffered_block_main, &st);
    cr_assert_eq(st.snap[0], 1);
    cr_assert_eq(st.snap[1], 2);
    cr_assert_eq(st.snap[2], 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(st.send_rc[i], 0);
        cr_assert_eq(st.got[i], 10 + i);
    }
}

/* ---- unbuffered ---------------------------------------------------------- */

static void *rendezvous_main(void *arg)
{
    struct blocked_st *st = arg;
    st->ch = co_chan_new(sizeof(int), 0);
    if (!st->ch)
        return NULL;
    co_t *co = co_spawn(sender3, st);
    if (!co)
        return NULL;
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 5; k++)
            co_yield_now();
        st->snap[i] = st->sent; /* it waits for this recv */
        co_chan_recv(st->ch, &st->got[i], co_deadline(SAFETY_MS));
    }
    co_join(co, NULL, co_deadline(SAFETY_MS));
    co_chan_free(st->ch);
    return NULL;
}

Test(chan, unbuffered_send_waits_for_a_receiver)
{
    struct blocked_st st;
    memset(&st, 0, sizeof st);
    run(rendezvous_main, &st);
    cr_assert_eq(st.snap[0], 0);
    cr_assert_eq(st.snap[1], 1);
    cr_assert_eq(st.snap[2], 2);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(st.send_rc[i], 0);
        cr_assert_eq(st.got[i], 10 + i);
    }
}

struct unbuf_st {
    co_chan_t *ch;
    int lonely_rc, lonely_err;
    int recv_rc, got;
    int send_rc;
    int join_rc;
};

static void *receiver1(void *arg)
{
    struct unbuf_st *st = arg;
    st->recv_rc = co_chan_recv(st->ch, &st->got, co_deadline(SAFETY_MS));
    return NULL;
}

static void *unbuf_main(void *arg)
{
    struct unbuf_st *st = arg;
    st->ch = co_chan_new(sizeof(int), 0);
    if (!st->ch)
        return NULL;
    int v = 5;
    errno = 0;
    st->lonely_rc = co_chan_send(st->ch, &v, co_deadline(10));
    st->lonely_err = errno;
    /* a receiver already waiting takes the message straight away */
    co_t *co = co_spawn(receiver1, st);
    if (!co)
        return NULL;
    co_yield_now();
    v = 77;
    st->send_rc = co_chan_send(st->ch, &v, co_deadline(SAFETY_MS));
    st->join_rc = co_join(co, NULL, co_deadline(SAFETY_MS));
    co_chan_free(st->ch);
    return NULL;
}

Test(chan, unbuffered_send_without_receiver_times_out_and_hands_off_to_one)
{
    struct unbuf_st st;
    memset(&st, 0, sizeof st);
    st.lonely_rc = st.recv_rc = st.send_rc = st.join_rc = -2;
    run(unbuf_main, &st);
    cr_assert_eq(st.lonely_rc, -1);
    cr_assert_eq(st.lonely_err, ETIMEDOUT, "errno %s", strerror(st.lonely_err));
    cr_assert_eq(st.send_rc, 0);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.recv_rc, 0);
    cr_assert_eq(st.got, 77, "got %d: the timed-out message leaked?", st.got);
}

/* ---- close --------------------------------------------------------------- */

struct close_st {
    int send_after_rc, send_after_err;
    int recv_rc[3], recv_err[3];
    int got[2];
    int recv_again_rc, recv_again_err;
};

static void *close_main(void *arg)
{
    struct close_st *st = arg;
    co_chan_t *ch = co_chan_new(sizeof(int), 4);
    if (!ch)
        return NULL;
    int a = 1, b = 2;
    co_chan_send(ch, &a, -1);
    co_chan_send(ch, &b, -1);
    co_chan_close(ch);
    co_chan_close(ch); /* twice does nothing */
    errno = 0;
    st->send_after_rc = co_chan_send(ch, &a, -1);
    st->send_after_err = errno;
    for (int i = 0; i < 3; i++) {
        int v = -1;
        errno = 0;
        st->recv_rc[i] = co_chan_recv(ch, &v, -1);
        st->recv_err[i] = errno;
        if (i < 2)
            st->got[i] = v;
    }
    errno = 0;
    st->recv_again_rc = co_chan_recv(ch, &a, co_deadline(SAFETY_MS));
    st->recv_again_err = errno;
    co_chan_free(ch);
    return NULL;
}

Test(chan, close_fails_senders_and_lets_receivers_drain_then_epipe)
{
    struct close_st st;
    memset(&st, 0, sizeof st);
    run(close_main, &st);
    cr_assert_eq(st.send_after_rc, -1);
    cr_assert_eq(st.send_after_err, EPIPE, "errno %s",
                 strerror(st.send_after_err));
    cr_assert_eq(st.recv_rc[0], 0);
    cr_assert_eq(st.got[0], 1);
    cr_assert_eq(st.recv_rc[1], 0);
    cr_assert_eq(st.got[1], 2);
    cr_assert_eq(st.recv_rc[2], -1);
    cr_assert_eq(st.recv_err[2], EPIPE, "errno %s", strerror(st.recv_err[2]));
    cr_assert_eq(st.recv_again_rc, -1);
    cr_assert_eq(st.recv_again_err, EPIPE);
}

#define NW 3

struct closew_st {
    co_chan_t *ch;
    int rc[NW], err[NW];
    int woken_before_close;
    int woken;
    int join_rc;
};

struct closew_arg {
    struct closew_st *st;
    int i;
};

static void *closew_receiver(void *arg)
{
    struct closew_arg *a = arg;
    int v;
    errno = 0;
    a->st->rc[a->i] = co_chan_recv(a->st->ch, &v, co_deadline(SAFETY_MS));
    a->st->err[a->i] = errno;
    a->st->woken++;
    return NULL;
}

static void *closew_sender(void *arg)
{
    struct closew_arg *a = arg;
    int v = 1;
    errno = 0;
    a->st->rc[a->i] = co_chan_send(a->st->ch, &v, co_deadline(SAFETY_MS));
    a->st->err[a->i] = errno;
    a->st->woken++;
    return NULL;
}

static void *close_wakes_main(void *arg)
{
    struct closew_st *st = arg;
    int senders = st->rc[0] == -3; /* which variant */
    st->ch = co_chan_new(sizeof(int), senders ? 1 : 2);
    if (!st->ch)
        return NULL;
    if (senders) {
        int v = 0;
        co_chan_send(st->ch, &v, -1); /* full */
    }
    struct closew_arg args[NW];
    co_t *cos[NW];
    for (int i = 0; i < NW; i++) {
        args[i] = (struct closew_arg){st, i};
        cos[i] = co_spawn(senders ? closew_sender : closew_receiver, &args[i]);
    }
    for (int i = 0; i < 3; i++)
        co_yield_now();
    st->woken_before_close = st->woken;
    co_chan_close(st->ch);
    st->join_rc = co_join_all(cos, NW, co_deadline(SAFETY_MS));
    co_chan_free(st->ch);
    return NULL;
}

Test(chan, close_wakes_waiting_receivers_with_epipe)
{
    struct closew_st st;
    memset(&st, 0, sizeof st);
    st.join_rc = -2;
    run(close_wakes_main, &st);
    cr_assert_eq(st.woken_before_close, 0);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.woken, NW);
    for (int i = 0; i < NW; i++) {
        cr_assert_eq(st.rc[i], -1);
        cr_assert_eq(st.err[i], EPIPE, "receiver %d: errno %s", i,
                     strerror(st.err[i]));
    }
}

Test(chan, close_wakes_waiting_senders_with_epipe)
{
    struct closew_st st;
    memset(&st, 0, sizeof st);
    st.rc[0] = -3; /* senders */
    st.join_rc = -2;
    run(close_wakes_main, &st);
    cr_assert_eq(st.woken_before_close, 0);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.woken, NW);
    for (int i = 0; i < NW; i++) {
        cr_assert_eq(st.rc[i], -1);
        cr_assert_eq(st.err[i], EPIPE, "sender %d: errno %s", i,
                     strerror(st.err[i]));
    }
}

struct close_unbuf_st {
    co_chan_t *ch;
    int rc, err;
    int recv_rc, recv_err;
};

static void *unbuf_sender(void *arg)
{
    struct close_unbuf_st *st = arg;
    int v = 3;
    errno = 0;
    st->rc = co_chan_send(st->ch, &v, co_deadline(SAFETY_MS));
    st->err = errno;
    return NULL;
}

static void *close_unbuf_main(void *arg)
{
    struct close_unbuf_st *st = arg;
    st->ch = co_chan_new(sizeof(int), 0);
    if (!st->ch)
        return NULL;
    co_t *co = co_spawn(unbuf_sender, st);
    if (!co)
        return NULL;
    co_yield_now();
    co_chan_close(st->ch);
    co_join(co, NULL, co_deadline(SAFETY_MS));
    int v;
    errno = 0;
    /* the waiting sender's message was never delivered: nothing to drain */
    st->recv_rc = co_chan_recv(st->ch, &v, co_deadline(SAFETY_MS));
    st->recv_err = errno;
    co_chan_free(st->ch);
    return NULL;
}

Test(chan, close_of_an_unbuffered_channel_fails_the_waiting_sender)
{
    struct close_unbuf_st st = {NULL, -2, 0, -2, 0};
    run(close_unbuf_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, EPIPE, "errno %s", strerror(st.err));
    cr_assert_eq(st.recv_rc, -1);
    cr_assert_eq(st.recv_err, EPIPE, "errno %s", strerror(st.recv_err));
}

/* ---- recv timeout -------------------------------------------------------- */

struct rto_st {
    int rc, err;
    int past_rc, past_err;
    int unbuf_rc, unbuf_err;
};

static void *recv_timeout_main(void *arg)
{
    struct rto_st *st = arg;
    co_chan_t *ch = co_chan_new(sizeof(int), 2);
    co_chan_t *ub = co_chan_new(sizeof(int), 0);
    if (!ch || !ub)
        return NULL;
    int v;
    errno = 0;
    st->rc = co_chan_recv(ch, &v, co_deadline(20));
    st->err = errno;
    errno = 0;
    st->past_rc = co_chan_recv(ch, &v, co_now() - 1000);
    st->past_err = errno;
    errno = 0;
    st->unbuf_rc = co_chan_recv(ub, &v, co_deadline(10));
    st->unbuf_err = errno;
    co_chan_free(ch);
    co_chan_free(ub);
    return NULL;
}

Test(chan, recv_times_out_when_empty)
{
    struct rto_st st = {-2, 0, -2, 0, -2, 0};
    run(recv_timeout_main, &st);
    cr_assert_eq(st.rc, -1);
    cr_assert_eq(st.err, ETIMEDOUT, "errno %s", strerror(st.err));
    cr_assert_eq(st.past_rc, -1);
    cr_assert_eq(st.past_err, ETIMEDOUT, "errno %s", strerror(st.past_err));
    cr_assert_eq(st.unbuf_rc, -1);
    cr_assert_eq(st.unbuf_err, ETIMEDOUT, "errno %s", strerror(st.unbuf_err));
}

/* ---- cancel -------------------------------------------------------------- */

struct ccl_st {
    co_chan_t *full, *empty, *unbuf;
    int send_rc, send_err;
    int recv_rc, recv_err;
    int usend_rc, usend_err;
    int join_rc;
    int kept_rc, kept;
    int leak_rc, leak_err;
    int uleak_rc, uleak_err;
};

static void *ccl_sender(void *arg)
{
    struct ccl_st *st = arg;
    int v = 666;
    errno = 0;
    st->send_rc = co_chan_send(st->full, &v, co_deadline(LONG_MS));
    st->send_err = errno;
    return NULL;
}

static void *ccl_receiver(void *arg)
{
    struct ccl_st *st = arg;
    int v;
    errno = 0;
    st->recv_rc = co_chan_recv(st->empty, &v, co_deadline(LONG_MS));
    st->recv_err = errno;
    return NULL;
}

static void *ccl_usender(void *arg)
{
    struct ccl_st *st = arg;
    int v = 777;
    errno = 0;
    st->usend_rc = co_chan_send(st->unbuf, &v, co_deadline(LONG_MS));
    st->usend_err = errno;
    return NULL;
}

static void *cancel_main(void *arg)
{
    struct ccl_st *st = arg;
    st->full = co_chan_new(sizeof(int), 1);
    st->empty = co_chan_new(sizeof(int), 1);
    st->unbuf = co_chan_new(sizeof(int), 0);
    if (!st->full || !st->empty || !st->unbuf)
        return NULL;
    int one = 1;
    co_chan_send(st->full, &one, -1);
    co_t *cos[3] = {co_spawn(ccl_sender, st), co_spawn(ccl_receiver, st),
                    co_spawn(ccl_usender, st)};
    co_yield_now(); /* all three wait */
    for (int i = 0; i < 3; i++)
        if (cos[i])
            co_cancel(cos[i]);
    st->join_rc = co_join_all(cos, 3, co_deadline(SAFETY_MS));
    /* the cancelled send left the channel as it was */
    st->kept_rc = co_chan_recv(st->full, &st->kept, -1);
    int v;
    errno = 0;
    st->leak_rc = co_chan_recv(st->full, &v, co_deadline(10));
    st->leak_err = errno;
    errno = 0;
    st->uleak_rc = co_chan_recv(st->unbuf, &v, co_deadline(10));
    st->uleak_err = errno;
    co_chan_free(st->full);
    co_chan_free(st->empty);
    co_chan_free(st->unbuf);
    return NULL;
}

Test(chan, cancel_wakes_send_and_recv_with_ecanceled)
{
    struct ccl_st st;
    memset(&st, 0, sizeof st);
    st.send_rc = st.recv_rc = st.usend_rc = st.join_rc = st.kept_rc = -2;
    st.leak_rc = st.uleak_rc = -2;
    run(cancel_main, &st);
    cr_assert_eq(st.join_rc, 0);
    cr_assert_eq(st.send_rc, -1);
    cr_assert_eq(st.send_err, ECANCELED, "send errno %s",
                 strerror(st.send_err));
    cr_assert_eq(st.recv_rc, -1);
    cr_assert_eq(st.recv_err, ECANCELED, "recv errno %s",
                 strerror(st.recv_err));
    cr_assert_eq(st.usend_rc, -1);
    cr_assert_eq(st.usend_err, ECANCELED, "unbuffered send errno %s",
                 strerror(st.usend_err));
    cr_assert_eq(st.kept_rc, 0);
    cr_assert_eq(st.kept, 1);
    cr_assert_eq(st.leak_rc, -1, "the cancelled send was delivered");
    cr_assert_eq(st.leak_err, ETIMEDOUT);
    cr_assert_eq(st.uleak_rc, -1,
                 "the cancelled unbuffered send was delivered");
    cr_assert_eq(st.uleak_err, ETIMEDOUT);
}

/* ---- producer / consumer ------------------------------------------------- */

struct pc_st {
    co_chan_t *ch;
    size_t capacity;
    int messages;
    int send_fail;
    long received;
    long out_of_order;
    long long sum;
    int end_rc, end_err;
};

static void *producer(void *arg)
{
    struct pc_st *st = arg;
    for (int i = 0; i < st->messages; i++)
        if (co_chan_send(st->ch, &i, -1) != 0) {
            st->send_fail++;
            break;
        }
    co_chan_close(st->ch);
    return NULL;
}

static void *pc_main(void *arg)
{
    struct pc_st *st = arg;
    st->ch = co_chan_new(sizeof(int), st->capacity);
    if (!st->ch)
        return NULL;
    co_t *co = co_spawn(producer, st);
    if (!co)
        return NULL;
    for (;;) {
        int v;
        errno = 0;
        int rc = co_chan_recv(st->ch, &v, -1);
        if (rc != 0) {
            st->end_rc = rc;
            st->end_err = errno;
            break;
        }
        if (v != st->received)
            st->out_of_order++;
        st->received++;
        st->sum += v;
    }
    co_join(co, NULL, -1);
    co_chan_free(st->ch);
    return NULL;
}

static void producer_consumer(size_t capacity, int messages)
{
    struct pc_st st;
    memset(&st, 0, sizeof st);
    st.end_rc = -2;
    st.capacity = capacity;
    st.messages = messages;
    run(pc_main, &st);
    cr_assert_not_null(st.ch, "co_chan_new failed");
    cr_assert_eq(st.send_fail, 0);
    cr_assert_eq(st.received, messages);
    cr_assert_eq(st.out_of_order, 0);
    cr_assert_eq(st.sum, (long long)messages * (messages - 1) / 2);
    cr_assert_eq(st.end_rc, -1);
    cr_assert_eq(st.end_err, EPIPE, "errno %s", strerror(st.end_err));
}

Test(chan, a_million_messages_arrive_in_order)
{
    producer_consumer(64, 1000000);
}

Test(chan, producer_and_consumer_through_capacity_one)
{
    producer_consumer(1, 200000);
}

Test(chan, producer_and_consumer_unbuffered)
{
    producer_consumer(0, 200000);
}
