/* Ingest: turns audio + a recorder's metadata into a committed call. The
 * one path for `callvault import` and for recorders writing into incoming/
 * of a mount.
 *
 * Steps: validate metadata, resolve the agent, take a call number, get or
 * create the day's epoch key, derive the call key, transcode the audio into
 * a sealed blob in the spool (no plaintext touches the disk), fsync, rename
 * into the store, fsync the directory, insert the catalog row in one
 * transaction. A crash at any point leaves either nothing visible (a spool
 * file for recovery) or a complete call. */
#ifndef CALLVAULT_INGEST_H
#define CALLVAULT_INGEST_H

#include <stddef.h>

#include "callvault/audio.h"
#include "callvault/call.h"
#include "callvault/vault.h"

/* Ingests one call. `meta_json` may be NULL: the call is then attributed to
 * no agent, with times taken from `fallback_start_ms` and the audio's
 * duration. On success *out holds the committed record. EINVAL with a
 * reason in err for bad input (nothing is committed); other errnos for
 * storage faults. */
int ingest_call(struct vault *v, const struct audio_source *audio,
		const char *meta_json, size_t meta_len,
		int64_t fallback_start_ms, struct call_record *out, char *err,
		size_t errlen);

#endif
