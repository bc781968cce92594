#!/bin/sh
# Runs the calculator's tests; exits non-zero on the first failure.
fail=0
check() {
  got=$(sh calc.sh "$1" "$2" "$3")
  if [ "$got" != "$4" ]; then echo "FAIL: calc.sh $1 $2 $3: expected $4, got $got"; fail=1; else echo "ok: calc.sh $1 $2 $3 = $4"; fi
}
check add 2 3 5
check add 10 -4 6
check mul 3 4 12
exit $fail
