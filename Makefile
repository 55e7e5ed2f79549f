# Thin wrapper over CMake so the README quick start is two commands.
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build test run install asan fuzz bench format clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
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

fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCHP_FUZZ=ON -DCHP_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS)

bench: build
	$(BUILD)/bench/bench-proto
	$(BUILD)/bench/bench-store -n 100000 -f 1000000

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
