# isola — build front door. `make` builds, `make demo` runs the demo,
# `make check` runs every test, `make bench` the benchmarks.
CC       ?= cc
BUILD    ?= build
WERROR   ?= $(if $(CI),-Werror,)
# -Wno-unused-result: FORTIFY marks calls such as fchownat warn_unused_result,
# and GCC does not accept the (void) cast the code uses for a result ignored
# on purpose.
WARN     := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 -Wvla \
            -Wimplicit-fallthrough -Wno-unused-parameter -Wno-sign-compare -Wno-unused-result $(WERROR)
CFLAGS   ?= -O2 -g
# Hardening: the binaries run as root. FORTIFY needs optimisation (-O1 and
# up) and clashes with ASan (the asan target empties it); -frecord-gcc-switches
# keeps the flags in the binaries for scripts/check-hardening.sh.
FORTIFY  ?= -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3
HARDEN   := $(FORTIFY) -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIE \
            -frecord-gcc-switches
HARDEN_LDFLAGS := -Wl,-z,relro,-z,now
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -Isrc $(WARN) -fno-strict-aliasing $(HARDEN)
LIBS     := -ljansson -lseccomp
# isola-oci is linked statically: no dynamic loader work on every start.
# Static PIE keeps ASLR for it (glibc's rcrt1.o; the Debian static archives
# of jansson and libseccomp are position independent). STATIC= (asan) links
# dynamically, then as an ordinary PIE.
STATIC   ?= -static-pie
LINKMODE  = $(if $(STATIC),$(STATIC),-pie)

LIB_SRC  := $(wildcard src/util/*.c src/spec/*.c src/sandbox/*.c src/runtime/*.c)
OCI_SRC  := $(wildcard src/cmd/isola-oci/*.c)
# The manager (src/manager) and its CLI `isola`: linked dynamically, it is
# not on the container start path.
MGR_SRC  := $(wildcard src/manager/*.c)
ISOLA_SRC := $(wildcard src/cmd/isola/*.c)
MGR_LIBS := -lsqlite3 -larchive -lcrypto
UNIT_SRC := $(wildcard tests/unit/test-*.c)
# The virtual-machine layer (src/vm): QEMU command lines, the QMP client, the
# guest agent's host side. Linked into the test driver and unit tests for now.
VM_SRC   := $(wildcard src/vm/*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
OCI_OBJ  := $(OCI_SRC:%.c=$(BUILD)/obj/%.o)
MGR_OBJ  := $(MGR_SRC:%.c=$(BUILD)/obj/%.o)
ISOLA_OBJ := $(ISOLA_SRC:%.c=$(BUILD)/obj/%.o)
VM_OBJ   := $(VM_SRC:%.c=$(BUILD)/obj/%.o)
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)

all: $(BUILD)/isola-oci $(BUILD)/isola $(BUILD)/isola-monitor $(BUILD)/rootfs.stamp

deps:
	@scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libisola.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/isola-oci: $(OCI_OBJ) $(BUILD)/libisola.a
	$(CC) $(CFLAGS) $(LINKMODE) $(HARDEN_LDFLAGS) -o $@ $(OCI_OBJ) $(BUILD)/libisola.a $(LIBS)

$(BUILD)/libisola-manager.a: $(MGR_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/isola: $(ISOLA_OBJ) $(BUILD)/libisola-manager.a $(BUILD)/libisola.a
	$(CC) $(CFLAGS) -pie $(HARDEN_LDFLAGS) -o $@ $(ISOLA_OBJ) $(BUILD)/libisola-manager.a $(BUILD)/libisola.a $(LIBS) $(MGR_LIBS)

# The per-instance monitor: a small static program with no library of ours,
# so that it stays well under 1 MiB of resident memory for the instance's life.
MON_SRC  := $(wildcard src/cmd/isola-monitor/*.c)
$(BUILD)/isola-monitor: $(MON_SRC) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LINKMODE) $(HARDEN_LDFLAGS) -o $@ $(MON_SRC)

$(BUILD)/libisola-vm.a: $(VM_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The guest agent runs inside the VM: static, no library of ours, and never
# built with the sanitizers (its own flags, whatever CFLAGS the build has).
AGENT_CFLAGS := -O2 -g -std=gnu11 -D_GNU_SOURCE -Isrc $(WARN) -fno-strict-aliasing -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 \
                -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIE -frecord-gcc-switches
$(BUILD)/isola-agent: $(wildcard src/cmd/isola-agent/*.c) src/vm/agent-proto.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(AGENT_CFLAGS) -static-pie $(HARDEN_LDFLAGS) -o $@ $(filter %.c,$^)

# The built-in VM image (kernel, initramfs, base disk) under $(BUILD)/vm,
# made from Debian packages by scripts/mkvmimage.sh; the downloaded kernel
# package and what is extracted from it stay in build/vm-cache for every
# build directory. Built for `make vm` and the integration tests, not by `make`.
$(BUILD)/vm.stamp: scripts/mkvmimage.sh $(BUILD)/isola-agent
	scripts/mkvmimage.sh $(BUILD)/vm $(BUILD)/isola-agent build/vm-cache
	@touch $@

# The VM layer's test driver (tests/vm): the library's operations as commands.
$(BUILD)/vmctl: $(wildcard tests/vm/*.c) $(BUILD)/libisola-vm.a $(BUILD)/libisola.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -pie $(HARDEN_LDFLAGS) -o $@ $(filter %.c,$^) $(BUILD)/libisola-vm.a $(BUILD)/libisola.a $(LIBS)

vm: $(BUILD)/vm.stamp $(BUILD)/vmctl

# Unit tests of the VM layer (test-vm-*.c) link its library.
$(BUILD)/unit/test-vm-%: tests/unit/test-vm-%.c $(BUILD)/libisola-vm.a $(BUILD)/libisola.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libisola-vm.a $(BUILD)/libisola.a $(LIBS)

# Unit tests of the manager (test-image-*.c, test-manager-*.c) also link the manager library.
MGR_UNIT_LINK = $(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libisola-manager.a $(BUILD)/libisola.a $(LIBS) $(MGR_LIBS)
$(BUILD)/unit/test-image-%: tests/unit/test-image-%.c $(BUILD)/libisola-manager.a $(BUILD)/libisola.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(MGR_UNIT_LINK)
$(BUILD)/unit/test-manager-%: tests/unit/test-manager-%.c $(BUILD)/libisola-manager.a $(BUILD)/libisola.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(MGR_UNIT_LINK)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libisola.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libisola.a $(LIBS)

$(BUILD)/rootfs.stamp: scripts/mkrootfs.sh
	@mkdir -p $(BUILD)
	scripts/mkrootfs.sh $(abspath $(BUILD))/rootfs
	@touch $@

demo: deps all
	@scripts/demo.sh $(BUILD)

demo-oci: deps all
	@scripts/demo-oci.sh $(BUILD)

unit: $(UNITS)
	@pass=0; fail=0; for t in $(UNITS); do \
	  if $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAIL $$t"; fi; done; \
	  echo "unit programs: $$pass passed, $$fail failed"; [ $$fail -eq 0 ]

# The hardening flags above must show in the binaries (PIE, full RELRO,
# stack protector, stack clash and CET instrumentation, FORTIFY); see the script.
check-hardening: all $(BUILD)/isola-agent
	scripts/check-hardening.sh --static $(BUILD)/isola-oci $(BUILD)/isola-monitor $(BUILD)/isola-agent
	scripts/check-hardening.sh $(BUILD)/isola

integration: all vm
	ISOLA_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# AddressSanitizer + UndefinedBehaviorSanitizer pass: unit tests and one
# integration pass against the sanitized runtime.
asan:
	$(MAKE) BUILD=build-asan STATIC= FORTIFY= WERROR=$(WERROR) \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  all vm unit check-hardening integration PYTEST_ARGS="$(PYTEST_ARGS)"

check: deps all
	$(MAKE) unit
	$(MAKE) check-hardening
	$(MAKE) integration
	ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(MAKE) asan

bench: deps all
	bench/run.sh $(abspath $(BUILD))

clean:
	rm -rf build build-asan

.PHONY: all deps demo demo-oci unit check-hardening integration asan check bench clean vm
-include $(LIB_OBJ:.o=.d) $(OCI_OBJ:.o=.d) $(MGR_OBJ:.o=.d) $(ISOLA_OBJ:.o=.d) $(VM_OBJ:.o=.d)
