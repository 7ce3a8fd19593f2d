/* Inode numbers and call file names. */
#include <errno.h>

#include "test.h"
#include "callvault/clock.h"
#include "callvault/tree.h"

static void round_trip(const struct tree_node *n)
{
	struct tree_node back;
	uint64_t ino = tree_ino(n);

	CHECK(ino != 0);
	tree_decode(ino, &back);
	CHECK_INT(back.kind, n->kind);
	if (n->kind == TREE_DAY || n->kind == TREE_AGENT ||
	    n->kind == TREE_ENC_DAY)
		CHECK_INT(back.day, n->day);
	if (n->kind == TREE_AGENT)
		CHECK_INT(back.agent_id, n->agent_id);
	if (n->kind == TREE_OPUS || n->kind == TREE_JSON ||
	    n->kind == TREE_ENC_BLOB)
		CHECK_INT(back.num, n->num);
}

static void inode_numbers_round_trip(void)
{
	struct tree_node n[] = {
		{ .kind = TREE_ROOT },
		{ .kind = TREE_INCOMING },
		{ .kind = TREE_ENCRYPTED },
		{ .kind = TREE_DAY, .day = 20419 },
		{ .kind = TREE_DAY, .day = 0 },
		{ .kind = TREE_AGENT, .day = 20419, .agent_id = 0 },
		{ .kind = TREE_AGENT, .day = 20419, .agent_id = 16777215 },
		{ .kind = TREE_OPUS, .num = 1 },
		{ .kind = TREE_JSON, .num = 1 },
		{ .kind = TREE_OPUS, .num = (1ULL << 56) - 1 },
		{ .kind = TREE_ENC_BLOBS },
		{ .kind = TREE_ENC_SNAPSHOT },
		{ .kind = TREE_ENC_DAY, .day = 20419 },
		{ .kind = TREE_ENC_BLOB, .num = 184 },
		{ .kind = TREE_ENC_BLOB, .num = (1ULL << 56) - 1 },
	};

	for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
		round_trip(&n[i]);
	CHECK_INT(tree_ino(&n[0]), 1);
}

static void inode_numbers_are_distinct(void)
{
	struct tree_node a = { .kind = TREE_OPUS, .num = 7 };
	struct tree_node b = { .kind = TREE_JSON, .num = 7 };
	struct tree_node c = { .kind = TREE_DAY, .day = 7 };
	struct tree_node d = { .kind = TREE_AGENT, .day = 0, .agent_id = 7 };

	CHECK(tree_ino(&a) != tree_ino(&b));
	CHECK(tree_ino(&a) != tree_ino(&c));
	CHECK(tree_ino(&c) != tree_ino(&d));
	CHECK(tree_ino(&a) != TREE_INO_ROOT);
}

/* A blob in encrypted/ has its own number, distinct from the call's
 * .opus and .json, and the same on every mount: it depends on the call
 * number only. */
static void blob_inodes_are_stable_and_distinct(void)
{
	struct tree_node blob = { .kind = TREE_ENC_BLOB, .num = 7 };
	struct tree_node opus = { .kind = TREE_OPUS, .num = 7 };
	struct tree_node day = { .kind = TREE_ENC_DAY, .day = 7 };
	struct tree_node date = { .kind = TREE_DAY, .day = 7 };
	struct tree_node enc[] = { { .kind = TREE_ENCRYPTED },
				   { .kind = TREE_ENC_BLOBS },
				   { .kind = TREE_ENC_SNAPSHOT },
				   { .kind = TREE_INCOMING },
				   { .kind = TREE_ROOT } };

	CHECK_INT(tree_ino(&blob), 7ULL << 56 | 7);
	CHECK(tree_ino(&blob) != tree_ino(&opus));
	CHECK(tree_ino(&day) != tree_ino(&date));
	CHECK(tree_ino(&day) != tree_ino(&blob));
	for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++)
		for (size_t j = i + 1; j < sizeof enc / sizeof enc[0]; j++)
			CHECK(tree_ino(&enc[i]) != tree_ino(&enc[j]));
	blob.num = 0;
	CHECK_INT(tree_ino(&blob), 0);
	day.day = -1;
	CHECK_INT(tree_ino(&day), 0);
}

static void blob_names(void)
{
	static const char *bad[] = {
		"", ".cvb", "c-000184", "c-000184.cvb.cvb", "c-0184.cvb",
		"c-0000184.cvb", "c-000000.cvb", "../c-000184.cvb",
		"c-000184.CVB", "x-000184.cvb", "c-000184.cvbx",
		"c-000184.opus", "093015-c-000184.cvb",
	};
	char name[TREE_NAME_LEN];
	uint64_t num = 0;

	tree_blob_name(184, name);
	CHECK_STR(name, "c-000184.cvb");
	CHECK_INT(tree_parse_blob_name("c-000184.cvb", &num), 0);
	CHECK_INT(num, 184);
	tree_blob_name(1234567, name);
	CHECK_STR(name, "c-1234567.cvb");
	CHECK_INT(tree_parse_blob_name(name, &num), 0);
	CHECK_INT(num, 1234567);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (tree_parse_blob_name(bad[i], &num) != EINVAL) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			test_case_failed = 1;
		}
	}
}

static void out_of_range_is_refused(void)
{
	struct tree_node n = { .kind = TREE_DAY, .day = 1 << 20 };
	struct tree_node back;

	CHECK_INT(tree_ino(&n), 0);
	n = (struct tree_node){ .kind = TREE_DAY, .day = -1 };
	CHECK_INT(tree_ino(&n), 0);
	n = (struct tree_node){ .kind = TREE_AGENT, .agent_id = 1U << 24 };
	CHECK_INT(tree_ino(&n), 0);
	n = (struct tree_node){ .kind = TREE_OPUS, .num = 0 };
	CHECK_INT(tree_ino(&n), 0);
	n = (struct tree_node){ .kind = TREE_OPUS, .num = 1ULL << 56 };
	CHECK_INT(tree_ino(&n), 0);

	tree_decode(0, &back);
	CHECK_INT(back.kind, TREE_INVALID);
	tree_decode(6, &back);
	CHECK_INT(back.kind, TREE_INVALID);
	tree_decode(7ULL << 56, &back); /* blob of call number 0 */
	CHECK_INT(back.kind, TREE_INVALID);
	tree_decode(9ULL << 56, &back);
	CHECK_INT(back.kind, TREE_INVALID);
	tree_decode(3ULL << 56, &back); /* call number 0 */
	CHECK_INT(back.kind, TREE_INVALID);
}

static void call_names(void)
{
	struct call_record rec = { .num = 184 };
	char name[TREE_NAME_LEN], hhmmss[7];
	enum tree_kind kind;
	uint64_t num;

	clock_set_timezone("UTC");
	CHECK_INT(clock_parse_rfc3339("2026-11-27T09:30:15Z", &rec.start_ms), 0);
	tree_call_name(&rec, TREE_OPUS, name);
	CHECK_STR(name, "093015-c-000184.opus");
	tree_call_name(&rec, TREE_JSON, name);
	CHECK_STR(name, "093015-c-000184.json");

	CHECK_INT(tree_parse_call_name("093015-c-000184.opus", &kind, &num,
				       hhmmss), 0);
	CHECK_INT(kind, TREE_OPUS);
	CHECK_INT(num, 184);
	CHECK_STR(hhmmss, "093015");
	CHECK_INT(tree_parse_call_name("093015-c-1234567.json", &kind, &num,
				       hhmmss), 0);
	CHECK_INT(num, 1234567);
}

static void bad_call_names(void)
{
	static const char *bad[] = {
		"", ".opus", "093015-c-000184", "093015-c-000184.wav",
		"093015-c-0184.opus", "093015-c-0000184.opus",
		"09301-c-000184.opus", "093015c-000184.opus",
		"093015-x-000184.opus", "093015-c-000184.opus.opus",
		"093015-c-000000.opus", "../c-000184.opus",
		"093015-c--00184.opus", "093015-c-000184.OPUS",
	};
	char hhmmss[7];
	enum tree_kind kind;
	uint64_t num;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (tree_parse_call_name(bad[i], &kind, &num, hhmmss) !=
		    EINVAL) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			test_case_failed = 1;
		}
	}
}

TEST_MAIN("tree", T(inode_numbers_round_trip), T(inode_numbers_are_distinct),
	  T(blob_inodes_are_stable_and_distinct), T(out_of_range_is_refused),
	  T(call_names), T(bad_call_names), T(blob_names))
