"""`cpo run`: from a `Plan` to merged, validated branches and a report.

`options` (the run's options and context) → `preflight` (with `raycheck` for
`--executor ray`: its probe job runs `rayprobe` on a worker) → `engine` (set-up, with
`worktrees`: every worktree made before any agent starts; schedule, finish) → `scheduler`
(waves or DAG, with `priority`) → `hooks` (what the scheduler's decisions do: launch, merge,
validate, record) → `taskrun` (one task: attempts, retries, records, in agent `slots`) → its
executor: `local` (the worktree here) or `remote` (`cpo worker run-task` elsewhere, through a
git remote; cpo.executors) → `attempt` (one agent run, `agentrun`, judged by `protocol`,
logged by `tasklog`), then `claim` (the agent's commits onto the task branch, whatever it
did to HEAD).
Beside them: `states` (the status words), `validation` (wave checks), `layout` (branch
and worktree names, kept from the report when a run continues), `changes` (which local
changes are the user's, not cpo's own outputs), `resume`, `lock`
(the run lock), `report` (report.json's records), `reportwriter` (the only code that
saves it) with `journal` (report.journal) and
`execblock` (the manifest's `execution` block), `nextstep` (the command to run next),
`progress` (live table and [PROGRESS] lines), `output` (what `cpo run` prints),
`interrupt`, `scripts` (--generate-only).
Getting past obstacles (`policy`: their options; `recovery`: their records): `nudge` (an
agent that stopped early resumed in its session), `repair` (a failed wave validation
repaired by an agent), `handoff` (dependents told what their dependencies built),
`scopecheck` (files changed outside a task's scope), `conflicts` (merge conflicts foreseen
with `git merge-tree` and handled by --on-conflict; `resolve`: the resolver agent;
`conflictrecord`: their records).
May import: `cpo.plan`, `cpo.planfile` (plan files: loading, their status-only changes),
`cpo.agents`, `cpo.git` (with `cpo.gitmemo`: set-up queries asked once, `cpo.gitenv`:
identity, `cpo.indexlock`: the index.lock a kill left), `cpo.proc`, `cpo.config`
(settings files) with `cpo.settings` (their values),
`cpo.errors`, `cpo.logfile`, `cpo.secrets`, `cpo.duration`, `cpo.suggest`, `cpo.orphans`
(the subreaper), `cpo.executors` (where agents run), `cpo.quickimport` (the engine's late
imports); never `cpo.cli*` (the command line), `cpo.commands` or `cpo.adhoc`.
"""
