/* SPDX-License-Identifier: MIT */
#include "logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util/cleanup.h"
#include "util/fileio.h"

struct log_follower {
	struct log_file *file;
	log_follow_fn fn;
	void *userdata;
	struct log_follower *prev, *next;
};

struct log_file {
	char *name;
	int fd;
	uint64_t size;
	struct log_follower *followers;
	struct log_file *next;
};

struct log_store {
	int dir_fd;
	uint64_t max_bytes;
	struct log_file *files;
};

static int64_t realtime_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void format_time_us(int64_t us, char out[32])
{
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%06dZ", (int)(us % 1000000));
}

int log_store_new(const char *dir, uint64_t max_bytes, struct log_store **ret)
{
	int r = mkdir_p(dir, 0750);
	if (r < 0)
		return r;
	struct log_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		r = -errno;
		free(s);
		return r;
	}
	s->max_bytes = max_bytes;
	*ret = s;
	return 0;
}

static void log_file_free(struct log_file *f)
{
	while (f->followers) {
		struct log_follower *x = f->followers;
		f->followers = x->next;
		x->file = NULL;
		x->prev = x->next = NULL;
	}
	safe_close(f->fd);
	free(f->name);
	free(f);
}

struct log_store *log_store_free(struct log_store *s)
{
	if (!s)
		return NULL;
	while (s->files) {
		struct log_file *f = s->files;
		s->files = f->next;
		log_file_free(f);
	}
	safe_close(s->dir_fd);
	free(s);
	return NULL;
}

static struct log_file *file_get(struct log_store *s, const char *function, bool create)
{
	for (struct log_file *f = s->files; f; f = f->next)
		if (streq(f->name, function))
			return f;
	if (!create)
		return NULL;
	struct log_file *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->fd = -EBADF;
	f->name = strdup(function);
	if (!f->name) {
		free(f);
		return NULL;
	}
	f->next = s->files;
	s->files = f;
	return f;
}

static int file_open(struct log_store *s, struct log_file *f)
{
	if (f->fd >= 0)
		return 0;
	char path[300];
	snprintf(path, sizeof(path), "%s.log", f->name);
	f->fd = openat(s->dir_fd, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (f->fd < 0)
		return -errno;
	struct stat st;
	f->size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

int log_store_append(struct log_store *s, const char *function, uint32_t version,
		     const char *instance, const char *stream, const char *msg, size_t len)
{
	struct log_file *f = file_get(s, function, true);
	if (!f)
		return -ENOMEM;
	int r = file_open(s, f);
	if (r < 0)
		return r;

	char ts[32];
	format_time_us(realtime_now_us(), ts);
	_cleanup_free_ char *m = strndup(msg, len);
	if (!m)
		return -ENOMEM;
	cJSON *j = cJSON_CreateObject();
	if (!j || !cJSON_AddStringToObject(j, "time", ts) ||
	    !cJSON_AddNumberToObject(j, "version", version) ||
	    !cJSON_AddStringToObject(j, "instance", instance) ||
	    !cJSON_AddStringToObject(j, "stream", stream) || !cJSON_AddStringToObject(j, "message", m)) {
		cJSON_Delete(j);
		return -ENOMEM;
	}
	char *line = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (!line)
		return -ENOMEM;
	size_t ll = strlen(line);
	line[ll] = '\n'; /* cJSON allocates exactly ll + 1 bytes: the NUL becomes the newline */

	if (f->size + ll + 1 > s->max_bytes && f->size > 0) {
		char a[300], b[300];
		snprintf(a, sizeof(a), "%s.log", f->name);
		snprintf(b, sizeof(b), "%s.log.1", f->name);
		(void)renameat(s->dir_fd, a, s->dir_fd, b);
		f->fd = safe_close(f->fd);
		r = file_open(s, f);
		if (r < 0) {
			free(line);
			return r;
		}
	}
	r = write_all(f->fd, line, ll + 1);
	if (r >= 0)
		f->size += ll + 1;
	for (struct log_follower *x = f->followers, *next; x; x = next) {
		next = x->next;
		x->fn(x->userdata, line, ll + 1);
	}
	free(line);
	return r;
}

/* Appends the last n lines of data to out; returns how many lines were found (<= n). */
static size_t tail_lines(const char *data, size_t len, size_t n, const char **ret_start)
{
	size_t lines = 0;
	size_t i = len;
	if (i > 0 && data[i - 1] == '\n')
		i--;
	size_t start = 0;
	if (len == 0) {
		*ret_start = data;
		return 0;
	}
	while (i > 0) {
		if (data[i - 1] == '\n') {
			lines++;
			if (lines == n) {
				start = i;
				break;
			}
		}
		i--;
	}
	if (i == 0)
		lines++; /* the first line */
	*ret_start = data + start;
	return lines > n ? n : lines;
}

int log_store_tail(struct log_store *s, const char *function, size_t n, struct buf *out)
{
	char path[300], old[300];
	snprintf(path, sizeof(path), "%s.log", function);
	snprintf(old, sizeof(old), "%s.log.1", function);
	_cleanup_free_ char *cur = NULL, *prev = NULL;
	size_t cur_len = 0, prev_len = 0;
	int r = read_file(s->dir_fd, path, s->max_bytes * 2 + (1u << 20), &cur, &cur_len);
	if (r == -ENOENT)
		cur_len = 0;
	else if (r < 0)
		return r;
	if (n == 0)
		return 0;
	const char *start = cur;
	size_t got = cur_len ? tail_lines(cur, cur_len, n, &start) : 0;
	if (got < n) {
		r = read_file(s->dir_fd, old, s->max_bytes * 2 + (1u << 20), &prev, &prev_len);
		if (r >= 0 && prev_len > 0) {
			const char *ps;
			(void)tail_lines(prev, prev_len, n - got, &ps);
			r = buf_append(out, ps, prev_len - (size_t)(ps - prev));
			if (r < 0)
				return r;
		}
	}
	if (cur_len > 0)
		return buf_append(out, start, cur_len - (size_t)(start - cur));
	return 0;
}

int log_store_remove(struct log_store *s, const char *function)
{
	for (struct log_file **p = &s->files; *p; p = &(*p)->next)
		if (streq((*p)->name, function)) {
			struct log_file *f = *p;
			*p = f->next;
			log_file_free(f);
			break;
		}
	char path[300];
	snprintf(path, sizeof(path), "%s.log", function);
	(void)unlinkat(s->dir_fd, path, 0);
	snprintf(path, sizeof(path), "%s.log.1", function);
	(void)unlinkat(s->dir_fd, path, 0);
	return 0;
}

int log_store_follow(struct log_store *s, const char *function, log_follow_fn fn, void *userdata,
		     struct log_follower **ret)
{
	struct log_file *f = file_get(s, function, true);
	if (!f)
		return -ENOMEM;
	struct log_follower *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->file = f;
	x->fn = fn;
	x->userdata = userdata;
	x->next = f->followers;
	if (f->followers)
		f->followers->prev = x;
	f->followers = x;
	*ret = x;
	return 0;
}

struct log_follower *log_follower_free(struct log_follower *x)
{
	if (!x)
		return NULL;
	if (x->file) {
		if (x->prev)
			x->prev->next = x->next;
		else
			x->file->followers = x->next;
		if (x->next)
			x->next->prev = x->prev;
	}
	free(x);
	return NULL;
}
