# ebpfjail — `make help` lists the targets.
GO       ?= go
BPF_CLANG ?= clang
BIN      := bin/ebpfjail
# --version names the commit; this workplace sets GOFLAGS=-buildvcs=false.
BUILDVCS := $(shell git rev-parse --git-dir >/dev/null 2>&1 && echo true || echo false)
# Tests own only what they create (their jails, test hosts, locked fixed
# paths), so another run may share the machine; one package at a time keeps
# the timing-sensitive end-to-end tests off each other's CPUs.
TEST_FLAGS ?= -count=1 -p 1 -timeout 20m

.PHONY: all build generate check-generated cross test test-unit fuzz demo bench bench-quick bench-peers bench-micro testhost-up testhost-down lint clean help

all: build

build: ## build bin/ebpfjail (no clang needed: the BPF object is committed)
	$(GO) build -trimpath -buildvcs=$(BUILDVCS) -o $(BIN) ./cmd/ebpfjail

generate: ## regenerate the BPF object and its Go bindings (needs clang)
	BPF_CLANG=$(BPF_CLANG) $(GO) generate ./internal/bpf

check-generated: generate ## regenerate and fail if the committed object differs
	git diff --exit-code -- internal/bpf || { echo "generated BPF files are stale: run 'make generate' and commit"; exit 1; }

# Jailing needs Linux; the modes that do not (--server, --weak, --test, ca)
# build anywhere, and a jail mode there says it needs Linux.
cross: ## build for other systems: the portable packages and the binary for macOS and FreeBSD, everything for linux/arm64
	GOOS=darwin $(GO) build ./...
	GOOS=darwin $(GO) build -o /dev/null ./cmd/ebpfjail
	GOOS=darwin $(GO) vet $$($(GO) list ./... | grep -v /tests)
	GOOS=freebsd $(GO) build -o /dev/null ./cmd/ebpfjail
	GOOS=linux GOARCH=arm64 $(GO) build ./...
	GOOS=linux GOARCH=arm64 $(GO) vet ./...

test: build ## unit, privileged (as root) and end-to-end tests, the quick benchmark, then 20s of fuzzing per parser (~15 min; 'make fuzz' fuzzes longer)
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	EBPFJAIL_BIN=$(CURDIR)/$(BIN) $(GO) test $(TEST_FLAGS) ./...
	$(MAKE) bench-quick
	$(MAKE) fuzz FUZZTIME=20s

FUZZTIME ?= 60s
fuzz: ## run each fuzz target for FUZZTIME (default 60s); a crash is left in the package's testdata/fuzz
	$(GO) test -run '^$$' -fuzz '^FuzzPeekTLS$$' -fuzztime $(FUZZTIME) ./internal/sniff
	$(GO) test -run '^$$' -fuzz '^FuzzPeekHTTP$$' -fuzztime $(FUZZTIME) ./internal/sniff
	$(GO) test -run '^$$' -fuzz '^FuzzServeConn$$' -fuzztime $(FUZZTIME) ./internal/dns
	$(GO) test -run '^$$' -fuzz '^FuzzParseResult$$' -fuzztime $(FUZZTIME) ./internal/rules
	$(GO) test -run '^$$' -fuzz '^FuzzLineProcessReply$$' -fuzztime $(FUZZTIME) ./internal/rules
	$(GO) test -run '^$$' -fuzz '^FuzzJSRequestObject$$' -fuzztime $(FUZZTIME) ./internal/rules
	$(GO) test -run '^$$' -fuzz '^FuzzSwap$$' -fuzztime $(FUZZTIME) ./internal/secrets
	$(GO) test -run '^$$' -fuzz '^FuzzRequestObject$$' -fuzztime $(FUZZTIME) ./internal/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzLeanParse$$' -fuzztime $(FUZZTIME) ./internal/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzReadSessionAndWriteHTML$$' -fuzztime $(FUZZTIME) ./internal/report

# The README's picture of `ebpfjail report`: the sample session rendered
# and photographed by headless Chromium (Debian's chromium; as root it
# needs --no-sandbox).
.PHONY: report-screenshot
report-screenshot: build ## render tests/testdata/report-sample.jsonl and photograph it into docs/report.png (needs chromium)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	./$(BIN) report tests/testdata/report-sample.jsonl -o "$$tmp/report.html" && \
	timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
		--disable-background-networking --user-data-dir="$$tmp/profile" --hide-scrollbars \
		--window-size=1200,1500 --screenshot="$(CURDIR)/docs/report.png" "file://$$tmp/report.html" && \
	echo "wrote docs/report.png"

test-unit: ## tests that need no root
	$(GO) test -count=1 -short ./...

demo: build ## see it work, offline: jailed curl, node and python3 against a test origin, then --audit (root)
	EBPFJAIL_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -run '^TestPrivilegedDemo$$' -v ./tests

# The side-by-side benchmark: a load client direct and jailed, interleaved
# (scripts/bench runs it against any binary).
BENCH_JSON ?= $(CURDIR)/bin/bench.json
bench: build ## side-by-side benchmark, direct vs jailed, 5 rounds (root, ~4 min); table + bin/bench.json
	GO=$(GO) EBPFJAIL_BENCH_JSON=$(BENCH_JSON) scripts/bench $(BIN)

bench-quick: build ## the same, one short round (make test runs it: every row must be measurable)
	GO=$(GO) EBPFJAIL_BENCH_JSON=$(BENCH_JSON) scripts/bench --quick $(BIN)

# Not in CI: the same load through squid (ssl-bump) and goproxy (MITM), a
# peer whose install or start fails shows as "n/a (why)" in the table.
bench-peers: build ## the load through squid, goproxy, ebpfjail and ebpfjail --no-mitm, interleaved with direct, 5 rounds (root, ~5 min)
	@command -v squid >/dev/null 2>&1 || test -x /usr/sbin/squid || apt-get install -y -qq squid-openssl >/dev/null 2>&1 || echo "bench-peers: could not install squid-openssl; squid will show as n/a"
	GO=$(GO) scripts/bench --peers $(BIN)

# A test host by hand: a netns joined by a veth pair, addressed as the tests'
# (198.51.100.0/24, 2001:db8:eb::/64); see scripts/README.md.
HOST ?= ebpfjail-dev
testhost-up: ## bring test host HOST (default ebpfjail-dev) up: a netns to run servers in (root)
	scripts/testhost up $(HOST)

testhost-down: ## remove test host HOST and everything it made (root)
	scripts/testhost down $(HOST)

bench-micro: ## in-process Go benchmarks (proxy, rules, tlsca, ...)
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean: ## remove build output
	rm -rf bin

help: ## show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
