# rlhf: `make demo` and `make test` are all a new user needs; both install what
# is missing first (make deps). Everything but cli/main.c goes into one static
# library that the CLI, the tests and the benches link.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

PKGS      := sqlite3 ncursesw libcjson openblas zlib
TEST_PKGS := criterion
# Debian packages behind the pkg-config names above, the test framework, and
# what the reference, TUI and report-rendering tests run (PyTorch, tmux, Chromium).
DEB_BUILD := build-essential pkg-config libsqlite3-dev libncurses-dev libcjson-dev libopenblas-dev zlib1g-dev
DEB_TEST  := libcriterion-dev python3-torch python3-numpy tmux chromium

# Lazily evaluated (=) so `make deps` works before pkg-config exists.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -I. -I$(BUILD) -MMD -MP
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SAN),1)
CFLAGS  += $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
endif
LDLIBS  += -lm -lpthread

LIB_DIRS := util db model gen annotator rm rl viz
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)) $(filter-out cli/main.c,$(wildcard cli/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/librlhf.a
BIN      := $(BUILD)/rlhf
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(BUILD)/unit-tests
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test test-unit test-e2e test-san bench demo install uninstall clean format check-deps

all: $(BIN)

# ---- dependencies (Debian 12) ----------------------------------------------
# make deps installs everything; make demo only what the demo needs (the
# build), not PyTorch and the test tools (about a gigabyte).
DEPS ?= $(DEB_BUILD) $(DEB_TEST)
deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	echo "deps: missing:$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: not root; run:  sudo apt-get install -y$$missing  (or: sudo make deps)"; exit 1; fi; \
	command -v apt-get >/dev/null || { echo "deps: no apt-get; install by hand:$$missing"; exit 1; }; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y --no-install-recommends $$missing || \
	  { apt-get update && apt-get install -y --no-install-recommends $$missing; }

check-deps:
	@pkg-config --exists $(PKGS) || { echo "missing libraries: run 'make deps' (pkg-config: $(PKGS))"; exit 1; }

# ---- build -----------------------------------------------------------------
$(BUILD)/cli_table.h: $(wildcard cli/cmd_*.c) | $(BUILD)
	@grep -ho 'const struct cmd_entry cmd_[a-z0-9_]*_entry' cli/cmd_*.c | \
	  sed 's/.* \(cmd_[a-z0-9_]*_entry\)/CMD(\1)/' | sort > $@.tmp && mv $@.tmp $@

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/%.o: %.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/cli/main.o: $(BUILD)/cli_table.h

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/cli/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(UNIT_BIN): $(UNIT_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/%.o: tests/%.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# ---- tests -----------------------------------------------------------------
# make test: deps, build, unit tests (Criterion), end-to-end tests on the real
# binary; ends with one summary line "tests: N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory check-deps $(BIN) $(UNIT_BIN)
	@BUILD=$(BUILD) sh tests/run_all.sh

test-unit: $(UNIT_BIN)
	$(UNIT_BIN)

test-e2e: $(BIN)
	BUILD=$(BUILD) sh tests/e2e/run.sh

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-san: deps
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 OPT=-O1 check-deps build-san/rlhf build-san/unit-tests
	@BUILD=build-san RLHF_SAN=1 \
	  ASAN_OPTIONS=exitcode=86:detect_leaks=1:strict_string_checks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 sh tests/run_all.sh

# ---- bench and demo -----------------------------------------------------------
bench: deps
	@$(MAKE) --no-print-directory check-deps $(BIN) $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

demo:
	@$(MAKE) --no-print-directory deps DEPS="$(DEB_BUILD)"
	@$(MAKE) --no-print-directory check-deps $(BIN)
	@BUILD=$(BUILD) sh samples/demo.sh

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/rlhf

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/rlhf

clean:
	rm -rf build build-san

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
