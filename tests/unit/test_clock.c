/* Time: RFC 3339, civil days, local days in a zone. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "callvault/clock.h"

static void rfc3339_parse_forms(void)
{
	int64_t ms;

	CHECK_INT(clock_parse_rfc3339("2026-11-27T09:30:15Z", &ms), 0);
	CHECK_INT(ms, 1795771815000LL);
	CHECK_INT(clock_parse_rfc3339("2026-11-27T11:30:15+02:00", &ms), 0);
	CHECK_INT(ms, 1795771815000LL);
	CHECK_INT(clock_parse_rfc3339("2026-11-27T04:00:15-05:30", &ms), 0);
	CHECK_INT(ms, 1795771815000LL);
	CHECK_INT(clock_parse_rfc3339("2026-11-27T09:30:15.25Z", &ms), 0);
	CHECK_INT(ms, 1795771815250LL);
	CHECK_INT(clock_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
	CHECK_INT(ms, 0);
	CHECK_INT(clock_parse_rfc3339("2024-02-29T23:59:59Z", &ms), 0);
}

static void rfc3339_rejects(void)
{
	static const char *bad[] = {
		"", "2026-11-27", "2026-11-27T09:30:15", "2026-11-27 09:30:15Z",
		"2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
		"2026-11-31T00:00:00Z", "2026-11-27T24:00:00Z",
		"2026-11-27T09:60:00Z", "2026-11-27T09:30:15+0200",
		"2026-11-27T09:30:15Z junk", "2026-11-27T09:30:15.Z",
		"26-11-27T09:30:15Z", "2026-11-27T09:30:15+25:00",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (clock_parse_rfc3339(bad[i], &ms) != EINVAL) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			test_case_failed = 1;
		}
	}
}

static void rfc3339_format_round_trip(void)
{
	char buf[CLOCK_RFC3339_LEN];
	int64_t ms;

	clock_format_rfc3339(1795771815000LL, buf);
	CHECK_STR(buf, "2026-11-27T09:30:15Z");
	clock_format_rfc3339(1795771815250LL, buf);
	CHECK_STR(buf, "2026-11-27T09:30:15.250Z");
	clock_format_rfc3339(-1000, buf);
	CHECK_STR(buf, "1969-12-31T23:59:59Z");
	for (int64_t t = 946684800000LL; t < 4102444800000LL;
	     t += 86400000LL * 37 + 3601234) {
		clock_format_rfc3339(t, buf);
		CHECK_INT(clock_parse_rfc3339(buf, &ms), 0);
		CHECK_INT(ms, t);
	}
}

static void civil_days(void)
{
	int y;
	unsigned m, d;

	CHECK_INT(clock_days_from_civil(1970, 1, 1), 0);
	CHECK_INT(clock_days_from_civil(2000, 3, 1), 11017);
	CHECK_INT(clock_days_from_civil(2026, 11, 27), 20784);
	for (int32_t z = -1000; z < 200000; z += 17) {
		clock_civil_from_days(z, &y, &m, &d);
		CHECK_INT(clock_days_from_civil(y, m, d), z);
	}
}

static void day_names(void)
{
	char buf[CLOCK_DAY_LEN];
	int32_t day;

	CHECK_INT(clock_parse_day("2026-11-27", &day), 0);
	CHECK_INT(day, 20784);
	clock_format_day(day, buf);
	CHECK_STR(buf, "2026-11-27");
	CHECK_INT(clock_parse_day("2024-02-29", &day), 0);
	CHECK_INT(clock_parse_day("2023-02-29", &day), EINVAL);
	CHECK_INT(clock_parse_day("2026-1-27", &day), EINVAL);
	CHECK_INT(clock_parse_day("2026-11-27x", &day), EINVAL);
	CHECK_INT(clock_parse_day("../etc", &day), EINVAL);
}

static void local_days_follow_the_zone(void)
{
	char hhmmss[CLOCK_HHMMSS_LEN];
	int64_t ms;

	/* 22:30 UTC on 27 November is 00:30 on the 28th in Helsinki
	 * (UTC+2 in winter), and 01:30 in summer (UTC+3). */
	CHECK_INT(clock_set_timezone("Europe/Helsinki"), 0);
	CHECK_INT(clock_parse_rfc3339("2026-11-27T22:30:00Z", &ms), 0);
	CHECK_INT(clock_local_day(ms), 20785);
	clock_local_hhmmss(ms, hhmmss);
	CHECK_STR(hhmmss, "003000");
	CHECK_INT(clock_parse_rfc3339("2026-06-27T22:30:00Z", &ms), 0);
	clock_local_hhmmss(ms, hhmmss);
	CHECK_STR(hhmmss, "013000");

	CHECK_INT(clock_set_timezone("UTC"), 0);
	CHECK_INT(clock_parse_rfc3339("2026-11-27T22:30:00Z", &ms), 0);
	CHECK_INT(clock_local_day(ms), 20784);
	clock_local_hhmmss(ms, hhmmss);
	CHECK_STR(hhmmss, "223000");

	CHECK_INT(clock_set_timezone("Nowhere/Atlantis"), EINVAL);
	CHECK_INT(clock_set_timezone("../../etc/passwd"), EINVAL);
}

static void now_is_now(void)
{
	int64_t a = clock_now_ms();

	CHECK(a > 1700000000000LL);
	CHECK(clock_now_ms() >= a);
}

TEST_MAIN("clock", T(rfc3339_parse_forms), T(rfc3339_rejects),
	  T(rfc3339_format_round_trip), T(civil_days), T(day_names),
	  T(local_days_follow_the_zone), T(now_is_now))
