/* Capabilities: vufsd keeps only what file operations on behalf of the guest need (libcap-ng). */
#ifndef VUFS_DAEMON_CAPS_H
#define VUFS_DAEMON_CAPS_H

#include <stdbool.h>

/* Drops every capability but the file-operation set, adjusted by modcaps ("+name,-name,...", may be NULL).
 * file_handles: also keep CAP_DAC_READ_SEARCH, which open_by_handle_at needs (--migration-mode=file-handles,
 * --inode-file-handles=prefer|mandatory). */
int caps_drop(const char *modcaps, bool file_handles);
/* Checks a --modcaps string without applying it. */
int caps_check_modcaps(const char *modcaps);

#endif
