/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/log.h"

#define BUF_GROUP 1

struct slot {
	loop_fn fn;
	void *userdata;
	uint32_t generation;
	uint32_t inflight;
	bool live;     /* owned by someone */
	bool poll;     /* re-arm a multishot poll on its final completion */
	int poll_fd;
	uint32_t poll_events;
	void *orphan;
	uint32_t next_free; /* index + 1 */
};

struct loop {
	struct io_uring ring;
	bool ring_ok;

	struct slot *slots;
	uint32_t n_slots;
	uint32_t free_head; /* index + 1, 0 = none */

	struct io_uring_buf_ring *br;
	size_t br_size;
	char *bufs;
	unsigned n_buffers;
	unsigned buffer_size;

	struct loop_timer **heap;
	size_t n_heap, heap_cap;
};

uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t realtime_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t token_make(uint32_t idx, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint64_t)(idx + 1);
}

static struct slot *token_slot(struct loop *l, uint64_t token)
{
	uint32_t idx = (uint32_t)(token & 0xffffffffu);
	if (idx == 0 || idx > l->n_slots)
		return NULL;
	struct slot *s = &l->slots[idx - 1];
	if (s->generation != (uint32_t)(token >> 32))
		return NULL;
	return s;
}

int loop_new(unsigned entries, unsigned n_buffers, unsigned buffer_size, struct loop **ret)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;

	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = entries * 4;
	p.flags |= IORING_SETUP_CQSIZE;
	int r = io_uring_queue_init_params(entries, &l->ring, &p);
	if (r < 0) {
		/* Older kernels lack some flags (COOP_TASKRUN: 5.19); fall back to the plain ring. */
		r = io_uring_queue_init(entries, &l->ring, 0);
		if (r < 0) {
			free(l);
			return r;
		}
	}
	l->ring_ok = true;

	/* Provided buffer ring (kernel 5.19). */
	l->n_buffers = n_buffers;
	l->buffer_size = buffer_size;
	l->br_size = n_buffers * sizeof(struct io_uring_buf);
	void *br = mmap(NULL, l->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	l->br = br;
	struct io_uring_buf_reg reg = {
		.ring_addr = (uintptr_t)br,
		.ring_entries = n_buffers,
		.bgid = BUF_GROUP,
	};
	r = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (r < 0)
		goto fail;
	l->bufs = malloc((size_t)n_buffers * buffer_size);
	if (!l->bufs) {
		r = -ENOMEM;
		goto fail;
	}
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < n_buffers; i++)
		io_uring_buf_ring_add(l->br, l->bufs + (size_t)i * buffer_size, buffer_size,
				      (unsigned short)i, io_uring_buf_ring_mask(n_buffers), (int)i);
	io_uring_buf_ring_advance(l->br, (int)n_buffers);

	*ret = l;
	return 0;
fail:
	loop_free(l);
	return r;
}

struct loop *loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	if (l->ring_ok)
		io_uring_queue_exit(&l->ring);
	if (l->br)
		munmap(l->br, l->br_size);
	free(l->bufs);
	for (uint32_t i = 0; i < l->n_slots; i++)
		free(l->slots[i].orphan);
	free(l->slots);
	free(l->heap);
	free(l);
	return NULL;
}

uint64_t loop_op_new(struct loop *l, loop_fn fn, void *userdata)
{
	if (l->free_head == 0) {
		uint32_t n = l->n_slots ? l->n_slots * 2 : 256;
		struct slot *s = realloc(l->slots, n * sizeof(*s));
		if (!s)
			return 0;
		memset(s + l->n_slots, 0, (n - l->n_slots) * sizeof(*s));
		for (uint32_t i = l->n_slots; i < n; i++)
			s[i].next_free = i + 1 < n ? i + 2 : 0;
		l->free_head = l->n_slots + 1;
		l->slots = s;
		l->n_slots = n;
	}
	uint32_t idx = l->free_head - 1;
	struct slot *s = &l->slots[idx];
	l->free_head = s->next_free;
	s->next_free = 0;
	s->fn = fn;
	s->userdata = userdata;
	s->live = true;
	s->poll = false;
	s->inflight = 0;
	s->orphan = NULL;
	return token_make(idx, s->generation);
}

static void slot_release(struct loop *l, struct slot *s)
{
	free(s->orphan);
	s->orphan = NULL;
	s->generation++;
	s->next_free = l->free_head;
	l->free_head = (uint32_t)(s - l->slots) + 1;
}

void loop_op_free(struct loop *l, uint64_t token, void *orphan)
{
	struct slot *s = token ? token_slot(l, token) : NULL;
	if (!s || !s->live) {
		free(orphan);
		return;
	}
	s->live = false;
	s->poll = false;
	s->fn = NULL;
	s->userdata = NULL;
	if (s->inflight == 0) {
		free(orphan);
		slot_release(l, s);
		return;
	}
	s->orphan = orphan;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) {
		(void)io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	if (sqe) {
		io_uring_prep_cancel64(sqe, token, 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
}

struct io_uring_sqe *loop_sqe(struct loop *l, uint64_t token)
{
	struct slot *s = token_slot(l, token);
	if (!s)
		return NULL;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	if (!sqe) {
		if (io_uring_submit(&l->ring) < 0)
			return NULL;
		sqe = io_uring_get_sqe(&l->ring);
		if (!sqe)
			return NULL;
	}
	s->inflight++;
	io_uring_sqe_set_data64(sqe, token);
	return sqe;
}

uint16_t loop_buffer_group(const struct loop *l)
{
	(void)l;
	return BUF_GROUP;
}

char *loop_buffer(struct loop *l, uint32_t cqe_flags)
{
	unsigned id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
	return l->bufs + (size_t)id * l->buffer_size;
}

void loop_buffer_recycle(struct loop *l, uint32_t cqe_flags)
{
	unsigned id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)id * l->buffer_size, l->buffer_size,
			      (unsigned short)id, io_uring_buf_ring_mask(l->n_buffers), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* Timer heap (min-heap on at_us). */
static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->idx = a + 1;
	l->heap[b]->idx = b + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->at_us <= l->heap[i]->at_us)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->n_heap && l->heap[c]->at_us < l->heap[m]->at_us)
			m = c;
		if (c + 1 < l->n_heap && l->heap[c + 1]->at_us < l->heap[m]->at_us)
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t at_us)
{
	loop_timer_stop(l, t);
	if (l->n_heap == l->heap_cap) {
		size_t n = l->heap_cap ? l->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, n * sizeof(*h));
		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->heap_cap = n;
	}
	t->at_us = at_us;
	l->heap[l->n_heap] = t;
	t->idx = ++l->n_heap;
	heap_up(l, l->n_heap - 1);
	return 0;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	if (!t->idx)
		return;
	size_t i = t->idx - 1;
	t->idx = 0;
	l->n_heap--;
	if (i == l->n_heap)
		return;
	l->heap[i] = l->heap[l->n_heap];
	l->heap[i]->idx = i + 1;
	heap_down(l, i);
	heap_up(l, i);
}

static int poll_arm(struct loop *l, uint64_t token, struct slot *s)
{
	struct io_uring_sqe *sqe = loop_sqe(l, token);
	if (!sqe)
		return log_error_errno(EBUSY, "loop: no submission queue entry for poll on fd %d",
				       s->poll_fd);
	io_uring_prep_poll_multishot(sqe, s->poll_fd, s->poll_events);
	return 0;
}

int loop_poll_start(struct loop *l, int fd, uint32_t events, loop_fn fn, void *userdata,
		    uint64_t *ret_token)
{
	uint64_t token = loop_op_new(l, fn, userdata);
	if (!token)
		return -ENOMEM;
	struct slot *s = token_slot(l, token);
	s->poll = true;
	s->poll_fd = fd;
	s->poll_events = events;
	int r = poll_arm(l, token, s);
	if (r < 0) {
		loop_op_free(l, token, NULL);
		return r;
	}
	*ret_token = token;
	return 0;
}

int loop_submit(struct loop *l)
{
	int r = io_uring_submit(&l->ring);
	return r < 0 ? r : 0;
}

static void run_timers(struct loop *l)
{
	uint64_t now = now_us();
	while (l->n_heap > 0 && l->heap[0]->at_us <= now) {
		struct loop_timer *t = l->heap[0];
		loop_timer_stop(l, t);
		t->fn(t);
	}
}

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	uint64_t token = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;
	uint32_t flags = cqe->flags;
	if (token == 0) /* a cancel request's own completion */
		return;
	struct slot *s = token_slot(l, token);
	if (!s) {
		if (flags & IORING_CQE_F_BUFFER)
			loop_buffer_recycle(l, flags);
		return;
	}
	bool final = !(flags & IORING_CQE_F_MORE);
	if (final && s->inflight > 0)
		s->inflight--;
	if (!s->live) {
		if (flags & IORING_CQE_F_BUFFER)
			loop_buffer_recycle(l, flags);
		if (s->inflight == 0)
			slot_release(l, s);
		return;
	}
	/* A multishot poll that ended (not by our cancel) is armed again before the callback runs,
	 * so the callback may drop the token. */
	if (final && s->poll && res != -ECANCELED)
		(void)poll_arm(l, token, s);
	s->fn(s->userdata, res, flags);
}

int loop_run_once(struct loop *l)
{
	struct __kernel_timespec ts, *tsp = NULL;
	run_timers(l);
	if (l->n_heap > 0) {
		uint64_t now = now_us(), at = l->heap[0]->at_us;
		uint64_t d = at > now ? at - now : 0;
		ts.tv_sec = (long long)(d / 1000000u);
		ts.tv_nsec = (long long)(d % 1000000u) * 1000;
		tsp = &ts;
	}
	struct io_uring_cqe *cqe = NULL;
	int r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tsp, NULL);
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		return r;

	/* Dispatch in batches; callbacks may queue new SQEs, which the next round submits. */
	unsigned head, n = 0;
	struct io_uring_cqe *batch[256];
	for (;;) {
		n = 0;
		io_uring_for_each_cqe(&l->ring, head, cqe)
		{
			batch[n++] = cqe;
			if (n == ELEMENTSOF(batch))
				break;
		}
		if (n == 0)
			break;
		struct io_uring_cqe copies[256];
		for (unsigned i = 0; i < n; i++)
			copies[i] = *batch[i];
		io_uring_cq_advance(&l->ring, n);
		for (unsigned i = 0; i < n; i++)
			dispatch(l, &copies[i]);
	}
	run_timers(l);
	return 0;
}
