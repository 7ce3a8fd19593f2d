/* The call record: what the register holds about one call, shared by the
 * catalog (rows), the blob trailer (sealed copy used by rebuild), the
 * metadata views (.json, xattrs) and policy. Plain data, no behaviour
 * beyond naming. */
#ifndef CALLVAULT_CALL_H
#define CALLVAULT_CALL_H

#include <stddef.h>
#include <stdint.h>

#define CALL_ID_LEN 24          /* "c-000184" + NUL, room for 2^64 */
#define CALL_LOGIN_LEN 64       /* [a-z0-9._-], not starting with '_' */
#define CALL_NAME_LEN 128       /* agent's full name, UTF-8 */
#define CALL_NUMBER_LEN 24      /* E.164, '+' and up to 15 digits */
#define CALL_DIRECTION_LEN 9    /* "inbound" / "outbound" */
/* The customer number's last three digits, sealed with the call key:
 * XChaCha20-Poly1305 nonce + 3 bytes + tag. */
#define CALL_DIGITS_SEALED_LEN (24 + 3 + 16)
#define CALL_NUMBER_HASH_LEN 32

/* Agent id 0 is "no agent": calls committed without metadata. Their
 * directory name is CALL_UNASSIGNED_DIR, which no login can take. */
#define CALL_UNASSIGNED_DIR "_unassigned"

struct call_record {
	uint64_t num;                     /* call number; id is "c-%06" */
	int32_t day;                      /* local day number of start */
	int64_t start_ms, end_ms;         /* recording start/end, UTC */
	int64_t duration_ms;              /* from the audio itself */
	char direction[CALL_DIRECTION_LEN];
	char service_number[CALL_NUMBER_LEN];
	char customer_masked[CALL_NUMBER_LEN]; /* "+358401234***" */
	unsigned char customer_sealed[CALL_DIGITS_SEALED_LEN];
	unsigned char number_hash[CALL_NUMBER_HASH_LEN];
	uint32_t agent_id;                /* 0: unassigned */
	char agent[CALL_LOGIN_LEN];       /* login at ingest; "" if none */
	char agent_name[CALL_NAME_LEN];   /* full name at ingest */
	uint32_t agent_uid;               /* owner shown by ls -l */
	int channels;                     /* 1 or 2 */
	uint32_t source_rate;             /* sample rate of the source */
	uint64_t size;                    /* decrypted .opus size in bytes */
	int64_t ingested_ms;              /* when the call was committed */
	/* Catalog state, not in the blob. restricted_until: 0 none,
	 * CALL_UNTIL_LIFTED until lifted, else the end (ms since the
	 * epoch); restricted: whether it holds at the time of reading. */
	int64_t restricted_until;
	int restricted;
};

#define CALL_UNTIL_LIFTED INT64_MAX

/* "c-000184" <-> 184. Parsing is strict; returns 0 or EINVAL. */
void call_id_format(uint64_t num, char out[CALL_ID_LEN]);
int call_id_parse(const char *s, uint64_t *num_out);

/* 1 if `login` is a valid login: 1..63 chars of [a-z0-9._-], starting with
 * a letter or digit. */
int call_login_valid(const char *login);

#endif
