/* Call metadata as JSON: the recorder's sidecar, the blob's sealed copy,
 * the .json and xattr views; phone number normalisation and masking.
 *
 * Everything parsed here comes from outside (a recorder) or from disk (a
 * blob trailer that may be corrupt), so parsing is strict: unknown keys,
 * wrong types and out-of-range values are errors with a one-line reason.
 * Reasons name the field, never its value: a value may be a phone number. */
#include "callvault/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "callvault/clock.h"

/* A recorder's sidecar is a dozen short fields; anything this big is not
 * one, and jansson should not be asked to build a tree of it. */
#define META_RECORDER_MAX (64 * 1024)
/* The blob trailer holds about 600 bytes of JSON. */
#define META_BLOB_MAX (16 * 1024)

#define MS_PER_DAY INT64_C(86400000)
/* 2000-01-01T00:00:00Z: no recording system predates it. */
#define META_MIN_START_MS INT64_C(946684800000)
/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write. Bounds
 * the times of sealed metadata, so that day numbers fit in 32 bits and
 * the views' arithmetic cannot overflow. */
#define META_MAX_MS INT64_C(253402300799999)
#define E164_MIN_DIGITS 7
#define E164_MAX_DIGITS 15

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A key is echoed in an error only if it looks like an identifier with
 * few digits: a recorder might put anything in a key, a phone number
 * included. */
static int key_printable(const char *k)
{
	size_t i, len = strlen(k), ndigits = 0;

	if (len == 0 || len > 32)
		return 0;
	if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') ||
	      k[0] == '_'))
		return 0;
	for (i = 1; i < len; i++) {
		char ch = k[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
		      ch == '.'))
			return 0;
		if (ch >= '0' && ch <= '9' && ++ndigits > 4)
			return 0;
	}
	return 1;
}

static void err_unknown_key(char *err, size_t errlen, const char *key)
{
	if (key_printable(key))
		set_err(err, errlen, "unknown key \"%s\"", key);
	else
		set_err(err, errlen, "unknown key (name not shown)");
}

/* jansson's messages end in "near '<token>'", and the token may be a
 * phone number: keep only the message, plus the key of a duplicate. */
static void err_json(char *err, size_t errlen, const json_error_t *je)
{
	char text[JSON_ERROR_TEXT_LENGTH], key[40] = "";
	char *near;

	snprintf(text, sizeof text, "%s", je->text);
	near = strstr(text, " near '");
	if (near) {
		const char *tok = near + 7;
		size_t n = strlen(tok);
		/* The token of a duplicate key is the quoted key. */
		if (json_error_code(je) == json_error_duplicate_key && n >= 3 &&
		    tok[0] == '"' && n - 3 < sizeof key &&
		    tok[n - 2] == '"' && tok[n - 1] == '\'') {
			memcpy(key, tok + 1, n - 3);
			key[n - 3] = '\0';
			if (!key_printable(key))
				key[0] = '\0';
		}
		*near = '\0';
	}
	if (json_error_code(je) == json_error_duplicate_key)
		set_err(err, errlen, "invalid JSON: duplicate key%s%s%s",
			key[0] ? " \"" : "", key, key[0] ? "\"" : "");
	else
		set_err(err, errlen, "invalid JSON at line %d: %s", je->line,
			text);
}

/* Copies a string member into dst (size dstlen). EINVAL with a reason if
 * it is missing, not a string, holds NUL or does not fit. */
static int get_str(json_t *obj, const char *key, char *dst, size_t dstlen,
		   char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	if (!v) {
		set_err(err, errlen, "missing \"%s\"", key);
		return EINVAL;
	}
	if (!json_is_string(v)) {
		set_err(err, errlen, "\"%s\" is not a string", key);
		return EINVAL;
	}
	len = json_string_length(v);
	if (len >= dstlen || strlen(json_string_value(v)) != len) {
		set_err(err, errlen, "\"%s\" is too long", key);
		return EINVAL;
	}
	memcpy(dst, json_string_value(v), len + 1);
	return 0;
}

static int get_int(json_t *obj, const char *key, int64_t min, int64_t max,
		   int64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (!v) {
		set_err(err, errlen, "missing \"%s\"", key);
		return EINVAL;
	}
	if (!json_is_integer(v)) {
		set_err(err, errlen, "\"%s\" is not an integer", key);
		return EINVAL;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		set_err(err, errlen, "\"%s\" is out of range", key);
		return EINVAL;
	}
	*out = n;
	return 0;
}

/* ---- phone numbers ---- */

static int all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int meta_number_normalize(const char *in, const struct meta_number_rules *rules,
			  char out[CALL_NUMBER_LEN])
{
	const char *cc = rules ? rules->country_code : NULL;
	const char *trunk = rules && rules->trunk_prefix ? rules->trunk_prefix
							 : "";
	size_t tl = strlen(trunk), nd = 0, i;
	char d[E164_MAX_DIGITS + 8]; /* digits as written, before prefixes */
	const char *num;
	char full[E164_MAX_DIGITS + 8];
	int plus = 0;

	for (const char *p = in; *p; p++) {
		char ch = *p;
		if (ch >= '0' && ch <= '9') {
			if (nd >= sizeof d - 1)
				return EINVAL;
			d[nd++] = ch;
		} else if (ch == '+' && !plus && nd == 0) {
			plus = 1;
		} else if (ch == '(' && tl > 0 && nd > 0 &&
			   (plus || (nd >= 2 && d[0] == '0' && d[1] == '0')) &&
			   strncmp(p + 1, trunk, tl) == 0 && p[1 + tl] == ')') {
			/* "+358 (0)40 ...": the bracketed trunk prefix is
			 * dialled only from inside the country. */
			p += tl + 1;
		} else if (ch == ' ' || ch == '-' || ch == '.' || ch == '(' ||
			   ch == ')') {
			continue;
		} else {
			return EINVAL;
		}
	}
	d[nd] = '\0';

	if (plus) {
		num = d;
	} else if (nd >= 2 && d[0] == '0' && d[1] == '0') {
		num = d + 2;
	} else if (cc && tl > 0 && strncmp(d, trunk, tl) == 0) {
		/* National: country code + number without the trunk prefix. */
		if (snprintf(full, sizeof full, "%s%s", cc, d + tl) >=
		    (int)sizeof full)
			return EINVAL;
		num = full;
	} else if (cc && tl == 0 && nd > 0) {
		/* No trunk prefix in this country: every bare digit string is
		 * a national number. */
		if (snprintf(full, sizeof full, "%s%s", cc, d) >=
		    (int)sizeof full)
			return EINVAL;
		num = full;
	} else {
		/* Bare digits: national or international without '+'? Too
		 * ambiguous to store as a customer's identity. */
		return EINVAL;
	}

	if (cc && !all_digits(cc, strlen(cc)))
		return EINVAL;
	nd = strlen(num);
	if (nd < E164_MIN_DIGITS || nd > E164_MAX_DIGITS || num[0] == '0')
		return EINVAL;
	out[0] = '+';
	for (i = 0; i <= nd; i++)
		out[i + 1] = num[i];
	return 0;
}

void meta_number_mask(const char *e164, char masked[CALL_NUMBER_LEN],
		      char last3[4])
{
	size_t len = strnlen(e164, CALL_NUMBER_LEN - 1);

	if (len < 4) {
		snprintf(masked, CALL_NUMBER_LEN, "%.*s", (int)len, e164);
		last3[0] = '\0';
		return;
	}
	snprintf(masked, CALL_NUMBER_LEN, "%.*s***", (int)(len - 3), e164);
	memcpy(last3, e164 + len - 3, 3);
	last3[3] = '\0';
}

/* '+' and 7..15 digits, not starting with 0. */
static int e164_valid(const char *s)
{
	size_t n = strlen(s);

	return s[0] == '+' && n - 1 >= E164_MIN_DIGITS &&
	       n - 1 <= E164_MAX_DIGITS && s[1] != '0' &&
	       all_digits(s + 1, n - 1);
}

/* What meta_number_mask() makes of a valid E.164 number. */
static int masked_valid(const char *s)
{
	size_t n = strlen(s);

	return s[0] == '+' && n - 1 >= E164_MIN_DIGITS &&
	       n - 1 <= E164_MAX_DIGITS && s[1] != '0' &&
	       all_digits(s + 1, n - 4) && strcmp(s + n - 3, "***") == 0;
}

/* ---- the recorder's sidecar ---- */

static int get_time(json_t *obj, const char *key, int64_t *ms, char *err,
		    size_t errlen)
{
	char s[64];
	int rc = get_str(obj, key, s, sizeof s, err, errlen);

	if (rc)
		return rc;
	if (clock_parse_rfc3339(s, ms)) {
		set_err(err, errlen,
			"\"%s\" is not an RFC 3339 time with an offset", key);
		return EINVAL;
	}
	return 0;
}

static int get_number(json_t *obj, const char *key,
		      const struct meta_number_rules *rules,
		      char out[CALL_NUMBER_LEN], char *err, size_t errlen)
{
	char s[128];
	json_t *v = json_object_get(obj, key);
	int rc;

	/* Longer than any way of writing a phone number. */
	if (json_is_string(v) && json_string_length(v) >= sizeof s) {
		set_err(err, errlen, "\"%s\" is not a valid phone number", key);
		return EINVAL;
	}
	rc = get_str(obj, key, s, sizeof s, err, errlen);
	if (rc)
		return rc;
	if (meta_number_normalize(s, rules, out)) {
		set_err(err, errlen, "\"%s\" is not a valid phone number", key);
		return EINVAL;
	}
	return 0;
}

/* Parses `json` as one object with no duplicate and no unknown key.
 * Returns it (the caller json_decref()s it), or NULL with a reason. */
static json_t *load_object(const char *json, size_t len, const char *what,
			   const char *const *known, size_t nknown, char *err,
			   size_t errlen)
{
	json_error_t je;
	json_t *root, *val;
	const char *key;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		err_json(err, errlen, &je);
		return NULL;
	}
	if (!json_is_object(root)) {
		set_err(err, errlen, "%s is not a JSON object", what);
		json_decref(root);
		return NULL;
	}
	json_object_foreach(root, key, val) {
		size_t i;
		for (i = 0; i < nknown; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == nknown) {
			err_unknown_key(err, errlen, key);
			json_decref(root);
			return NULL;
		}
	}
	return root;
}

int meta_parse_recorder(const char *json, size_t len,
			const struct meta_number_rules *rules, int64_t now_ms,
			struct meta_recorder *out, char *err, size_t errlen)
{
	static const char *const known[] = {
		"direction", "start", "end", "customer_number",
		"service_number", "agent",
		/* filled in by callvault: a recorder may echo them */
		"call_id", "agent_name", "duration_s", "channels", "notes",
	};
	struct meta_recorder r;
	json_t *root = NULL, *val;
	char login[256];
	int rc = EINVAL;

	memset(&r, 0, sizeof r);
	if (len > META_RECORDER_MAX) {
		set_err(err, errlen, "metadata too large (over %d bytes)",
			META_RECORDER_MAX);
		goto out;
	}
	root = load_object(json, len, "metadata", known,
			   sizeof known / sizeof known[0], err, errlen);
	if (!root)
		goto out;

	if (get_str(root, "direction", r.direction, sizeof r.direction, err,
		    errlen) ||
	    (strcmp(r.direction, "inbound") != 0 &&
	     strcmp(r.direction, "outbound") != 0)) {
		if (json_is_string(json_object_get(root, "direction")))
			set_err(err, errlen, "\"direction\" must be "
				"\"inbound\" or \"outbound\"");
		goto out;
	}
	if (get_time(root, "start", &r.start_ms, err, errlen) ||
	    get_time(root, "end", &r.end_ms, err, errlen))
		goto out;
	if (r.start_ms < META_MIN_START_MS) {
		set_err(err, errlen, "absurd start time: \"start\" is before "
			"2000-01-01");
		goto out;
	}
	if (r.start_ms > now_ms + MS_PER_DAY) {
		set_err(err, errlen, "start in the future: \"start\" is more "
			"than a day ahead");
		goto out;
	}
	if (r.end_ms < r.start_ms) {
		set_err(err, errlen, "end before start: \"end\" precedes "
			"\"start\"");
		goto out;
	}
	if (r.end_ms - r.start_ms > MS_PER_DAY) {
		set_err(err, errlen, "call longer than 24 hours "
			"(\"start\" to \"end\")");
		goto out;
	}
	if (get_number(root, "customer_number", rules, r.customer_number, err,
		       errlen) ||
	    get_number(root, "service_number", rules, r.service_number, err,
		       errlen))
		goto out;
	val = json_object_get(root, "agent");
	if (json_is_string(val) && json_string_length(val) >= sizeof login) {
		set_err(err, errlen, "\"agent\" is not a valid login");
		goto out;
	}
	if (get_str(root, "agent", login, sizeof login, err, errlen))
		goto out;
	if (!call_login_valid(login)) {
		set_err(err, errlen, "\"agent\" is not a valid login");
		goto out;
	}
	memcpy(r.agent, login, strlen(login) + 1);

	*out = r;
	rc = 0;
out:
	json_decref(root);
	/* r held the full customer number. */
	explicit_bzero(&r, sizeof r);
	return rc;
}

/* ---- the blob trailer ---- */

static const char hexdigits[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1; /* upper case is not what we write: reject it */
}

static int get_hex(json_t *obj, const char *key, unsigned char *out, size_t n,
		   char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	if (!v) {
		set_err(err, errlen, "missing \"%s\"", key);
		return EINVAL;
	}
	if (!json_is_string(v) || json_string_length(v) != 2 * n) {
		set_err(err, errlen, "\"%s\" is not %zu bytes of hex", key, n);
		return EINVAL;
	}
	s = json_string_value(v);
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			set_err(err, errlen, "\"%s\" is not %zu bytes of hex",
				key, n);
			return EINVAL;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

char *meta_blob_encode(const struct call_record *rec)
{
	char sealed[2 * CALL_DIGITS_SEALED_LEN + 1];
	char hash[2 * CALL_NUMBER_HASH_LEN + 1];
	json_t *o = NULL;
	char *s = NULL;
	int bad = 0;

	/* JSON integers are int64: larger values cannot round-trip. */
	if (rec->num > INT64_MAX || rec->size > INT64_MAX) {
		errno = ERANGE;
		return NULL;
	}
	hex_encode(rec->customer_sealed, sizeof rec->customer_sealed, sealed);
	hex_encode(rec->number_hash, sizeof rec->number_hash, hash);
	o = json_object();
	if (!o)
		goto out;
	bad |= json_object_set_new(o, "v", json_integer(1));
	bad |= json_object_set_new(o, "num",
				   json_integer((json_int_t)rec->num));
	bad |= json_object_set_new(o, "day", json_integer(rec->day));
	bad |= json_object_set_new(o, "start_ms", json_integer(rec->start_ms));
	bad |= json_object_set_new(o, "end_ms", json_integer(rec->end_ms));
	bad |= json_object_set_new(o, "duration_ms",
				   json_integer(rec->duration_ms));
	bad |= json_object_set_new(o, "direction", json_string(rec->direction));
	bad |= json_object_set_new(o, "service_number",
				   json_string(rec->service_number));
	bad |= json_object_set_new(o, "customer_masked",
				   json_string(rec->customer_masked));
	bad |= json_object_set_new(o, "customer_sealed", json_string(sealed));
	bad |= json_object_set_new(o, "number_hash", json_string(hash));
	bad |= json_object_set_new(o, "agent_id", json_integer(rec->agent_id));
	bad |= json_object_set_new(o, "agent", json_string(rec->agent));
	bad |= json_object_set_new(o, "agent_name",
				   json_string(rec->agent_name));
	bad |= json_object_set_new(o, "agent_uid",
				   json_integer(rec->agent_uid));
	bad |= json_object_set_new(o, "channels", json_integer(rec->channels));
	bad |= json_object_set_new(o, "source_rate",
				   json_integer(rec->source_rate));
	bad |= json_object_set_new(o, "size",
				   json_integer((json_int_t)rec->size));
	bad |= json_object_set_new(o, "ingested_ms",
				   json_integer(rec->ingested_ms));
	if (bad) {
		/* json_string() refuses invalid UTF-8 (an agent name). */
		errno = EINVAL;
		goto out;
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!s)
		errno = ENOMEM;
out:
	json_decref(o);
	return s;
}

static int no_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

int meta_blob_decode(const char *json, size_t len, struct call_record *rec,
		     char *err, size_t errlen)
{
	static const char *const known[] = {
		"v", "num", "day", "start_ms", "end_ms", "duration_ms",
		"direction", "service_number", "customer_masked",
		"customer_sealed", "number_hash", "agent_id", "agent",
		"agent_name", "agent_uid", "channels", "source_rate", "size",
		"ingested_ms",
	};
	struct call_record r;
	json_t *root = NULL;
	int64_t v, n;
	int rc = EINVAL;

	memset(&r, 0, sizeof r);
	if (len > META_BLOB_MAX) {
		set_err(err, errlen, "blob metadata too large");
		goto out;
	}
	root = load_object(json, len, "blob metadata", known,
			   sizeof known / sizeof known[0], err, errlen);
	if (!root)
		goto out;
	if (get_int(root, "v", 1, 1, &v, err, errlen))
		goto out;

	if (get_int(root, "num", 1, INT64_MAX, &n, err, errlen))
		goto out;
	r.num = (uint64_t)n;
	if (get_int(root, "start_ms", 0, META_MAX_MS, &r.start_ms, err,
		    errlen))
		goto out;
	if (get_int(root, "end_ms", r.start_ms, META_MAX_MS, &r.end_ms, err,
		    errlen))
		goto out;
	/* The local day of the start: within a day of its UTC day, since
	 * zone offsets stay under 24 hours. */
	if (get_int(root, "day", r.start_ms / MS_PER_DAY - 1,
		    r.start_ms / MS_PER_DAY + 1, &n, err, errlen))
		goto out;
	r.day = (int32_t)n;
	if (get_int(root, "duration_ms", 0, META_MAX_MS, &r.duration_ms, err,
		    errlen))
		goto out;

	if (get_str(root, "direction", r.direction, sizeof r.direction, err,
		    errlen))
		goto out;
	if (r.direction[0] && strcmp(r.direction, "inbound") != 0 &&
	    strcmp(r.direction, "outbound") != 0) {
		set_err(err, errlen, "\"direction\" is not a direction");
		goto out;
	}
	if (get_str(root, "service_number", r.service_number,
		    sizeof r.service_number, err, errlen))
		goto out;
	if (r.service_number[0] && !e164_valid(r.service_number)) {
		set_err(err, errlen, "\"service_number\" is not E.164");
		goto out;
	}
	if (get_str(root, "customer_masked", r.customer_masked,
		    sizeof r.customer_masked, err, errlen))
		goto out;
	if (r.customer_masked[0] && !masked_valid(r.customer_masked)) {
		set_err(err, errlen, "\"customer_masked\" is not a masked "
			"number");
		goto out;
	}
	if (get_hex(root, "customer_sealed", r.customer_sealed,
		    sizeof r.customer_sealed, err, errlen) ||
	    get_hex(root, "number_hash", r.number_hash, sizeof r.number_hash,
		    err, errlen))
		goto out;

	if (get_int(root, "agent_id", 0, UINT32_MAX, &n, err, errlen))
		goto out;
	r.agent_id = (uint32_t)n;
	if (get_str(root, "agent", r.agent, sizeof r.agent, err, errlen))
		goto out;
	if (r.agent[0] && !call_login_valid(r.agent)) {
		set_err(err, errlen, "\"agent\" is not a valid login");
		goto out;
	}
	if (get_str(root, "agent_name", r.agent_name, sizeof r.agent_name, err,
		    errlen))
		goto out;
	if (!no_control_chars(r.agent_name)) {
		set_err(err, errlen, "\"agent_name\" has control characters");
		goto out;
	}
	if (get_int(root, "agent_uid", 0, UINT32_MAX, &n, err, errlen))
		goto out;
	r.agent_uid = (uint32_t)n;
	if (get_int(root, "channels", 1, 2, &n, err, errlen))
		goto out;
	r.channels = (int)n;
	/* 0 is Ogg Opus's "unspecified" input rate. */
	if (get_int(root, "source_rate", 0, 1000000, &n, err, errlen))
		goto out;
	r.source_rate = (uint32_t)n;
	if (get_int(root, "size", 0, INT64_MAX, &n, err, errlen))
		goto out;
	r.size = (uint64_t)n;
	if (get_int(root, "ingested_ms", 0, META_MAX_MS, &r.ingested_ms, err,
		    errlen))
		goto out;

	*rec = r;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- the views ---- */

/* duration_s as shown: seconds rounded to hundredths. jansson prints a
 * real with %.15g (plus ".0" when integral), which gives the shortest
 * decimal for a value of two decimals: 227.04, 227.5, 227.0. */
static int64_t duration_cs(const struct call_record *rec)
{
	return rec->duration_ms > 0 ? (rec->duration_ms + 5) / 10 : 0;
}

static void format_duration(const struct call_record *rec, char *out,
			    size_t outlen)
{
	int64_t cs = duration_cs(rec);

	if (cs % 100 == 0)
		snprintf(out, outlen, "%" PRId64 ".0", cs / 100);
	else if (cs % 10 == 0)
		snprintf(out, outlen, "%" PRId64 ".%" PRId64, cs / 100,
			 cs % 100 / 10);
	else
		snprintf(out, outlen, "%" PRId64 ".%02" PRId64, cs / 100,
			 cs % 100);
}

/* Empty strings are fields a call committed without metadata does not
 * have: shown as null. */
static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

int meta_text_valid(const char *text)
{
	json_t *j;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
			return 0;
	/* jansson refuses strings that are not UTF-8. */
	j = json_string(text);
	json_decref(j);
	return j != NULL;
}

char *meta_render(const struct call_record *rec, const struct meta_note *notes,
		  size_t nnotes, size_t *len)
{
	char id[CALL_ID_LEN], start[CLOCK_RFC3339_LEN], end[CLOCK_RFC3339_LEN];
	char at[CLOCK_RFC3339_LEN];
	int assigned = rec->agent[0] != '\0';
	json_t *o = NULL, *arr = NULL;
	char *s = NULL, *r = NULL;
	size_t n;
	int bad = 0;

	call_id_format(rec->num, id);
	clock_format_rfc3339(rec->start_ms, start);
	clock_format_rfc3339(rec->end_ms, end);
	o = json_object();
	arr = json_array();
	if (!o || !arr) {
		json_decref(arr);
		goto out;
	}
	for (size_t i = 0; i < nnotes; i++) {
		json_t *note = json_object();
		clock_format_rfc3339(notes[i].at_ms, at);
		if (!note) {
			bad = 1;
			break;
		}
		bad |= json_object_set_new(note, "at", json_string(at));
		bad |= json_object_set_new(note, "by",
					   str_or_null(notes[i].author));
		bad |= json_object_set_new(note, "text",
					   json_string(notes[i].text));
		bad |= json_array_append_new(arr, note);
	}
	bad |= json_object_set_new(o, "call_id", json_string(id));
	bad |= json_object_set_new(o, "direction", str_or_null(rec->direction));
	bad |= json_object_set_new(o, "start", json_string(start));
	bad |= json_object_set_new(o, "end", json_string(end));
	bad |= json_object_set_new(o, "duration_s",
				   json_real((double)duration_cs(rec) / 100));
	bad |= json_object_set_new(o, "service_number",
				   str_or_null(rec->service_number));
	bad |= json_object_set_new(o, "customer_number",
				   str_or_null(rec->customer_masked));
	bad |= json_object_set_new(o, "agent",
				   assigned ? json_string(rec->agent)
					    : json_null());
	bad |= json_object_set_new(o, "agent_name",
				   assigned ? json_string(rec->agent_name)
					    : json_null());
	bad |= json_object_set_new(o, "channels", json_integer(rec->channels));
	bad |= json_object_set_new(o, "notes", arr);
	if (rec->restricted)
		bad |= json_object_set_new(o, "restricted", json_true());
	if (bad) {
		/* Out of memory, or a note that is not UTF-8. */
		errno = EINVAL;
		goto out;
	}
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
				  JSON_REAL_PRECISION(15));
	if (!s)
		goto out;
	n = strlen(s);
	r = malloc(n + 2);
	if (!r)
		goto out;
	memcpy(r, s, n);
	r[n] = '\n';
	r[n + 1] = '\0';
	*len = n + 1;
out:
	free(s);
	json_decref(o);
	return r;
}

int meta_xattrs(const struct call_record *rec,
		int (*fn)(void *ctx, const char *name, const char *value),
		void *ctx)
{
	char id[CALL_ID_LEN], start[CLOCK_RFC3339_LEN], end[CLOCK_RFC3339_LEN];
	char dur[32], channels[16];
	int assigned = rec->agent[0] != '\0';
	int rc;

	call_id_format(rec->num, id);
	clock_format_rfc3339(rec->start_ms, start);
	clock_format_rfc3339(rec->end_ms, end);
	format_duration(rec, dur, sizeof dur);
	snprintf(channels, sizeof channels, "%d", rec->channels);

	/* Same names and text as the .json; what it shows as null is
	 * absent here. */
	const struct {
		const char *name, *value;
		int present;
	} attrs[] = {
		{ "call_id", id, 1 },
		{ "direction", rec->direction, rec->direction[0] != '\0' },
		{ "start", start, 1 },
		{ "end", end, 1 },
		{ "duration_s", dur, 1 },
		{ "service_number", rec->service_number,
		  rec->service_number[0] != '\0' },
		{ "customer_number", rec->customer_masked,
		  rec->customer_masked[0] != '\0' },
		{ "agent", rec->agent, assigned },
		{ "agent_name", rec->agent_name, assigned },
		{ "channels", channels, 1 },
		{ "restricted", "1", rec->restricted != 0 },
	};

	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
		if (!attrs[i].present)
			continue;
		rc = fn(ctx, attrs[i].name, attrs[i].value);
		if (rc)
			return rc;
	}
	return 0;
}
