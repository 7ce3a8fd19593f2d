/* Private to the command-line front end (main.c, cli_*.c). */
#ifndef CALLVAULT_CLI_H
#define CALLVAULT_CLI_H

#include <getopt.h>

#include "callvault/vault.h"

#define EXIT_USAGE 2

/* A subcommand: `words` as typed ("user add"), its handler and its usage
 * text (the first line is the synopsis). Handlers get argv with the words
 * removed (argv[0] is the last word) and return an exit status. */
struct cli_command {
	const char *words;
	int (*run)(int argc, char **argv);
	const char *usage;
};

/* The full name of the running command, for error lines. */
extern const char *cli_cmd;

/* "callvault: CMD: message" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the usage of the running command to stderr; returns EXIT_USAGE. */
int cli_usage(void);
/* If argv holds --help or -h, prints the usage to stdout and returns 1. */
int cli_wants_help(int argc, char **argv);

/* Option parsing shared by every command that opens a vault: --key-file.
 * Parses argv with the command's own options appended; on_opt handles
 * them (returns 0 or EXIT_USAGE). Leaves positional arguments in
 * pos[0..*npos). Returns 0 or EXIT_USAGE. */
struct cli_opts {
	const char *shortopts;         /* command's own; may be NULL */
	const struct option *longopts; /* command's own; may be NULL */
	int (*on_opt)(void *ctx, int opt, const char *arg);
	void *ctx;
};
/* on_opt for a command with one option taking a string: stores the
 * argument in *(const char **)ctx. */
int cli_opt_string(void *ctx, int opt, const char *arg);

int cli_parse(int argc, char **argv, const struct cli_opts *o,
	      const char **key_file, char **pos, int maxpos, int *npos);

/* cli_parse() for commands that take exactly n positional arguments:
 * anything else is a usage error. */
int cli_parse_exact(int argc, char **argv, const struct cli_opts *o,
		    const char **key_file, char **pos, int n);

/* --config FILE (every command) or -o config=FILE (mount): the
 * configuration to use instead of VAULT/callvault.conf. NULL: that one. */
extern const char *cli_config_file;

/* Progress of a long command on stderr ("\rWHAT: DONE/TOTAL", total 0 if
 * unknown), at most every 200 ms and at the end; nothing when stderr is
 * not a terminal. _end finishes the line if anything was shown. */
void cli_progress(const char *what, uint64_t done, uint64_t total);
void cli_progress_end(void);

/* Opens the vault, or prints why not. Returns 0 or 1. */
int cli_open_vault(const char *dir, const char *key_file, int flags,
		   struct vault **out);

/* The catalog of the vault for this (single-threaded) process. */
struct catalog *cli_catalog(struct vault *v);

/* Who runs the command: uid, and login and roles if the directory knows
 * the uid (login "" otherwise). */
struct cli_actor {
	uint32_t uid;
	const char *login;   /* points into user */
	unsigned roles;
	struct catalog_user user;
};
void cli_actor(struct vault *v, struct cli_actor *a);

/* Records a CLI act in the audit trail: the invoking uid (and its login
 * and roles if the directory knows it), the action, the call (0: none),
 * the outcome ("ok" or "error") and a detail. Returns 0 or 1 after saying
 * why on stderr: an act that cannot be audited counts as failed. */
int cli_audit(struct vault *v, const char *action, uint64_t call_num,
	      const char *outcome, const char *detail);

/* Command handlers. */
int cmd_team_add(int argc, char **argv);
int cmd_team_list(int argc, char **argv);
int cmd_user_add(int argc, char **argv);
int cmd_user_set(int argc, char **argv);
int cmd_user_del(int argc, char **argv);
int cmd_user_list(int argc, char **argv);
int cmd_grant(int argc, char **argv);
int cmd_revoke(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_calls(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_quarantine(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_erase(int argc, char **argv);
int cmd_restrict(int argc, char **argv);
int cmd_unrestrict(int argc, char **argv);
int cmd_amend(int argc, char **argv);
int cmd_rebuild(int argc, char **argv);
int cmd_subject_find(int argc, char **argv);
int cmd_subject_export(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif
