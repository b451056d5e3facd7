#!/usr/bin/env bash
# Rewrites README.md's key table (under `## Keys`) from the keymap, as the
# test `readme_key_table_matches_the_keymap` prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(cargo test --release --lib readme_key_table_matches_the_keymap 2>&1 \
  | sed -n '/put this table under/,/^note:\|^stack backtrace/p' | sed '1,2d' | sed '/^$/,$d' || true)
if [ -z "$table" ]; then echo "README.md's key table is up to date"; exit 0; fi
TABLE="$table" python3 - <<'PY'
import os
s = open("README.md").read()
start = s.index("| key | does |", s.index("\n## Keys\n"))
n = 0
for line in s[start:].split("\n"):
    if not line.startswith("|"):
        break
    n += len(line) + 1
open("README.md", "w").write(s[:start] + os.environ["TABLE"] + "\n" + s[start + n:])
PY
echo "README.md's key table rewritten from the keymap"
