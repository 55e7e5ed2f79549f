# Thin wrapper over CMake so the README quick start is two commands.
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
# CI (CI=true in the environment, as .ci/run sets it) fails the build on
# any compiler warning; a user's newer compiler only prints them.
WERROR := -DCHP_WERROR=$(if $(filter true,$(CI)),ON,OFF)
# The libFuzzer targets, each replayed over its corpus by ctest.
FUZZ_REPLAY := '^fuzz_replay_'

.PHONY: all deps deps-test build test run install asan fuzz fuzz-replay bench format clean deb

all: build

# The programs need only the build dependencies; the tests add cmocka,
# Python, tmux, iproute2 and tcpdump (scripts/install-deps --help).
deps:
	@scripts/install-deps

deps-test:
	@scripts/install-deps --test

# The first configure leaves the tests out, so `make run` needs neither
# cmocka nor Python; `make test` turns them on in the same directory.
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DBUILD_TESTING=OFF $(WERROR) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps-test
	cmake -S . -B $(BUILD) -DBUILD_TESTING=ON $(WERROR) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# `make run` opens the terminal UI on the default data dir; it starts chapard
# in the background when none runs there and creates an identity on first
# start. RUN_ARGS go to chapar-tui (e.g. --home DIR).
run: build
	exec $(BUILD)/bin/chapar-tui $(RUN_ARGS)

# Copies chapar, chapard, chapar-tui and the man page under PREFIX
# (default ~/.local: ~/.local/bin is on Debian's PATH after a new login).
PREFIX ?= $(HOME)/.local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DCHP_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"

# The libFuzzer binaries (clang), in build-fuzz/fuzz; see fuzz/README.md.
fuzz:
	@CHP_WITH_CLANG=1 scripts/install-deps --test
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCHP_FUZZ=ON -DCHP_BENCH=OFF $(WERROR)
	cmake --build build-fuzz -j $(JOBS) --target fuzzers

# Every seed corpus through its libFuzzer binary (sanitizers on), once.
fuzz-replay: fuzz
	cd build-fuzz && ctest -R $(FUZZ_REPLAY) --output-on-failure -j $(JOBS)

bench: build
	$(BUILD)/bench/bench-proto
	$(BUILD)/bench/bench-store -n 100000 -f 1000000

# The Debian package of this commit and its source tarball, in dist/
# (scripts/make-deb; docs/PACKAGING.md). Installs the packaging tools.
deb:
	scripts/make-deb

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz build-deb dist
