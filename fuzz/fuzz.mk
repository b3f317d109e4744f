# Builds the libFuzzer harnesses into build-fuzz/ with clang (used by fuzz/run.sh; run from the top directory).
# The sources they test are compiled here again, with the fuzzer's coverage instrumentation and sanitizers.
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
               -g -O1 -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Isrc -pthread -Wall -Wextra \
               -Wno-unused-parameter -MMD -MP

FS_SRC := $(wildcard src/fs/*.c)
PROTO_SRC := $(wildcard src/protocol/*.c)
VQ_SRC := src/transport/vq_device.c src/transport/vq_device_packed.c src/transport/guest_mem.c
VU_SRC := $(VQ_SRC) src/transport/vu_device.c src/transport/vu_queue.c src/transport/vu_pool.c src/transport/vu_backend.c src/transport/vu_state.c \
          src/transport/vhost_user.c src/transport/vu_log.c src/transport/dirty_log.c

obj = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(1))

HARNESSES := fuzz_fuse_request fuzz_fuse_stub fuzz_fs_state fuzz_vring fuzz_vhost_user
all: $(addprefix $(FUZZ_BUILD)/,$(HARNESSES))

$(FUZZ_BUILD)/fuzz_fuse_request: $(call obj,fuzz/fuzz_fuse_request.c fuzz/fuzz_log.c $(PROTO_SRC) $(FS_SRC) src/transport/shm_window.c)
# The same harness over the stub file system (no host system calls): the protocol room only (1.5x the executions
# of fuzz_fuse_request here: the harness's own per-input checks dominate once the system calls are gone).
$(FUZZ_BUILD)/fuzz_fuse_stub: $(call obj,fuzz/fuzz_fuse_stub.c tests/unit/fs_stub.c fuzz/fuzz_log.c $(PROTO_SRC) $(FS_SRC) src/transport/shm_window.c)
$(FUZZ_BUILD)/fuzz_fs_state: $(call obj,fuzz/fuzz_fs_state.c fuzz/fuzz_log.c $(PROTO_SRC) $(FS_SRC) src/transport/shm_window.c)
$(FUZZ_BUILD)/fuzz_vring: $(call obj,fuzz/fuzz_vring.c fuzz/fuzz_log.c $(VQ_SRC))
$(FUZZ_BUILD)/fuzz_vhost_user: $(call obj,fuzz/fuzz_vhost_user.c fuzz/fuzz_log.c $(VU_SRC))

$(addprefix $(FUZZ_BUILD)/,$(HARNESSES)):
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $^

$(FUZZ_BUILD)/obj/fuzz/fuzz_fuse_stub.o: fuzz/fuzz_fuse_request.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DVUFS_FUZZ_STUB -c -o $@ $<

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

.PHONY: all
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
