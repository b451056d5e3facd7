#!/usr/bin/env bash
# Builds llama.cpp's CPU kernels for the CPU of the machine that builds it:
# writes the instruction sets it has (AVX2, AVX-512 and its VNNI, VBMI and
# BF16 extensions, AVX-VNNI…) as GGML_* options into .cargo/config.toml's
# [env], which llama-cpp-sys-2's build script forwards to CMake. Without it
# llama.cpp is compiled for AVX2 only (GGML_NATIVE is off in llama-cpp-sys-2,
# and Rust's default target has no AVX-512 to map), which reads a prompt up
# to 1.4x slower on an AVX-512 CPU and crashes on a CPU without AVX2.
#
# `make` runs it before every build (the binary is built on the machine that
# runs it). A binary built here runs on CPUs with at least these instruction
# sets; TOKENSCOPE_PORTABLE=1 writes the portable set instead (AVX2, FMA,
# F16C, BMI2: what llama.cpp's x86-64 default compiles for).
#
#   scripts/cpu-kernels.sh            write .cargo/config.toml (when it changes,
#                                     llama.cpp is rebuilt once)
#   scripts/cpu-kernels.sh --print    print the options for this CPU, write nothing
#
# TOKENSCOPE_CPUINFO=FILE reads FILE instead of /proc/cpuinfo (tests).
set -euo pipefail
cd "$(dirname "$0")/.."

arch="$(uname -m)"
cpuinfo="${TOKENSCOPE_CPUINFO:-/proc/cpuinfo}"

# The flags of the first CPU, one per line.
flags() {
  awk -F: '/^flags/ { print $2; exit }' "$cpuinfo" | tr ' ' '\n' | grep -v '^$' || true
}

# `NAME ON|OFF` for each option llama-cpp-sys-2 leaves to us.
options() {
  if [ "${TOKENSCOPE_PORTABLE:-}" = 1 ]; then
    printf '%s\n' "GGML_SSE42 ON" "GGML_AVX ON" "GGML_AVX2 ON" "GGML_BMI2 ON" "GGML_FMA ON" \
      "GGML_F16C ON" "GGML_AVX512 OFF" "GGML_AVX512_VBMI OFF" "GGML_AVX512_VNNI OFF" \
      "GGML_AVX512_BF16 OFF" "GGML_AVX_VNNI OFF"
    return
  fi
  local have
  have="$(flags)"
  has() { grep -qx "$1" <<<"$have"; }
  on() { if "$@"; then echo ON; else echo OFF; fi; }
  # ggml's GGML_AVX512 compiles with -mavx512f, cd, vl, dq and bw together.
  avx512() { has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; }
  echo "GGML_SSE42 $(on has sse4_2)"
  echo "GGML_AVX $(on has avx)"
  echo "GGML_AVX2 $(on has avx2)"
  echo "GGML_BMI2 $(on has bmi2)"
  echo "GGML_FMA $(on has fma)"
  echo "GGML_F16C $(on has f16c)"
  echo "GGML_AVX512 $(on avx512)"
  if avx512; then
    echo "GGML_AVX512_VBMI $(on has avx512vbmi)"
    echo "GGML_AVX512_VNNI $(on has avx512_vnni)"
    echo "GGML_AVX512_BF16 $(on has avx512_bf16)"
  else
    printf '%s\n' "GGML_AVX512_VBMI OFF" "GGML_AVX512_VNNI OFF" "GGML_AVX512_BF16 OFF"
  fi
  echo "GGML_AVX_VNNI $(on has avx_vnni)"
}

if [ "$arch" != x86_64 ]; then
  # Other CPUs keep llama-cpp-sys-2's own choice (e.g. armv8-a on aarch64).
  [ "${1:-}" = --print ] && echo "# $arch: llama-cpp-sys-2's defaults"
  exit 0
fi

config="$(
  echo "# Written by scripts/cpu-kernels.sh for this machine's CPU (not committed):"
  echo "# the instruction sets llama.cpp's CPU kernels are compiled for."
  echo "[env]"
  options | while read -r name value; do echo "$name = \"$value\""; done
)"

if [ "${1:-}" = --print ]; then
  echo "$config"
  exit 0
fi

mkdir -p .cargo
if [ -f .cargo/config.toml ] && [ "$(cat .cargo/config.toml)" = "$config" ]; then
  exit 0
fi
echo "$config" >.cargo/config.toml
# llama-cpp-sys-2's build script reruns only for GGML_* variables it saw
# before: a new or changed set needs its build cleaned once.
target="${CARGO_TARGET_DIR:-target}"
if [ -d "$target" ]; then
  echo "cpu-kernels: llama.cpp will be rebuilt for this CPU ($(options | awk '$2 == "ON" { sub("GGML_", "", $1); printf "%s ", $1 }'))" >&2
  "${CARGO:-cargo}" clean --release -p llama-cpp-sys-2 >/dev/null 2>&1 || true
  "${CARGO:-cargo}" clean -p llama-cpp-sys-2 >/dev/null 2>&1 || true
fi
