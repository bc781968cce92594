#!/bin/sh
# tool.sh COMMAND [ARGS]: a tiny tool whose documentation lives in docs/usage.md.
case "$1" in
  --commands) echo greet; echo count ;;
  greet) echo "hello, ${2:-world}" ;;
  count) shift; echo $# ;;
  *) echo "unknown command: $1" >&2; exit 2 ;;
esac
