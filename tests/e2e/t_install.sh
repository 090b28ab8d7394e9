#!/bin/sh
# make install's files, into a scratch DESTDIR under a PREFIX: the binary, a
# man page per command written from --help (each renders, names its options),
# bash completion for commands, subcommands and options, the samples and the
# demo's rules in share/rlhf; make uninstall leaves nothing behind.
. "$ROOT/tests/e2e/lib.sh"
command -v help2man >/dev/null || skip_missing "help2man is missing (make deps installs it)"
D=$TMP/root P=/opt/rl
mk() { make --no-print-directory -C "$ROOT" BUILD="$TMP/b" RLHF_BIN="$RLHF" DESTDIR="$D" PREFIX="$P" "$@" > mk.txt 2>&1 ||
    die "make $* failed: $(cat mk.txt)"; }
mkdir -p "$TMP/b"
mk install-files
[ -x "$D$P/bin/rlhf" ] || die "no binary in $D$P/bin"
"$D$P/bin/rlhf" --version | grep -q "^rlhf " || die "the installed binary does not run"
M=$D$P/share/man/man1
for c in $("$RLHF" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'); do
    [ -f "$M/rlhf-$c.1" ] || die "no man page for $c"
done
[ -f "$M/rlhf.1" ] || die "no rlhf.1"
page=$(MANWIDTH=100 man -l "$M/rlhf-label.1" 2>/dev/null || groff -man -Tutf8 "$M/rlhf-label.1")
contains "$page" "RLHF-LABEL(1)"
contains "$page" "--overlap"
contains "$page" "--set-guidelines"
page=$(MANWIDTH=100 man -l "$M/rlhf.1" 2>/dev/null || groff -man -Tutf8 "$M/rlhf.1")
contains "$page" "train-rm"
C=$D$P/share/bash-completion/completions/rlhf
[ -f "$C" ] || die "no bash completion"
comp() { bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _rlhf; echo "${COMPREPLY[*]}"' _ "$C" "$@"; }
contains "$(comp rlhf la)" "label"
contains "$(comp rlhf label --ov)" "--overlap"
contains "$(comp rlhf --db x.db export --fo)" "--format"
contains "$(comp rlhf candidates l)" "list"
S=$D$P/share/rlhf/samples
for f in rules.md prompts.jsonl corpus.txt sft.jsonl demo.sh; do [ -f "$S/$f" ] || die "no $f in share/rlhf/samples"; done
mk uninstall
left=$(find "$D" -type f)
[ -z "$left" ] || die "make uninstall left: $left"
echo "ok"
