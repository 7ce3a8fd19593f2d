/* Retention: when a call expires. A call is kept `months` calendar months
 * from its start: the same day of the month and the same time of day
 * (UTC), clamped to the month's last day, so that 31 May + 6 months is 30
 * November and 31 August + 6 months is 28 or 29 February. At that instant
 * it vanishes from every view; the sweeper (to come) then deletes its blob
 * and destroys its key material. A restricted call (legal hold) is kept
 * until the restriction ends.
 *
 * The sweep (the mount's maintenance thread every sweep_interval, and
 * `callvault sweep`) makes expiry final: for each expired call it deletes
 * the blob, then the catalog row together with an "expire" audit entry;
 * when no call of a day is left, it destroys the day's wrapped epoch key
 * (secure_delete, then a WAL checkpoint), after which no copy of that
 * day's blobs, in a backup or anywhere, can be decrypted by the live
 * system. A day with a restricted call keeps its key for now. */
#ifndef CALLVAULT_RETENTION_H
#define CALLVAULT_RETENTION_H

#include <stdint.h>

#include "callvault/call.h"

/* The instant a call that started at start_ms expires. */
int64_t retention_expiry_ms(int64_t start_ms, int months);

/* 1 if `rec` is past its expiry at now_ms and not held by a restriction. */
int retention_expired(const struct call_record *rec, int months,
		      int64_t now_ms);

struct vault;

struct retention_stats {
	unsigned calls;    /* expired calls removed */
	unsigned keys;     /* epoch keys destroyed */
	unsigned errors;   /* steps that failed (logged; retried next time) */
};

/* Sweeps what has expired at now_ms. `gone` (may be NULL) is told of each
 * call removed, so that the mount can drop kernel caches of it. */
int retention_sweep(struct vault *v, int64_t now_ms,
		    void (*gone)(void *ctx, const struct call_record *rec),
		    void *ctx, struct retention_stats *st);

#endif
