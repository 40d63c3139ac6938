#!/usr/bin/env bash
# Fuzz for a bounded time: `bash fuzz/run.sh [SECONDS]` runs each target for SECONDS:
#   parse_pipeline  the pipeline parser and validator on arbitrary text;
#   set_and_sweep   `--set` values applied to a swept pipeline, and sweep expansion.
# Needs the nightly toolchain (cargo-fuzz uses sanitizer flags); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
rustup toolchain list | grep -q nightly || { echo "fuzz: the nightly toolchain is required (rustup toolchain install nightly)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/parse_pipeline fuzz/corpus/set_and_sweep
cp tests/malformed/*.yaml pipelines/*.yaml fuzz/corpus/parse_pipeline/
# Seeds for the override target: one KEY=VALUE per line.
printf 'a.rows=x\n' > fuzz/corpus/set_and_sweep/bad-value
printf 'params.s=${params.s}\n' > fuzz/corpus/set_and_sweep/cycle
printf 'a.sweep.k={range: {start: 0, stop: 1, num: 1e20}}\n' > fuzz/corpus/set_and_sweep/huge-range
printf 'a.sweep.k=[1, 2.5, x]\nb.replicates=3\n' > fuzz/corpus/set_and_sweep/mixed
printf 'c.sweep.rows=[[1], {a: 1}]\nparams.n=${sweep.k}\n' > fuzz/corpus/set_and_sweep/nested
for target in parse_pipeline set_and_sweep; do
  echo "== fuzz $target for ${secs}s"
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$secs" -max_len=4096
done
