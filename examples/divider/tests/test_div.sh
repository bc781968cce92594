#!/bin/sh
got=$(sh div.sh 6 3)
[ "$got" = 2 ] || { echo "expected 2, got $got"; exit 1; }
