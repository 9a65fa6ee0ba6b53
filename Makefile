# fanq - see README.md.  `make` builds the libraries, examples and bench;
# `make check` runs the test suites; `make bench` runs the default comparison.

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

VERSION := 0.1.0
SOMAJOR := 0

CC ?= cc
SAN ?=
OPT ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BUILD ?= build$(if $(SAN),-$(SAN))

# Debian packages this tree needs; installed by `make deps` when missing:
# the library (liburcu), the tests (check, curl for the integration
# scripts) and the libuv example.
DEB_PKGS := liburcu-dev check pkg-config curl libuv1-dev
URCU_PC := liburcu-bp liburcu-cds

DEPS_STAMP := $(BUILD)/.deps-ok
URCU_CFLAGS = $(shell pkg-config --cflags $(URCU_PC) 2>/dev/null)
URCU_LIBS = $(shell pkg-config --libs $(URCU_PC) 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

ifneq ($(filter asan allocfail,$(SAN)),)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# allocation-failure injection (lib/alloc.c), run by `make check-allocfail`
ifeq ($(SAN),allocfail)
CPPFLAGS += -DFANQ_ALLOC_FAIL
endif
ifeq ($(SAN),tsan)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer -DFANQ_TSAN=1
endif
# libFuzzer coverage in every object, run by `make fuzz` (with CC=clang)
ifeq ($(SAN),fuzz)
SANFLAGS := -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
DEB_PKGS += clang
endif

CPPFLAGS += -Iinclude -D_GNU_SOURCE
CFLAGS += -std=c11 $(OPT) $(WARN) $(SANFLAGS) -pthread
LIB_CFLAGS := -fPIC -fvisibility=hidden $(URCU_CFLAGS)
LDFLAGS += $(SANFLAGS) -pthread

LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
STATIC_LIB := $(BUILD)/libfanq.a
SHARED_LIB := $(BUILD)/libfanq.so.$(VERSION)
SONAME := libfanq.so.$(SOMAJOR)

# Programs link the static library so they run from the tree.
FANQ_LINK = $(STATIC_LIB) $(URCU_LIBS) -pthread

.PHONY: all deps check clean install uninstall bench check-asan check-tsan check-valgrind \
	check-allocfail
all: $(STATIC_LIB) $(SHARED_LIB)

# $(1): Debian packages that must be installed (by apt-get when root);
# used as the recipe of a stamp file.
define fanq_apt
	@mkdir -p $(dir $@)
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "fanq: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else echo "fanq: missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	fi
	@touch $@
endef

deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	$(call fanq_apt,$(DEB_PKGS))

$(BUILD)/lib/%.o: lib/%.c include/fanq.h $(wildcard lib/*.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(LDFLAGS) $(URCU_LIBS)
	ln -sf libfanq.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf libfanq.so.$(VERSION) $(BUILD)/libfanq.so

$(BUILD)/fanq.pc: pkgconfig/fanq.pc.in Makefile
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

install: all $(BUILD)/fanq.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/fanq.h $(DESTDIR)$(INCLUDEDIR)/fanq.h
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libfanq.a
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/libfanq.so.$(VERSION)
	ln -sf libfanq.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfanq.so
	install -m 644 $(BUILD)/fanq.pc $(DESTDIR)$(PKGCONFIGDIR)/fanq.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/fanq.h $(DESTDIR)$(LIBDIR)/libfanq.* $(DESTDIR)$(PKGCONFIGDIR)/fanq.pc

clean:
	rm -rf build build-asan build-tsan build-allocfail build-fuzz

# Each part of the tree adds its programs and targets here.
-include tests/tests.mk
-include examples/examples.mk
-include bench/bench.mk
