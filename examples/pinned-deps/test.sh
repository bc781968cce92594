#!/bin/sh
# The lockfile must lock exactly the pins of requirements.txt.
fail=0
while read -r pin; do
  if grep -qx "$pin" requirements.lock; then echo "ok: $pin is locked"
  else echo "FAIL: $pin is not in requirements.lock"; fail=1; fi
done < requirements.txt
exit $fail
