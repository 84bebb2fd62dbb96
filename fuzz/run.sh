#!/usr/bin/env bash
# Fuzzes matcalc for MINUTES minutes (default 10): three quarters on the whole-pipeline
# target, one quarter on the parser.
#
#   fuzz/run.sh MINUTES [SEED]
#
# 1. With cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain: runs the
#    libFuzzer targets `pipeline` and `parse` with fuzz/dict/matcalc.dict.
# 2. With nightly but no cargo-fuzz: builds the same targets with cargo-fuzz's
#    instrumentation flags and runs them directly.
# 3. Otherwise: the stable token-soup loop (examples/fuzz_soup.rs) over the same harness
#    (fuzz/harness.rs).
# Findings land in fuzz/artifacts/<target>/ (soup: fuzz/artifacts/soup/). Keep each as
# a named regression case in tests/no_panic.rs.
set -euo pipefail
minutes="${1:-10}"
seed="${2:-0}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
seconds=$(( minutes * 60 ))
pipeline_seconds=$(( seconds * 3 / 4 ))
parse_seconds=$(( seconds - pipeline_seconds ))

# Seeds both corpora with the hostile inputs and the known-good expressions.
seed_corpora() {
    mkdir -p fuzz/corpus/pipeline fuzz/corpus/parse fuzz/artifacts/pipeline fuzz/artifacts/parse
    for file in tests/cases/hostile/*.txt tests/cases/expressions.txt; do
        [ -f "$file" ] || continue
        grep -v '^#' "$file" | cut -f2 | while IFS= read -r line; do
            [ -n "$line" ] || continue
            name=$(printf '%s' "$line" | sha1sum | cut -c1-16)
            printf '%s' "$line" > "fuzz/corpus/pipeline/$name"
            printf '%s' "$line" > "fuzz/corpus/parse/$name"
        done
    done
}

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    seed_corpora
    (cd fuzz && cargo +nightly fuzz run pipeline corpus/pipeline -- \
        -dict=dict/matcalc.dict -max_total_time="$pipeline_seconds" -timeout=5 \
        -max_len=512 -seed="$seed")
    (cd fuzz && cargo +nightly fuzz run parse corpus/parse -- \
        -dict=dict/matcalc.dict -max_total_time="$parse_seconds" -timeout=5 \
        -max_len=4096 -seed="$seed")
elif cargo +nightly --version >/dev/null 2>&1; then
    seed_corpora
    triple="$(rustc -vV | sed -n 's/^host: //p')"
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
    RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
    RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-pc-table"
    RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
    RUSTFLAGS+=" --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
    export RUSTFLAGS
    (cd fuzz && cargo +nightly build --release --bins --target "$triple")
    "fuzz/target/$triple/release/pipeline" fuzz/corpus/pipeline -dict=fuzz/dict/matcalc.dict \
        -max_total_time="$pipeline_seconds" -timeout=5 -max_len=512 -seed="$seed" \
        -artifact_prefix=fuzz/artifacts/pipeline/
    "fuzz/target/$triple/release/parse" fuzz/corpus/parse -dict=fuzz/dict/matcalc.dict \
        -max_total_time="$parse_seconds" -timeout=5 -max_len=4096 -seed="$seed" \
        -artifact_prefix=fuzz/artifacts/parse/
else
    echo "no nightly toolchain: running the stable token-soup loop" >&2
    cargo run --release --example fuzz_soup -- "$minutes" "$seed"
fi
