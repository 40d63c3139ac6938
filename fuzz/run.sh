#!/usr/bin/env bash
# Fuzz the pipeline parser for a bounded time: `bash fuzz/run.sh [SECONDS]`.
# Needs the nightly toolchain (cargo-fuzz uses sanitizer flags); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
rustup toolchain list | grep -q nightly || { echo "fuzz: the nightly toolchain is required (rustup toolchain install nightly)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/parse_pipeline
cp tests/malformed/*.yaml pipelines/*.yaml fuzz/corpus/parse_pipeline/
cargo +nightly fuzz run parse_pipeline fuzz/corpus/parse_pipeline -- -max_total_time="$secs" -max_len=4096
