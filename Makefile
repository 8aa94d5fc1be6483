# SPDX-License-Identifier: MIT
# Thin wrapper around meson: `make demo`, `make check`.

BUILD      ?= build
ASAN_BUILD ?= build-asan
MESON      ?= meson
DEMO_SECS  ?= 20

.PHONY: all deps build demo check check-plain check-asan install clean

all: build

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja: | deps
	$(MESON) setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

demo: build
	./$(BUILD)/bench/ovc-oracle --seconds $(DEMO_SECS) --min-accesses 10000000

check: check-plain check-asan

check-plain: build
	$(MESON) test -C $(BUILD) --print-errorlogs

$(ASAN_BUILD)/build.ninja: | deps
	$(MESON) setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

check-asan: deps $(ASAN_BUILD)/build.ninja
	$(MESON) compile -C $(ASAN_BUILD)
	$(MESON) test -C $(ASAN_BUILD) --print-errorlogs

install: build
	$(MESON) install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
