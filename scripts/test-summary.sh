#!/usr/bin/env bash
# The summary of scripts/test.sh: reads the `cargo test` log named by $1 and
# prints the SKIP lines, then `tests: N passed, M failed, K skipped`, where K
# counts the `SKIP: <test>: <why>` lines tests print (tests/common skip()).
set -euo pipefail
log=$1
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
# a SKIP line may follow libtest's "test NAME ... " on the same line
skipped=$({ grep -Eo '(^|\.\.\. )SKIP: ' "$log" || true; } | wc -l | tr -d ' ')
echo
{ grep -E '(^|\.\.\. )SKIP: ' "$log" || true; } | sed 's/^.*SKIP: /SKIP: /' | sort -u
echo "tests: $passed passed, $failed failed, $skipped skipped"
