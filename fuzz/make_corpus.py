#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (input formats: see the comment at the top of each harness).

    fuzz/make_corpus.py [OUTDIR]     (default: fuzz/corpus) -> OUTDIR/{fuse_request,vring,vhost_user}/

fuse_request: one input per opcode (or small group), each a realistic sequence in a fresh session: node ids and
file handles are predictable there (root 1, then 2, 3, ... in lookup order; file handles 1<<32 | 0, 1, ...).
vring: well-formed rings (direct, indirect, split over two regions, event index) and a few broken ones.
vhost_user: the QEMU start-up sequence up to a running queue with requests on it, and variations.
"""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# ---------------------------------------------------------------------------------------------- FUSE requests

(LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ,
 WRITE, STATFS, RELEASE, FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH, INIT, OPENDIR, READDIR,
 RELEASEDIR, FSYNCDIR, GETLK, SETLK, SETLKW, ACCESS, CREATE, INTERRUPT, BMAP, DESTROY, IOCTL, POLL,
 NOTIFY_REPLY, BATCH_FORGET, FALLOCATE, READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE, SETUPMAPPING,
 REMOVEMAPPING, SYNCFS, TMPFILE, STATX, COPY_FILE_RANGE_64) = (
    1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
    33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53)
FUSE_EXT_GROUPS = 32

O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0, 1, 2, 0o100, 0o200, 0o1000, 0o2000
S_IFIFO, S_IFCHR, S_IFDIR, S_IFREG, S_IFSOCK = 0o010000, 0o020000, 0o040000, 0o100000, 0o140000
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE, FATTR_ATIME, FATTR_MTIME, FATTR_FH = 1, 2, 4, 8, 16, 32, 64
FATTR_ATIME_NOW, FATTR_MTIME_NOW, FATTR_LOCKOWNER, FATTR_CTIME, FATTR_KILL_SUIDGID = 128, 256, 512, 1024, 2048
FH0, FH1, FH2 = 1 << 32, (1 << 32) | 1, (1 << 32) | 2
ROOT = 1

CFG_NOINIT, CFG_CACHE_NEVER, CFG_CACHE_ALWAYS, CFG_WRITEBACK, CFG_XATTR = 0x01, 0x00, 0x04, 0x08, 0x10
CFG_NOLOCKS, CFG_NORDP, CFG_ACL, CFG_AUTO = 0x20, 0x40, 0x80, 0x02


def req(op, nodeid=ROOT, payload=b"", uid=0, gid=0, pid=1, unique=1, ext=b""):
    assert len(ext) % 8 == 0
    return struct.pack("<IIQQIIIHH", 40 + len(payload) + len(ext), op, unique, nodeid, uid, gid, pid,
                       len(ext) // 8, 0) + payload + ext


def supp_group(gid, nr=1, size=None):
    """A FUSE_EXT_GROUPS extension as Linux sends it (size counts the header; padded to 8 bytes)."""
    body = struct.pack("<I", nr) + struct.pack("<I", gid)
    size = size if size is not None else 8 + len(body)
    return struct.pack("<II", size, FUSE_EXT_GROUPS) + body


def secctx(n=None, value=b""):
    """A request extension holding one security context (or none, as Linux sends without an LSM)."""
    body = b"" if n is None else struct.pack("<II", len(value), 0) + n.encode() + b"\0" + value
    body += b"\0" * (-len(body) % 8)
    return struct.pack("<II", 8 + len(body), 0 if n is None else 1) + body


def name(*names):
    return b"".join(n.encode() + b"\0" for n in names)


def rec(r, fix=True, rcuts=(), wcuts=(), reply=15):
    ctl = (1 if fix else 0) | (len(rcuts) << 1) | (reply << 4)
    return struct.pack("<BBH", ctl, len(wcuts), len(r)) + bytes(rcuts) + bytes(wcuts) + r


def fuse_input(cfg, *records):
    return bytes([cfg]) + b"".join(records)


def read_in(fh, off, size, lock_owner=0, flags=0):
    return struct.pack("<QQIIQII", fh, off, size, 0, lock_owner, flags, 0)


def write_in(fh, off, data, flags=0):
    return struct.pack("<QQIIQII", fh, off, len(data), flags, 0, 0, 0) + data


def setattr_in(valid, fh=0, size=0, mode=0, uid=0, gid=0, atime=0, mtime=0, nsec=0):
    return struct.pack("<IIQQQQQQIIIIIIII", valid, 0, fh, size, 0, atime, mtime, 0, nsec, nsec, 0, mode, 0, uid,
                       gid, 0)


def lk_in(fh, owner, start, end, typ, pid=42, flags=0):
    return struct.pack("<QQQQIIII", fh, owner, start, end, typ, pid, flags, 0)


def init_in(major=7, minor=45, flags=0xffffffff, flags2=0xffffffff):
    return struct.pack("<IIIII", major, minor, 131072, flags, flags2) + bytes(44)


def lookup(parent, n):
    return rec(req(LOOKUP, parent, name(n)))


def open_(node, flags=O_RDWR):
    return rec(req(OPEN, node, struct.pack("<II", flags, 0)))


def release(node, fh, flags=0, lock_owner=0):
    return rec(req(RELEASE, node, struct.pack("<QIIQ", fh, 0, flags, lock_owner)))


fuse = {
    "lookup": fuse_input(0, lookup(ROOT, "a"), lookup(ROOT, "d"), lookup(3, "f"), lookup(ROOT, ".."),
                         lookup(ROOT, "."), lookup(ROOT, "missing"), lookup(3, ".."), lookup(ROOT, "a2")),
    "forget": fuse_input(0, lookup(ROOT, "a"), rec(req(FORGET, 2, struct.pack("<Q", 1))),
                         rec(req(GETATTR, 2, struct.pack("<IIQ", 0, 0, 0)))),
    "batch_forget": fuse_input(0, lookup(ROOT, "a"), lookup(ROOT, "d"), lookup(ROOT, "d"),
                               rec(req(BATCH_FORGET, 0, struct.pack("<IIQQQQ", 2, 0, 2, 1, 3, 5)))),
    "getattr": fuse_input(0, rec(req(GETATTR, ROOT, struct.pack("<IIQ", 0, 0, 0))), lookup(ROOT, "a"),
                          open_(2, O_RDONLY), rec(req(GETATTR, 2, struct.pack("<IIQ", 1, 0, FH0))),
                          lookup(ROOT, "p"), rec(req(GETATTR, 3, struct.pack("<IIQ", 0, 0, 0)))),
    "setattr": fuse_input(0, lookup(ROOT, "a"),
                          rec(req(SETATTR, 2, setattr_in(FATTR_MODE | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME,
                                                         size=10, mode=0o600, atime=1000, mtime=2000))),
                          lookup(ROOT, "suid"), rec(req(SETATTR, 3, setattr_in(FATTR_KILL_SUIDGID))),
                          open_(2, O_RDWR),
                          rec(req(SETATTR, 2, setattr_in(FATTR_SIZE | FATTR_FH | FATTR_ATIME_NOW | FATTR_ATIME,
                                                         fh=FH0, size=4))),
                          rec(req(SETATTR, 2, setattr_in(FATTR_UID | FATTR_GID, uid=1000, gid=1000)))),
    "readlink": fuse_input(0, lookup(ROOT, "l"), rec(req(READLINK, 2)), lookup(ROOT, "up"),
                           rec(req(READLINK, 3), reply=6), lookup(ROOT, "a"), rec(req(READLINK, 4))),
    "symlink": fuse_input(0, rec(req(SYMLINK, ROOT, name("s", "target/of/link"))), rec(req(READLINK, 2)),
                          rec(req(SYMLINK, ROOT, name("s2", "/etc/passwd")))),
    "mknod": fuse_input(0, rec(req(MKNOD, ROOT, struct.pack("<IIII", S_IFIFO | 0o644, 0, 0o22, 0) + name("n"))),
                        rec(req(MKNOD, ROOT, struct.pack("<IIII", S_IFREG | 0o600, 0, 0, 0) + name("r"))),
                        rec(req(MKNOD, ROOT, struct.pack("<IIII", S_IFCHR | 0o600, 0x103, 0, 0) + name("c"))),
                        rec(req(MKNOD, ROOT, struct.pack("<IIII", S_IFSOCK | 0o600, 0, 0, 0) + name("so"))),
                        open_(2, O_RDONLY)),
    "mkdir": fuse_input(0, rec(req(MKDIR, ROOT, struct.pack("<II", 0o2775, 0o22) + name("m"), uid=1000, gid=1000)),
                        rec(req(MKDIR, 2, struct.pack("<II", 0o755, 0) + name("inner"), uid=1001, gid=1001)),
                        rec(req(MKDIR, ROOT, struct.pack("<II", 0o755, 0) + name("..")))),
    "unlink_rmdir": fuse_input(0, rec(req(UNLINK, ROOT, name("b"))), rec(req(UNLINK, ROOT, name("d"))),
                               rec(req(MKDIR, ROOT, struct.pack("<II", 0o755, 0) + name("m"))),
                               rec(req(RMDIR, ROOT, name("m"))), rec(req(RMDIR, ROOT, name("d"))),
                               rec(req(UNLINK, ROOT, name("..")))),
    "rename": fuse_input(0, lookup(ROOT, "d"), rec(req(RENAME, ROOT, struct.pack("<Q", 2) + name("a", "z"))),
                         rec(req(RENAME, 2, struct.pack("<Q", ROOT) + name("f", "g"))),
                         rec(req(RENAME, ROOT, struct.pack("<Q", ROOT) + name("d", "..")))),
    "rename2": fuse_input(0, rec(req(RENAME2, ROOT, struct.pack("<QII", ROOT, 2, 0) + name("a", "b"))),
                          rec(req(RENAME2, ROOT, struct.pack("<QII", ROOT, 1, 0) + name("a", "b"))),
                          rec(req(RENAME2, ROOT, struct.pack("<QII", ROOT, 4, 0) + name("b", "w")))),
    "link": fuse_input(0, lookup(ROOT, "a"), rec(req(LINK, ROOT, struct.pack("<Q", 2) + name("hl"), uid=1000)),
                       lookup(ROOT, "d"), rec(req(LINK, ROOT, struct.pack("<Q", 3) + name("dl"))),
                       lookup(ROOT, "l"), rec(req(LINK, 3, struct.pack("<Q", 4) + name("ll")))),
    "read": fuse_input(0, lookup(ROOT, "a"), open_(2, O_RDONLY), rec(req(READ, 2, read_in(FH0, 0, 4096))),
                       rec(req(READ, 2, read_in(FH0, 3, 100)), rcuts=(10, 50), wcuts=(5, 30, 200), reply=9),
                       rec(req(READ, 2, read_in(FH0, 1 << 62, 4096))), release(2, FH0)),
    "write": fuse_input(0, lookup(ROOT, "b"), open_(2, O_RDWR),
                        rec(req(WRITE, 2, write_in(FH0, 0, b"hello, vufs")), rcuts=(100, 220, 250)),
                        rec(req(WRITE, 2, write_in(FH0, 5000, b"x" * 300)), rcuts=(10, 130, 140, 160, 180, 200, 250)),
                        rec(req(READ, 2, read_in(FH0, 0, 64))),
                        rec(req(FLUSH, 2, struct.pack("<QIIQ", FH0, 0, 0, 7))),
                        rec(req(FSYNC, 2, struct.pack("<QII", FH0, 1, 0))), release(2, FH0),
                        lookup(ROOT, "suid"), open_(3, O_WRONLY),
                        rec(req(WRITE, 3, write_in(2 << 32, 0, b"#!", flags=4), uid=1000))),
    "statfs_access": fuse_input(0, rec(req(STATFS, ROOT)), rec(req(ACCESS, ROOT, struct.pack("<II", 6, 0))),
                                lookup(ROOT, "b"),
                                rec(req(ACCESS, 2, struct.pack("<II", 4, 0), uid=1000, gid=1000)),
                                rec(req(ACCESS, 2, struct.pack("<II", 8, 0)))),
    "xattr": fuse_input(CFG_XATTR | CFG_AUTO, lookup(ROOT, "a"),
                        rec(req(GETXATTR, 2, struct.pack("<II", 0, 0) + name("user.fuzz"))),
                        rec(req(GETXATTR, 2, struct.pack("<II", 64, 0) + name("user.fuzz"))),
                        rec(req(SETXATTR, 2, struct.pack("<II", 3, 0) + name("user.new") + b"val")),
                        rec(req(LISTXATTR, 2, struct.pack("<II", 0, 0))),
                        rec(req(LISTXATTR, 2, struct.pack("<II", 256, 0))),
                        rec(req(REMOVEXATTR, 2, name("user.new"))), lookup(ROOT, "l"),
                        rec(req(LISTXATTR, 3, struct.pack("<II", 256, 0))),
                        rec(req(SETXATTR, 3, struct.pack("<II", 1, 0) + name("trusted.x") + b"1")),
                        rec(req(SETXATTR, ROOT, struct.pack("<II", 4, 0) + name("system.posix_acl_access") +
                                b"\x02\0\0\0"))),
    "xattr_acl": fuse_input(CFG_XATTR | CFG_ACL, lookup(ROOT, "d"),
                            rec(req(LISTXATTR, 2, struct.pack("<II", 2, 0))),
                            rec(req(GETXATTR, 2, struct.pack("<II", 1, 0) + name("trusted.fuzz"))),
                            rec(req(SETXATTR, 2, struct.pack("<II", 28, 0) + name("system.posix_acl_default") +
                                    struct.pack("<IHHIHHIHHI", 2, 1, 7, 0xffffffff, 4, 5, 0xffffffff, 0x20, 5,
                                                0xffffffff)))),
    "secctx": fuse_input(CFG_XATTR | CFG_ACL,
                         rec(req(MKDIR, ROOT, struct.pack("<II", 0o755, 0o022) + name("sd"),
                                 ext=secctx("security.selinux", b"system_u:object_r:d_t:s0"))),
                         rec(req(CREATE, ROOT, struct.pack("<IIII", O_RDWR | O_CREAT, S_IFREG | 0o644, 0o022, 0) +
                                 name("sf"), ext=secctx("security.selinux", b"f_t"))),
                         rec(req(SYMLINK, ROOT, name("sl", "a"), ext=secctx())),
                         rec(req(MKNOD, ROOT, struct.pack("<IIII", S_IFIFO | 0o644, 0, 0o022, 0) + name("sp"),
                                 ext=secctx("security.x", b""))),
                         rec(req(LOOKUP, ROOT, name("sd"), ext=secctx()))),
    "readdir": fuse_input(CFG_NORDP, rec(req(OPENDIR, ROOT, struct.pack("<II", 0, 0))),
                          rec(req(READDIR, ROOT, read_in(FH0, 0, 4096))),
                          rec(req(READDIR, ROOT, read_in(FH0, 0, 80))),
                          rec(req(READDIR, ROOT, read_in(FH0, 3, 4096)), wcuts=(20, 90), reply=12),
                          rec(req(FSYNCDIR, ROOT, struct.pack("<QII", FH0, 0, 0))),
                          rec(req(RELEASEDIR, ROOT, struct.pack("<QIIQ", FH0, 0, 0, 0)))),
    "readdirplus": fuse_input(0, lookup(ROOT, "d"), rec(req(OPENDIR, ROOT, struct.pack("<II", 0, 0))),
                              rec(req(READDIRPLUS, ROOT, read_in(FH0, 0, 4096))),
                              rec(req(READDIRPLUS, ROOT, read_in(FH0, 0, 300)), reply=11),
                              rec(req(OPENDIR, 2, struct.pack("<II", 0, 0))),
                              rec(req(READDIRPLUS, 2, read_in(FH1, 0, 4096))),
                              rec(req(BATCH_FORGET, 0, struct.pack("<IIQQ", 1, 0, 3, 1))),
                              rec(req(RELEASEDIR, 2, struct.pack("<QIIQ", FH1, 0, 0, 0)))),
    "locks": fuse_input(0, lookup(ROOT, "a"), open_(2, O_RDWR),
                        rec(req(SETLK, 2, lk_in(FH0, 1, 0, 99, F_WRLCK))),
                        rec(req(GETLK, 2, lk_in(FH0, 2, 50, 0x7fffffffffffffff, F_RDLCK))),
                        rec(req(SETLK, 2, lk_in(FH0, 2, 10, 20, F_RDLCK))),
                        rec(req(SETLK, 2, lk_in(FH0, 1, 0, 0x7fffffffffffffff, F_UNLCK))),
                        rec(req(SETLK, 2, lk_in(FH0, 3, 0, 0, F_WRLCK, flags=1))),
                        rec(req(FLUSH, 2, struct.pack("<QIIQ", FH0, 0, 0, 2))),
                        release(2, FH0, flags=2, lock_owner=1)),
    "create": fuse_input(0, rec(req(CREATE, ROOT, struct.pack("<IIII", O_RDWR | O_CREAT, 0o644, 0o22, 0) +
                                    name("new"), uid=1000, gid=1000)),
                         rec(req(WRITE, 2, write_in(FH0, 0, b"created"))),
                         rec(req(CREATE, ROOT, struct.pack("<IIII", O_RDWR | O_CREAT | O_TRUNC, 0o644, 0, 0) +
                                 name("a"))),
                         rec(req(CREATE, ROOT, struct.pack("<IIII", O_RDWR | O_CREAT | O_EXCL, 0o644, 0, 0) +
                                 name("b"))),
                         rec(req(CREATE, ROOT, struct.pack("<IIII", O_RDONLY | O_CREAT, 0o644, 0, 0) + name("p"))),
                         rec(req(CREATE, ROOT, struct.pack("<IIII", O_RDONLY | O_CREAT, 0o644, 0, 0) + name("l")))),
    "supp_group": fuse_input(0, rec(req(MKDIR, ROOT, struct.pack("<II", 0o2775, 0) + name("sg"))),
                             rec(req(SETATTR, 2, setattr_in(FATTR_GID, gid=1002))),
                             rec(req(CREATE, 2, struct.pack("<IIII", O_RDWR | O_CREAT, 0o2755, 0, 0) + name("f"),
                                     uid=1000, gid=1000, ext=supp_group(1002))),
                             rec(req(MKDIR, 2, struct.pack("<II", 0o755, 0) + name("d"), uid=1000, gid=1000,
                                     ext=supp_group(1002))),
                             rec(req(SYMLINK, 2, name("s", "f"), uid=1000, gid=1000, ext=supp_group(1002))),
                             rec(req(MKNOD, 2, struct.pack("<IIII", S_IFIFO | 0o644, 0, 0, 0) + name("p"), uid=1000,
                                     gid=1000, ext=supp_group(1002, nr=2))),
                             rec(req(MKDIR, 2, struct.pack("<II", 0o755, 0) + name("e"), uid=1000, gid=1000,
                                     ext=supp_group(1002, size=4096))),
                             rec(req(STATX, 2, struct.pack("<IIQII", 0, 0, 0, 0, 0xfff))),
                             rec(req(STATX, 3, struct.pack("<IIQII", 1, 0, FH0, 0, 0x800)))),
    "tmpfile": fuse_input(0, rec(req(TMPFILE, ROOT, struct.pack("<IIII", O_RDWR, 0o600, 0, 0))),
                          rec(req(WRITE, 2, write_in(FH0, 0, b"anonymous"))),
                          rec(req(LINK, ROOT, struct.pack("<Q", 2) + name("named"))),
                          rec(req(GETATTR, 2, struct.pack("<IIQ", 1, 0, FH0)))),
    "fallocate_lseek": fuse_input(0, lookup(ROOT, "a"), open_(2, O_RDWR),
                                  rec(req(FALLOCATE, 2, struct.pack("<QQQII", FH0, 0, 8192, 0, 0))),
                                  rec(req(FALLOCATE, 2, struct.pack("<QQQII", FH0, 4096, 4096, 3, 0))),
                                  rec(req(LSEEK, 2, struct.pack("<QQII", FH0, 0, 3, 0))),
                                  rec(req(LSEEK, 2, struct.pack("<QQII", FH0, 0, 4, 0))),
                                  rec(req(LSEEK, 2, struct.pack("<QQII", FH0, 0, 2, 0))),
                                  rec(req(LSEEK, 2, struct.pack("<QQII", FH0, 0, 1, 0)))),
    "copy_file_range": fuse_input(0, lookup(ROOT, "a"), open_(2, O_RDONLY), lookup(ROOT, "b"), open_(3, O_RDWR),
                                  rec(req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", FH0, 0, 3, FH1, 0, 10, 0))),
                                  rec(req(COPY_FILE_RANGE, 2,
                                          struct.pack("<QQQQQQQ", FH0, 5, 3, FH1, 100, 1 << 40, 0))),
                                  rec(req(COPY_FILE_RANGE_64, 2,
                                          struct.pack("<QQQQQQQ", FH0, 0, 3, FH1, 20, 1 << 40, 0))),
                                  rec(req(COPY_FILE_RANGE_64, 2,
                                          struct.pack("<QQQQQQQ", FH0, 1 << 63, 3, FH1, 0, 1 << 63, 0)))),
    "init_variants": fuse_input(CFG_NOINIT, rec(req(GETATTR, ROOT, struct.pack("<IIQ", 0, 0, 0))),
                                rec(req(FORGET, 5, struct.pack("<Q", 1))),
                                rec(req(INIT, 0, init_in(major=8))), rec(req(INIT, 0, init_in(major=6))),
                                rec(req(INIT, 0, init_in(minor=22, flags=0x1000))),
                                rec(req(GETATTR, ROOT, struct.pack("<IIQ", 0, 0, 0)))),
    "init_short": fuse_input(CFG_NOINIT, rec(req(INIT, 0, init_in(flags=0x40000000)[:16])),
                             rec(req(INIT, 0, init_in(flags=0x40000000)[:20])),
                             rec(req(INIT, 0, init_in()[:8]))),
    "destroy": fuse_input(0, lookup(ROOT, "a"), open_(2), rec(req(DESTROY, 0)),
                          rec(req(GETATTR, ROOT, struct.pack("<IIQ", 0, 0, 0))), rec(req(INIT, 0, init_in())),
                          rec(req(GETATTR, 2, struct.pack("<IIQ", 0, 0, 0))),
                          rec(req(READ, 2, read_in(FH0, 0, 10)))),
    "enosys": fuse_input(0, rec(req(INTERRUPT, 0, struct.pack("<Q", 1))),
                         rec(req(BMAP, ROOT, struct.pack("<QII", 0, 512, 0))), rec(req(IOCTL, ROOT, bytes(32))),
                         rec(req(POLL, ROOT, bytes(24))), rec(req(SETUPMAPPING, ROOT, bytes(40))),
                         rec(req(REMOVEMAPPING, ROOT, bytes(8))), rec(req(99, ROOT)),
                         rec(req(NOTIFY_REPLY, ROOT, bytes(16))), rec(req(SYNCFS, ROOT, bytes(8)))),
    # DAX: the session has an 8 MiB window (4 ranges of 2 MiB); "a" ends inside its first page (a copied tail)
    "dax": fuse_input(0, lookup(ROOT, "a"), open_(2, O_RDWR),
                      rec(req(SETUPMAPPING, 2, struct.pack("<QQQQQ", (1 << 64) - 1, 0, 2 << 20, 1, 2 << 20))),
                      rec(req(SETUPMAPPING, 2, struct.pack("<QQQQQ", (1 << 64) - 1, 0, 2 << 20, 3, 2 << 20))),
                      rec(req(WRITE, 2, write_in(FH0, 3000, b"grown" * 1000))),
                      rec(req(GETATTR, 2, struct.pack("<IIQ", 0, 0, 0))),
                      rec(req(SETATTR, 2, setattr_in(FATTR_SIZE | FATTR_FH, fh=FH0, size=10))),
                      rec(req(SETUPMAPPING, 2, struct.pack("<QQQQQ", 0, 2 << 20, 2 << 20, 2, 4 << 20))),
                      rec(req(REMOVEMAPPING, 2, struct.pack("<IQQQQ", 2, 2 << 20, 2 << 20, 4 << 20, 2 << 20))),
                      rec(req(SETUPMAPPING, ROOT, struct.pack("<QQQQQ", 0, 0, 2 << 20, 1, 0))),
                      rec(req(REMOVEMAPPING, 2, struct.pack("<IQQ", 3, 0, 2 << 20))),
                      rec(req(FSYNC, 2, struct.pack("<QII", FH0, 0, 0))), rec(req(DESTROY, 0))),
    "malformed": fuse_input(0, rec(req(GETATTR, ROOT, struct.pack("<IIQ", 0, 0, 0))[:30], fix=False),
                            rec(struct.pack("<IIQQIIIHH", 99, GETATTR, 5, 1, 0, 0, 0, 0, 0) + bytes(16), fix=False),
                            rec(struct.pack("<IIQQIIIHH", 56, GETATTR, 6, 1, 0, 0, 0, 8, 0) + bytes(16), fix=False),
                            rec(req(LOOKUP, ROOT, b"a"), reply=3), rec(req(LOOKUP, ROOT, name("a/b"))),
                            rec(req(LOOKUP, ROOT, b"\0")), rec(req(GETATTR, ROOT, b""), reply=2),
                            rec(req(WRITE, 2, write_in(FH0, 0, b"abc")[:-1]))),
    "small_replies": fuse_input(0, lookup(ROOT, "a"), rec(req(GETATTR, 2, bytes(16)), reply=9, wcuts=(1, 2, 3)),
                                rec(req(LOOKUP, ROOT, name("d")), reply=8, wcuts=(200, 100)),
                                rec(req(STATFS, ROOT), reply=4), rec(req(READLINK, ROOT), reply=0)),
    "escape": fuse_input(CFG_XATTR, lookup(ROOT, "up"), open_(2, O_RDONLY),
                         rec(req(SETATTR, 2, setattr_in(FATTR_MODE | FATTR_SIZE, mode=0o777, size=0))),
                         lookup(ROOT, "abs"), rec(req(MKDIR, 3, struct.pack("<II", 0o755, 0) + name("x"))),
                         rec(req(SETXATTR, 3, struct.pack("<II", 1, 0) + name("user.x") + b"1")),
                         rec(req(LINK, ROOT, struct.pack("<Q", 2) + name("up2"))),
                         rec(req(SETATTR, 3, setattr_in(FATTR_UID | FATTR_MTIME, uid=5, mtime=1))),
                         lookup(ROOT, "p"), open_(4, O_RDWR), rec(req(GETLK, 4, lk_in(0, 1, 0, 5, F_WRLCK))),
                         rec(req(LOOKUP, ROOT, name(".."))),
                         rec(req(RENAME, ROOT, struct.pack("<Q", 1) + name("a", "..")))),
    "writeback_append": fuse_input(CFG_WRITEBACK | CFG_CACHE_ALWAYS, lookup(ROOT, "a"),
                                   open_(2, O_WRONLY | O_APPEND),
                                   rec(req(WRITE, 2, write_in(FH0, 3, b"WB"))),
                                   rec(req(READ, 2, read_in(FH0, 0, 16)))),
    "uids": fuse_input(0, rec(req(MKDIR, ROOT, struct.pack("<II", 0o2770, 0) + name("g"), uid=1000, gid=2000)),
                       rec(req(CREATE, 2, struct.pack("<IIII", O_RDWR, 0o2755, 0, 0) + name("x"), uid=1001,
                               gid=2000)),
                       rec(req(MKNOD, 2, struct.pack("<IIII", S_IFREG | 0o4755, 0, 0, 0) + name("y"), uid=0xffffffff,
                               gid=0xffffffff))),
    "many": fuse_input(0, *[rec(req(MKNOD, ROOT, struct.pack("<IIII", S_IFREG | 0o600, 0, 0, 0) + name("n%d" % i)))
                            for i in range(105)], lookup(ROOT, "a"), *[open_(2, O_RDONLY) for _ in range(85)],
                       rec(req(DESTROY, 0))),
}

# ---------------------------------------------------------------------------------------------------- vring

VRING_F_NEXT, VRING_F_WRITE, VRING_F_INDIRECT = 1, 2, 4
GPA0, GPA1 = 0x10000, 0x20000


def vring_input(num_log2, flags, last_avail, used_idx, size0, size1, descs, avail_idx, heads, gpa1=GPA1,
                avail_flags=0, used_event=0, mem0=b"", mem1=b"", push_lens=b""):
    num = 1 << num_log2
    d = b"".join(struct.pack("<QIHH", *x) for x in descs).ljust(16 * num, b"\0")[:16 * num]
    ring = b"".join(struct.pack("<H", h) for h in heads).ljust(2 * num, b"\0")[:2 * num]
    avail = struct.pack("<HH", avail_flags, avail_idx) + ring + struct.pack("<H", used_event)
    hdr = struct.pack("<BBHHIHIH", num_log2, flags, last_avail, used_idx, GPA0, size0 - 1, gpa1, size1 - 1)
    return hdr + push_lens.ljust(8, b"\x10") + d + avail + mem0.ljust(size0, b"\0") + mem1


vring = {
    "direct": vring_input(3, 0, 0, 0, 4096, 4096,
                          [(GPA0, 64, VRING_F_NEXT, 1), (GPA0 + 64, 128, VRING_F_WRITE, 0),
                           (GPA0 + 256, 16, 0, 0)], 2, [0, 2]),
    "indirect": vring_input(2, 0x02, 0, 0, 4096, 4096, [(GPA0 + 1024, 48, VRING_F_INDIRECT, 0)], 1, [0],
                            mem0=bytes(1024) + b"".join(struct.pack("<QIHH", *x) for x in [
                                (GPA0, 40, VRING_F_NEXT, 1), (GPA1, 100, VRING_F_NEXT | VRING_F_WRITE, 2),
                                (GPA0 + 2048, 300, VRING_F_WRITE, 0)])),
    "split_regions": vring_input(4, 0x06, 0, 0, 4096, 2048,
                                 [(GPA0 + 4000, 200, VRING_F_NEXT, 1), (GPA0 + 100, 64, VRING_F_WRITE, 0)],
                                 1, [0], gpa1=GPA0 + 4096),
    "event_idx": vring_input(3, 0x01, 5, 5, 1024, 1024, [(GPA0, 16, 0, 0), (GPA0 + 16, 16, VRING_F_WRITE, 0)],
                             8, [0, 1, 0], used_event=6),
    "loop": vring_input(2, 0, 0, 0, 512, 512, [(GPA0, 8, VRING_F_NEXT, 1), (GPA0, 8, VRING_F_NEXT, 0)], 1, [0]),
    "bad_head": vring_input(2, 0, 0, 0, 512, 512, [(GPA0, 8, 0, 0)], 2, [0, 9]),
    "jump": vring_input(2, 0, 0, 0, 512, 512, [(GPA0, 8, 0, 0)], 200, [0]),
    "rd_after_wr": vring_input(2, 0, 0, 0, 512, 512,
                               [(GPA0, 8, VRING_F_NEXT | VRING_F_WRITE, 1), (GPA0 + 8, 8, 0, 0)], 1, [0]),
    "big_queue": vring_input(8, 0x01, 65530, 65530,
                             4096, 4096, [(GPA0 + 16 * i, 16, VRING_F_NEXT | (VRING_F_WRITE if i > 3 else 0), i + 1)
                                          for i in range(15)] + [(GPA1, 4096, VRING_F_WRITE, 0)], 65534,
                             [0] * 256),
}

# Packed rings (flags bit 0x20): the descriptor ring and the driver event area instead of the table and avail ring;
# last_avail / used_idx are the two halves of the vring base (slot | wrap << 15).
PACKED, P_AVAIL, P_USED = 0x20, 1 << 7, 1 << 15


def packed_input(num_log2, flags, avail_half, used_half, size0, size1, descs, driver_event=(0, 0), mem0=b"",
                 mem1=b"", push_lens=b""):
    num = 1 << num_log2
    d = b"".join(struct.pack("<QIHH", *x) for x in descs).ljust(16 * num, b"\0")[:16 * num]
    hdr = struct.pack("<BBHHIHIH", num_log2, flags | PACKED, avail_half, used_half, GPA0, size0 - 1, GPA1, size1 - 1)
    return (hdr + push_lens.ljust(8, b"\x10") + d + struct.pack("<HH", *driver_event) + mem0.ljust(size0, b"\0")
            + mem1)


vring.update({
    "packed_direct": packed_input(3, 0, 0x8000, 0x8000, 4096, 4096,
                                  [(GPA0, 64, 3, VRING_F_NEXT | P_AVAIL), (GPA0 + 64, 128, 3, VRING_F_WRITE | P_AVAIL),
                                   (GPA0 + 256, 16, 5, P_AVAIL)]),
    # a chain across the end of the ring: slots 2, 3 on lap 1, slot 0 on lap 0; EVENT_IDX with a driver event
    "packed_wrap": packed_input(2, 0x01, 0x8002, 0x8002, 1024, 1024,
                                [(GPA0 + 16, 32, 1, VRING_F_WRITE | P_USED), (0, 0, 0, 0),
                                 (GPA0, 8, 1, VRING_F_NEXT | P_AVAIL), (GPA0 + 8, 8, 1, VRING_F_NEXT | P_AVAIL)],
                                driver_event=(0x0001, 2)),
    "packed_indirect": packed_input(2, 0x02, 0x8000, 0x8000, 4096, 4096,
                                    [(GPA0 + 1024, 48, 2, VRING_F_INDIRECT | P_AVAIL)],
                                    mem0=bytes(1024) + b"".join(struct.pack("<QIHH", *x) for x in [
                                        (GPA0, 40, 0, 0), (GPA1, 100, 0, VRING_F_WRITE),
                                        (GPA0 + 2048, 300, 0, VRING_F_WRITE)])),
    "packed_bad": packed_input(2, 0, 0x8000, 0x8000, 512, 512,
                               [(GPA0, 8, 0, VRING_F_NEXT | VRING_F_WRITE | P_AVAIL), (GPA0 + 8, 8, 0, P_AVAIL),
                                (GPA0, 8, 9, P_AVAIL)]),
})

# ----------------------------------------------------------------------------------------------- vhost-user

GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 1, 2, 3, 4, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL = 8, 9, 10, 11, 12, 13
SET_VRING_ERR, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 14, 15, 16, 17, 18
SET_BACKEND_REQ_FD, GET_CONFIG, RESET_DEVICE, GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG = 21, 24, 34, 36, 37, 38
SET_LOG_BASE, LOG_ALL, PF_LOG_SHMFD = 6, 1 << 26, 1 << 1
FD_EVENT, FD_MEMFD, FD_MIXED, FD_PIPE = 0, 1, 2, 3
NEED_REPLY = 1 << 3
UADDR = 0x7f0000000000


def vmsg(request, payload=b"", nfds=0, kind=FD_EVENT, short=False, content=b"", flags=1, raw=False):
    """One record: ctl, u16 body length, [u16 content length, content], body."""
    ctl = nfds | (kind << 2) | (0 if raw else 0x10) | (0x20 if short else 0)
    body = payload if raw else struct.pack("<II", request, flags) + payload
    out = struct.pack("<BH", ctl, len(body))
    if kind in (FD_MEMFD, FD_MIXED) and nfds:
        out += struct.pack("<H", len(content)) + content
    return out + body


def region(gpa, size, uaddr, off):
    return struct.pack("<QQQQ", gpa, size, uaddr, off)


def ring_memory(num=8, chains=2):
    """Guest memory with a split ring (desc at 0, avail at 0x1000, used at 0x2000) and chains at 0x3000."""
    mem = bytearray(0x4000)
    for i in range(chains):
        d0, d1 = 2 * i, 2 * i + 1
        struct.pack_into("<QIHH", mem, 16 * d0, 0x3000 + 0x100 * i, 48, VRING_F_NEXT, d1)
        struct.pack_into("<QIHH", mem, 16 * d1, 0x3080 + 0x100 * i, 64, VRING_F_WRITE, 0)
        mem[0x3000 + 0x100 * i] = i % 4  # the dummy handler's mode
        struct.pack_into("<H", mem, 0x1004 + 2 * i, d0)
    struct.pack_into("<HH", mem, 0x1000, 0, chains)
    return bytes(mem)


DEFAULT_FEATURES = (1 << 32) | (1 << 30) | (1 << 29) | (1 << 28)


def setup(queue=1, num=8, mem=None, features=DEFAULT_FEATURES, short=False, pf=0x8029):
    mem = ring_memory(num) if mem is None else mem
    return (vmsg(GET_FEATURES) + vmsg(SET_FEATURES, struct.pack("<Q", features)) +
            vmsg(GET_PROTOCOL_FEATURES) + vmsg(SET_PROTOCOL_FEATURES, struct.pack("<Q", pf)) +
            vmsg(SET_OWNER) + vmsg(GET_QUEUE_NUM) + vmsg(GET_MAX_MEM_SLOTS) +
            vmsg(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region(0, 0x10000, UADDR, 0), nfds=1, kind=FD_MEMFD,
                 short=short, content=mem) +
            vmsg(SET_VRING_NUM, struct.pack("<II", queue, num)) + vmsg(SET_VRING_BASE, struct.pack("<II", queue, 0)) +
            vmsg(SET_VRING_ADDR, struct.pack("<IIQQQQ", queue, 0, UADDR, UADDR + 0x2000, UADDR + 0x1000, 0)) +
            vmsg(SET_VRING_CALL, struct.pack("<Q", queue), nfds=1) +
            vmsg(SET_VRING_ERR, struct.pack("<Q", queue), nfds=1) +
            vmsg(SET_VRING_KICK, struct.pack("<Q", queue), nfds=1) +
            vmsg(SET_VRING_ENABLE, struct.pack("<II", queue, 1)))


vhost_user = {
    "startup": setup() + vmsg(GET_VRING_BASE, struct.pack("<II", 1, 0)),
    "hiprio_and_mq": setup(queue=0) + setup(queue=2, num=16) + vmsg(SET_VRING_ENABLE, struct.pack("<II", 2, 0)) +
                     vmsg(GET_VRING_BASE, struct.pack("<II", 0, 0)),
    "mem_change": setup() + vmsg(ADD_MEM_REG, struct.pack("<Q", 0) + region(0x100000, 0x1000, UADDR + 0x100000, 0),
                                 nfds=1, kind=FD_MEMFD) +
                  vmsg(REM_MEM_REG, struct.pack("<Q", 0) + region(0x100000, 0x1000, UADDR + 0x100000, 0)) +
                  vmsg(SET_MEM_TABLE, struct.pack("<II", 2, 0) + region(0, 0x8000, UADDR, 0) +
                       region(0x8000, 0x8000, UADDR + 0x8000, 0x8000), nfds=2, kind=FD_MEMFD,
                       content=ring_memory()),
    "reset": setup() + vmsg(RESET_OWNER) + setup() + vmsg(RESET_DEVICE),
    # migration's start as QEMU 11.1.3 sends it (log, LOG_ALL, rings logged), a log replaced, logging off, a bad log
    "dirty_log": setup(pf=0x8029 | PF_LOG_SHMFD) +
                 vmsg(SET_LOG_BASE, struct.pack("<QQ", 0x1000, 0), nfds=1, kind=FD_MEMFD) +
                 vmsg(SET_FEATURES, struct.pack("<Q", DEFAULT_FEATURES | LOG_ALL), flags=1 | NEED_REPLY) +
                 vmsg(SET_VRING_ADDR, struct.pack("<IIQQQQ", 1, 1, UADDR, UADDR + 0x2000, UADDR + 0x1000, 0x2000)) +
                 vmsg(SET_LOG_BASE, struct.pack("<QQ", 8, 0x10), nfds=1, kind=FD_MEMFD) +
                 vmsg(GET_VRING_BASE, struct.pack("<II", 1, 0)) +
                 vmsg(SET_FEATURES, struct.pack("<Q", DEFAULT_FEATURES)) +
                 vmsg(SET_LOG_BASE, struct.pack("<QQ", 0x1000, 1 << 62), nfds=1, kind=FD_MEMFD, short=True),
    "need_reply": vmsg(SET_PROTOCOL_FEATURES, struct.pack("<Q", 0x8), flags=1 | NEED_REPLY) +
                  vmsg(SET_VRING_NUM, struct.pack("<II", 1, 3), flags=1 | NEED_REPLY) +
                  vmsg(SET_VRING_NUM, struct.pack("<II", 40, 8), flags=1 | NEED_REPLY) +
                  vmsg(SET_FEATURES, struct.pack("<Q", 1 << 60), flags=1 | NEED_REPLY) +
                  vmsg(GET_CONFIG, bytes(12), flags=1 | NEED_REPLY),
    "fds": vmsg(SET_BACKEND_REQ_FD, nfds=1, kind=FD_PIPE) + vmsg(SET_VRING_KICK, struct.pack("<Q", 0x100)) +
           vmsg(SET_VRING_CALL, struct.pack("<Q", 0x101), nfds=1) + vmsg(GET_FEATURES, nfds=2) +
           vmsg(SET_VRING_KICK, struct.pack("<Q", 3), nfds=1, kind=FD_PIPE),
    "malformed": vmsg(0, b"\x01\x00\x00\x00\x05\x00\x00\x00\xff\x02\x00\x00", raw=True) +
                 vmsg(GET_FEATURES, flags=5) + vmsg(GET_FEATURES, b"\0" * 8),
    "broken_ring": vmsg(SET_FEATURES, struct.pack("<Q", (1 << 32) | (1 << 30))) +
                   vmsg(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region(0, 0x4000, UADDR, 0), nfds=1,
                        kind=FD_MEMFD, content=struct.pack("<HH", 0, 300).rjust(0x1004, b"\0")) +
                   vmsg(SET_VRING_NUM, struct.pack("<II", 1, 8)) +
                   vmsg(SET_VRING_ADDR, struct.pack("<IIQQQQ", 1, 0, UADDR, UADDR + 0x2000, UADDR + 0x1000, 0)) +
                   vmsg(SET_VRING_ERR, struct.pack("<Q", 1), nfds=1) +
                   vmsg(SET_VRING_KICK, struct.pack("<Q", 1), nfds=1) + vmsg(SET_VRING_ENABLE, struct.pack("<II", 1, 1)) +
                   vmsg(SET_VRING_ADDR, struct.pack("<IIQQQQ", 1, 0, UADDR, UADDR + 0x2000, UADDR + 0x1000, 0)),
}


def write_all(sub, entries):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    for k, v in entries.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
    print(f"{d}: {len(entries)} seeds")


write_all("fuse_request", fuse)
write_all("vring", vring)
write_all("vhost_user", {k: bytes([2]) + v for k, v in vhost_user.items()})
