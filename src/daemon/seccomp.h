/* The seccomp allowlist: every system call vufsd makes once it serves a guest, and nothing else. */
#ifndef VUFS_DAEMON_SECCOMP_H
#define VUFS_DAEMON_SECCOMP_H

enum seccomp_mode { SECCOMP_KILL, SECCOMP_LOG, SECCOMP_TRAP, SECCOMP_NONE };

int seccomp_parse_mode(const char *s, enum seccomp_mode *out);
int seccomp_install(enum seccomp_mode mode);

#endif
