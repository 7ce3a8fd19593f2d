# callvault: plain Makefile with pkg-config.
#
#   make            build build/callvault
#   make check      every test (unit + integration), -Werror, ASan + UBSan
#   make demo       build, create a demo vault, mount it, show it
#   make demo-stop  unmount the demo
#   make bench      benchmarks, as ratios against baselines run alongside
#   make deps       install every build and test dependency (apt-get)
#   make install    PREFIX=/usr DESTDIR=...
#   make deb        build/callvault_VERSION_ARCH.deb (dpkg-buildpackage)
#   make rpm        build/rpm/RPMS/... from packaging/rpm/callvault.spec
#   make check-packaging  deb + lintian + install/remove here + unit + rpm
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (60) each
#   make check-fuzz every target briefly, and the regression inputs
#   make soak       10 minutes of 50 recorders, 20 readers and the sweeper
#                   on the sanitized build (docs/soak.md)
#   make soak-valgrind  a short soak with the daemon under valgrind memcheck
#   make SANITIZE=address,undefined   any build with sanitizers

PREFIX ?= /usr
DESTDIR ?=
BUILD ?= build
SANITIZE ?=
WERROR ?=

PKGS := fuse3 libsodium opus ogg sndfile sqlite3 jansson inih speexdsp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-missing-field-initializers
SAN_FLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all)
override CPPFLAGS += -Iinclude -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-DFUSE_USE_VERSION=35
ALL_CFLAGS := -std=c11 $(WARNINGS) $(if $(WERROR),-Werror) $(CFLAGS) \
	$(PKG_CFLAGS) $(SAN_FLAGS) -fstack-protector-strong
ALL_LDFLAGS := $(LDFLAGS) $(SAN_FLAGS) -Wl,-z,relro,-z,now
LIBS := $(PKG_LIBS) -lpthread -lm

SRCS := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Debian packages: build, tests, demo, benchmarks. The only place packages
# are installed.
DEPS_BUILD := build-essential pkg-config libfuse3-dev fuse3 libsodium-dev \
	libopus-dev libogg-dev libsndfile1-dev libsqlite3-dev libjansson-dev \
	libinih-dev libspeexdsp-dev
DEPS_TEST := python3 python3-pytest sox ffmpeg opus-tools attr rsync restic \
	sqlite3 util-linux procps psmisc coreutils findutils tar valgrind
DEPS_BENCH := gocryptfs
# make deb / rpm / check-packaging; systemd for systemd-analyze verify.
DEPS_PACKAGING := dpkg-dev debhelper fakeroot lintian scdoc rpm systemd \
	man-db adduser
# make fuzz / check-fuzz: clang and its libFuzzer runtime (the default
# clang's libclang_rt.fuzzer-x86_64.a).
DEPS_FUZZ := clang libclang-rt-dev
DEPS := $(DEPS_BUILD) $(DEPS_TEST) $(DEPS_BENCH) $(DEPS_PACKAGING) \
	$(DEPS_FUZZ)

.PHONY: all check check-unit check-integration demo demo-stop bench deps \
	crash soak soak-valgrind \
	install clean format deb rpm check-packaging fuzz check-fuzz \
	fuzz-build

all: $(BUILD)/callvault

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcallvault.a: $(OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/callvault: $(BUILD)/obj/main.o $(BUILD)/libcallvault.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(BUILD)/libcallvault.a | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(BUILD)/libcallvault.a $(LIBS)

# The bench's synthetic catalog generator (bench/gencat.c).
$(BUILD)/gencat: bench/gencat.c $(BUILD)/libcallvault.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(BUILD)/libcallvault.a $(LIBS)

-include $(OBJS:.o=.d) $(BUILD)/obj/main.d

# Every test, in a separate sanitized -Werror build so that a plain `make`
# build is never mixed with it.
check: deps check-fuzz
	$(MAKE) BUILD=build/check SANITIZE=address,undefined WERROR=1 \
		check-unit check-integration

check-unit: $(UNIT_BINS)
	tests/run-unit $(UNIT_BINS)

check-integration: $(BUILD)/callvault
	CALLVAULT_BIN=$(abspath $(BUILD)/callvault) \
		tests/run-integration

# Crash consistency, long mode (docs/recorders.md, "Crash test"): the
# daemon killed CRASH_ITERATIONS times under recorders and readers, on the
# sanitized build. make check runs 3 iterations (test_crashloop.py).
CRASH_ITERATIONS ?= 200
crash: deps
	$(MAKE) BUILD=build/check SANITIZE=address,undefined WERROR=1 \
		build/check/callvault
	CALLVAULT_BIN=$(abspath build/check/callvault) \
		tests/crash/crashloop --iterations $(CRASH_ITERATIONS)

# Soak, long mode (docs/soak.md): SOAK_SECONDS of 50 recorders, 20 readers
# of every role and the sweeper with short retention, on the sanitized
# build. make check runs 60 s (test_soak.py).
SOAK_SECONDS ?= 600
soak: deps
	$(MAKE) BUILD=build/check SANITIZE=address,undefined WERROR=1 \
		build/check/callvault
	CALLVAULT_BIN=$(abspath build/check/callvault) \
		tests/soak/soak --seconds $(SOAK_SECONDS)

# The same with the daemon under valgrind memcheck, on a plain -O1 -g
# build (valgrind and ASan do not mix): shorter, with fewer workers.
SOAK_VALGRIND_SECONDS ?= 120
soak-valgrind: deps
	$(MAKE) BUILD=build/valgrind CFLAGS="-O1 -g" WERROR=1 \
		build/valgrind/callvault
	CALLVAULT_BIN=$(abspath build/valgrind/callvault) \
		tests/soak/soak --valgrind --seconds $(SOAK_VALGRIND_SECONDS)

# libFuzzer targets (docs/fuzzing.md): tests/fuzz/fuzz_NAME.c, built with
# clang into build/fuzz/ against the library compiled for coverage with
# ASan + UBSan. New inputs found go to build/fuzz/corpus/NAME (the seeds
# in tests/fuzz/corpus/NAME are only read), crashes to build/fuzz/crash/.
FUZZ_DIR := build/fuzz
FUZZ_CC := clang
FUZZ_SECONDS ?= 60
# make check: seconds per target (8 targets: about 60 s, plus the
# first build of build/fuzz/, about 35 s).
FUZZ_CHECK_SECONDS ?= 6
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 $(WARNINGS) -g -O1 $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_OPTS := -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
	-print_final_stats=1
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

$(FUZZ_DIR)/obj:
	mkdir -p $@

$(FUZZ_DIR)/obj/%.o: src/%.c | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
		-MMD -MP -c $< -o $@

$(FUZZ_DIR)/libcallvault.a: $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h \
		$(FUZZ_DIR)/libcallvault.a
	$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz $(FUZZ_CFLAGS) -Werror \
		-fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libcallvault.a $(LIBS)

-include $(FUZZ_OBJS:.o=.d)

fuzz-build: $(FUZZ_BINS)

# Each target in turn: the regression inputs replayed, then fuzzing from
# the seeds and what earlier runs found, for $(1) seconds.
define fuzz_run
	@set -e; for t in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crash; \
		if [ -n "$$(ls tests/fuzz/regress/$$t 2>/dev/null)" ]; then \
			echo "fuzz_$$t: regression inputs"; \
			$(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t $(FUZZ_OPTS) \
				tests/fuzz/regress/$$t/* \
				>$(FUZZ_DIR)/$$t-regress.log 2>&1 || \
				{ tail -n 60 $(FUZZ_DIR)/$$t-regress.log; \
				exit 1; }; \
		fi; \
		echo "fuzz_$$t: $(1) s"; \
		dict=; [ -f tests/fuzz/$$t.dict ] && \
			dict=-dict=tests/fuzz/$$t.dict; \
		$(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t $(FUZZ_OPTS) $$dict \
			-max_total_time=$(1) \
			-artifact_prefix=$(FUZZ_DIR)/crash/$$t- \
			$(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t \
			>$(FUZZ_DIR)/$$t.log 2>&1 || \
			{ tail -n 60 $(FUZZ_DIR)/$$t.log; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
			$(FUZZ_DIR)/$$t.log | tr '\n' ' '; echo; \
	done
endef

fuzz: deps
	$(MAKE) fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

check-fuzz: deps
	$(MAKE) fuzz-build
	$(call fuzz_run,$(FUZZ_CHECK_SECONDS))

# deps first, then a fresh make: pkg-config's flags are read when make
# parses this file, so a first build must come after the packages.
demo: deps
	$(MAKE) all
	scripts/demo start $(abspath $(BUILD))

demo-stop:
	scripts/demo stop $(abspath $(BUILD))

bench: deps
	$(MAKE) BUILD=build/bench CFLAGS="-O2 -g -DNDEBUG" all \
		build/bench/gencat
	bench/run $(abspath build/bench/callvault)

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing; \
	else echo "all dependencies are installed"; fi

install: $(BUILD)/callvault
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin
	install -m 0755 $(BUILD)/callvault $(DESTDIR)$(PREFIX)/bin/callvault
	ln -sf $(PREFIX)/bin/callvault $(DESTDIR)/sbin/mount.callvault

# Packages are built from a copy of the tree under build/, so that the
# Debian tooling never writes into the working tree.
VERSION := $(shell awk -F'[()]' 'NR == 1 { print $$2 }' \
	packaging/debian/changelog)
PKG_FILES := Makefile README.md src include docs packaging
DEB_TREE := build/deb/callvault-$(VERSION)

deb:
	rm -rf build/deb
	mkdir -p $(DEB_TREE)
	cp -a $(PKG_FILES) $(DEB_TREE)/
	cp -a packaging/debian $(DEB_TREE)/debian
	cp packaging/systemd/callvault@.service $(DEB_TREE)/debian/
	cd $(DEB_TREE) && dpkg-buildpackage -us -uc -b
	cp build/deb/callvault_$(VERSION)_*.deb build/

# rpmbuild on a Debian machine cannot see Debian's packages as
# BuildRequires: --nodeps; a Fedora or RHEL build leaves it out.
rpm:
	rm -rf build/rpm
	mkdir -p build/rpm/SOURCES
	tar -czf build/rpm/SOURCES/callvault-$(VERSION).tar.gz \
		--transform 's,^,callvault-$(VERSION)/,' $(PKG_FILES)
	rpmbuild -bb --nodeps --define "_topdir $(abspath build/rpm)" \
		--define "version_from_make $(VERSION)" \
		packaging/rpm/callvault.spec

# Installs the .deb on this machine and removes it again: not part of
# `make check`.
check-packaging: deb rpm
	packaging/check-packaging build/callvault_$(VERSION)_*.deb

format:
	clang-format -i src/*.c include/callvault/*.h tests/unit/*.c tests/unit/*.h

clean:
	rm -rf build
