# Two commands: `make run` (the app on a demo model) and `make test` (everything).
CARGO ?= cargo
BIN = $(or $(CARGO_TARGET_DIR),target)/release/tokenscope

.PHONY: run test deps build models bench screenshots

run: models
	$(BIN)

test: models
	$(CARGO) test --release

deps:
	@scripts/ensure-deps.sh

build: deps
	$(CARGO) build --release

models: build
	$(BIN) fetch-demos
	$(BIN) fetch-server

bench: models
	$(BIN) bench

screenshots: models
	scripts/screenshots.sh
