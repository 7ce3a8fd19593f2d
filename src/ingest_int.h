/* Ingest, the part only incoming/ uses: knowing, after a crash, whether a
 * pending pair had already become a call. */
#ifndef CALLVAULT_INGEST_INT_H
#define CALLVAULT_INGEST_INT_H
#include <stdint.h>
#include "callvault/ingest.h"

/* Called by ingest once the call's blob is written and sealed, before it
 * is moved into the store and its catalog row inserted (the commit
 * point), with the call's number and day. A non-zero return (an errno)
 * aborts the ingest. */
typedef int (*ingest_hook_fn)(void *ctx, uint64_t num, int32_t day);

/* ingest_call(), with `hook` (may be NULL) run just before the commit
 * point. incoming/ records there, durably, which call its files are
 * becoming: a crash after the row is in but before the pending files are
 * removed must not make recovery commit them a second time. */
int ingest_call_hooked(struct vault *v, const struct audio_source *audio,
		       const char *meta_json, size_t meta_len,
		       int64_t fallback_start_ms, struct call_record *out,
		       char *err, size_t errlen, ingest_hook_fn hook,
		       void *hook_ctx);

/* After a crash: sets *committed to 1 if call `num` of `day` was committed
 * (its row, or the tombstone of its erasure, exists), else to 0 after
 * removing the blob it may have left without a row, so that rebuild
 * cannot bring back a second copy. Returns 0 or a positive errno (the
 * catalog cannot tell). */
int ingest_was_committed(struct vault *v, uint64_t num, int32_t day,
			 int *committed);

#endif
