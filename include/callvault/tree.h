/* The mapping between the mounted tree and catalog objects: inode numbers
 * and names. Pure functions, no I/O.
 *
 * Inode numbers are derived from catalog ids, so they are the same on every
 * mount (rsync, tar and find -inum rely on that):
 *
 *   1                         /
 *   2                         /incoming
 *   3                         /encrypted
 *   kind 1 << 56 | day        /YYYY-MM-DD
 *   kind 2 << 56 | day << 24 | agent id   /YYYY-MM-DD/LOGIN
 *   kind 3 << 56 | call num   .../HHMMSS-c-NNNNNN.opus
 *   kind 4 << 56 | call num   .../HHMMSS-c-NNNNNN.json
 *   kind 5 << 56 | pending id incoming/... (this mount only)
 *   4                         /encrypted/blobs
 *   5                         /encrypted/catalog.snapshot
 *   kind 6 << 56 | day        /encrypted/blobs/YYYY-MM-DD
 *   kind 7 << 56 | call num   /encrypted/blobs/YYYY-MM-DD/c-NNNNNN.cvb
 *
 * A blob's number depends on its call number only, so it stays the same
 * for as long as the blob lives: incremental backup tools (rsync, tar,
 * restic, borg) compare inode numbers.
 *
 * Day numbers must lie in [0, 2^20) (1970..4840), agent ids in [0, 2^24)
 * and call numbers in [1, 2^56). */
#ifndef CALLVAULT_TREE_H
#define CALLVAULT_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "callvault/call.h"

enum tree_kind {
	TREE_INVALID = 0,
	TREE_ROOT,
	TREE_INCOMING,
	TREE_ENCRYPTED,
	TREE_DAY,
	TREE_AGENT,
	TREE_OPUS,
	TREE_JSON,
	TREE_PENDING, /* a file or directory under incoming/ */
	TREE_ENC_BLOBS,    /* encrypted/blobs */
	TREE_ENC_SNAPSHOT, /* encrypted/catalog.snapshot */
	TREE_ENC_DAY,      /* encrypted/blobs/YYYY-MM-DD */
	TREE_ENC_BLOB,     /* encrypted/blobs/YYYY-MM-DD/c-NNNNNN.cvb */
};

struct tree_node {
	enum tree_kind kind;
	int32_t day;       /* TREE_DAY, TREE_AGENT, TREE_ENC_DAY */
	uint32_t agent_id; /* TREE_AGENT */
	uint64_t num;      /* TREE_OPUS, TREE_JSON, TREE_ENC_BLOB;
			      TREE_PENDING: id */
};

#define TREE_INO_ROOT 1
#define TREE_INO_INCOMING 2
#define TREE_INO_ENCRYPTED 3
#define TREE_INO_ENC_BLOBS 4
#define TREE_INO_ENC_SNAPSHOT 5

/* Names inside encrypted/: the vault directory's own. */
#define TREE_ENC_BLOBS_NAME "blobs"
#define TREE_ENC_SNAPSHOT_NAME "catalog.snapshot"

/* 0 if the node cannot be numbered (out of range). */
uint64_t tree_ino(const struct tree_node *n);
/* TREE_INVALID in n->kind for numbers that are not ours. */
void tree_decode(uint64_t ino, struct tree_node *n);

/* Names of call files: "093015-c-000184.opus". */
#define TREE_NAME_LEN 64
void tree_call_name(const struct call_record *rec, enum tree_kind kind,
		    char out[TREE_NAME_LEN]);
/* Parses a call file name into kind and call number, and its HHMMSS part
 * (which the caller must check against the record). EINVAL if it is not a
 * call file name. */
int tree_parse_call_name(const char *name, enum tree_kind *kind,
			 uint64_t *num, char hhmmss[7]);

/* Names of blob files in encrypted/, as the store names them:
 * "c-000184.cvb". Parsing accepts exactly what formatting produces
 * (EINVAL otherwise), so no other spelling reaches a blob. */
void tree_blob_name(uint64_t num, char out[TREE_NAME_LEN]);
int tree_parse_blob_name(const char *name, uint64_t *num);

#endif
