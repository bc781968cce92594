#!/bin/sh
# A tiny calculator: calc.sh OP A B
op=$1; a=$2; b=$3
case "$op" in
  add) echo $((a - b)) ;;
  mul) echo $((a * b)) ;;
  *) echo "unknown op: $op" >&2; exit 2 ;;
esac
