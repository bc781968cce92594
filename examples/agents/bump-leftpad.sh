#!/bin/sh
# SCRIPTED AGENT (deterministic, for tests and demos; no model is called).
# For dependency-bump on examples/pinned-deps. Round 1 bumps leftpad everywhere it appears,
# the CI configuration included; the harness forbids that. Round 2 puts ci.yml back.
set -eu
if [ "$ERRAND_ROUND" = 1 ]; then
  sed -i 's/leftpad==1.0.0/leftpad==1.1.0/' requirements.txt requirements.lock
  sed -i 's/deps-leftpad-1.0.0/deps-leftpad-1.1.0/' .github/workflows/ci.yml
  echo "scripted agent: bumped leftpad to 1.1.0 (and the CI cache key)"
else
  sed -i 's/deps-leftpad-1.1.0/deps-leftpad-1.0.0/' .github/workflows/ci.yml
  echo "scripted agent: restored the CI configuration"
fi
