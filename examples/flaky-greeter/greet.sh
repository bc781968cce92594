#!/bin/sh
# greet.sh NAME: greets NAME. The padding depends on a random byte: the cause of the flaky test.
n=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
if [ $((n % 2)) -eq 0 ]; then echo "hello, $1"; else echo "hello,  $1"; fi
