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
	sqlite3 util-linux procps psmisc coreutils findutils tar
DEPS_BENCH := gocryptfs
# make deb / rpm / check-packaging; systemd for systemd-analyze verify.
DEPS_PACKAGING := dpkg-dev debhelper fakeroot lintian scdoc rpm systemd \
	man-db adduser
DEPS := $(DEPS_BUILD) $(DEPS_TEST) $(DEPS_BENCH) $(DEPS_PACKAGING)

.PHONY: all check check-unit check-integration demo demo-stop bench deps \
	install clean format deb rpm check-packaging

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
check: deps
	$(MAKE) BUILD=build/check SANITIZE=address,undefined WERROR=1 \
		check-unit check-integration

check-unit: $(UNIT_BINS)
	tests/run-unit $(UNIT_BINS)

check-integration: $(BUILD)/callvault
	CALLVAULT_BIN=$(abspath $(BUILD)/callvault) \
		tests/run-integration

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
