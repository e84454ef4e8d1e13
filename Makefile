# ferry top-level entry points. The README quick start is `make demo` and
# `make test`; everything else is a building block of those two.

BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CTEST_ARGS ?=

# Debian packages ferry needs, and why (README "Dependencies" has the list):
#  LLVM/Clang 19 (plugin, JIT), lld (fast links), UCX + libfabric (transports),
#  fmt, CLI11 (ferry command), doctest (tests), libsodium (content hashes and
#  code signatures), xxHash (the object format's checksum; header only), nlohmann-json (ferry inspect --json), PMIx/Open MPI
#  (mpirun bootstrap), cmake/ninja (build), g++-aarch64-linux-gnu (aarch64
#  C/C++ headers for ferry_add_mobile's aarch64 code object compiles),
#  libclang-rt-19-dev (libFuzzer and the sanitizer runtimes for clang 19:
#  the fuzz targets in tests/fuzz, `make fuzz`).
DEPS := cmake ninja-build make pkg-config \
        llvm-19-dev clang-19 libclang-19-dev lld-19 \
        libucx-dev ucx-utils libfabric-dev libfabric-bin \
        libfmt-dev libcli11-dev doctest-dev libsodium-dev libxxhash-dev liburing-dev \
        nlohmann-json3-dev libpmix-dev openmpi-bin iproute2 procps \
        g++-aarch64-linux-gnu libclang-rt-19-dev \
        libboost-graph-dev gnuplot-nox python3 gdb
# liburing-dev: a file store's read-ahead (runtime/object/direct_reader.hpp).
# libboost-graph-dev: the graph sample's single-process reference (Boost.Graph
# BFS, PageRank, connected components) that checks every answer.
# gnuplot-nox, python3: `make bench` turns benchmark JSON into CSV
# (tools/bench/bench_csv.py) and PNG plots (tools/bench/plot.sh).
# gdb: a test whose node process hangs prints that process's stacks
# (test::process::describe).

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The aarch64 DPU tier (docs/devices.md): qemu to run the node, and the
# arm64 libraries it links (Debian multiarch). libpmix-dev:arm64 is left out
# on purpose: it cannot be installed next to libpmix-dev (it would remove
# it), so the aarch64 node is built without PMIx.
DEPS_AARCH64 := qemu-user libllvm19:arm64 libucx-dev:arm64 libfmt-dev:arm64 libsodium-dev:arm64

.PHONY: deps deps-host deps-aarch64 build build-aarch64 test test-sanitize demo bench fuzz clean

# Everything: the host's packages, then the aarch64 tier's.
deps: deps-aarch64

# Idempotent: asks apt only for what is missing, so a second run is instant.
deps-host:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

# Idempotent like deps: adds the arm64 architecture once, updates the package
# lists only when something is missing.
deps-aarch64: deps-host
	@dpkg --print-foreign-architectures | grep -qx arm64 || $(SUDO) dpkg --add-architecture arm64; \
	missing=$$(for p in $(DEPS_AARCH64); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps-aarch64: installing:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "make deps-aarch64: all packages present"; fi

# `ferry node` for aarch64 (libferry + the ferry command, nothing else):
# what `ferry launch --dpu K` runs under qemu. Output: $(BUILD_DIR)/aarch64/bin/ferry.
build-aarch64: deps-aarch64 $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) --target ferry-aarch64 -j $(JOBS)

$(BUILD_DIR)/build.ninja:
	cmake --preset default -B $(BUILD_DIR)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build build-aarch64
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600 -j 1 $(CTEST_ARGS)
	$(MAKE) test-sanitize

# The sanitizer subset after the normal suite (docs/security.md,
# "Sanitizers"): for each preset of SANITIZERS, its build of libferry,
# `ferry node` and the suites labelled `sanitize` (tests/CMakeLists.txt) in
# $(BUILD_DIR)/<preset>, then those suites. SANITIZERS= skips it.
SANITIZERS ?= asan tsan
test-sanitize: deps-host
	@for s in $(SANITIZERS); do \
	  cmake --preset $$s -B $(BUILD_DIR)/$$s && \
	  cmake --build $(BUILD_DIR)/$$s --target ferry-sanitize-tests -j $(JOBS) && \
	  (cd $(BUILD_DIR)/$$s && ctest -L sanitize --output-on-failure --timeout 600 -j 1) || exit 1; \
	done

# A tour of every sample at a small size (tools/demo/tour.sh: about 70 s on
# 2 cores); each checks its answers. The storage and DPU samples need root,
# loop devices, qemu and `make build-aarch64`; without them the tour says so.
demo: build
	tools/demo/tour.sh $(BUILD_DIR)

# The measured tables and plots in docs/bench (a few minutes; run on a quiet
# machine: the figures are only as good as the machine was idle). The device
# figures need the aarch64 node, root and qemu; without them they are skipped.
bench: build build-aarch64
	tools/bench/record.sh $(BUILD_DIR)/bin/ferry docs/bench

# Longer fuzzing than ctest's few seconds: FUZZ_SECONDS per target; each
# target's corpus grows in $(BUILD_DIR)/fuzz-corpus across runs.
FUZZ_SECONDS ?= 300
fuzz: build
	cmake --build $(BUILD_DIR) --target ferry-fuzz
	cd $(BUILD_DIR) && for t in frames code_object bootstrap object_image ifunc_message; do \
	  sh $(CURDIR)/tests/fuzz/run_fuzz.sh $(abspath $(BUILD_DIR))/bin/fuzz_$$t $(CURDIR)/tests/fuzz/corpus/$$t \
	     $(FUZZ_SECONDS) fuzz-corpus/$$t || exit 1; \
	done

clean:
	rm -rf $(BUILD_DIR)
