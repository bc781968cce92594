#!/bin/sh
# SCRIPTED AGENT (deterministic, for tests and demos; no model is called).
# For fix-flaky-test on examples/flaky-greeter: removes the random padding from greet.sh.
set -eu
cat > greet.sh <<'FIX'
#!/bin/sh
# greet.sh NAME: greets NAME.
echo "hello, $1"
FIX
echo "scripted agent: greet.sh no longer depends on a random byte"
