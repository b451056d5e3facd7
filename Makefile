# Two commands: `make run` (the app on a demo model) and `make test` (everything).
CARGO ?= cargo
BIN = $(or $(CARGO_TARGET_DIR),target)/release/tokenscope

.PHONY: run test deps build models server bench screenshots

run: models
	$(BIN)

test: models server
	$(CARGO) test --release

deps:
	@scripts/ensure-deps.sh

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
