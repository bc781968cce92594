#!/bin/sh
# SCRIPTED AGENT (deterministic, for tests and demos; no model is called).
# For issue-to-pr on examples/calculator ("add a sub operation"): adds `sub` and a test of it.
set -eu
sed -i 's/^  mul)/  sub) echo $((a - b)) ;;\n  mul)/' calc.sh
sed -i 's/^check mul 3 4 12$/check mul 3 4 12\ncheck sub 5 3 2/' test.sh
echo "scripted agent: added sub to calc.sh and a check of it to test.sh"
