/* When calls expire. */
#include "callvault/retention.h"

#include "callvault/clock.h"

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static unsigned days_in_month(int y, unsigned m)
{
	static const unsigned char dim[] = { 31, 28, 31, 30, 31, 30,
					     31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

int64_t retention_expiry_ms(int64_t start_ms, int months)
{
	const int64_t day_ms = 86400000;
	int64_t days = floor_div(start_ms, day_ms);
	int64_t in_day = start_ms - days * day_ms;
	int y, total;
	unsigned m, d, last;

	clock_civil_from_days((int32_t)days, &y, &m, &d);
	total = y * 12 + (int)m - 1 + months;
	y = (int)floor_div(total, 12);
	m = (unsigned)(total - y * 12) + 1;
	last = days_in_month(y, m);
	if (d > last)
		d = last;
	return (int64_t)clock_days_from_civil(y, m, d) * day_ms + in_day;
}

int retention_expired(const struct call_record *rec, int months,
		      int64_t now_ms)
{
	return !rec->restricted &&
	       now_ms >= retention_expiry_ms(rec->start_ms, months);
}
