#!/bin/sh
# Runs every test file under tests/; exits non-zero if one fails.
fail=0
for t in tests/test_*.sh; do
  if sh "$t"; then echo "ok: $t"; else echo "FAIL: $t"; fail=1; fi
done
exit $fail
