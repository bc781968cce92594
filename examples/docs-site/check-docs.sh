#!/bin/sh
# Every command of tool.sh has a `## <command>` section in docs/usage.md.
fail=0
for cmd in $(sh tool.sh --commands); do
  if grep -q "^## $cmd\$" docs/usage.md; then echo "ok: $cmd is documented"
  else echo "FAIL: command $cmd is not documented in docs/usage.md"; fail=1; fi
done
exit $fail
