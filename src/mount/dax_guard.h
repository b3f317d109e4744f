/*
 * Copies to and from the DAX window that survive the file under a mapping being shrunk on the host: a load or
 * store past its new end raises SIGBUS (SIGSEGV where nothing is mapped), which here ends the copy with -EFAULT
 * instead of the process, so the caller can forward the request to the backend, which answers from the file.
 */
#ifndef VUFS_MOUNT_DAX_GUARD_H
#define VUFS_MOUNT_DAX_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* Installs the handlers for the window [base, base + size); once, before any thread copies. */
int dax_guard_init(const void *base, uint64_t size);
/* memcpy that returns -EFAULT instead of dying on a fault inside the window; 0 when the copy is whole. */
int dax_guard_copy(void *dst, const void *src, size_t n);

#endif
