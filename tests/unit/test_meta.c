/* Metadata: phone numbers, the recorder's sidecar, the blob trailer and the
 * .json/xattr views. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "callvault/clock.h"
#include "callvault/meta.h"
#include "test.h"

/* 2026-11-27T09:30:15Z, the SPEC example's start. */
#define START_MS INT64_C(1795771815000)
#define NOW_MS (START_MS + 3600 * 1000)

static const struct meta_number_rules fi = { "358", "0" };

/* ---- phone numbers ---- */

static void normalize_ok(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "+358401234567", "+358401234567" },
		{ "+358 40 123 4567", "+358401234567" },
		{ "+358-40-123-4567", "+358401234567" },
		{ "+358.40.123.4567", "+358401234567" },
		{ "0401234567", "+358401234567" },
		{ "040 123 4567", "+358401234567" },
		{ "(040) 123 4567", "+358401234567" },
		{ "00358401234567", "+358401234567" },
		{ "00 358 40 123 4567", "+358401234567" },
		{ "+358 (0)40 123 4567", "+358401234567" },
		{ "00358 (0)40 1234567", "+358401234567" },
		{ "+35860094320", "+35860094320" },
		{ "+1 (555) 123-4567", "+15551234567" },
		{ "0044 20 7946 0958", "+442079460958" },
		{ "+1234567", "+1234567" },               /* 7 digits */
		{ "+123456789012345", "+123456789012345" }, /* 15 digits */
	};
	char out[CALL_NUMBER_LEN];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(out, 0, sizeof out);
		CHECK_INT(meta_number_normalize(cases[i].in, &fi, out), 0);
		CHECK_STR(out, cases[i].out);
	}
}

static void normalize_rejects(void)
{
	static const char *const bad[] = {
		"",                    /* empty */
		"+",                   /* nothing after + */
		"   ",                 /* only separators */
		"040abc4567",          /* letters */
		"+358 40 123 456x",
		"+358/40/1234567",     /* other punctuation */
		"+358 40 123\t4567",
		"+123456",             /* 6 digits: too short */
		"0123",                /* national, too short */
		"+1234567890123456",   /* 16 digits: too long */
		"0012345678901234567", /* too long after 00 */
		"0401234567890123456789012345", /* way too long */
		"358401234567",        /* bare digits: ambiguous */
		"401234567",
		"+358+401234567",      /* second + */
		"40+1234567",
		"+0401234567",         /* no country code starts with 0 */
		"000401234567",
	};
	char out[CALL_NUMBER_LEN];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (meta_number_normalize(bad[i], &fi, out) != EINVAL) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			CHECK(0);
		}
	}
}

static void normalize_other_country(void)
{
	/* Italy: no trunk prefix, the leading 0 is part of the number. */
	const struct meta_number_rules it = { "39", "" };
	/* Hungary: trunk prefix "06". */
	const struct meta_number_rules hu = { "36", "06" };
	char out[CALL_NUMBER_LEN];

	CHECK_INT(meta_number_normalize("06 1234 5678", &it, out), 0);
	CHECK_STR(out, "+390612345678");
	CHECK_INT(meta_number_normalize("0039 06 1234 5678", &it, out), 0);
	CHECK_STR(out, "+390612345678");
	CHECK_INT(meta_number_normalize("06 1 234 5678", &hu, out), 0);
	CHECK_STR(out, "+3612345678");
	CHECK_INT(meta_number_normalize("+36 (06) 1 234 5678", &hu, out), 0);
	CHECK_STR(out, "+3612345678");
	/* Without rules, national numbers cannot be placed. */
	CHECK_INT(meta_number_normalize("0401234567", NULL, out), EINVAL);
	CHECK_INT(meta_number_normalize("+358401234567", NULL, out), 0);
	CHECK_STR(out, "+358401234567");
}

static void mask(void)
{
	char masked[CALL_NUMBER_LEN], last3[4];

	meta_number_mask("+358401234567", masked, last3);
	CHECK_STR(masked, "+358401234***");
	CHECK_STR(last3, "567");
	meta_number_mask("+1234567", masked, last3);
	CHECK_STR(masked, "+1234***");
	CHECK_STR(last3, "567");
	meta_number_mask("+123456789012345", masked, last3);
	CHECK_STR(masked, "+123456789012***");
	CHECK_STR(last3, "345");
}

/* ---- the recorder's sidecar ---- */

static const char spec_example[] =
	"{\n"
	"  \"call_id\": \"c-000184\",\n"
	"  \"direction\": \"inbound\",\n"
	"  \"start\": \"2026-11-27T09:30:15Z\",\n"
	"  \"end\": \"2026-11-27T09:34:02Z\",\n"
	"  \"duration_s\": 227.04,\n"
	"  \"service_number\": \"+35860094320\",\n"
	"  \"customer_number\": \"+358401234567\",\n"
	"  \"agent\": \"aino.virtanen\",\n"
	"  \"agent_name\": \"Aino Virtanen\",\n"
	"  \"channels\": 1,\n"
	"  \"notes\": []\n"
	"}\n";

static int parse(const char *json, struct meta_recorder *r, char *err,
		 size_t errlen)
{
	return meta_parse_recorder(json, strlen(json), &fi, NOW_MS, r, err,
				   errlen);
}

static void recorder_spec_example(void)
{
	struct meta_recorder r;
	char err[256] = "";

	CHECK_INT(parse(spec_example, &r, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK_STR(r.direction, "inbound");
	CHECK_INT(r.start_ms, START_MS);
	CHECK_INT(r.end_ms, START_MS + 227000);
	CHECK_STR(r.service_number, "+35860094320");
	CHECK_STR(r.customer_number, "+358401234567");
	CHECK_STR(r.agent, "aino.virtanen");
}

static void recorder_minimal_national(void)
{
	const char *j = "{\"direction\":\"outbound\","
			"\"start\":\"2026-11-27T09:30:15Z\","
			"\"end\":\"2026-11-27T09:30:15Z\","
			"\"customer_number\":\"040 123 4567\","
			"\"service_number\":\"09 123 4567\","
			"\"agent\":\"b2\"}";
	struct meta_recorder r;
	char err[256];

	CHECK_INT(parse(j, &r, err, sizeof err), 0);
	CHECK_STR(r.direction, "outbound");
	CHECK_INT(r.end_ms, r.start_ms); /* zero-length call is allowed */
	CHECK_STR(r.customer_number, "+358401234567");
	CHECK_STR(r.service_number, "+35891234567");
	CHECK_STR(r.agent, "b2");
}

static void recorder_fraction_and_offset(void)
{
	const char *j = "{\"direction\":\"inbound\","
			"\"start\":\"2026-11-27T11:30:15.5+02:00\","
			"\"end\":\"2026-11-27T04:34:02.250-05:00\","
			"\"customer_number\":\"+358401234567\","
			"\"service_number\":\"+35860094320\","
			"\"agent\":\"aino.virtanen\"}";
	struct meta_recorder r;
	char err[256];

	CHECK_INT(parse(j, &r, err, sizeof err), 0);
	CHECK_INT(r.start_ms, START_MS + 500);
	CHECK_INT(r.end_ms, START_MS + 227250);
}

/* Builds a sidecar from the valid one with one key replaced (value NULL:
 * removed; key not in it: added). */
static char *variant(const char *key, const char *raw_value)
{
	json_t *o = json_loads(spec_example, 0, NULL);
	char *s;

	if (raw_value)
		json_object_set_new(o, key,
				    json_loads(raw_value, JSON_DECODE_ANY,
					       NULL));
	else
		json_object_del(o, key);
	s = json_dumps(o, JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static void recorder_field_errors(void)
{
	static const struct {
		const char *key, *value, *keyword;
	} cases[] = {
		{ "direction", NULL, "missing \"direction\"" },
		{ "direction", "\"sideways\"", "direction" },
		{ "direction", "\"INBOUND\"", "direction" },
		{ "direction", "1", "direction" },
		{ "start", NULL, "missing \"start\"" },
		{ "start", "\"2026-11-27T09:30:15\"", "start" }, /* no offset */
		{ "start", "\"2026-11-27 09:30:15Z\"", "start" },
		{ "start", "\"2026-02-30T09:30:15Z\"", "start" },
		{ "start", "1795771815", "start" },
		{ "end", NULL, "missing \"end\"" },
		{ "end", "\"yesterday\"", "end" },
		{ "end", "\"2026-11-27T09:30:14Z\"", "end before start" },
		{ "end", "\"2026-11-28T09:30:16Z\"", "longer than 24 hours" },
		{ "start", "\"1999-12-31T23:59:59Z\"", "absurd start time" },
		{ "start", "\"1970-01-01T00:00:00Z\"", "absurd start time" },
		{ "start", "\"2026-11-28T10:30:16Z\"", "start in the future" },
		{ "customer_number", NULL, "missing \"customer_number\"" },
		{ "customer_number", "\"0401234abc\"", "customer_number" },
		{ "customer_number", "401234567", "customer_number" },
		{ "customer_number", "\"401234567\"", "customer_number" },
		{ "service_number", NULL, "missing \"service_number\"" },
		{ "service_number", "\"\"", "service_number" },
		{ "agent", NULL, "missing \"agent\"" },
		{ "agent", "\"Aino\"", "agent" },
		{ "agent", "\"_unassigned\"", "agent" },
		{ "agent", "\"\"", "agent" },
		{ "agent", "null", "agent" },
		{ "colour", "\"blue\"", "unknown key \"colour\"" },
		{ "caller_id2", "1", "unknown key \"caller_id2\"" },
	};
	struct meta_recorder r;
	char err[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *j = variant(cases[i].key, cases[i].value);
		err[0] = '\0';
		CHECK_INT(parse(j, &r, err, sizeof err), EINVAL);
		if (!strstr(err, cases[i].keyword)) {
			fprintf(stderr, "  %s=%s: \"%s\" lacks \"%s\"\n",
				cases[i].key,
				cases[i].value ? cases[i].value : "(none)",
				err, cases[i].keyword);
			CHECK(0);
		}
		CHECK(strchr(err, '\n') == NULL);
		free(j);
	}
}

/* The callvault-filled keys may be echoed with any value. */
static void recorder_ignores_own_keys(void)
{
	char *j = variant("notes", "{\"x\": [1, 2]}");
	char *k = variant("call_id", "null");
	struct meta_recorder r;
	char err[256];

	CHECK_INT(parse(j, &r, err, sizeof err), 0);
	CHECK_INT(parse(k, &r, err, sizeof err), 0);
	free(j);
	free(k);
}

/* Whatever goes wrong, the error never shows the customer's number. */
static void recorder_errors_hide_number(void)
{
	static const char *const docs[] = {
		"{\"customer_number\": +358401234567}",
		"{\"customer_number\": 358401234567x}",
		"{\"direction\":\"inbound\",\"+358401234567\":1}",
		"{\"x358401234567\":1}",
		"{\"358401234567\":1,\"358401234567\":2}",
		"{\"direction\":\"inbound\","
		"\"start\":\"2026-11-27T09:30:15Z\","
		"\"end\":\"2026-11-27T09:30:15Z\","
		"\"customer_number\":\"+358401234567999999\","
		"\"service_number\":\"+35860094320\",\"agent\":\"a\"}",
	};
	struct meta_recorder r;
	char err[256];

	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		err[0] = '\0';
		CHECK_INT(parse(docs[i], &r, err, sizeof err), EINVAL);
		CHECK(err[0] != '\0');
		if (strstr(err, "401234")) {
			fprintf(stderr, "  leaked: %s\n", err);
			CHECK(0);
		}
	}
}

static void recorder_bad_documents(void)
{
	struct meta_recorder r;
	char err[256];
	char *big, *dup;
	size_t n = 70 * 1024;

	CHECK_INT(parse("[1, 2]", &r, err, sizeof err), EINVAL);
	CHECK(strstr(err, "not a JSON object") != NULL);
	CHECK_INT(parse("\"inbound\"", &r, err, sizeof err), EINVAL);
	CHECK_INT(parse("{", &r, err, sizeof err), EINVAL);
	CHECK(strstr(err, "invalid JSON") != NULL);
	CHECK_INT(parse("", &r, err, sizeof err), EINVAL);
	CHECK(strstr(err, "invalid JSON") != NULL);
	/* Invalid UTF-8 in a string. */
	CHECK_INT(parse("{\"agent\":\"a\xff\"}", &r, err, sizeof err), EINVAL);
	CHECK(strstr(err, "invalid JSON") != NULL);
	/* A NUL inside the buffer. */
	CHECK_INT(meta_parse_recorder("{\"agent\":\"a\0b\"}", 15, &fi, NOW_MS,
				      &r, err, sizeof err),
		  EINVAL);
	CHECK_INT(parse("{\"agent\":\"a\\u0000b\"}", &r, err, sizeof err),
		  EINVAL);

	/* Duplicate keys: which one would a reader believe? */
	dup = malloc(strlen(spec_example) + 32);
	snprintf(dup, strlen(spec_example) + 32,
		 "{\"agent\":\"eve\",%s", spec_example + 1);
	err[0] = '\0';
	CHECK_INT(parse(dup, &r, err, sizeof err), EINVAL);
	CHECK(strstr(err, "duplicate key \"agent\"") != NULL);
	free(dup);

	/* Huge input, even if it were valid JSON. */
	big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, spec_example, strlen(spec_example));
	big[n] = '\0';
	CHECK_INT(meta_parse_recorder(big, n, &fi, NOW_MS, &r, err, sizeof err),
		  EINVAL);
	CHECK(strstr(err, "too large") != NULL);
	free(big);
}

static void recorder_output_untouched_on_error(void)
{
	struct meta_recorder r;
	char err[256];
	char *j = variant("agent", "\"Bad\"");

	memset(&r, 0x5a, sizeof r);
	CHECK_INT(parse(j, &r, err, sizeof err), EINVAL);
	CHECK((unsigned char)r.customer_number[0] == 0x5a);
	free(j);
}

/* ---- the blob trailer ---- */

static void full_record(struct call_record *rec)
{
	memset(rec, 0, sizeof *rec);
	rec->num = 184;
	rec->day = (int32_t)(START_MS / 86400000);
	rec->start_ms = START_MS;
	rec->end_ms = START_MS + 227000;
	rec->duration_ms = 227040;
	snprintf(rec->direction, sizeof rec->direction, "inbound");
	snprintf(rec->service_number, sizeof rec->service_number,
		 "+35860094320");
	snprintf(rec->customer_masked, sizeof rec->customer_masked,
		 "+358401234***");
	for (size_t i = 0; i < sizeof rec->customer_sealed; i++)
		rec->customer_sealed[i] = (unsigned char)(i * 37 + 255);
	for (size_t i = 0; i < sizeof rec->number_hash; i++)
		rec->number_hash[i] = (unsigned char)(255 - i * 11);
	rec->agent_id = 4000000000u;
	snprintf(rec->agent, sizeof rec->agent, "aino.virtanen");
	snprintf(rec->agent_name, sizeof rec->agent_name,
		 "Aino \"Ainoliini\" Virtanen-Ääkkönen");
	rec->agent_uid = 1001;
	rec->channels = 2;
	rec->source_rate = 44100;
	rec->size = UINT64_C(5000000000);
	rec->ingested_ms = START_MS + 230000;
}

static void blob_round_trip(void)
{
	struct call_record rec, back;
	char err[256] = "";
	char *s;

	full_record(&rec);
	rec.restricted = 1; /* catalog state: not carried */
	s = meta_blob_encode(&rec);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(strchr(s, '\n') == NULL); /* compact */
	CHECK(strstr(s, "restricted") == NULL);
	CHECK(strstr(s, "\"v\":1") != NULL);
	memset(&back, 0x77, sizeof back);
	CHECK_INT(meta_blob_decode(s, strlen(s), &back, err, sizeof err), 0);
	CHECK_STR(err, "");
	rec.restricted = 0;
	CHECK(memcmp(&rec, &back, sizeof rec) == 0);
	CHECK_STR(back.agent_name, rec.agent_name);
	CHECK_INT(back.size, rec.size);
	CHECK_INT(back.agent_id, 4000000000u);
	free(s);
}

/* A call committed without metadata: no agent, direction or numbers. */
static void blob_round_trip_unassigned(void)
{
	struct call_record rec, back;
	char err[256];
	char *s;

	memset(&rec, 0, sizeof rec);
	rec.num = UINT64_C(9223372036854775807);
	rec.start_ms = 0;
	rec.day = -1;
	rec.channels = 1;
	s = meta_blob_encode(&rec);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_INT(meta_blob_decode(s, strlen(s), &back, err, sizeof err), 0);
	CHECK(memcmp(&rec, &back, sizeof rec) == 0);
	free(s);

	rec.num = UINT64_C(9223372036854775808);
	errno = 0;
	CHECK(meta_blob_encode(&rec) == NULL);
	CHECK_INT(errno, ERANGE);
}

static int decode_variant(const char *enc, const char *key,
			  const char *raw_value, char *err, size_t errlen)
{
	json_t *o = json_loads(enc, 0, NULL);
	struct call_record rec;
	char *s;
	int rc;

	if (raw_value)
		json_object_set_new(o, key,
				    json_loads(raw_value, JSON_DECODE_ANY,
					       NULL));
	else
		json_object_del(o, key);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	err[0] = '\0';
	rc = meta_blob_decode(s, strlen(s), &rec, err, errlen);
	free(s);
	return rc;
}

static void blob_decode_rejects(void)
{
	static const char *const fields[] = {
		"v", "num", "day", "start_ms", "end_ms", "duration_ms",
		"direction", "service_number", "customer_masked",
		"customer_sealed", "number_hash", "agent_id", "agent",
		"agent_name", "agent_uid", "channels", "source_rate", "size",
		"ingested_ms",
	};
	static const struct {
		const char *key, *value;
	} bad[] = {
		{ "v", "2" },
		{ "v", "\"1\"" },
		{ "num", "0" },
		{ "num", "-5" },
		{ "num", "\"184\"" },
		{ "num", "184.0" },
		{ "day", "20000" },            /* not the start's day */
		{ "start_ms", "-1" },
		{ "end_ms", "1795771814999" }, /* before start */
		{ "duration_ms", "-1" },
		{ "duration_ms", "null" },
		{ "direction", "\"up\"" },
		{ "direction", "1" },
		{ "service_number", "\"35860094320\"" },
		{ "service_number", "\"+3586009432099999\"" },
		{ "customer_masked", "\"+358401234567\"" }, /* not masked */
		{ "customer_masked", "\"+358401234**\"" },
		{ "customer_masked",
		  "\"+358401234***aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" },
		{ "customer_sealed", "\"00\"" },
		{ "customer_sealed", "[]" },
		{ "number_hash",
		  "\"FF00000000000000000000000000000000000000000000000000000000"
		  "000000\"" },
		{ "number_hash",
		  "\"zz00000000000000000000000000000000000000000000000000000000"
		  "000000\"" },
		{ "agent_id", "4294967296" },
		{ "agent_id", "-1" },
		{ "agent", "\"Aino\"" },
		{ "agent", "null" },
		{ "agent_name", "\"tab\\there\"" },
		{ "agent_uid", "true" },
		{ "channels", "0" },
		{ "channels", "3" },
		{ "source_rate", "-8000" },
		{ "size", "-1" },
		{ "ingested_ms", "1.5" },
		{ "extra", "1" },
	};
	struct call_record rec;
	char err[256];
	char *enc;

	full_record(&rec);
	enc = meta_blob_encode(&rec);
	CHECK(enc != NULL);
	if (!enc)
		return;
	/* The unmodified document decodes. */
	CHECK_INT(decode_variant(enc, "v", "1", err, sizeof err), 0);

	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		CHECK_INT(decode_variant(enc, fields[i], NULL, err, sizeof err),
			  EINVAL);
		CHECK(strstr(err, "missing") && strstr(err, fields[i]));
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = decode_variant(enc, bad[i].key, bad[i].value, err,
					sizeof err);
		if (rc != EINVAL || !strstr(err, bad[i].key)) {
			fprintf(stderr, "  %s=%s: rc %d, \"%s\"\n", bad[i].key,
				bad[i].value, rc, err);
			CHECK(0);
		}
	}
	/* Not JSON, not an object, duplicated, truncated. */
	CHECK_INT(meta_blob_decode("[]", 2, &rec, err, sizeof err), EINVAL);
	CHECK_INT(meta_blob_decode(enc, strlen(enc) - 1, &rec, err, sizeof err),
		  EINVAL);
	{
		size_t n = strlen(enc) + 16;
		char *dup = malloc(n);
		snprintf(dup, n, "{\"num\":185,%s", enc + 1);
		CHECK_INT(meta_blob_decode(dup, strlen(dup), &rec, err,
					   sizeof err),
			  EINVAL);
		CHECK(strstr(err, "duplicate") != NULL);
		free(dup);
	}
	free(enc);
}

/* ---- views ---- */

static const char golden_json[] =
	"{\n"
	"  \"call_id\": \"c-000184\",\n"
	"  \"direction\": \"inbound\",\n"
	"  \"start\": \"2026-11-27T09:30:15Z\",\n"
	"  \"end\": \"2026-11-27T09:34:02Z\",\n"
	"  \"duration_s\": 227.04,\n"
	"  \"service_number\": \"+35860094320\",\n"
	"  \"customer_number\": \"+358401234***\",\n"
	"  \"agent\": \"aino.virtanen\",\n"
	"  \"agent_name\": \"Aino Virtanen\",\n"
	"  \"channels\": 1,\n"
	"  \"notes\": []\n"
	"}\n";

static void spec_record(struct call_record *rec)
{
	full_record(rec);
	snprintf(rec->agent_name, sizeof rec->agent_name, "Aino Virtanen");
	rec->channels = 1;
}

static void render_spec_example(void)
{
	struct call_record rec;
	size_t len = 0, len2 = 0;
	char *a, *b;

	spec_record(&rec);
	a = meta_render(&rec, NULL, 0, &len);
	b = meta_render(&rec, NULL, 0, &len2);
	CHECK(a && b);
	if (!a || !b)
		goto out;
	CHECK_STR(a, golden_json);
	CHECK_INT(len, strlen(golden_json));
	/* ls shows a size: the same record must give the same bytes. */
	CHECK_INT(len2, len);
	CHECK(memcmp(a, b, len) == 0);
out:
	free(a);
	free(b);
}

static void render_notes_restricted(void)
{
	static const char expected[] =
		"{\n"
		"  \"call_id\": \"c-000184\",\n"
		"  \"direction\": \"inbound\",\n"
		"  \"start\": \"2026-11-27T09:30:15Z\",\n"
		"  \"end\": \"2026-11-27T09:34:02Z\",\n"
		"  \"duration_s\": 227.04,\n"
		"  \"service_number\": \"+35860094320\",\n"
		"  \"customer_number\": \"+358401234***\",\n"
		"  \"agent\": \"aino.virtanen\",\n"
		"  \"agent_name\": \"Aino Virtanen\",\n"
		"  \"channels\": 1,\n"
		"  \"notes\": [\n"
		"    {\n"
		"      \"at\": \"2026-12-01T08:00:00.250Z\",\n"
		"      \"by\": \"admin1\",\n"
		"      \"text\": "
		"\"Customer's name is \\\"Pekka\\\",\\nnot Petri.\"\n"
		"    },\n"
		"    {\n"
		"      \"at\": \"2026-12-02T08:00:00Z\",\n"
		"      \"by\": \"admin2\",\n"
		"      \"text\": \"Käsitelty.\"\n"
		"    }\n"
		"  ],\n"
		"  \"restricted\": true\n"
		"}\n";
	int64_t dec1 = INT64_C(1796112000000); /* 2026-12-01T08:00:00Z */
	struct meta_note notes[2] = {
		{ dec1 + 250, "admin1",
		  "Customer's name is \"Pekka\",\nnot Petri." },
		{ dec1 + 86400000, "admin2", "Käsitelty." },
	};
	struct call_record rec;
	size_t len = 0;
	char *s;

	spec_record(&rec);
	rec.restricted = 1;
	s = meta_render(&rec, notes, 2, &len);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_STR(s, expected);
	CHECK_INT(len, strlen(expected));
	free(s);
}

static void render_unassigned(void)
{
	static const char expected[] =
		"{\n"
		"  \"call_id\": \"c-000007\",\n"
		"  \"direction\": null,\n"
		"  \"start\": \"2026-11-27T09:30:15Z\",\n"
		"  \"end\": \"2026-11-27T09:30:16.500Z\",\n"
		"  \"duration_s\": 1.5,\n"
		"  \"service_number\": null,\n"
		"  \"customer_number\": null,\n"
		"  \"agent\": null,\n"
		"  \"agent_name\": null,\n"
		"  \"channels\": 2,\n"
		"  \"notes\": []\n"
		"}\n";
	struct call_record rec;
	size_t len;
	char *s;

	memset(&rec, 0, sizeof rec);
	rec.num = 7;
	rec.start_ms = START_MS;
	rec.end_ms = START_MS + 1500;
	rec.duration_ms = 1500;
	rec.channels = 2;
	/* A stale name without a login is still not shown. */
	snprintf(rec.agent_name, sizeof rec.agent_name, "Someone");
	s = meta_render(&rec, NULL, 0, &len);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_STR(s, expected);
	free(s);
}

struct xattr_list {
	char buf[1024];
	size_t len;
	int calls, stop_at;
};

static int collect(void *ctx, const char *name, const char *value)
{
	struct xattr_list *l = ctx;

	l->calls++;
	l->len += (size_t)snprintf(l->buf + l->len, sizeof l->buf - l->len,
				   "%s=%s\n", name, value);
	return l->calls == l->stop_at ? 42 : 0;
}

static void xattrs_list(void)
{
	struct call_record rec;
	struct xattr_list l;

	spec_record(&rec);
	memset(&l, 0, sizeof l);
	CHECK_INT(meta_xattrs(&rec, collect, &l), 0);
	CHECK_STR(l.buf, "call_id=c-000184\n"
			 "direction=inbound\n"
			 "start=2026-11-27T09:30:15Z\n"
			 "end=2026-11-27T09:34:02Z\n"
			 "duration_s=227.04\n"
			 "service_number=+35860094320\n"
			 "customer_number=+358401234***\n"
			 "agent=aino.virtanen\n"
			 "agent_name=Aino Virtanen\n"
			 "channels=1\n");

	rec.restricted = 1;
	rec.agent[0] = '\0';
	memset(&l, 0, sizeof l);
	CHECK_INT(meta_xattrs(&rec, collect, &l), 0);
	CHECK(strstr(l.buf, "agent") == NULL);
	CHECK(strstr(l.buf, "channels=1\nrestricted=1\n") != NULL);

	/* fn's non-zero return stops the walk and is returned. */
	memset(&l, 0, sizeof l);
	l.stop_at = 3;
	CHECK_INT(meta_xattrs(&rec, collect, &l), 42);
	CHECK_INT(l.calls, 3);
}

struct find_ctx {
	const char *name;
	char value[128];
};

static int find_attr(void *ctx, const char *name, const char *value)
{
	struct find_ctx *f = ctx;

	if (strcmp(name, f->name) == 0)
		snprintf(f->value, sizeof f->value, "%s", value);
	return 0;
}

/* The xattr and the .json show duration_s the same way. */
static void duration_consistent(void)
{
	static const struct {
		int64_t ms;
		const char *shown;
	} cases[] = {
		{ 227040, "227.04" }, { 227000, "227.0" }, { 227500, "227.5" },
		{ 227044, "227.04" }, { 227045, "227.05" }, { 5, "0.01" },
		{ 4, "0.0" },         { 0, "0.0" },
		{ 86399990, "86399.99" },
		{ 100, "0.1" },
	};
	struct call_record rec;
	char want[64];
	size_t len;

	spec_record(&rec);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct find_ctx f = { "duration_s", "" };
		char *s;

		rec.duration_ms = cases[i].ms;
		meta_xattrs(&rec, find_attr, &f);
		CHECK_STR(f.value, cases[i].shown);
		s = meta_render(&rec, NULL, 0, &len);
		snprintf(want, sizeof want, "\"duration_s\": %s,\n",
			 cases[i].shown);
		CHECK(s && strstr(s, want));
		free(s);
	}
}

TEST_MAIN("meta", T(normalize_ok), T(normalize_rejects),
	  T(normalize_other_country), T(mask), T(recorder_spec_example),
	  T(recorder_minimal_national), T(recorder_fraction_and_offset),
	  T(recorder_field_errors), T(recorder_ignores_own_keys),
	  T(recorder_errors_hide_number), T(recorder_bad_documents),
	  T(recorder_output_untouched_on_error), T(blob_round_trip),
	  T(blob_round_trip_unassigned), T(blob_decode_rejects),
	  T(render_spec_example), T(render_notes_restricted),
	  T(render_unassigned), T(xattrs_list), T(duration_consistent))
