/* Vault configuration: VAULT/callvault.conf, an INI file read with inih.
 * Unknown keys are errors (a typo must not silently keep a default). */
#ifndef CALLVAULT_CONFIG_H
#define CALLVAULT_CONFIG_H

#include <stddef.h>

/* The cipher new recordings are sealed with; the numbers are the blob
 * format's algorithm ids (docs/format.md). */
enum config_cipher {
	CONFIG_CIPHER_AUTO = 0,              /* AES-256-GCM if the CPU can */
	CONFIG_CIPHER_XCHACHA20POLY1305 = 1,
	CONFIG_CIPHER_AES256GCM = 2,
};

struct config {
	char timezone[64];       /* "" = the system's zone */
	int retention_months;    /* calendar months a call is kept; 6 */
	int bitrate;             /* Opus bits per second per channel; 16000 */
	int complexity;          /* Opus encoder complexity 0..10 */
	char country_code[8];    /* digits, for national numbers: "358" */
	char trunk_prefix[4];    /* national trunk prefix: "0" */
	int grace_period_s;      /* incoming/ audio without metadata; 600 */
	int sweep_interval_s;    /* retention sweeper period; 60 */
	int log_level;           /* the daemon's: enum log_level; info */
	int cipher;              /* enum config_cipher; auto */
};

void config_defaults(struct config *cfg);

/* Loads `path` over the defaults. A missing file is not an error.
 * Returns 0, or EINVAL with a one-line reason in err. */
int config_load(struct config *cfg, const char *path, char *err,
		size_t errlen);

/* Writes a commented configuration holding `cfg`'s values (O_EXCL).
 * Returns 0 or an errno. */
int config_write(const struct config *cfg, const char *path);

/* "error", "warning", "info", "debug" for an enum log_level value. */
const char *config_log_level_name(int level);

/* "auto", "xchacha20poly1305", "aes256gcm" for an enum config_cipher. */
const char *config_cipher_name(int cipher);

#endif
