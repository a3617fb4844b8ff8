# Two entry points for a fresh machine: `make demo` and `make test`.
# Both first install what is missing: Debian packages (the cross toolchain, QEMU, and gcc for QEMU plugins)
# and a .venv with the pinned Python packages plus this package (editable).

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
VENV_STAMP  := $(VENV)/.installed
APT_PKGS    := clang-19 lld-19 llvm-19 qemu-user qemu-system-misc gcc
# The commands those packages provide; any one missing triggers the apt install.
APT_TOOLS   := clang-19 ld.lld-19 llvm-objdump-19 qemu-riscv32 qemu-aarch64 qemu-system-riscv32 qemu-system-riscv64 gcc
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT    := build/demo
# Real trained .tflite models for the TFLite tests: the 14 inside the mediapipe 0.10.14 wheel
# (fetched from PyPI, never installed: only its models/ folder is unpacked).
MEDIAPIPE   := build/mediapipe/.unpacked

.PHONY: demo test deps system-deps python-deps mediapipe-models clean

demo: deps
	$(PY) -m compiler build examples/digits/digits_cnn.onnx --target coral-npu --memory highmem -o $(DEMO_OUT) \
	    --quantize int8 --calib examples/digits/calib.npz --val examples/digits/val.npz
	$(PY) -m compiler run $(DEMO_OUT) --input examples/digits/sample.npy

# The suite runs in TEST_WORKERS processes (pytest-xdist), a whole test file per process so each
# module's fixtures (kernel builds, calibrated models) are made once: most tests wait on one
# single-threaded tool (clang, QEMU, a TVM build), so two cores take half the time.
TEST_WORKERS ?= 2

test: deps mediapipe-models
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

deps: system-deps python-deps

system-deps:
	@missing=""; for t in $(APT_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS); \
	fi

python-deps: $(VENV_STAMP)

# Native sources (Cython, C kernels) are compiled by the package install, so they re-trigger it.
NATIVE_SRC  := $(shell find compiler kernels cpp -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.h' -o -name '*.cc' 2>/dev/null)

$(VENV_STAMP): requirements.txt pyproject.toml CMakeLists.txt $(NATIVE_SRC)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-build-isolation -e .
	touch $@

mediapipe-models: $(MEDIAPIPE)

$(MEDIAPIPE): | python-deps
	$(PY) -m pip download -q --no-deps mediapipe==0.10.14 -d build/cache
	$(PY) tests/mediapipe_models.py build/cache build/mediapipe
	touch $@

clean:
	rm -rf build $(VENV)
