# vufs — build everything into build/ (or build-san/ with SAN=1).
#   make            build vufsd, vufs-mount, tests and benchmarks
#   make check      install test dependencies, build (plain and sanitizer), run every test
#   make demo       share a sample directory with a real guest under QEMU (TCG)
#   make bench      run the benchmarks
#   make fuzz       run each libFuzzer harness for FUZZ_SECONDS
#   make install    install the programs, man pages and the vhost-user backend descriptor libvirt and QEMU
#                   read (PREFIX=/usr/local, DESTDIR, VHOST_USER_DIR=/usr/share/qemu/vhost-user); make uninstall

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
          -pthread -Isrc $(SANFLAGS) -MMD -MP
LDFLAGS += -pthread $(SANFLAGS)
LIBS := -lseccomp -lcap-ng

CORE_SRC := $(wildcard src/common/*.c src/transport/*.c src/protocol/*.c src/fs/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/daemon/*.c))
MOUNT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard src/mount/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Programs that run inside the busybox guest must be static and need nothing from our library.
STATIC_SRC := $(wildcard tests/posix/*.c tests/stress/*.c)
STATIC_BIN := $(patsubst %.c,$(BUILD)/%,$(notdir $(STATIC_SRC)))
TOOL_SRC := $(wildcard tests/tools/*.c bench/*.c)
TOOL_BIN := $(patsubst %.c,$(BUILD)/%,$(notdir $(TOOL_SRC)))

all: $(BUILD)/vufsd $(BUILD)/vufs-mount $(UNIT_BIN) $(STATIC_BIN) $(TOOL_BIN)

deps:
	@scripts/deps.sh build

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libvufs.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/vufsd: $(DAEMON_OBJ) $(BUILD)/libvufs.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/vufs-mount: $(MOUNT_OBJ) $(BUILD)/libvufs.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvufs.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(BUILD)/libvufs.a -lcmocka $(LIBS)

# Unit tests of vufs-mount parts, which are not in the library.
$(BUILD)/tests/test_forgets: $(BUILD)/obj/src/mount/forgets.o
$(BUILD)/tests/test_mount_dax: $(BUILD)/obj/src/mount/dax.o $(BUILD)/obj/src/mount/dax_guard.o
# ... and of vufsd's, which is not either.
$(BUILD)/tests/test_userns_map: $(BUILD)/obj/src/daemon/userns_map.o
# The protocol room over the stub file system (tests/unit/fs_stub.c), not the passthrough.
$(BUILD)/tests/test_fuse_stub: $(BUILD)/obj/tests/unit/fs_stub.o

# Fault injection (tests/unit/test_fs_faults.c): every system call and allocation function the fs and protocol
# rooms call goes through the test's __wrap_SYM, which can fail the Nth one. The names are the ones the objects
# reference (nm -u; with _FILE_OFFSET_BITS=64 glibc renames open to open64 and the like); the test checks that
# the baseline session reaches the main ones, so a renamed symbol shows up as a failure, not as silence.
FAULT_WRAP := malloc calloc realloc free strdup open64 openat64 close statx fstatvfs64 fchmod fchmodat fchownat \
              ftruncate64 futimens utimensat faccessat mkdirat mknodat symlinkat linkat unlinkat renameat2 \
              readlinkat preadv64v2 pwritev64v2 fcntl64 flock fsync fdatasync fallocate64 lseek64 copy_file_range \
              syncfs syscall fsetxattr fgetxattr flistxattr fremovexattr setxattr getxattr listxattr removexattr \
              fchdir memfd_create pread64 pwrite64 name_to_handle_at open_by_handle_at
comma := ,
$(BUILD)/tests/test_fs_faults: tests/unit/test_fs_faults.c $(BUILD)/libvufs.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(addprefix -Wl$(comma)--wrap=,$(FAULT_WRAP)) -o $@ $< $(BUILD)/libvufs.a \
		-lcmocka $(LIBS)

vpath %.c tests/posix tests/stress tests/tools bench
$(STATIC_BIN): $(BUILD)/%: %.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread -static -o $@ $<

$(TOOL_BIN): $(BUILD)/%: %.c $(BUILD)/libvufs.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libvufs.a $(LIBS)

check:
	@scripts/deps.sh check
	$(MAKE) all
	$(MAKE) SAN=1 all
	tests/run.sh

# check, plus the tests marked "# extended" (the hostile suite against the peer daemons, for the report).
check-extended:
	@scripts/deps.sh check
	$(MAKE) all
	$(MAKE) SAN=1 all
	VUFS_EXTENDED=1 tests/run.sh

demo:
	@scripts/deps.sh demo
	$(MAKE) all
	tests/vm/demo.sh

bench:
	@scripts/deps.sh bench
	$(MAKE) all
	bench/run.sh

fuzz:
	@scripts/deps.sh fuzz
	fuzz/run.sh $(FUZZ_SECONDS)

PREFIX ?= /usr/local
VHOST_USER_DIR ?= /usr/share/qemu/vhost-user
# 40- sorts before QEMU's 50-qemu-virtiofsd.json: libvirt takes the first "fs" backend it finds.
VHOST_USER_JSON := 40-vufsd.json

install: $(BUILD)/vufsd $(BUILD)/vufs-mount
	install -D -m 0755 $(BUILD)/vufsd $(DESTDIR)$(PREFIX)/libexec/vufsd
	install -D -m 0755 $(BUILD)/vufs-mount $(DESTDIR)$(PREFIX)/bin/vufs-mount
	install -D -m 0644 man/vufsd.8 $(DESTDIR)$(PREFIX)/share/man/man8/vufsd.8
	install -D -m 0644 man/vufs-mount.8 $(DESTDIR)$(PREFIX)/share/man/man8/vufs-mount.8
	mkdir -p $(DESTDIR)$(VHOST_USER_DIR)
	printf '{\n  "description": "vufs virtio-fs backend (vufsd)",\n  "type": "fs",\n  "binary": "%s"\n}\n' \
	  '$(PREFIX)/libexec/vufsd' > $(DESTDIR)$(VHOST_USER_DIR)/$(VHOST_USER_JSON)

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/libexec/vufsd $(DESTDIR)$(PREFIX)/bin/vufs-mount \
	  $(DESTDIR)$(PREFIX)/share/man/man8/vufsd.8 $(DESTDIR)$(PREFIX)/share/man/man8/vufs-mount.8 \
	  $(DESTDIR)$(VHOST_USER_DIR)/$(VHOST_USER_JSON)

clean:
	rm -rf build build-san build-fuzz

.PHONY: all deps check check-extended demo install uninstall bench fuzz clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
