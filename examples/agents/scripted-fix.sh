#!/bin/sh
# SCRIPTED AGENT (deterministic, for the demo and tests; no model is called).
# Round 1 makes a plausible but wrong fix; round 2 reads the failing check output from
# ERRAND_FEEDBACK_FILE and makes the right one. It shows the round loop of a real agent.
set -eu
echo "scripted agent: round $ERRAND_ROUND, prompt: $(head -n 3 "$ERRAND_PROMPT_FILE" | tail -n 1)"
if [ "$ERRAND_ROUND" = 1 ]; then
  echo "scripted agent: trying a fix that swaps the operands"
  sed -i 's/echo \$((a - b))/echo $((b - a))/' calc.sh
else
  echo "scripted agent: feedback says: $(grep -m1 FAIL "$ERRAND_FEEDBACK_FILE" || true)"
  sed -i 's/echo \$((b - a))/echo $((a + b))/; s/echo \$((a - b))/echo $((a + b))/' calc.sh
fi
echo "scripted agent: done"
