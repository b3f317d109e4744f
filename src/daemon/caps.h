/* Capabilities: vufsd keeps only what file operations on behalf of the guest need (libcap-ng). */
#ifndef VUFS_DAEMON_CAPS_H
#define VUFS_DAEMON_CAPS_H

/* Drops every capability but the file-operation set, adjusted by modcaps ("+name,-name,...", may be NULL). */
int caps_drop(const char *modcaps);
/* Checks a --modcaps string without applying it. */
int caps_check_modcaps(const char *modcaps);

#endif
