/* Inode numbers and names of the mounted tree. */
#include "callvault/tree.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "callvault/clock.h"

#define KIND_SHIFT 56
#define KIND_DAY 1ULL
#define KIND_AGENT 2ULL
#define KIND_OPUS 3ULL
#define KIND_JSON 4ULL
#define KIND_PENDING 5ULL
#define KIND_ENC_DAY 6ULL
#define KIND_ENC_BLOB 7ULL
#define BLOB_SUFFIX ".cvb"
#define DAY_BITS 20
#define AGENT_BITS 24
#define LOW_MASK ((1ULL << KIND_SHIFT) - 1)

uint64_t tree_ino(const struct tree_node *n)
{
	switch (n->kind) {
	case TREE_ROOT:
		return TREE_INO_ROOT;
	case TREE_INCOMING:
		return TREE_INO_INCOMING;
	case TREE_ENCRYPTED:
		return TREE_INO_ENCRYPTED;
	case TREE_ENC_BLOBS:
		return TREE_INO_ENC_BLOBS;
	case TREE_ENC_SNAPSHOT:
		return TREE_INO_ENC_SNAPSHOT;
	case TREE_ENC_DAY:
		if (n->day < 0 || n->day >= (1 << DAY_BITS))
			return 0;
		return KIND_ENC_DAY << KIND_SHIFT | (uint64_t)n->day;
	case TREE_ENC_BLOB:
		if (n->num == 0 || n->num > LOW_MASK)
			return 0;
		return KIND_ENC_BLOB << KIND_SHIFT | n->num;
	case TREE_DAY:
		if (n->day < 0 || n->day >= (1 << DAY_BITS))
			return 0;
		return KIND_DAY << KIND_SHIFT | (uint64_t)n->day;
	case TREE_AGENT:
		if (n->day < 0 || n->day >= (1 << DAY_BITS) ||
		    n->agent_id >= (1U << AGENT_BITS))
			return 0;
		return KIND_AGENT << KIND_SHIFT |
		       (uint64_t)n->day << AGENT_BITS | n->agent_id;
	case TREE_PENDING:
		if (n->num == 0 || n->num > LOW_MASK)
			return 0;
		return KIND_PENDING << KIND_SHIFT | n->num;
	case TREE_OPUS:
	case TREE_JSON:
		if (n->num == 0 || n->num > LOW_MASK)
			return 0;
		return (n->kind == TREE_OPUS ? KIND_OPUS : KIND_JSON)
			       << KIND_SHIFT |
		       n->num;
	default:
		return 0;
	}
}

void tree_decode(uint64_t ino, struct tree_node *n)
{
	uint64_t kind = ino >> KIND_SHIFT, low = ino & LOW_MASK;

	memset(n, 0, sizeof *n);
	n->kind = TREE_INVALID;
	if (kind == 0) {
		if (ino == TREE_INO_ROOT)
			n->kind = TREE_ROOT;
		else if (ino == TREE_INO_INCOMING)
			n->kind = TREE_INCOMING;
		else if (ino == TREE_INO_ENCRYPTED)
			n->kind = TREE_ENCRYPTED;
		else if (ino == TREE_INO_ENC_BLOBS)
			n->kind = TREE_ENC_BLOBS;
		else if (ino == TREE_INO_ENC_SNAPSHOT)
			n->kind = TREE_ENC_SNAPSHOT;
	} else if (kind == KIND_ENC_DAY) {
		if (low < (1ULL << DAY_BITS)) {
			n->kind = TREE_ENC_DAY;
			n->day = (int32_t)low;
		}
	} else if (kind == KIND_ENC_BLOB) {
		if (low != 0) {
			n->kind = TREE_ENC_BLOB;
			n->num = low;
		}
	} else if (kind == KIND_DAY) {
		if (low < (1ULL << DAY_BITS)) {
			n->kind = TREE_DAY;
			n->day = (int32_t)low;
		}
	} else if (kind == KIND_AGENT) {
		if (low >> AGENT_BITS < (1ULL << DAY_BITS)) {
			n->kind = TREE_AGENT;
			n->day = (int32_t)(low >> AGENT_BITS);
			n->agent_id = (uint32_t)(low & ((1U << AGENT_BITS) - 1));
		}
	} else if (kind == KIND_PENDING) {
		if (low != 0) {
			n->kind = TREE_PENDING;
			n->num = low;
		}
	} else if (kind == KIND_OPUS || kind == KIND_JSON) {
		if (low != 0) {
			n->kind = kind == KIND_OPUS ? TREE_OPUS : TREE_JSON;
			n->num = low;
		}
	}
}

void tree_call_name(const struct call_record *rec, enum tree_kind kind,
		    char out[TREE_NAME_LEN])
{
	char hhmmss[CLOCK_HHMMSS_LEN], id[CALL_ID_LEN];

	clock_local_hhmmss(rec->start_ms, hhmmss);
	call_id_format(rec->num, id);
	snprintf(out, TREE_NAME_LEN, "%s-%s.%s", hhmmss, id,
		 kind == TREE_OPUS ? "opus" : "json");
}

int tree_parse_call_name(const char *name, enum tree_kind *kind,
			 uint64_t *num, char hhmmss[7])
{
	char id[CALL_ID_LEN];
	const char *dot;
	size_t idlen;

	for (int i = 0; i < 6; i++)
		if (name[i] < '0' || name[i] > '9')
			return EINVAL;
	if (name[6] != '-')
		return EINVAL;
	dot = strrchr(name, '.');
	if (!dot || dot < name + 7)
		return EINVAL;
	if (strcmp(dot, ".opus") == 0)
		*kind = TREE_OPUS;
	else if (strcmp(dot, ".json") == 0)
		*kind = TREE_JSON;
	else
		return EINVAL;
	idlen = (size_t)(dot - (name + 7));
	if (idlen == 0 || idlen >= sizeof id)
		return EINVAL;
	memcpy(id, name + 7, idlen);
	id[idlen] = '\0';
	if (call_id_parse(id, num) != 0)
		return EINVAL;
	memcpy(hhmmss, name, 6);
	hhmmss[6] = '\0';
	return 0;
}

void tree_blob_name(uint64_t num, char out[TREE_NAME_LEN])
{
	char id[CALL_ID_LEN];

	call_id_format(num, id);
	snprintf(out, TREE_NAME_LEN, "%s" BLOB_SUFFIX, id);
}

int tree_parse_blob_name(const char *name, uint64_t *num)
{
	char id[CALL_ID_LEN];
	size_t len = strlen(name), idlen;

	if (len <= strlen(BLOB_SUFFIX) ||
	    strcmp(name + len - strlen(BLOB_SUFFIX), BLOB_SUFFIX) != 0)
		return EINVAL;
	idlen = len - strlen(BLOB_SUFFIX);
	if (idlen >= sizeof id)
		return EINVAL;
	memcpy(id, name, idlen);
	id[idlen] = '\0';
	return call_id_parse(id, num) != 0 ? EINVAL : 0;
}
