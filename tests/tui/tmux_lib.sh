# Helpers for the TUI tests: drive the real binary in a private tmux server.
# Source after tests/e2e/lib.sh. Waits poll capture-pane, never fixed sleeps.
command -v tmux >/dev/null || skip_missing "tmux is not installed"
SOCK="rlhf-tui-$$"
TM="tmux -L $SOCK -f /dev/null"
# kills the server and waits until it is gone, so a new one can start
tui_cleanup() {
    $TM kill-server 2>/dev/null
    n=0; while $TM ls >/dev/null 2>&1 && [ $n -lt 100 ]; do n=$((n + 1)); sleep 0.05; done
}
trap tui_cleanup EXIT
# tui_start W H 'CMDLINE': runs the command line (shell syntax) in a W x H
# pane with a UTF-8 locale and TERM=xterm-256color; its pid goes to pane.pid;
# when it ends the pane shows "EXITED rc" and stays.
tui_start() {
    printf 'echo $$ > pane.pid\nexec %s\n' "$3" > run.sh
    $TM new-session -d -s t -c "$PWD" -x "$1" -y "$2" \
        "env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 RLHF_DB=$RLHF_DB sh run.sh; echo EXITED \$?; sleep 600"
}
screen() { $TM capture-pane -p -t t; }
# wait_for TEXT [SECONDS]: until the screen shows TEXT (default 10 s)
wait_for() {
    n=0; lim=$(( ${2:-10} * 20 ))
    while :; do
        screen > screen.txt 2>/dev/null
        grep -qF -- "$1" screen.txt && return 0
        n=$((n + 1))
        [ $n -ge $lim ] && { echo "--- screen:"; cat screen.txt; die "timed out waiting for: $1"; }
        sleep 0.05
    done
}
# wait_gone TEXT: until TEXT is no longer on screen
wait_gone() {
    n=0
    while screen | grep -qF -- "$1"; do
        n=$((n + 1)); [ $n -ge 200 ] && { screen; die "still on screen: $1"; }
        sleep 0.05
    done
}
keys() { $TM send-keys -t t "$@"; }
# type_text TEXT: literal text
type_text() { $TM send-keys -t t -l -- "$1"; }
