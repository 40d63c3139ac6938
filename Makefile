# eqlab — the README's two commands are `make run` and `make test`.
CARGO ?= cargo
EQLAB := target/debug/eqlab
# The default paper pipelines: GMS Sections 2–5 (published inputs, then the same chain on the S&P
# 500 data), Sections 6–7 (Riccati, PDE, deep BSDE training) and the Reinforced-GAN paper.
PIPELINES ?= pipelines/gms-exogenous.yaml pipelines/gms-exogenous-sp500.yaml pipelines/gms-fbsde.yaml pipelines/rgan.yaml

.PHONY: build run test lint fmt schema fuzz bench-engine bench-remote bench-slurm bench-science bench-train bench-rgan stage-versions clean

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

## Refresh tests/stage_versions.txt after bumping a stage's version.
stage-versions:
	EQLAB_UPDATE_STAGE_VERSIONS=1 $(CARGO) test --test stage_versions

clean:
	rm -rf artifacts
