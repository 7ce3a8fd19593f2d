/* Retention: when a call expires. A call is kept `months` calendar months
 * from its start: the same day of the month and the same time of day
 * (UTC), clamped to the month's last day, so that 31 May + 6 months is 30
 * November and 31 August + 6 months is 28 or 29 February. At that instant
 * it vanishes from every view; the sweeper (to come) then deletes its blob
 * and destroys its key material. A restricted call (legal hold) is kept
 * until the restriction ends. Pure functions. */
#ifndef CALLVAULT_RETENTION_H
#define CALLVAULT_RETENTION_H

#include <stdint.h>

#include "callvault/call.h"

/* The instant a call that started at start_ms expires. */
int64_t retention_expiry_ms(int64_t start_ms, int months);

/* 1 if `rec` is past its expiry at now_ms and not held by a restriction. */
int retention_expired(const struct call_record *rec, int months,
		      int64_t now_ms);

#endif
