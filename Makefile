# `make run`: the app on a demo model. `make test`: every test. `make check`
# (before a commit): formatting, clippy and the layering, then every test.
CARGO ?= cargo
BIN = $(or $(CARGO_TARGET_DIR),target)/release/tokenscope

.PHONY: run test check lint deps build models server bench screenshots

run: models
	$(BIN)

test: models server
	$(CARGO) test --release

# Clippy's warnings are errors; `unwrap()` outside tests is one (denied by
# the crate's own attribute, src/lib.rs and src/main.rs; `expect` says why).
check: lint test

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	scripts/imports.py --check   # no import circle, no import up a folder's layers (ARCHITECTURE.md)

deps:
	@scripts/ensure-deps.sh
	@scripts/cpu-kernels.sh   # llama.cpp's CPU kernels for this machine's CPU (TOKENSCOPE_PORTABLE=1: AVX2)

build: deps
	$(CARGO) build --release

models: build
	$(BIN) fetch-demos

# A prebuilt llama-server for the remote-engine tests and bench (not needed to run tokenscope).
server: build
	$(BIN) fetch-server

bench: models server
	$(BIN) bench

screenshots: models
	scripts/screenshots.sh
