/* The vhost-user socket vufsd listens on: a path it creates, or one libvirt hands over with --fd. */
#ifndef VUFS_DAEMON_LISTEN_H
#define VUFS_DAEMON_LISTEN_H

/* Creates, binds and listens on path (a stale socket file is replaced); group, if set, owns it. */
int listen_on_path(const char *path, const char *group);
/* Checks that fd is a listening UNIX stream socket. */
int listen_on_fd(int fd);
/* Waits for the one frontend connection. */
int accept_frontend(int lfd);

#endif
