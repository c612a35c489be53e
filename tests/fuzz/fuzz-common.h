/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the libFuzzer targets. A target reports a broken invariant with
 * FUZZ_CHECK(), which prints what failed and aborts, so libFuzzer saves the input as a crash. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A malloc'ed copy of data with a NUL after it, sized exactly so that ASan catches a read past
 * the NUL. Aborts on OOM (the fuzzer's rss limit is far below what would fail). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/* SPORE_FUZZ_VERBOSE=1: each input's outcome on stderr, to see what seeds and crashes do. */
static inline bool fuzz_verbose(void)
{
	static int v = -1;
	if (v < 0) {
		const char *e = getenv("SPORE_FUZZ_VERBOSE");
		v = e && *e && strcmp(e, "0") != 0;
	}
	return v;
}

#define FUZZ_LOG(...)                                                                              \
	do {                                                                                       \
		if (fuzz_verbose()) {                                                              \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)
