/* A minimal unit-test harness: each test binary lists its cases with
 * TEST_MAIN and prints one line per case and a closing
 * "N passed, N failed" line. A case fails if any CHECK in it fails. */
#ifndef CALLVAULT_TEST_H
#define CALLVAULT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

static int test_case_failed;

static inline void test_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, what);
	test_case_failed = 1;
}

#define CHECK(cond)                                                      \
	do {                                                             \
		if (!(cond))                                             \
			test_fail(__FILE__, __LINE__, #cond);            \
	} while (0)

#define CHECK_INT(a, b)                                                  \
	do {                                                             \
		long long a_ = (long long)(a), b_ = (long long)(b);      \
		if (a_ != b_) {                                          \
			fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", \
				__FILE__, __LINE__, #a, a_, b_);         \
			test_case_failed = 1;                            \
		}                                                        \
	} while (0)

#define CHECK_STR(a, b)                                                  \
	do {                                                             \
		const char *a_ = (a), *b_ = (b);                         \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                 \
			fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                     \
			test_case_failed = 1;                            \
		}                                                        \
	} while (0)

static inline int test_run(const char *suite, const struct test_case *cases,
			   size_t n)
{
	int passed = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		test_case_failed = 0;
		cases[i].fn();
		if (test_case_failed) {
			printf("FAIL %s: %s\n", suite, cases[i].name);
			failed++;
		} else {
			printf("ok   %s: %s\n", suite, cases[i].name);
			passed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define T(fn) { #fn, fn }
#define TEST_MAIN(suite, ...)                                            \
	int main(void)                                                   \
	{                                                                \
		static const struct test_case cases_[] = { __VA_ARGS__ }; \
		return test_run(suite, cases_,                            \
				sizeof cases_ / sizeof cases_[0]);        \
	}

#endif
