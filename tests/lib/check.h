/* Minimal checks for C test programs; output follows tests/run's protocol. */
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;

#define CHECK(cond, name, ...)                                                   \
	do {                                                                     \
		if (cond) {                                                      \
			printf("ok %s\n", name);                                 \
		} else {                                                         \
			check_failures++;                                        \
			printf("FAIL %s: ", name);                               \
			printf(__VA_ARGS__);                                     \
			printf(" (%s:%d)\n", __FILE__, __LINE__);                \
		}                                                                \
		fflush(stdout);                                                  \
	} while (0)

#define SKIP(name, ...)                                                          \
	do {                                                                     \
		printf("skip %s: ", name);                                       \
		printf(__VA_ARGS__);                                             \
		printf("\n");                                                    \
		fflush(stdout);                                                  \
	} while (0)

#define CHECK_EXIT() return check_failures ? 1 : 0

#endif
