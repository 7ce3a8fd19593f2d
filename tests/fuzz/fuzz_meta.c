/* Metadata JSON: the recorder's sidecar (meta_parse_recorder) and the
 * blob's sealed copy (meta_blob_decode), then everything a decoded record
 * feeds: meta_blob_encode, meta_render, meta_xattrs, number masking.
 *
 * Properties: a record meta_blob_decode() accepts encodes to JSON that it
 * accepts again and that encodes identically (rebuild relies on this
 * round trip); a recorder's numbers come out normalised (normalising them
 * again changes nothing). */
#include "fuzz.h"

#include "callvault/meta.h"

/* 2026-01-01T00:00:00Z: a fixed "now", so a run is reproducible. */
#define FUZZ_NOW_MS 1767225600000LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static int count_xattr(void *ctx, const char *name, const char *value)
{
	size_t *n = ctx;

	*n += strlen(name) + strlen(value);
	return 0;
}

static void views(const struct call_record *rec, const char *text)
{
	struct meta_note note = { rec->start_ms, "agent1", text };
	size_t len = 0, n = 0;
	char *s;

	s = meta_render(rec, &note, meta_text_valid(text) ? 1 : 0, &len);
	FUZZ_ASSERT(s == NULL || strlen(s) == len);
	free(s);
	(void)meta_xattrs(rec, count_xattr, &n);
}

static void recorder(const char *json, size_t len)
{
	static const struct meta_number_rules rules = { "358", "0" };
	struct meta_recorder r;
	char err[256], again[CALL_NUMBER_LEN];
	char masked[CALL_NUMBER_LEN], last3[4];

	if (meta_parse_recorder(json, len, &rules, FUZZ_NOW_MS, &r, err,
				sizeof err) != 0) {
		FUZZ_ASSERT(err[0] != '\0');
		return;
	}
	FUZZ_ASSERT(r.end_ms >= r.start_ms);
	FUZZ_ASSERT(meta_number_normalize(r.customer_number, &rules,
					  again) == 0);
	FUZZ_ASSERT(strcmp(again, r.customer_number) == 0);
	FUZZ_ASSERT(meta_number_normalize(r.service_number, &rules,
					  again) == 0);
	FUZZ_ASSERT(strcmp(again, r.service_number) == 0);
	meta_number_mask(r.customer_number, masked, last3);
	FUZZ_ASSERT(strlen(last3) == 3);
	FUZZ_ASSERT(strchr(masked, '*') != NULL);
}

static void blob_meta(const char *json, size_t len, const char *text)
{
	struct call_record rec, rec2;
	char err[256], *enc = NULL, *enc2 = NULL;

	if (meta_blob_decode(json, len, &rec, err, sizeof err) != 0) {
		FUZZ_ASSERT(err[0] != '\0');
		return;
	}
	enc = meta_blob_encode(&rec);
	if (!enc)
		return;
	FUZZ_ASSERT(meta_blob_decode(enc, strlen(enc), &rec2, err,
				     sizeof err) == 0);
	enc2 = meta_blob_encode(&rec2);
	FUZZ_ASSERT(enc2 != NULL);
	FUZZ_ASSERT(strcmp(enc, enc2) == 0);
	views(&rec, text);
	free(enc);
	free(enc2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct meta_number_rules rules = { "358", "0" };
	char number[CALL_NUMBER_LEN];
	char *s;

	/* A copy with a NUL: the text functions take C strings, the
	 * parsers a length (the copy's NUL is not part of it). */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	recorder(s, size);
	blob_meta(s, size, s);
	(void)meta_text_valid(s);
	if (meta_number_normalize(s, &rules, number) == 0) {
		char masked[CALL_NUMBER_LEN], last3[4];
		meta_number_mask(number, masked, last3);
	}
	free(s);
	return 0;
}
