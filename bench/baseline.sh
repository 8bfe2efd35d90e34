#!/usr/bin/env bash
# The bare shell baseline of the overhead benchmark: the git work cpo does, and nothing else.
#   baseline.sh REPO WORKSPACES CONCURRENCY AGENT_COMMAND IDS_FILE
# One integration branch and worktree at HEAD; per task (xargs -P CONCURRENCY) a branch and
# worktree from it, the agent command run with sh -c there (CPO_TASK_ID set, like cpo does),
# and a check of the completion marker; then every branch merged --no-ff, in order, into
# the integration branch. `git worktree add` is serialised with flock, as cpo serialises it:
# concurrent adds in one repository fail now and then with git 2.39 (README, Design notes).
set -euo pipefail
REPO=$1 WS=$2 J=$3 AGENT=$4 IDS=$5
export REPO WS AGENT
cd "$REPO"
git branch integration/baseline HEAD
mkdir -p "$WS"
git worktree add -q "$WS/integration" integration/baseline
echo "/.claude-task-complete" >> "$(git rev-parse --git-common-dir)/info/exclude"
xargs -P "$J" -n 1 sh -c '
  id=$1
  flock "$REPO/.git/baseline.lock" \
    git -C "$REPO" worktree add -q -b "feature/$id" "$WS/$id" integration/baseline
  cd "$WS/$id"
  CPO_TASK_ID=$id sh -c "$AGENT" </dev/null >/dev/null
  test -f .claude-task-complete || { echo "$id: no marker" >&2; exit 255; }
' _ < "$IDS"
cd "$WS/integration"
while read -r id; do
  git merge -q --no-ff --no-edit -m "Merge feature/$id" "feature/$id"
done < "$IDS"
