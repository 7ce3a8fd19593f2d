/* Time: "now", RFC 3339, and local calendar days in the vault's zone. */
#include "callvault/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian
 * calendar, no time zone involved. */
int32_t clock_days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int32_t)doe - 719468;
}

void clock_civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe =
		(doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int y, unsigned m)
{
	static const unsigned char dim[] = { 31, 28, 31, 30, 31, 30,
					     31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

int clock_set_timezone(const char *tz)
{
	char path[256];

	if (!tz || !*tz)
		return 0;
	/* tzset() silently falls back to UTC for unknown names; refuse them
	 * instead, since day directories depend on the zone. */
	if (tz[0] != ':' && !strstr(tz, "..")) {
		snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
		if (tz[0] != '/' && access(path, R_OK) != 0 &&
		    strcmp(tz, "UTC") != 0)
			return EINVAL;
	} else if (strstr(tz, "..")) {
		return EINVAL;
	}
	if (setenv("TZ", tz, 1) != 0)
		return errno;
	tzset();
	return 0;
}

/* Reads exactly n digits. */
static int digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char ch = (*s)[i];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*s += n;
	*out = v;
	return 0;
}

int clock_parse_rfc3339(const char *s, int64_t *ms_out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t ms = 0;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
	    *s++ != '-' || digits(&s, 2, &d))
		return EINVAL;
	if (*s != 'T' && *s != 't')
		return EINVAL;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) ||
	    *s++ != ':' || digits(&s, 2, &sec))
		return EINVAL;
	if (*s == '.') {
		int scale = 100, n = 0;
		s++;
		while (*s >= '0' && *s <= '9') {
			ms += (*s - '0') * scale;
			scale /= 10;
			s++;
			n++;
		}
		if (n == 0 || n > 9)
			return EINVAL;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om) ||
		    oh > 23 || om > 59)
			return EINVAL;
	} else {
		return EINVAL;
	}
	if (*s != '\0')
		return EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo) ||
	    h > 23 || mi > 59 || sec > 60)
		return EINVAL;
	if (sec == 60) /* a leap second is the last instant of its minute */
		sec = 59;

	int64_t days = clock_days_from_civil(y, (unsigned)mo, (unsigned)d);
	int64_t t = ((days * 24 + h) * 60 + mi) * 60 + sec;
	t -= (int64_t)sign * (oh * 3600 + om * 60);
	*ms_out = t * 1000 + ms;
	return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_LEN])
{
	int64_t secs = floor_div(ms, 1000);
	int frac = (int)(ms - secs * 1000);
	int32_t days = (int32_t)floor_div(secs, 86400);
	int64_t rem = secs - (int64_t)days * 86400;
	int y;
	unsigned m, d;

	clock_civil_from_days(days, &y, &m, &d);
	if (frac)
		snprintf(out, CLOCK_RFC3339_LEN,
			 "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
			 (int)(rem / 3600), (int)(rem / 60 % 60),
			 (int)(rem % 60), frac);
	else
		snprintf(out, CLOCK_RFC3339_LEN, "%04d-%02u-%02uT%02d:%02d:%02dZ",
			 y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
			 (int)(rem % 60));
}

static void local_tm(int64_t ms, struct tm *tm)
{
	time_t t = (time_t)floor_div(ms, 1000);

	if (!localtime_r(&t, tm))
		memset(tm, 0, sizeof *tm);
}

int32_t clock_local_day(int64_t ms)
{
	struct tm tm;

	local_tm(ms, &tm);
	return clock_days_from_civil(tm.tm_year + 1900,
				     (unsigned)tm.tm_mon + 1,
				     (unsigned)tm.tm_mday);
}

void clock_local_hhmmss(int64_t ms, char out[CLOCK_HHMMSS_LEN])
{
	struct tm tm;

	local_tm(ms, &tm);
	snprintf(out, CLOCK_HHMMSS_LEN, "%02u%02u%02u",
		 (unsigned)tm.tm_hour % 24u, (unsigned)tm.tm_min % 60u,
		 (unsigned)tm.tm_sec % 61u);
}

int64_t clock_local_midnight_ms(int32_t day)
{
	struct tm tm;
	int y;
	unsigned m, d;

	clock_civil_from_days(day, &y, &m, &d);
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = (int)m - 1;
	tm.tm_mday = (int)d;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * 1000;
}

int clock_parse_day(const char *s, int32_t *day_out)
{
	int y, m, d;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &m) ||
	    *s++ != '-' || digits(&s, 2, &d) || *s != '\0')
		return EINVAL;
	if (m < 1 || m > 12 || d < 1 ||
	    (unsigned)d > days_in_month(y, (unsigned)m))
		return EINVAL;
	*day_out = clock_days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

void clock_format_day(int32_t day, char out[CLOCK_DAY_LEN])
{
	int y;
	unsigned m, d;

	clock_civil_from_days(day, &y, &m, &d);
	snprintf(out, CLOCK_DAY_LEN, "%04u-%02u-%02u", (unsigned)y % 10000u,
		 m % 13u, d % 32u);
}
