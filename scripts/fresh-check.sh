#!/usr/bin/env bash
# The README's quick start, tried as a new user would, on a fresh clone of HEAD:
#
#   scripts/fresh-check.sh [--purge]
#
# A fresh clone in a temporary directory, an empty CARGO_TARGET_DIR and an empty
# TOKENSCOPE_HOME (so the demo models are fetched again). With --purge (root,
# apt), first removes everything scripts/ensure-deps.sh installs (cmake,
# libclang-dev, tmux, and what they pulled in), so that `make` must install it
# again. Then the README's two commands word for word: `make test`, and
# `make run` inside tmux until the welcome screen names the demo model; then quit.
# Only committed work is checked: commit first.
set -euo pipefail

purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

repo="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
head="$(git -C "$repo" rev-parse --short HEAD)"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-check: note: uncommitted changes are not checked (HEAD is $head)" >&2
fi

say() { echo "fresh-check: $*" >&2; }

if [ "$purge" = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "--purge needs root (apt-get remove)" >&2; exit 2; }
  say "removing cmake, libclang-dev, tmux and what they pulled in"
  DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq cmake libclang-dev tmux >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -qq >/dev/null 2>&1 || true
  for p in cmake libclang-dev tmux; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      echo "fresh-check: could not remove $p" >&2
      exit 1
    fi
  done
  if command -v tmux >/dev/null 2>&1 || command -v cmake >/dev/null 2>&1; then
    say "warning: tmux or cmake still on PATH outside apt"
  fi
fi

tmp="$(mktemp -d /tmp/tokenscope-fresh.XXXXXX)"
socket="tokenscope-fresh-$$"
cleanup() {
  command -v tmux >/dev/null 2>&1 && tmux -L "$socket" kill-server 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

git clone -q "$repo" "$tmp/tokenscope"
export CARGO_TARGET_DIR="$tmp/target"
export TOKENSCOPE_HOME="$tmp/home"
export TOKENSCOPE_CONFIG="$tmp/no-config.toml"
unset TOKENSCOPE_MODEL TOKENSCOPE_MODELS_DIR TOKENSCOPE_TEST_MODELS LIBCLANG_PATH
cd "$tmp/tokenscope"
say "clone of $head in $tmp, empty target dir and TOKENSCOPE_HOME"

start=$(date +%s)
say "make test"
make test
say "make test passed in $(( $(date +%s) - start )) s"

say "make run (in tmux, until the welcome screen names the demo model)"
env_line="CARGO_TARGET_DIR='$CARGO_TARGET_DIR' TOKENSCOPE_HOME='$TOKENSCOPE_HOME' TOKENSCOPE_CONFIG='$TOKENSCOPE_CONFIG'"
tmux -L "$socket" new-session -d -s run -x 120 -y 36 \
  "cd '$tmp/tokenscope' && $env_line make run; echo MAKE-RUN-EXITED:\$?; sleep 600"
screen() { tmux -L "$socket" capture-pane -p -t run; }
wait_for() { # wait_for WHAT SECONDS GREP-REGEX
  local i
  for i in $(seq 1 $(( $2 * 5 ))); do
    if screen | grep -Eq "$3"; then return 0; fi
    sleep 0.2
  done
  say "timed out waiting for $1; screen:"
  screen >&2
  exit 1
}
wait_for "the welcome screen with the demo model" 300 "Model: SmolLM2"
wait_for "the model to load" 120 "idle"
tmux -L "$socket" send-keys -t run C-c
tmux -L "$socket" send-keys -t run C-c
wait_for "make run to exit" 30 "MAKE-RUN-EXITED:"
if ! screen | grep -q "MAKE-RUN-EXITED:0"; then
  say "make run failed:"; screen >&2; exit 1
fi
say "make run showed the welcome screen with SmolLM2 and quit cleanly"
say "OK: make test and make run pass on a fresh clone of $head ($(( $(date +%s) - start )) s)"
