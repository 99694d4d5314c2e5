# osirisd: build, test, install. `make demo` and `make check` are the two
# commands a fresh machine needs (each first installs what it is missing).

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/osiris
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR	?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

CC	?= cc
SAN	?=
ifeq ($(SAN),1)
BUILD	?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT	?= -O1
else
BUILD	?= build
SANFLAGS =
OPT	?= -O2
endif

PKGS	= libevent msgpack sqlite3 libcrypto yaml-0.1 jansson inih libcurl
WARN	= -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Wvla -Werror
CFLAGS	?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -I. \
	-DLIBEXECDIR='"$(LIBEXECDIR)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(NET_CFLAGS)
LIBS	= $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
LDFLAGS	?=
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

OBJ	= $(BUILD)/obj
BIN	= $(BUILD)/bin

# Each program's main() lives in its own file; everything else is a library
# the unit tests link against.
MAINS	= daemon/osirisd.c client/osirisctl.c worker/worker.c
COMMON_SRC  = $(wildcard common/*.c)
PROTO_SRC   = $(wildcard proto/*.c)
# Drivers on network client libraries: the dynamic worker links them all
# (registry_net.c), the static worker those whose libraries Debian ships as
# static archives (registry_static.c: mysql.*); the unit tests get
# registry_nonet.c's stand-ins. The daemon links no driver: it learns the
# workers' drivers from their `ready`.
NET_DRIVERS_SRC = drivers/registry_net.c drivers/httpc_curl.c \
	$(wildcard drivers/pg*.c drivers/mysql*.c drivers/graphql*.c)
STATIC_NET_SRC = drivers/registry_static.c drivers/httpc_ossl.c $(wildcard drivers/mysql*.c drivers/graphql*.c)
# postgres.*/supabase.* join them when Debian's libpq.a can be linked: it
# needs the libpgcommon/libpgport archives of the very same version
# (postgresql-server-dev-N, which tests/deps.sh pins to libpq-dev's) and
# nogss.c for the GSSAPI/LDAP calls (no static archives in Debian). Without
# them the static worker keeps stand-ins that fail naming libpq.
PG_STATIC_LIBS := $(shell d=$$(pg_config --pkglibdir 2>/dev/null) && \
	[ -f "$$d/libpgcommon_shlib.a" ] && [ -f "$$d/libpgport_shlib.a" ] && \
	m=$$(pg_config --version | sed -n 's/^PostgreSQL \([0-9]*\)\..*/\1/p') && \
	v=$$(dpkg-query -W -f '$${Version}' libpq-dev 2>/dev/null) && [ -n "$$v" ] && \
	[ "$$v" = "$$(dpkg-query -W -f '$${Version}' postgresql-server-dev-$$m 2>/dev/null)" ] && \
	echo "-lpq $$d/libpgcommon_shlib.a $$d/libpgport_shlib.a")
ifneq ($(PG_STATIC_LIBS),)
STATIC_NET_SRC += drivers/nogss.c $(wildcard drivers/pg*.c)
endif
NET_PKGS = libpq libmariadb
NET_CFLAGS = $(shell pkg-config --cflags $(NET_PKGS) 2>/dev/null)
NET_LIBS = $(shell pkg-config --libs $(NET_PKGS) 2>/dev/null)
DRIVERS_SRC = $(filter-out $(NET_DRIVERS_SRC) $(STATIC_NET_SRC) drivers/nogss.c,$(wildcard drivers/*.c))
WORKER_SRC  = $(filter-out $(MAINS),$(wildcard worker/*.c))
DAEMON_SRC  = $(filter-out $(MAINS),$(wildcard daemon/*.c))
# client/sha256.c (SHA-256 without libcrypto) goes into osirisctl alone: the
# unit tests and the other programs use common/sha256.c (OpenSSL).
CLIENT_SHA_SRC = client/sha256.c
CLIENT_SRC  = $(filter-out $(MAINS) $(CLIENT_SHA_SRC),$(wildcard client/*.c))

objs	= $(patsubst %.c,$(OBJ)/%.o,$(1))
LIBCOMMON  = $(OBJ)/libcommon.a
LIBPROTO   = $(OBJ)/libproto.a
LIBDRIVERS = $(OBJ)/libdrivers.a
LIBWORKER  = $(OBJ)/libworker.a
LIBDAEMON  = $(OBJ)/libdaemon.a
LIBCLIENT  = $(OBJ)/libclient.a

PROGRAMS = $(BIN)/osirisd $(BIN)/osirisctl $(BIN)/osiris-worker
# The self-contained worker an E2B sandbox runs: static, so it starts on a
# bare root with nothing installed. Sanitizers cannot link statically: the
# sanitizer build ships the plain build's static worker beside its osirisd.
PROGRAMS += $(BIN)/osiris-worker-static
WORKER_STATIC_LIBS = $(PG_STATIC_LIBS) -lmariadb -lmsgpackc -lsqlite3 -lssl -lcrypto -lz -lyaml -ljansson -lm -lpthread -ldl

UNIT_SRC = $(wildcard tests/unit/check_*.c)
UNIT_BIN = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Shared test helpers (the worker pipe harness), linked into every unit test.
UNIT_HARNESS_SRC = $(wildcard tests/unit/harness/*.c)
UNIT_HARNESS_OBJ = $(call objs,$(UNIT_HARNESS_SRC))

.PHONY: all deps check format format-check unit regress fuzz-smoke check-e2b bench demo demo-db check-fresh install clean
all: $(PROGRAMS) $(EXTRA_PROGRAMS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# The install paths are compiled in (the worker's default location, the
# config file): a stamp named after them rebuilds those objects when
# `make install PREFIX=...` differs from the last build.
PATH_STAMP = $(OBJ)/paths$(subst /,_,$(LIBEXECDIR)-$(SYSCONFDIR)).stamp
$(PATH_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(OBJ)/paths*.stamp
	@touch $@
$(OBJ)/daemon/pool_local.o $(OBJ)/daemon/osirisd.o: $(PATH_STAMP)
# registry_static.c has postgres.* only with libpq.a (PG_STATIC_LIBS above).
PG_STATIC_STAMP = $(OBJ)/pgstatic-$(if $(PG_STATIC_LIBS),yes,no).stamp
$(PG_STATIC_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(OBJ)/pgstatic-*.stamp
	@touch $@
$(OBJ)/drivers/registry_static.o: $(PG_STATIC_STAMP)
$(OBJ)/drivers/registry_static.o: ALL_CFLAGS += $(if $(PG_STATIC_LIBS),-DWORKER_STATIC_PG)

define mklib
$(1): $(call objs,$(2))
	@mkdir -p $$(dir $$@)
	rm -f $$@; ar rcs $$@ $$^
endef
$(eval $(call mklib,$(LIBCOMMON),$(COMMON_SRC)))
$(eval $(call mklib,$(LIBPROTO),$(PROTO_SRC)))
$(eval $(call mklib,$(LIBDRIVERS),$(DRIVERS_SRC)))
$(eval $(call mklib,$(LIBWORKER),$(WORKER_SRC)))
$(eval $(call mklib,$(LIBDAEMON),$(DAEMON_SRC)))
$(eval $(call mklib,$(LIBCLIENT),$(CLIENT_SRC)))

$(BIN)/osirisd: $(OBJ)/daemon/osirisd.o $(LIBDAEMON) $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
# --as-needed: only the libraries osirisctl calls are loaded at each start.
$(BIN)/osirisctl: $(OBJ)/client/osirisctl.o $(call objs,$(CLIENT_SHA_SRC)) $(LIBCLIENT) $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -Wl,--as-needed -o $@ $^ $(LIBS)
$(BIN)/osiris-worker: $(OBJ)/worker/worker.o $(call objs,$(NET_DRIVERS_SRC)) $(LIBWORKER) $(LIBDRIVERS) $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NET_LIBS) $(LIBS)
ifeq ($(SAN),1)
.PHONY: plain-worker-static
plain-worker-static:
	@$(MAKE) --no-print-directory SAN= build/bin/osiris-worker-static
$(BIN)/osiris-worker-static: plain-worker-static
	@mkdir -p $(dir $@)
	@cmp -s build/bin/osiris-worker-static $@ || install -m 0755 build/bin/osiris-worker-static $@
else
# glibc warns that getaddrinfo/getpwuid (libmariadb, libcrypto) would need
# its shared NSS modules at run time: names from /etc/hosts and numeric
# addresses resolve without them (drivers/README.md).
$(BIN)/osiris-worker-static: $(OBJ)/worker/worker.o $(call objs,$(STATIC_NET_SRC)) $(LIBWORKER) $(LIBDRIVERS) $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "$(CC) -static -s -o $@ ... $(WORKER_STATIC_LIBS)"
	@$(CC) -static -s $(LDFLAGS) -o $@ $^ $(WORKER_STATIC_LIBS) 2>$@.ld; rc=$$?; \
		grep -v -e 'statically linked applications requires at runtime' -e ': in function ' $@.ld >&2; \
		rm -f $@.ld; exit $$rc
endif

# Unit tests link every library; the archive pulls in only what is used.
$(BUILD)/tests/check_%: $(OBJ)/tests/unit/check_%.o $(UNIT_HARNESS_OBJ) $(LIBDAEMON) $(LIBCLIENT) $(LIBWORKER) $(LIBDRIVERS) $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(UNIT_HARNESS_OBJ) $(LIBDAEMON) $(LIBCLIENT) $(LIBWORKER) $(LIBDRIVERS) $(LIBPROTO) $(LIBCOMMON) $(CHECK_LIBS) $(LIBS)

# osirisctl's SHA-256 is tested on its own: linked before libcommon, whose
# OpenSSL sha256.o it replaces, and checked against libcrypto's SHA256().
$(BUILD)/tests/check_sha256: $(OBJ)/tests/unit/check_sha256.o $(call objs,$(CLIENT_SHA_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

# Fragments owned by parts of the tree (e2b emulator, fuzz, bench).
-include tests/fakes/e2b/e2b.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk

# `make deps` installs what `make check` needs; `make demo` asks only for
# what the build and the demo need (no Node.js, no clang).
deps:
	@sh tests/deps.sh check

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; CK_DEFAULT_TIMEOUT=60 $$t; done

regress: all
	@sh tests/graphql/install.sh
	@BIN=$(abspath $(BIN)) sh tests/regress/run.sh

check: deps
	$(MAKE) format-check
	$(MAKE) all unit
	$(MAKE) regress
	$(MAKE) fuzz-smoke
	$(MAKE) SAN=1 all unit regress
	$(MAKE) check-e2b
	@echo "make check: all passed"

# One style for every C file, kept by clang-format (.clang-format).
format:
	@sh tests/format.sh apply
format-check:
	@sh tests/format.sh check

demo:
	@sh tests/deps.sh demo
	$(MAKE) all
	@BIN=$(abspath $(BIN)) sh examples/demo.sh

# The Osiris seed's pipeline shape against a MariaDB and a PostgreSQL it
# starts and stops (needs what `make deps` installs).
demo-db:
	@sh tests/deps.sh check
	$(MAKE) all
	@BIN=$(abspath $(BIN)) sh examples/demo-db.sh

# Not part of check: `make demo` and `make check` from a clone of HEAD in a
# fresh Debian 12 minbase chroot (root, network; tests/fresh/run.sh).
check-fresh:
	@sh tests/fresh/run.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BIN)/osirisd $(DESTDIR)$(SBINDIR)/osirisd
	install -m 0755 $(BIN)/osirisctl $(DESTDIR)$(BINDIR)/osirisctl
	install -m 0755 $(BIN)/osiris-worker $(DESTDIR)$(LIBEXECDIR)/osiris-worker
	install -m 0755 $(BIN)/osiris-worker-static $(DESTDIR)$(LIBEXECDIR)/osiris-worker-static
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 doc/osirisctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 doc/osirisd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 doc/osirisd.8 $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/osiris
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/osirisd.service.in > $(DESTDIR)$(UNITDIR)/osirisd.service
	install -m 0644 systemd/osirisd.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/osiris.sysusers $(DESTDIR)$(SYSUSERSDIR)/osiris.conf
	install -m 0644 systemd/osiris.tmpfiles $(DESTDIR)$(TMPFILESDIR)/osiris.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/osiris/osirisd.conf || \
		install -m 0644 conf/osirisd.conf $(DESTDIR)$(SYSCONFDIR)/osiris/osirisd.conf

clean:
	rm -rf build
