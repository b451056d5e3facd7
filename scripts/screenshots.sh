#!/usr/bin/env bash
# Regenerates screenshots/*.png from a real run of the real app on the demo
# models: tmux drives the binary, capture-pane -e keeps the colours, and
# scripts/ansi2png.py draws the cells. Needs tmux, python3 with Pillow, and
# the DejaVu + WenQuanYi fonts (installed below when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$(pwd)/$TARGET" ;; esac
BIN="$TARGET/release/tokenscope"
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
if ! python3 -c "import PIL" 2>/dev/null; then python3 -m pip install -q pillow; fi
if { [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] \
     || [ ! -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; } && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq fonts-dejavu-core fonts-wqy-zenhei >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq fonts-dejavu-core fonts-wqy-zenhei >/dev/null; }
fi

# A private home: the demo models (linked), a Q8_0 variant of SmolLM2 made
# here (the picker groups it with its Q4_1), and only this run's conversations.
MODELS="$("$BIN" paths | sed -n 's/^models: *//p')"
HOME_DIR="$(mktemp -d)"
mkdir -p "$HOME_DIR/models"
for m in "$MODELS"/*.gguf; do ln -s "$m" "$HOME_DIR/models/"; done
export TOKENSCOPE_HOME="$HOME_DIR" TOKENSCOPE_CONFIG="$HOME_DIR/config.toml"
"$BIN" quantize Instruct.Q4_1 --type Q8_0 --allow-requantize >/dev/null 2>&1
"$BIN" quantize Instruct.Q4_1 --type Q2_K --allow-requantize >/dev/null 2>&1

COLS=140 ROWS=40
SOCK="tokenscope-shots-$$"
T() { tmux -L "$SOCK" "$@"; }
trap 'T kill-server 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT
mkdir -p screenshots
shot() { T capture-pane -e -p -t s > "/tmp/$1.ans"; python3 scripts/ansi2png.py "/tmp/$1.ans" "screenshots/$1.png" "$COLS"; echo "screenshots/$1.png"; }
wait_for() { # wait_for REGEX SECONDS
  for _ in $(seq 1 $(( $2 * 5 ))); do
    if T capture-pane -p -t s | tail -n 1 | grep -Eq "$1"; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $1" >&2; T capture-pane -p -t s >&2; exit 1
}
wait_screen() { # wait_screen REGEX SECONDS: anywhere on the screen
  for _ in $(seq 1 $(( $2 * 5 ))); do
    if T capture-pane -p -t s | grep -Eq "$1"; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $1" >&2; T capture-pane -p -t s >&2; exit 1
}

PROMPT="Write a short story about a lighthouse keeper who finds a message in a bottle."
FLAGS=(--model Instruct.Q4_1 --temp 1.0 --seed 7 --max-tokens 400)

# Which token of that reply was the most surprising? The same request headless
# (same engine, same seed) gives the same tokens and their probabilities.
INDEX=$("$BIN" run "${FLAGS[@]}" --format jsonl --prompt "$PROMPT" | python3 -c '
import json, sys
steps = [json.loads(l) for l in sys.stdin if "\"token\"" in l]
steps = [s for s in steps if s["text"].strip()][:60]
print(min(steps, key=lambda s: s["p"])["index"])')

T new-session -d -s s -x $COLS -y $ROWS "$BIN ${FLAGS[*]}"
wait_for "idle" 60
T send-keys -t s -l "$PROMPT"
T send-keys -t s Enter
wait_for "generating" 30
sleep 1.2
shot chat-streaming
wait_for "idle" 120
# Token cursor: first token of the reply, then right to the surprising one.
T send-keys -t s Tab Home
for _ in $(seq 1 "$INDEX"); do T send-keys -t s Right; done
sleep 0.5
shot token-cursor
# What-if: the temperature down to 0.3 for that token; the sampler column redraws.
for _ in 1 2 3 4 5; do T send-keys -t s t; done
sleep 0.5
shot what-if
T send-keys -t s 0
sleep 0.3
T send-keys -t s Escape
sleep 0.5
T send-keys -t s F2
sleep 0.5
T send-keys -t s -l "smol"
sleep 0.5
shot model-picker
T send-keys -t s Escape
sleep 0.3
# Compare that reply with the Q2_K variant: both distributions for the
# surprising token, the KL, the summary line under the reply.
T send-keys -t s Tab Home
for _ in $(seq 1 "$INDEX"); do T send-keys -t s Right; done
T send-keys -t s v
wait_screen "compare with" 20
T send-keys -t s -l "Q2_K"
sleep 0.5
T send-keys -t s Enter
wait_screen "vs .*Q2_K.*mean KL" 180
wait_for "idle" 30
sleep 0.5
shot compare
T send-keys -t s C-c C-c
sleep 0.5

# Step mode on Gemma 3 (a base model, plain completion): "中华人民" → 共和 → 国,
# the inspector showing the next token before it is drawn; then a branch.
T kill-server 2>/dev/null || true
T new-session -d -s s -x $COLS -y $ROWS "$BIN --model gemma --raw --temp 0 --max-tokens 12"
wait_for "idle" 60
T send-keys -t s F7
sleep 0.3
T send-keys -t s -l "中华人民"
T send-keys -t s Enter
wait_for "step 1 ·" 60
T send-keys -t s Right
wait_for "step 2 ·" 30
T send-keys -t s Right
wait_for "step 3 ·" 30
sleep 0.3
shot step-mode
# Run on (F7 twice: step mode → to the next surprise → free), then branch
# at the second token with its second candidate.
T send-keys -t s F7
sleep 0.3
T send-keys -t s F7
wait_for "idle" 60
T send-keys -t s Tab Home Right Enter
sleep 0.5
T send-keys -t s Down
sleep 0.3
shot branch-chooser
T send-keys -t s Enter
wait_for "idle" 60
sleep 0.3
shot branched
T send-keys -t s C-c C-c
sleep 0.5

# The conversation list: both chats of this run, saved as they went.
T kill-server 2>/dev/null || true
T new-session -d -s s -x $COLS -y $ROWS "$BIN --model Instruct.Q4_1"
wait_for "idle" 60
T send-keys -t s F9
sleep 1
shot conversations
T send-keys -t s Escape
T send-keys -t s C-c C-c
sleep 0.5

# The layer lens on Gemma 3: how ' Paris' forms across its 18 layers, then
# what layer 12's attention weighed from there, as a heat over the chat.
T kill-server 2>/dev/null || true
T new-session -d -s s -x $COLS -y $ROWS "$BIN --model gemma --raw --temp 0 --max-tokens 6"
wait_for "idle" 60
T send-keys -t s -l "The capital of France is"
T send-keys -t s Enter
wait_for "tok/s" 60
wait_for "idle" 60
T send-keys -t s Tab Home
sleep 0.3
T send-keys -t s l
wait_screen "top-1 first at" 120
sleep 0.3
shot layer-lens
T send-keys -t s a
wait_screen "attention · L" 10
for _ in 1 2 3 4 5; do T send-keys -t s Up; done
sleep 0.5
shot attention
T send-keys -t s Escape
T send-keys -t s C-c C-c
sleep 0.5

# Rollouts on SmolLM2: where each of the top 5 candidates for the reply's
# second token leads (greedy, 24 tokens each, coloured by p), the second
# selected; then kept as a branch of the reply.
T kill-server 2>/dev/null || true
T new-session -d -s s -x $COLS -y $ROWS "$BIN --model Instruct.Q4_1 --temp 0 --max-tokens 16"
wait_for "idle" 60
T send-keys -t s -l "What is the capital of France?"
T send-keys -t s Enter
wait_for "tok/s" 60
wait_for "idle" 60
T send-keys -t s Tab Home Right
sleep 0.3
T send-keys -t s o
wait_screen "Enter keeps rollout #1" 120
T send-keys -t s Down
wait_screen "Enter keeps rollout #2" 10
sleep 0.3
shot rollouts
T send-keys -t s Enter
wait_screen "kept as version 2 of 2" 10
sleep 0.3
shot rollout-branch
T send-keys -t s C-c C-c
sleep 0.5

# What the KV cache saves: SmolLM2's reply generated again with and without
# the cache (32 tokens), the time per token charted against position.
T kill-server 2>/dev/null || true
T new-session -d -s s -x $COLS -y $ROWS "$BIN --model Instruct.Q4_1 --temp 0 --max-tokens 32"
wait_for "idle" 60
T send-keys -t s -l "Tell me about lighthouses."
T send-keys -t s Enter
wait_for "tok/s" 60
wait_for "idle" 60
T send-keys -t s Tab
sleep 0.3
T send-keys -t s w
wait_screen "faster" 300
sleep 0.3
shot kv-cache
T send-keys -t s Escape
T send-keys -t s C-c C-c


# The interface in Chinese: LANG=zh_CN.UTF-8 at 80×24 (the status bar and the
# popups fit), on Qwen2.5 (the demo model that knows Chinese).
sleep 0.5
T kill-server 2>/dev/null || true
T new-session -d -s s -x 80 -y 24 "LC_ALL= LC_MESSAGES= LANG=zh_CN.UTF-8 $BIN --model qwen --temp 0 --max-tokens 40"
wait_for "空闲" 90
T send-keys -t s -l "用一句话介绍长城。"
T send-keys -t s Enter
wait_for "空闲.*词元/秒" 180
COLS=80 shot zh-ui
T send-keys -t s C-c C-c
