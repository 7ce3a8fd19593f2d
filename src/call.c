/* Call ids and logins. */
#include "callvault/call.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void call_id_format(uint64_t num, char out[CALL_ID_LEN])
{
	snprintf(out, CALL_ID_LEN, "c-%06" PRIu64, num);
}

int call_id_parse(const char *s, uint64_t *num_out)
{
	uint64_t n = 0;
	size_t len, i;

	if (strncmp(s, "c-", 2) != 0)
		return EINVAL;
	s += 2;
	len = strlen(s);
	if (len < 6 || len > 19)
		return EINVAL;
	/* Exactly the form call_id_format() produces: at least six digits,
	 * leading zeros only as padding. */
	if (len > 6 && s[0] == '0')
		return EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return EINVAL;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (n == 0)
		return EINVAL;
	*num_out = n;
	return 0;
}

int call_login_valid(const char *login)
{
	size_t i, len = strlen(login);

	if (len == 0 || len >= CALL_LOGIN_LEN)
		return 0;
	if (!((login[0] >= 'a' && login[0] <= 'z') ||
	      (login[0] >= '0' && login[0] <= '9')))
		return 0;
	for (i = 0; i < len; i++) {
		char ch = login[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}
