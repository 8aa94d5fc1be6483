# SPDX-License-Identifier: MIT
# Thin wrapper around meson: `make demo`, `make check`.

BUILD      ?= build
ASAN_BUILD ?= build-asan
MESON      ?= meson
DEMO_SECS  ?= 60
DEMO_CHAOS ?= 20000

.PHONY: all deps build demo demo-oracle check check-plain check-asan install clean

all: build

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja: | deps
	$(MESON) setup $(BUILD) >/dev/null

build: deps $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

# Three KVM VMs x 2 vCPUs whose guests verify every page they touch while
# chaos moves random pages through every state underneath them.
demo: build
	@mkdir -p $(BUILD)/demo
	./$(BUILD)/vmm/ovc-vmm \
		--vm name=web,mem=256M,vcpus=2,guest=memtouch,args="hot=20 write=30" \
		--vm name=db,mem=256M,vcpus=2,guest=memtouch,args="pattern=seq write=50" \
		--vm name=batch,mem=256M,vcpus=2,guest=memtouch,args="write=70 shift=10" \
		--seconds $(DEMO_SECS) --chaos $(DEMO_CHAOS) \
		--log-dir $(BUILD)/demo --json $(BUILD)/demo/summary.json

# The same oracle with host threads standing in for vCPUs (no KVM needed).
demo-oracle: build
	./$(BUILD)/bench/ovc-oracle --seconds 20 --min-accesses 10000000

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
