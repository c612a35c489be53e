/* SPDX-License-Identifier: MIT */
/* The event loop: one io_uring, a user-space timer heap and a provided-buffer ring for receives.
 * Supervisor only, single-threaded.
 *
 * Every submission carries a token (its user_data) made by loop_op_new(). A token names a slot
 * holding a callback and its userdata, plus a generation, so a completion that arrives after its
 * owner dropped the token (loop_op_free) is recognised and ignored: owners never have to wait for
 * cancellations before freeing themselves. Memory the kernel may still read for an in-flight op
 * (a send buffer) is handed to loop_op_free() as an orphan and freed with the last completion. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

struct loop;

/* res and flags are the CQE's. For a receive with IORING_CQE_F_BUFFER set, the data is at
 * loop_buffer(l, flags) and the callback must give it back with loop_buffer_recycle(). */
typedef void (*loop_fn)(void *userdata, int res, uint32_t flags);

int loop_new(unsigned entries, unsigned n_buffers, unsigned buffer_size, struct loop **ret);
struct loop *loop_free(struct loop *l);

uint64_t loop_op_new(struct loop *l, loop_fn fn, void *userdata); /* 0 on OOM */
/* Drops a token: cancels what is in flight with it, ignores its later completions, and frees
 * orphan (may be NULL) once nothing is in flight any more. Accepts 0. */
void loop_op_free(struct loop *l, uint64_t token, void *orphan);

/* An SQE bound to token (counted in flight until its final completion). NULL only when the ring
 * cannot be flushed (then the op was not queued). */
struct io_uring_sqe *loop_sqe(struct loop *l, uint64_t token);

/* Provided buffers for IOSQE_BUFFER_SELECT receives. */
uint16_t loop_buffer_group(const struct loop *l);
char *loop_buffer(struct loop *l, uint32_t cqe_flags);
void loop_buffer_recycle(struct loop *l, uint32_t cqe_flags);

/* Monotonic and realtime clocks in microseconds. */
uint64_t now_us(void);
int64_t realtime_us(void);

struct loop_timer {
	uint64_t at_us; /* monotonic */
	void (*fn)(struct loop_timer *t);
	size_t idx;     /* heap position + 1; 0 = not armed */
};
int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t at_us);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->idx != 0;
}

/* Multishot poll on fd; fn gets the revents (or a negative error). Re-armed automatically when
 * the kernel ends the multishot. Stopped by loop_op_free(token). */
int loop_poll_start(struct loop *l, int fd, uint32_t events, loop_fn fn, void *userdata,
		    uint64_t *ret_token);

/* Submits, waits for at least one completion or the next timer, runs callbacks and expired
 * timers. */
int loop_run_once(struct loop *l);
/* Submits what is queued without waiting. */
int loop_submit(struct loop *l);
