# eqlab — the README's two commands are `make run` and `make test`.
CARGO ?= cargo
EQLAB := target/debug/eqlab
# The default paper pipelines: GMS Sections 2–5 (published inputs, then the same chain on the S&P
# 500 data), Sections 6–7 (Riccati, PDE, deep BSDE training) and the Reinforced-GAN paper.
PIPELINES ?= pipelines/gms-exogenous.yaml pipelines/gms-exogenous-sp500.yaml pipelines/gms-fbsde.yaml pipelines/rgan.yaml

.PHONY: build run test test-tch check-cuda lint fmt schema fuzz bench-engine bench-remote bench-slurm bench-science bench-train bench-rgan stage-versions clean

build:
	$(CARGO) build --bins

## Run the default pipeline on the shipped data (reruns only what changed).
run: build
	@set -e; for p in $(PIPELINES); do echo "== $$p"; $(EQLAB) run $$p; done

## All tests (unit + integration, driving the real binary), then the numerical CI gate with
## the binary `cargo test` built (a separate `cargo build` would compile some fifty crates again,
## with the features the dev-dependencies do not switch on).
test:
	$(CARGO) test --all-targets
	$(EQLAB) --store target/ci-store check pipelines/ci.yaml

## The deep stages on libtorch (cargo feature `tch`, device `tch-cpu`; README, "Devices"). Creates
## the venv $(TORCH_VENV) with PyTorch $(TORCH_VERSION) from the package index if it is missing
## (about 4 GB downloaded, 7 minutes, 6.7 GB on disk), builds into target/tch with the venv's
## libtorch (LIBTORCH_USE_PYTORCH) and runs the deep unit tests and the device acceptance tests
## (deep BSDE q = 2, N = 40 and R-GAN case A, the same bounds as on flex) on tch-cpu.
TORCH_VENV ?= .venv-torch
TORCH_VERSION := 2.9.0
test-tch:
	@set -e; \
	if ! $(TORCH_VENV)/bin/python -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' 2>/dev/null; then \
	  echo "== creating $(TORCH_VENV) with torch==$(TORCH_VERSION) (about 4 GB, several minutes)"; \
	  python3 -m venv $(TORCH_VENV); \
	  $(TORCH_VENV)/bin/pip install -q torch==$(TORCH_VERSION); \
	fi; \
	venv=$$(cd $(TORCH_VENV) && pwd); \
	torch_lib=$$($$venv/bin/python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))'); \
	export VIRTUAL_ENV=$$venv PATH=$$venv/bin:$$PATH LIBTORCH_USE_PYTORCH=1 \
	  LD_LIBRARY_PATH=$$torch_lib$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} \
	  CARGO_TARGET_DIR=target/tch EQLAB_TEST_DEVICE=tch-cpu; \
	$(CARGO) test --features tch --lib deep; \
	$(CARGO) test --features tch --test devices -- --nocapture

## The `cuda` feature type-checks without a CUDA toolkit or GPU (CI runs this so that it cannot
## rot). DOCS_RS=1 makes the build scripts of cubecl's LLVM (NVPTX) crates skip the LLVM bundle
## they would otherwise download; a real `cargo build --features cuda` needs that download. The
## library only, in the shared target directory (its build scripts and proc macros are reused):
## the deep code is where the feature matters.
check-cuda:
	DOCS_RS=1 $(CARGO) check --features cuda --lib

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate the JSON Schema of pipeline files from the stage registry (tests/schema.rs fails
## while the committed one is stale).
schema: build
	$(EQLAB) schema --output schema/eqlab-pipeline.schema.json

## Fuzz for FUZZ_SECONDS per target: the pipeline parser, and `--set` values with sweep expansion
## (needs the nightly toolchain; installs cargo-fuzz).
FUZZ_SECONDS ?= 60
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

## 50-stage no-op rerun: eqlab vs `dvc repro` side by side, and blake3 throughput.
bench-engine: build
	bash benches/engine.sh

## cost_ode + turnover_matching and simulate_equilibrium against scipy/numpy references.
## The remote cache: eqlab push/pull vs dvc push/pull to one S3 server (moto, started by the script).
bench-remote:
	bash benches/remote.sh

## Slurm executor: 200 cheap instances (packed, unpacked) and a 5-stage chain vs Snakemake on Slurm
## and sbatch --wait; planning a 10^5-instance sweep (--dry-run). Needs a cluster (.ci/slurm.sh).
bench-slurm:
	bash benches/slurm.sh

bench-science:
	bash benches/science.sh

## Deep BSDE training step: eqlab (burn, f64, CPU) vs PyTorch CPU, same network and rollout.
bench-train:
	bash benches/train.sh

## Reinforced-GAN generator and discriminator steps: eqlab (burn, f64, CPU) vs PyTorch CPU.
bench-rgan:
	bash benches/rgan.sh

## Refresh tests/stage_versions.txt after bumping a stage's version;
## `make stage-versions NEUTRAL=kind,kind` records source changes of those kinds without a version
## bump, for changes that keep their stored results valid (tests/stage_versions.rs).
stage-versions:
	EQLAB_UPDATE_STAGE_VERSIONS=1 EQLAB_STAGE_VERSIONS_NEUTRAL=$(NEUTRAL) $(CARGO) test --test stage_versions

clean:
	rm -rf artifacts
