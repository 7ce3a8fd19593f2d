/* The FUSE file system (low-level API): the only module that talks to
 * libfuse. Handlers gather the caller, ask policy, ask the module that owns
 * the work, and reply exactly once. */
#ifndef CALLVAULT_FS_H
#define CALLVAULT_FS_H

#include "callvault/vault.h"

struct fs_options {
	int foreground;    /* stay attached; log to stderr */
	int debug;         /* libfuse debug output; implies foreground */
	int allow_other;   /* let other users in (needed for any real use) */
	int single_thread; /* for debugging */
};

/* Mounts `v` at `mountpoint` and serves requests until unmounted
 * (fusermount3 -u, umount, SIGTERM, SIGINT). Returns 0 after a clean
 * unmount, or 1 with the reason logged. */
int fs_main(struct vault *v, const char *mountpoint,
	    const struct fs_options *opt);

#endif
