/* Expiry arithmetic: calendar months, month-end clamping, leap years. */
#include "test.h"
#include "callvault/clock.h"
#include "callvault/retention.h"

static int64_t at(const char *s)
{
	int64_t ms = 0;

	if (clock_parse_rfc3339(s, &ms) != 0) {
		fprintf(stderr, "  bad time %s\n", s);
		test_case_failed = 1;
	}
	return ms;
}

static void expect(const char *start, int months, const char *want)
{
	char got[CLOCK_RFC3339_LEN];

	clock_format_rfc3339(retention_expiry_ms(at(start), months), got);
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "  %s + %d months = %s, expected %s\n", start,
			months, got, want);
		test_case_failed = 1;
	}
}

static void six_months_keeps_day_and_time(void)
{
	expect("2026-05-27T09:30:15Z", 6, "2026-11-27T09:30:15Z");
	expect("2026-11-27T23:59:59.500Z", 6, "2027-05-27T23:59:59.500Z");
	expect("2026-01-01T00:00:00Z", 6, "2026-07-01T00:00:00Z");
}

static void month_end_is_clamped(void)
{
	expect("2026-05-31T12:00:00Z", 6, "2026-11-30T12:00:00Z");
	expect("2026-03-31T08:00:00Z", 6, "2026-09-30T08:00:00Z");
	expect("2026-08-31T08:00:00Z", 6, "2027-02-28T08:00:00Z");
	expect("2026-12-31T08:00:00Z", 2, "2027-02-28T08:00:00Z");
}

static void leap_years(void)
{
	expect("2027-08-31T10:00:00Z", 6, "2028-02-29T10:00:00Z");
	expect("2028-02-29T10:00:00Z", 6, "2028-08-29T10:00:00Z");
	expect("2028-02-29T10:00:00Z", 12, "2029-02-28T10:00:00Z");
	expect("2099-08-31T10:00:00Z", 6, "2100-02-28T10:00:00Z");
	expect("2399-08-31T10:00:00Z", 6, "2400-02-29T10:00:00Z");
}

static void other_periods(void)
{
	expect("2026-11-27T09:30:15Z", 1, "2026-12-27T09:30:15Z");
	expect("2026-11-27T09:30:15Z", 13, "2027-12-27T09:30:15Z");
	expect("2026-11-27T09:30:15Z", 120, "2036-11-27T09:30:15Z");
}

static void expiry_instant_and_restriction(void)
{
	struct call_record rec = { .start_ms = at("2026-05-27T09:30:15Z") };
	int64_t exp = at("2026-11-27T09:30:15Z");

	CHECK(!retention_expired(&rec, 6, exp - 1));
	CHECK(retention_expired(&rec, 6, exp));
	CHECK(retention_expired(&rec, 6, exp + 86400000));
	rec.restricted = 1;
	CHECK(!retention_expired(&rec, 6, exp + 86400000));
}

TEST_MAIN("retention", T(six_months_keeps_day_and_time),
	  T(month_end_is_clamped), T(leap_years), T(other_periods),
	  T(expiry_instant_and_restriction))
