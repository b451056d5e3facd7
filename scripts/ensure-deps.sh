#!/usr/bin/env bash
# Installs what building and testing tokenscope needs: cmake and libclang-dev
# (bindgen, to build llama.cpp), tmux (end-to-end tests), g++, pip (demo models).
#
#   scripts/ensure-deps.sh                 install what is missing (or print the command)
#   scripts/ensure-deps.sh --find-libclang DIR...
#                                          print the libclang bindgen would load from DIRs
#                                          (exit 1 when none): used by the tests
set -euo pipefail

# The library bindgen (clang-sys) loads: libclang.so, libclang.so.N, libclang-N.so,
# libclang-N.so.M. Never libclang-cpp*.so (the C++ API, package libclang-cppN, which
# Debian's base images carry without libclang itself).
find_libclang() {
  local dir f name
  for dir in "$@"; do
    for f in "$dir"/libclang.so "$dir"/libclang.so.* "$dir"/libclang-[0-9]*.so "$dir"/libclang-[0-9]*.so.*; do
      [ -e "$f" ] || continue
      name=${f##*/}
      case "$name" in libclang-cpp*) continue ;; esac
      echo "$f"
      return 0
    done
  done
  return 1
}

libclang_dirs() {
  [ -n "${LIBCLANG_PATH:-}" ] && echo "$LIBCLANG_PATH"
  local d
  for d in /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib /usr/lib64 /usr/local/lib; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

has_libclang() {
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    find_libclang "$LIBCLANG_PATH" >/dev/null
    return
  fi
  # Where dpkg exists, a package is the truth: libclang1-N alone lacks the clang
  # headers (stddef.h) that bindgen also needs, which libclang-dev or a versioned
  # libclang-N-dev (e.g. from apt.llvm.org) brings. Not libclang-common-N-dev or
  # libclang-rt-N-dev, which hold no libclang.
  if command -v dpkg-query >/dev/null 2>&1; then
    # Not a pipe into `grep -q`: with pipefail, dpkg-query killed by SIGPIPE
    # would fail the check.
    local pkgs
    pkgs="$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null || true)"
    grep -Eq '^ii +libclang(-[0-9]+)?-dev(:[a-z0-9]+)?$' <<<"$pkgs"
    return
  fi
  local dirs
  mapfile -t dirs < <(libclang_dirs)
  find_libclang "${dirs[@]}" >/dev/null
}

if [ "${1:-}" = "--find-libclang" ]; then
  shift
  find_libclang "$@"
  exit
fi

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
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
