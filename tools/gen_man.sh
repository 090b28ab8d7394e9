#!/bin/sh
# Man pages from --help, by help2man: rlhf.1 for the whole tool and one page
# rlhf-COMMAND.1 per subcommand (what `rlhf help COMMAND` says). Run by
# `make install` (and by tests/e2e/t_install.sh through it); nothing fetched.
# usage: tools/gen_man.sh RLHF_BINARY OUTDIR
set -eu
BIN=$1 OUT=$2
command -v help2man >/dev/null || { echo "gen_man: help2man is missing (make deps installs it)" >&2; exit 1; }
mkdir -p "$OUT/bin"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
VER=$("$BIN" --version | head -n 1)
help2man -N --no-discard-stderr --version-string="$VER" -n "the human-feedback loop: prompts, candidates, labels, reward models, PPO/DPO" \
    -o "$OUT/rlhf.1" "$BIN"
for c in $("$BIN" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'); do
    # help2man runs a program: a two-line one per command
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$BIN" "$c" > "$OUT/bin/rlhf-$c"
    chmod +x "$OUT/bin/rlhf-$c"
    what=$("$BIN" --help | sed -n "s/^  $c  *//p" | head -n 1)
    help2man -N --no-discard-stderr --version-string="rlhf-$c ${VER#rlhf }" -n "$what" -o "$OUT/rlhf-$c.1" "$OUT/bin/rlhf-$c"
done
rm -rf "$OUT/bin"
