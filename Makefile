# rescue: offline repair of Windows VM disks from Linux.
# `make demo` and `make test` set up everything they need (apt packages, venv, package) idempotently.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RESCUE := $(VENV)/bin/rescue
APT_PACKAGES := python3-guestfs python3-hivex python3-venv python3-yaml libguestfs-tools libhivex-bin \
                ntfs-3g dosfstools mtools qemu-utils fdisk gdisk parted $(DEB_APT_PACKAGES)
# `make deb` (Debian's packaging tools) and the package's own dependencies, so the test suite can
# build it and run it from a throw-away root; man-db renders the man page in that test.
DEB_APT_PACKAGES := dpkg-dev debhelper dh-python unzip man-db python3-click python3-rich \
                    python3-shellingham python3-typing-extensions
# The oldest Python rescue runs on, from pyproject.toml's requires-python (one place to change it).
PY_FLOOR := $(shell sed -n 's/^requires-python = ">=\([0-9.]*\)".*/\1/p' pyproject.toml)
# This machine (and CI) have /dev/kvm, but nested KVM hangs the appliance kernel: tests and the
# demo pin TCG explicitly. Users get `--accel auto`, which detects the hang and falls back.
export LIBGUESTFS_BACKEND_SETTINGS ?= force_tcg
export RESCUE_ACCEL ?= tcg
DEMO_DIR := demo

.PHONY: setup apt venv demo test test-unit typecheck floor bench deb clean image image-test image-test-full

setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

venv: apt $(VENV)/.installed

demo: setup
	@$(PY) -m rescue.cli.demo $(DEMO_DIR)

# The appliance runs under TCG, one vCPU each: two pytest workers keep both cores busy and halve the
# suite's time (a test file stays on one worker: its module-scoped disks and launches stay together).
PYTEST_JOBS ?= 2

test: setup typecheck floor
	$(VENV)/bin/pytest -q -ra -n $(PYTEST_JOBS) --dist loadfile $(PYTEST_ARGS)

# The type checker over the package (settings in pyproject.toml [tool.mypy]).
typecheck: setup
	$(VENV)/bin/mypy

test-unit: setup floor
	$(VENV)/bin/pytest -q -ra -m 'not appliance' $(PYTEST_ARGS)

# Static minimum-version check: fails on any construct newer than requires-python. Annotations are
# not evaluated (--no-eval-annotations, vermin's default): every module that uses `X | None` or
# `list[int]` in annotations has `from __future__ import annotations`, so they stay strings; the one
# place they are evaluated, typer's reading of command signatures, is checked by
# tests/unit/test_cli_startup.py. Union-type detection stays off: its heuristic takes bitwise ORs of
# flags for `X | Y` (hundreds of false alarms in the BCD code).
# image/cache holds a whole Debian tree once the image is built: only the image's own scripts.
VERMIN_PATHS ?= rescue tools tests image/*.py image/lib debian/launcher/rescue
VERMIN := $(VENV)/bin/vermin --no-tips --violations --no-eval-annotations -t=$(PY_FLOOR)-
floor: venv
	@$(VERMIN) $(VERMIN_PATHS) >/dev/null || { $(VERMIN) $(VERMIN_PATHS); exit 1; }
	@echo "vermin: every file runs on Python $(PY_FLOOR)"
	@bash tools/floor_smoke.sh $(PY_FLOOR)

# dist/rescue_<version>_all.deb (debian/, tools/build_deb.sh); DEB_OUT changes the directory.
deb: setup
	@bash tools/build_deb.sh $(DEB_OUT)

bench: setup
	@$(PY) tools/bench_startup.py || true
	@$(PY) tools/bench.py
	@$(PY) -m rescue.cli.bench_space bench

clean:
	rm -rf $(VENV) .pytest_cache $(DEMO_DIR) bench

# --- bootable rescue image (image/README.md) -------------------------------------------
# Debian 12 + rescue from this checkout: raw GPT disk, fixed VHD (Azure) and hybrid ISO in
# image/out/. Needs root. Each step is cached in image/cache/ by a key of its inputs.
IMAGE_APT_PACKAGES := mmdebstrap mtools dosfstools e2fsprogs fdisk squashfs-tools xorriso \
                      qemu-utils qemu-system-x86 ovmf
# image-test boots the disk (BIOS, UEFI + Secure Boot) and the ISO under TCG; IMAGE_TEST_ARGS may
# narrow it, e.g. IMAGE_TEST_ARGS="--only bios" or "--attach blank" (no sample disk build).
# image-test-full also runs `rescue inspect` on the sample inside each boot (the appliance under KVM
# on qemu's emulated AMD SVM: 1-2 min per boot; TCG inside TCG would take over 45 min).
IMAGE_TEST_ARGS ?=

image: venv
	@IMAGE_APT_PACKAGES="$(IMAGE_APT_PACKAGES)" bash image/build.sh

image-test: image
	@$(PY) image/boot_test.py $(IMAGE_TEST_ARGS)

image-test-full: image
	@$(PY) image/boot_test.py --full $(IMAGE_TEST_ARGS)
