/* Call metadata as JSON (jansson): the recorder's sidecar in, the blob's
 * sealed copy in and out, and the .json/xattr views out. Also phone number
 * normalisation and masking. No keys here: sealing the masked digits and
 * hashing the number are the callers' (keys) business.
 *
 * Functions return 0 or a positive errno; EINVAL comes with a one-line
 * reason in err. */
#ifndef CALLVAULT_META_H
#define CALLVAULT_META_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/call.h"

/* What a recorder tells about a call (SPEC.md "Metadata"). */
struct meta_recorder {
	char direction[CALL_DIRECTION_LEN];     /* "inbound"/"outbound" */
	int64_t start_ms, end_ms;
	char service_number[CALL_NUMBER_LEN];   /* normalised E.164 */
	char customer_number[CALL_NUMBER_LEN];  /* normalised, FULL: secret */
	char agent[CALL_LOGIN_LEN];             /* login; "" if absent */
};

struct meta_number_rules {
	const char *country_code; /* "358" */
	const char *trunk_prefix; /* "0" */
};

/* Parses and validates a recorder's metadata object. Required: direction,
 * start, end, customer_number, service_number, agent. Rejects: invalid
 * UTF-8 or JSON, missing or mistyped fields, unknown directions, end before
 * start, calls longer than 24 h, starts before 2000 or more than a day in
 * the future (relative to now_ms), numbers that do not normalise. Keys
 * callvault fills in itself (call_id, agent_name, duration_s, channels,
 * notes) are ignored; any other unknown key is an error. */
int meta_parse_recorder(const char *json, size_t len,
			const struct meta_number_rules *rules, int64_t now_ms,
			struct meta_recorder *out, char *err, size_t errlen);

/* Normalises a phone number to E.164: "+358 40 123 4567", "0401234567"
 * (national, with the trunk prefix), "00358401234567", "358401234567" with
 * '+' all give "+358401234567". Spaces, dashes, dots and parentheses are
 * dropped. Needs 7..15 digits. EINVAL otherwise. */
int meta_number_normalize(const char *in, const struct meta_number_rules *rules,
			  char out[CALL_NUMBER_LEN]);

/* "+358401234567" -> masked "+358401234***" and digits "567". */
void meta_number_mask(const char *e164, char masked[CALL_NUMBER_LEN],
		      char last3[4]);

/* The sealed metadata kept in a blob's trailer: every field of the record
 * except `restricted`, so that rebuild can recreate the catalog row. The
 * returned string is malloc()ed. */
char *meta_blob_encode(const struct call_record *rec);
int meta_blob_decode(const char *json, size_t len, struct call_record *rec,
		     char *err, size_t errlen);

/* 1 if `text` is valid UTF-8 without control characters other than
 * newline and tab: what a note may hold. */
int meta_text_valid(const char *text);

/* One appended note (rectification/completion). */
struct meta_note {
	int64_t at_ms;
	char author[CALL_LOGIN_LEN];
	const char *text;
};

/* The .json view of a call (SPEC.md "Metadata"), pretty-printed, ending in
 * a newline. `restricted` adds "restricted": true. malloc()ed; *len gets the
 * length. NULL on ENOMEM. */
char *meta_render(const struct call_record *rec, const struct meta_note *notes,
		  size_t nnotes, size_t *len);

/* The same as extended attributes user.callvault.<name>. Calls fn for each
 * name/value; stops early and returns fn's value when not 0. */
int meta_xattrs(const struct call_record *rec,
		int (*fn)(void *ctx, const char *name, const char *value),
		void *ctx);

#endif
