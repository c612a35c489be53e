/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int max_level = LOG_INFO;

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

int log_level_from_string(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} table[] = {
		{ "debug", LOG_DEBUG },	    { "info", LOG_INFO }, { "notice", LOG_NOTICE },
		{ "warning", LOG_WARNING }, { "error", LOG_ERR },
	};
	for (size_t i = 0; i < ELEMENTSOF(table); i++)
		if (streq(s, table[i].name))
			return table[i].level;
	return -EINVAL;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
	int saved = errno;
	if (error < 0)
		error = -error;
	if (level > max_level)
		goto out;

	/* Expand %m to the given error rather than the current errno. */
	char fmtbuf[1024];
	size_t o = 0;
	for (const char *p = fmt; *p && o + 1 < sizeof(fmtbuf); p++) {
		if (p[0] == '%' && p[1] == 'm') {
			const char *e = strerror(error);
			for (; *e && o + 1 < sizeof(fmtbuf); e++) {
				if (*e == '%' && o + 2 < sizeof(fmtbuf))
					fmtbuf[o++] = '%';
				fmtbuf[o++] = *e;
			}
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			if (o + 2 < sizeof(fmtbuf)) {
				fmtbuf[o++] = '%';
				fmtbuf[o++] = '%';
			}
			p++;
		} else
			fmtbuf[o++] = *p;
	}
	fmtbuf[o] = 0;

	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(msg, sizeof(msg), fmtbuf, ap);
#pragma GCC diagnostic pop
	va_end(ap);
	if (max_level >= LOG_DEBUG)
		fprintf(stderr, "<%d>%s (%s:%d)\n", level, msg, file, line);
	else
		fprintf(stderr, "<%d>%s\n", level, msg);
out:
	errno = saved;
	return error ? -error : 0;
}
