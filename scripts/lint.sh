#!/usr/bin/env bash
# Lint and type checks: ruff check, ruff format --check, mypy --strict on the kernel (emulator/),
# plain mypy on nodes/, faults/ and capsim/. Needs the dev extra: pip install -e '.[dev]'.
#
# The code passes all four; .ci/run runs this script with --strict-exit and fails on any finding.
# With --strict-exit the status is the number of checks that failed (0-4); without it, 0.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
check() {  # check NAME COMMAND...: run it, print its last line, count a failure
    local name=$1 output status
    shift
    output=$("$@" 2>&1)
    status=$?
    local summary
    summary=$(printf '%s\n' "$output" | grep -E '^(Found|All checks|Success)|formatted' | tail -n 1)
    [ -z "$summary" ] && [ "$status" -eq 0 ] && summary="no findings"
    printf '%-28s %s\n' "$name" "$summary"
    [ "$status" -eq 0 ] || failed=$((failed + 1))
    [ -n "${LINT_VERBOSE:-}" ] && printf '%s\n' "$output"
    return 0
}

for tool in ruff mypy; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool is not installed: pip install -e '.[dev]'"
        exit 2
    fi
done

check "ruff check" ruff check --statistics .
check "ruff format --check" ruff format --check .
check "mypy --strict emulator" mypy --strict emulator
check "mypy nodes faults capsim" mypy nodes faults capsim
echo "$failed of 4 checks failed (LINT_VERBOSE=1 lists every finding)"
if [ "${1:-}" = "--strict-exit" ]; then
    exit "$failed"
fi
