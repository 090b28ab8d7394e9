#!/bin/sh
# The build notices a changed configuration: a library that pkg-config finds
# only after a first build (OpenMPI, installed by make test after make demo)
# rebuilds the objects with it, and says so; an unchanged one rebuilds
# nothing. Builds one object in a scratch build folder, with a pkg-config
# that hides MPI until told otherwise.
. "$ROOT/tests/e2e/lib.sh"
command -v make >/dev/null || skip_missing "no make"
pkg-config --exists ompi-c 2>/dev/null || pkg-config --exists mpi 2>/dev/null || skip_missing "OpenMPI's pkg-config file is missing"
mkdir fake
cat > fake/pkg-config <<'SH'
#!/bin/sh
if [ -n "${HIDE_MPI:-}" ]; then
    for a in "$@"; do case $a in ompi-c|mpi) exit 1 ;; esac; done
fi
exec /usr/bin/pkg-config "$@"
SH
chmod +x fake/pkg-config
B=$TMP/b
mk() { PATH="$TMP/fake:$PATH" make --no-print-directory -C "$ROOT" BUILD="$B" "$B/util/err.o" > mk.txt 2>&1 || die "make failed: $(cat mk.txt)"; }
HIDE_MPI=1 mk
grep -q -- "-c util/err.c" mk.txt || die "first build compiled nothing: $(cat mk.txt)"
grep -q "RLHF_MPI" mk.txt && die "MPI was hidden, yet: $(cat mk.txt)"
HIDE_MPI=1 mk
grep -q -- "-c util/err.c" mk.txt && die "an unchanged configuration rebuilt: $(cat mk.txt)"
# OpenMPI "installed": the same object again, now with MPI
mk
grep -q "configuration changed" mk.txt || die "no word of the change: $(cat mk.txt)"
grep -q -- "-DRLHF_MPI.*-c util/err.c" mk.txt || die "not rebuilt with MPI: $(cat mk.txt)"
grep -q "MPI=" "$B/config.txt" || die "config.txt does not record MPI"
mk
grep -q -- "-c util/err.c" mk.txt && die "rebuilt twice: $(cat mk.txt)"
echo "ok"
