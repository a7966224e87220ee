# One task runner for people and CI. `make test` is what `.ci/run` calls.
CARGO ?= cargo

.PHONY: setup run test vendor-check fmt-check clippy unit validate-examples purity wasm browser playground docs fmt fuzz soak vectors

## Start the proxy on the built-in demo configuration.
run: setup
	$(CARGO) run -p zentinel -- run

## Everything CI checks: the vendored Pingora crates, formatting, lints, all tests, examples,
## the wasm build and its Node check, and the playground page in headless Chromium.
test: setup vendor-check fmt-check clippy unit validate-examples purity wasm browser

## Install the system packages the build needs (cmake), when missing.
setup:
	scripts/setup.sh

## vendor/ must be crates.io's Pingora plus vendor/patches/*.diff, nothing edited by hand.
vendor-check:
	scripts/vendor-pingora.sh --check

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

unit:
	$(CARGO) test --workspace --all-features --locked

validate-examples:
	$(CARGO) run -q -p zentinel --locked -- validate examples/*.kdl examples/*/zentinel.kdl

## The config and convert crates must not depend on an async runtime, Pingora or networking crates.
purity:
	@for c in zentinel-config zentinel-convert; do \
		if $(CARGO) tree -p $$c -e normal --prefix none --locked | grep -E '^(tokio|pingora[a-z_-]*|hyper|mio|socket2|async-[a-z-]+) '; then \
			echo "$$c must stay pure (see ARCHITECTURE.md)"; exit 1; fi; \
		echo "$$c: no runtime or network dependency"; done

## Build the config crate for wasm32 and run the Node check on it (installs the toolchain if needed).
wasm:
	scripts/wasm-check.sh

## The playground page in headless Chromium (needs `make wasm` first; installs chromium if missing).
browser:
	scripts/browser-check.sh

## Build the wasm module and serve the playground on http://127.0.0.1:8000/ (PORT=... to change).
PORT ?= 8000
playground: wasm
	@echo "Zentinel playground: http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	cd crates/playground/web && python3 -m http.server $(PORT) --bind 127.0.0.1

## Regenerate docs/config.md from the schema.
docs:
	ZENTINEL_BLESS=1 $(CARGO) test -q -p zentinel-config --test docs

fmt:
	$(CARGO) fmt --all

## Fuzz the configuration loader, the agent frame decoder and the path normalisation for
## FUZZ_SECONDS (60) each (needs nightly and cargo-fuzz: `cargo install cargo-fuzz`). The working corpora (fuzz/corpus/, not committed) start from the
## committed seeds (fuzz/seeds/<target>/, replayed by `cargo test`); add crashes to the seeds.
FUZZ_SECONDS ?= 60
fuzz:
	mkdir -p fuzz/corpus/config_load && cd fuzz && $(CARGO) +nightly fuzz run config_load corpus/config_load seeds/config_load ../examples -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -dict=kdl.dict
	mkdir -p fuzz/corpus/agent_frame && cd fuzz && $(CARGO) +nightly fuzz run agent_frame corpus/agent_frame seeds/agent_frame -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048
	mkdir -p fuzz/corpus/path_normalize && cd fuzz && $(CARGO) +nightly fuzz run path_normalize corpus/path_normalize seeds/path_normalize -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048

## A bounded soak of the release binary behind nginx under wrk (not part of `make test`): RSS
## must plateau and open descriptors return to baseline. SOAK_MINUTES=3 by default.
soak:
	scripts/soak.sh

## Regenerate the agent protocol's shared test vectors from the code.
vectors:
	ZENTINEL_BLESS=1 $(CARGO) test -q -p zentinel-agent-protocol --test vectors
