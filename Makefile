# husk — containerd shim v2 runtime. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := bin
TOOLS := $(CURDIR)/.tools/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/huskrt/husk/version.Version=$(VERSION) -X github.com/huskrt/husk/version.Revision=$(REVISION)
# VARIANT picks a build that leaves parts out (docs/RATIONALE.md, "Why
# build variants"): novmm leaves husk's own VMM out of the shim and huskctl
# (the virt handler then runs VMs with QEMU only); nohooks leaves the hook
# engine, and wazero with it, out (a configuration with hooks is refused).
# Both: VARIANT="novmm nohooks". Empty: everything.
VARIANT ?=
VARIANT_TAGS_novmm := husk_novmm
VARIANT_TAGS_nohooks := husk_nohooks
$(foreach v,$(VARIANT),$(if $(VARIANT_TAGS_$(v)),,$(error unknown VARIANT '$(v)': want novmm and/or nohooks, or none for the full build)))
# libcontainer needs cgo (nsenter) and, for seccomp, libseccomp. grpcnotrace
# leaves gRPC's request tracing (x/net/trace and text/template) out: 4.5 MB
# less shim (docs/RATIONALE.md, "Why the shim is built with grpcnotrace").
BUILDTAGS := seccomp grpcnotrace $(foreach v,$(VARIANT),$(VARIANT_TAGS_$(v)))
export CGO_ENABLED := 1
# husk-vmm is a pod's VMM process (cmd/husk-vmm), which the shim starts from
# its own directory: static, and with only the builtin hypervisor's
# VMM-process side (husk_vmmchild). The novmm variant has none.
VMM_BINARY := $(if $(filter novmm,$(VARIANT)),,husk-vmm)
VMM_BUILD = $(GO) build -tags 'seccomp husk_vmmchild netgo osusergo' -trimpath -ldflags '-s -w -extldflags=-static $(LDFLAGS)'

.PHONY: all build install uninstall test unit integration demo bench containerd tools clean lint fuzz fuzz-short nested-assets proto agent guest static

all: build

build:
	$(GO) build -tags '$(BUILDTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/containerd-shim-husk-v2 ./cmd/containerd-shim-husk-v2
	$(GO) build -tags '$(BUILDTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/huskctl ./cmd/huskctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/husk-wasm-runner ./cmd/husk-wasm-runner
	$(if $(VMM_BINARY),$(VMM_BUILD) -o $(BIN)/husk-vmm ./cmd/husk-vmm)

# install puts the binaries in $(PREFIX)/bin, where containerd finds the shim
# by its runtime name, and a configuration in $(SYSCONFDIR)/husk/config.toml
# unless one is there already: an operator's file is never overwritten.
# Without HYPERVISOR the configuration is examples/config.toml (every key at
# its default, documented); HYPERVISOR=builtin or qemu installs
# examples/config-$(HYPERVISOR).toml and the guest image `make guest` built
# (.tools/guest) in $(GUESTDIR), where that configuration looks for it.
# DESTDIR stages the whole tree elsewhere (packaging, tests).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
GUESTDIR ?= /var/lib/husk/guest
HYPERVISOR ?=
HUSK_BINARIES := containerd-shim-husk-v2 huskctl husk-wasm-runner $(VMM_BINARY)
ifneq ($(filter-out builtin qemu,$(HYPERVISOR)),)
$(error unknown HYPERVISOR '$(HYPERVISOR)': want builtin or qemu)
endif
INSTALL_CONFIG := examples/config$(if $(HYPERVISOR),-$(HYPERVISOR)).toml

install: build $(if $(HYPERVISOR),guest)
	for b in $(HUSK_BINARIES); do install -D -m 0755 $(BIN)/$$b $(DESTDIR)$(PREFIX)/bin/$$b || exit 1; done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/husk/config.toml ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/husk/config.toml"; \
	else \
		install -D -m 0644 $(INSTALL_CONFIG) $(DESTDIR)$(SYSCONFDIR)/husk/config.toml && \
		echo "installed $(DESTDIR)$(SYSCONFDIR)/husk/config.toml ($(INSTALL_CONFIG))"; \
	fi
ifneq ($(HYPERVISOR),)
	for f in vmlinuz initrd.img manifest.json; do install -D -m 0644 .tools/guest/$$f $(DESTDIR)$(GUESTDIR)/$$f || exit 1; done
	@echo "installed the guest image in $(DESTDIR)$(GUESTDIR)"
endif

# uninstall removes what install put: the binaries, the guest image, and the
# configuration only while it is one of the examples unchanged (an operator's
# file, or one they edited, stays).
uninstall:
	for b in $(HUSK_BINARIES); do rm -f $(DESTDIR)$(PREFIX)/bin/$$b; done
	for f in vmlinuz initrd.img manifest.json; do rm -f $(DESTDIR)$(GUESTDIR)/$$f; done
	-rmdir $(DESTDIR)$(GUESTDIR) 2>/dev/null
	@for c in examples/config.toml examples/config-builtin.toml examples/config-qemu.toml; do \
		if cmp -s $$c $(DESTDIR)$(SYSCONFDIR)/husk/config.toml; then \
			rm -f $(DESTDIR)$(SYSCONFDIR)/husk/config.toml && echo "removed $(DESTDIR)$(SYSCONFDIR)/husk/config.toml (unchanged $$c)"; \
		fi; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/husk/config.toml ]; then echo "keeping $(DESTDIR)$(SYSCONFDIR)/husk/config.toml (changed since install)"; fi
	-rmdir $(DESTDIR)$(SYSCONFDIR)/husk 2>/dev/null

# tools: runc, busybox-static, libseccomp (apt) and containerd v2.4.2, ctr,
# containerd-shim-runc-v2 (go install into .tools/bin).
tools containerd:
	bash hack/install-tools.sh

# Debian's cloud kernel for the nested-KVM harness (test/nested), cached in
# .tools/kernel; needs apt's package lists, not root.
nested-assets:
	bash hack/nested-assets.sh

# static builds every binary fully static into $(BIN)/static (no dynamic
# section, no interpreter): the shim, huskctl and the agent with cgo
# (libcontainer's nsenter) linked against Debian's static glibc and
# libseccomp, netgo and osusergo so that no NSS module is loaded at run
# time; the Wasm runner without cgo. TestStaticBinaries runs it and checks
# each binary's ELF headers.
STATIC_TAGS := $(BUILDTAGS) netgo osusergo
STATIC_LDFLAGS := -s -w -extldflags=-static $(LDFLAGS)
static:
	$(GO) build -tags '$(STATIC_TAGS)' -trimpath -ldflags '$(STATIC_LDFLAGS)' -o $(BIN)/static/containerd-shim-husk-v2 ./cmd/containerd-shim-husk-v2
	$(GO) build -tags '$(STATIC_TAGS)' -trimpath -ldflags '$(STATIC_LDFLAGS)' -o $(BIN)/static/huskctl ./cmd/huskctl
	$(GO) build -tags '$(STATIC_TAGS)' -trimpath -ldflags '$(STATIC_LDFLAGS)' -o $(BIN)/static/husk-agent ./cmd/husk-agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(BIN)/static/husk-wasm-runner ./cmd/husk-wasm-runner
	$(if $(VMM_BINARY),$(VMM_BUILD) -o $(BIN)/static/husk-vmm ./cmd/husk-vmm)

# The guest agent, static (the guest image holds nothing else): cgo for
# libcontainer's nsenter, linked with Debian's static libseccomp.
agent:
	$(GO) build -tags '$(BUILDTAGS) netgo osusergo' -trimpath -ldflags '-s -w -extldflags=-static $(LDFLAGS)' -o $(BIN)/husk-agent ./cmd/husk-agent

# The VM guest image (internal/guestimage): Debian's cloud kernel and an
# initramfs whose /init is husk-agent, written to .tools/guest.
guest: build agent nested-assets
	$(BIN)/huskctl guest build --out $(CURDIR)/.tools/guest --cache $(CURDIR)/.tools/kernel --agent $(BIN)/husk-agent

# The agent's ttrpc API (agent/api): protoc from apt, its Go plugins from
# .tools/bin (hack/install-tools.sh). agent/api's tests fail when the
# committed code differs from what this writes.
proto:
	PATH=$(TOOLS):$$PATH protoc --proto_path=. --go_out=paths=source_relative:. --go-ttrpc_out=paths=source_relative:. agent/api/agent.proto

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags '$(BUILDTAGS)' ./...

unit:
	$(GO) test -tags '$(BUILDTAGS)' -count=1 ./...

# Short fuzz runs, then tier 1 (unit), tier 2 (root, against a private
# containerd) and tier 3 (nested KVM). Tests that need root, KVM or tools say
# so and skip; the run ends with every skipped test, its reason, and the
# counts (hack/testreport). CI runs as root with the tools.
test: tools nested-assets build guest lint
	$(MAKE) fuzz-short
	$(GO) build -o $(BIN)/testreport ./hack/testreport
	set -o pipefail; $(GO) test -json -tags '$(BUILDTAGS)' -count=1 -timeout 30m ./... | $(BIN)/testreport

# Every fuzz target of an untrusted-input parser: package and target.
FUZZ_TARGETS := ./vmm/virtio:FuzzQueue ./vmm/virtio/blk:FuzzBlkRequest ./vmm/virtio/mmio:FuzzTransport ./vmm/virtio/vsock:FuzzVsockPacket ./vmm/virtio/net:FuzzNetChain ./runtime/wasm:FuzzModuleImports ./hooks:FuzzDecision ./hooks:FuzzIndexersAgree ./wasmhost:FuzzQuery ./wasmhost:FuzzInstrumentStack ./policies/sdk:FuzzValue ./policies/sdk:FuzzAppendString ./policies/builtin:FuzzDecide ./policies/builtin:FuzzStrings
FUZZ_TARGETS += ./agent/api:FuzzStreamHeader ./agent/api:FuzzForwardHeader ./agent/client:FuzzReplyValidation ./agent/client:FuzzFrameScanner
FUZZ_TARGETS += ./agent/serial:FuzzPortHeader ./agent/serial:FuzzHandshake ./agent/serial:FuzzGuard
FUZZ_TARGETS += ./agent/api:FuzzConsoleFrame ./agent:FuzzSyncVolume ./hooks:FuzzSplice ./hooks:FuzzStrictValid
FUZZTIME ?= 5m

# A run that fails without writing a reproducer is retried once: Go 1.26's
# fuzzer sometimes reports "context deadline exceeded" as -fuzztime runs out
# (golang/go#75804). A real finding is written to testdata and fails again.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $${t%%:*} && continue; \
		if [ -n "$$(git status --porcelain -- "$${t%%:*}/testdata/fuzz/$${t#*:}")" ]; then exit 1; fi; \
		echo "fuzz $${t#*:}: failed without a reproducer, once more"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $${t%%:*} || exit 1; \
	done

fuzz-short:
	$(MAKE) fuzz FUZZTIME=10s

demo: tools build guest
	$(BIN)/huskctl dev demo --tools $(TOOLS) --shim-dir $(CURDIR)/$(BIN) --guest $(CURDIR)/.tools/guest

bench: tools build guest
	$(GO) run ./test/bench --tools $(TOOLS) --shim-dir $(CURDIR)/$(BIN)

clean:
	rm -rf $(BIN)
