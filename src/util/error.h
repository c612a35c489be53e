/* SPDX-License-Identifier: MIT */
/* Error messages for callers: modules hand back a malloc'ed message naming the field or cause. */
#pragma once

#include <stdarg.h>

#include "cleanup.h"

/* Formats a message into *ret_error (when ret_error is non-NULL; a previous value is not freed)
 * and returns r; returns -ENOMEM, leaving *ret_error alone, when the message cannot be made. */
int error_setv(char **ret_error, int r, const char *fmt, va_list ap) _printf_(3, 0);
int error_set(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
