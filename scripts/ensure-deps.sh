#!/usr/bin/env bash
# Installs what building and testing tokenscope needs: cmake and libclang-dev
# (to build llama.cpp), tmux (end-to-end test), pip (demo models).
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
has_libclang() {
  local f
  for f in /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* /usr/local/lib/libclang*.so*; do
    [ -e "$f" ] && return 0
  done
  return 1
}
has_libclang || missing+=(libclang-dev)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

cmd="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing: ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
else
  echo "tokenscope needs: ${missing[*]}" >&2
  echo "Install them with:  sudo sh -c '$cmd'" >&2
  exit 1
fi
