/* The name parsers of the mounted tree: day directories ("2026-11-27"),
 * call files ("093015-c-000184.opus"), blob files ("c-000184.cvb"), call
 * ids, logins, RFC 3339 times, and inode numbers (tree_decode).
 *
 * Property: parsing is strict, i.e. whatever a parser accepts formats back
 * to exactly the same name (tree.h, clock.h, call.h: "no other spelling
 * reaches a call"); a decoded inode number encodes back to itself. */
#include "fuzz.h"

#include "callvault/call.h"
#include "callvault/clock.h"
#include "callvault/tree.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	/* HHMMSS and days in a fixed zone, whatever the machine's. */
	if (clock_set_timezone("UTC") != 0)
		abort();
	return 0;
}

static void names(const char *s)
{
	char out[TREE_NAME_LEN + CLOCK_RFC3339_LEN], id[CALL_ID_LEN];
	char hhmmss[7];
	enum tree_kind kind;
	uint64_t num;
	int32_t day;
	int64_t ms, ms2;

	if (call_id_parse(s, &num) == 0) {
		FUZZ_ASSERT(num != 0);
		call_id_format(num, id);
		FUZZ_ASSERT(strcmp(id, s) == 0);
	}
	if (tree_parse_blob_name(s, &num) == 0) {
		tree_blob_name(num, out);
		FUZZ_ASSERT(strcmp(out, s) == 0);
	}
	if (tree_parse_call_name(s, &kind, &num, hhmmss) == 0) {
		FUZZ_ASSERT(kind == TREE_OPUS || kind == TREE_JSON);
		call_id_format(num, id);
		snprintf(out, sizeof out, "%s-%s.%s", hhmmss, id,
			 kind == TREE_OPUS ? "opus" : "json");
		FUZZ_ASSERT(strcmp(out, s) == 0);
	}
	if (clock_parse_day(s, &day) == 0) {
		clock_format_day(day, out);
		FUZZ_ASSERT(strcmp(out, s) == 0);
	}
	if (clock_parse_rfc3339(s, &ms) == 0) {
		clock_format_rfc3339(ms, out);
		FUZZ_ASSERT(clock_parse_rfc3339(out, &ms2) == 0);
		FUZZ_ASSERT(ms2 == ms);
	}
	(void)call_login_valid(s);
}

static void inode(const uint8_t *data, size_t size)
{
	struct tree_node n;
	uint64_t ino = 0;

	for (size_t i = 0; i < 8 && i < size; i++)
		ino |= (uint64_t)data[i] << (8 * i);
	tree_decode(ino, &n);
	if (n.kind != TREE_INVALID)
		FUZZ_ASSERT(tree_ino(&n) == ino);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	names(s);
	inode(data, size);
	free(s);
	return 0;
}
