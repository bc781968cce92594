#!/bin/sh
# SCRIPTED AGENT (deterministic, for tests and demos; no model is called).
# For docs-refresh on examples/docs-site: documents the `count` command.
set -eu
cat >> docs/usage.md <<'DOC'

## count

`sh tool.sh count [ARGS...]` prints how many arguments it was given.
DOC
echo "scripted agent: documented count in docs/usage.md"
