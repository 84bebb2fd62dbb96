#!/usr/bin/env bash
# Long random differential runs (issue 13): random well-typed expressions through the
# CLI's NumPy output and --check, judged by tests/random_exprs.py's own evaluator.
#
#   fuzz/differential.sh [COUNT [SEED [JOBS [OPTION…]]]]   defaults: 10000, seed 1, 2 jobs
#
# OPTIONs go to tests/random_exprs.py: `--family functions,norms` restricts the generator
# to those families (`python3 tests/random_exprs.py --list` lists them), `--spelling
# latex` to one spelling.
#
# Builds the release binary, runs the campaign in batches of 500 (each batch its own
# seed, SEED, SEED+1, …, so a finding is reproducible from its batch), and writes every
# verdict to target/differential/seed-N.json. Exit 1 if any batch had a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
seed=${2:-1}
jobs=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
nice cargo build --release --quiet
mkdir -p target/differential
status=0
done_count=0
while [ "$done_count" -lt "$count" ]; do
  batch=$(( count - done_count < 500 ? count - done_count : 500 ))
  nice python3 tests/random_exprs.py target/release/matcalc --count "$batch" --seed "$seed" \
    --jobs "$jobs" --json "target/differential/seed-$seed.json" "$@" || status=1
  done_count=$(( done_count + batch ))
  seed=$(( seed + 1 ))
done
exit "$status"
