#!/bin/sh
# SCRIPTED AGENT (deterministic, for tests and demos; no model is called).
# For investigate-crash on examples/divider: writes a test reproducing the division-by-zero
# crash, then fixes div.sh to report the error instead.
set -eu
mkdir -p tests
cat > tests/test_div_by_zero.sh <<'TEST'
#!/bin/sh
# Reproduces the crash report: dividing by zero must fail cleanly, not crash.
err=$(sh div.sh 1 0 2>&1 >/dev/null); code=$?
[ "$code" = 1 ] && [ "$err" = "error: division by zero" ] || { echo "expected exit 1 and 'error: division by zero', got exit $code: $err"; exit 1; }
TEST
cat > div.sh <<'FIX'
#!/bin/sh
# div.sh A B: prints A divided by B (whole numbers).
a=$1; b=$2
if [ "$b" -eq 0 ]; then echo "error: division by zero" >&2; exit 1; fi
echo $((a / b))
FIX
echo "scripted agent: reproduced the crash in tests/test_div_by_zero.sh and fixed div.sh"
