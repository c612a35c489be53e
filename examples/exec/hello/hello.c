/* SPDX-License-Identifier: MIT */
/* spore's exec example in C: any program that reads the event on stdin and writes its response
 * as JSON on stdout is a function. Build it and deploy the binary with handler "hello":
 *
 *     cc -O2 -o hello hello.c
 *
 * {"name": N} -> {"message": "hello, N", "bytes": event size, "request_id": ...} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	static char event[1 << 16];
	size_t n = fread(event, 1, sizeof(event) - 1, stdin);
	const char *id = getenv("SPORE_REQUEST_ID");
	char name[64] = "world";
	char *p;

	event[n] = 0;
	p = strstr(event, "\"name\"");
	if (p && (p = strchr(p + 6, '"')) && sscanf(p + 1, "%63[^\"]", name) != 1)
		strcpy(name, "world");
	fprintf(stderr, "hello: %zu bytes of event\n", n);
	printf("{\"message\": \"hello, %s\", \"bytes\": %zu, \"request_id\": \"%s\"}\n", name, n,
	       id ? id : "");
	return 0;
}
