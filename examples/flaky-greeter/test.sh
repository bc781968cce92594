#!/bin/sh
got=$(sh greet.sh world)
if [ "$got" = "hello, world" ]; then echo "ok: $got"; else echo "FAIL: expected 'hello, world', got '$got'"; exit 1; fi
