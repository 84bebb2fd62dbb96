#!/usr/bin/env bash
# Before and after, side by side in one run: the corpus and scaling benches of an
# earlier revision (default a8ebadf, the state before the profile-driven fixes of the
# simplifier) and of the working tree, each run right after the other.
#
#   bench/before_after.sh [REV]
#
# The earlier revision is checked out in a temporary git worktree and built there (a
# few minutes); set BEFORE_TARGET_DIR to reuse a build directory between runs.
set -euo pipefail
rev="${1:-a8ebadf}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
cleanup() {
    git -C "$root" worktree remove --force "$work/before" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
git -C "$root" worktree add --detach --quiet "$work/before" "$rev"
before_target="${BEFORE_TARGET_DIR:-$work/target}"

echo "# corpus, before ($rev)"
(cd "$work/before" && CARGO_TARGET_DIR="$before_target" cargo bench --quiet --bench corpus -- --bench)
echo
echo "# corpus, after ($(git -C "$root" rev-parse --short HEAD) + working tree)"
(cd "$root" && cargo bench --quiet --bench corpus -- --bench)
echo
echo "# scaling, before ($rev)"
(cd "$work/before" && CARGO_TARGET_DIR="$before_target" cargo bench --quiet --bench scaling -- --bench)
echo
echo "# scaling, after"
(cd "$root" && cargo bench --quiet --bench scaling -- --bench)
