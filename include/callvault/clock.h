/* Time: the one source of "now", RFC 3339 parsing and formatting, and the
 * mapping of instants to the vault's local calendar days.
 *
 * Instants are int64_t milliseconds since the Unix epoch (UTC). A "day number"
 * is the count of days since 1970-01-01 of a local calendar date in the
 * vault's time zone; it names a day directory and an epoch key. */
#ifndef CALLVAULT_CLOCK_H
#define CALLVAULT_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_RFC3339_LEN 32 /* "2026-11-27T09:30:15.123Z" + NUL, padded */
#define CLOCK_DAY_LEN 11     /* "2026-11-27" + NUL */
#define CLOCK_HHMMSS_LEN 7   /* "093015" + NUL */

/* Milliseconds since the epoch, from CLOCK_REALTIME. Every "now" in
 * callvault comes from here. */
int64_t clock_now_ms(void);

/* Sets the zone used for local days and HHMMSS ("Europe/Helsinki"); NULL or
 * "" keeps the system's. Process-wide; call once at start-up, before
 * threads. Returns 0 or EINVAL for a zone that tzdata does not know. */
int clock_set_timezone(const char *tz);

/* Parses an RFC 3339 date-time ("2026-11-27T09:30:15Z",
 * "2026-11-27T11:30:15.5+02:00"). Requires an explicit offset.
 * Returns 0 or EINVAL. */
int clock_parse_rfc3339(const char *s, int64_t *ms_out);

/* Formats in UTC with a 'Z'; milliseconds only when not zero. */
void clock_format_rfc3339(int64_t ms, char out[CLOCK_RFC3339_LEN]);

/* Local calendar day (vault zone) of an instant, and its HHMMSS. */
int32_t clock_local_day(int64_t ms);
void clock_local_hhmmss(int64_t ms, char out[CLOCK_HHMMSS_LEN]);

/* The first instant of local day `day` (vault zone). */
int64_t clock_local_midnight_ms(int32_t day);

/* "YYYY-MM-DD" <-> day number. Parsing is strict (zero-padded, valid
 * date); returns 0 or EINVAL. */
int clock_parse_day(const char *s, int32_t *day_out);
void clock_format_day(int32_t day, char out[CLOCK_DAY_LEN]);

/* Civil-calendar helpers (proleptic Gregorian). */
int32_t clock_days_from_civil(int y, unsigned m, unsigned d);
void clock_civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d);

#endif
