# ovmigrate: `make demo` and `make test` do all set-up on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
APT_PACKAGES := qemu-system-x86 containerd runc criu busybox-static iptables kmod cpio dwarves tar gcc libc6-dev python3 iproute2 procps util-linux containernetworking-plugins curl redis-server nginx postgresql
# Packages whose postinst would start and enable a service on this machine: the tests run them only in lab guests.
SERVICE_PACKAGES := redis-server nginx postgresql
# The test lab's CLI: ovmigrate's commands plus `lab` (guests for the tests and the demo).
LAB := node dist/test/lab/cli/main.js
MOCHA := node_modules/.bin/mocha --reporter dist/test/helpers/timed-reporter.js --exit --forbid-only --require dist/test/helpers/root-hooks.js

.PHONY: all deps build unit components integration test kernels conformance fuzz demo bench clean help

all: build

help:
	@echo "make demo   move a container between two lab guests through containerd: checkpoint from outside the first, restore in the second; then the same between two Kubernetes nodes (kubelet API checkpoint, crictl restore)"
	@echo "make test   install what is missing, build, run unit and integration tests"
	@echo "make unit   unit tests only (no root, no guests)"
	@echo "make kernels  the dump (processes, events, sockets, servers), container dump, inspect, memory and ps suites on a Debian 6.12 guest pair (KERNELS=\"6.12 6.1-rt 6.12-cloud\": on each of those builds)"
	@echo "make build  compile TypeScript into dist/"
	@echo "make components  build the pinned Go components (containerd 2.x, crictl, critest, checkpointctl, kubelet; test/lab/components.json) into the cache, and check them"
	@echo "make conformance  critest (cri-tools' CRI conformance suite) against containerd 1.6 on this host, directly and through ovmigrate-cri: the same specs must pass"
	@echo "make bench  benchmarks, with ratios against baselines measured in the same run"
	@echo "make fuzz   the fuzzers with 10,000 cases each (OVMIGRATE_FUZZ_CASES=N for another count, OVMIGRATE_FUZZ_SEED=S to replay one)"

# Debian packages: installed only when one is missing (apt-get update first, as a fresh machine needs). The servers among
# them are for lab guests (which see this machine's /): a policy-rc.d that denies (101) keeps their postinst from starting
# them here, and they are disabled again after (one already there, e.g. a container image's, is left as it is).
deps: node_modules/.installed
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		own=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
		[ -z "$$own" ] || rm -f /usr/sbin/policy-rc.d; \
		for p in $$missing; do case " $(SERVICE_PACKAGES) " in *" $$p "*) \
			systemctl disable -q $$p >/dev/null 2>&1; update-rc.d $$p disable >/dev/null 2>&1;; esac; done; \
		exit $$rc; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: node_modules/.installed
	node_modules/.bin/tsc -p tsconfig.json

unit: build
	$(MOCHA) 'dist/test/unit/**/*.test.js'

# Every pinned component built once from the Go module proxy into $OVMIGRATE_CACHE/components (versions:
# test/lab/components.json), then checked: each program starts and is the pinned, static release. `make test`
# builds the ones its suites declare by itself, in the background (test/helpers/components.ts).
components: deps build
	$(LAB) lab components
	$(MOCHA) --timeout 600000 'dist/test/components/**/*.test.js'

# The integration suites in the order they run: the ones that run the pinned Go components last, so that a cold
# run builds those while the others run and no suite waits for a build (the kubelet, the longest, is the last
# suite's). mocha keeps the order of the files it is given.
LATE_SUITES := cri-proxy containerd2-cri-checkpoint cri-checkpoint cri-faults cri-restore kubernetes-node
INTEGRATION_SUITES = $$(LC_ALL=C ls dist/test/integration/*.test.js | grep -vE '/($(subst $(eval) ,|,$(LATE_SUITES)))\.test\.js$$') $(LATE_SUITES:%=dist/test/integration/%.test.js)

integration: deps build
	$(LAB) lab prepare >/dev/null
	$(LAB) lab prepare --kernel 6.12 >/dev/null
	$(MOCHA) --timeout 600000 $(INTEGRATION_SUITES)

# The Go components the suites declare build niced in the background from the start of the run (a cold cache:
# ~16 CPU-minutes; only the programs the suites run: critest, a test binary, is built by `make conformance`);
# the component checks come last, so that build has the whole run to finish.
# The kernel-parameterised suites run on 6.1 here and on 6.12 in `make kernels` (OVMIGRATE_TEST_KERNELS overrides).
test: deps build
	$(LAB) lab prepare >/dev/null
	OVMIGRATE_TEST_KERNELS=$${OVMIGRATE_TEST_KERNELS:-6.1} $(MOCHA) --timeout 600000 'dist/test/unit/**/*.test.js' $(INTEGRATION_SUITES) 'dist/test/components/**/*.test.js'

# The kernel-parameterised suites (dump, container dump, inspect, memory, ps) on guest pairs of each kernel in KERNELS
# (default the Debian 6.12 generic build; any of the six: `make kernels KERNELS="6.12 6.1-rt 6.12-cloud"`).
KERNEL_SUITES := dump dump-event-files dump-sockets dump-servers dump-container introspect-inspect introspect-memory introspect-ps
KERNELS ?= 6.12
comma := ,
kernels: deps build
	$(foreach k,$(KERNELS),$(LAB) lab prepare --kernel $(k) >/dev/null && ) true
	OVMIGRATE_TEST_KERNELS=$(subst $(eval) ,$(comma),$(strip $(KERNELS))) $(MOCHA) --timeout 600000 $(foreach s,$(KERNEL_SUITES),dist/test/integration/$(s).test.js)

# cri-tools' conformance suite twice against a containerd 1.6 of the test's own on this host (CRI on, local images,
# CNI bridge): at containerd's socket and through ovmigrate-cri; the counts and any difference are printed. Builds
# cri-tools (crictl, critest) when it is not cached. Too slow for `make test` (two full critest runs).
conformance: deps build
	$(MOCHA) --timeout 600000 'dist/test/conformance/**/*.test.js'

# Hostile guest RAM: the attach and readers on a fake kernel, then the readers and the dump over a real guest's corrupted RAM.
fuzz: deps build
	$(LAB) lab prepare >/dev/null
	OVMIGRATE_FUZZ_CASES=$${OVMIGRATE_FUZZ_CASES:-10000} $(MOCHA) --timeout 0 'dist/test/unit/fuzz-*.test.js' dist/test/integration/introspect-fuzz.test.js

demo: deps build
	$(LAB) lab prepare >/dev/null
	$(LAB) lab demo
	$(LAB) lab components kubernetes cri-tools checkpointctl >/dev/null
	$(LAB) lab demo --kubernetes

bench: deps build
	node dist/test/bench/hostile.bench.js
	$(LAB) lab prepare >/dev/null
	node dist/test/bench/introspect.bench.js
	node dist/test/bench/dump.bench.js
	node dist/test/bench/redis.bench.js
	node dist/test/bench/shim.bench.js
	node dist/test/bench/cri-poll.bench.js
	$(LAB) lab components >/dev/null
	node dist/test/bench/cri-forward.bench.js
	node dist/test/bench/cri-guest.bench.js
	node dist/test/bench/kubelet.bench.js

clean:
	rm -rf dist
