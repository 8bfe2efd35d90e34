"""`cpo run`: from a `Plan` to merged, validated branches and a report.

`options` (the run's options and context) → `preflight` → `engine` (set-up, schedule,
finish) → `scheduler` (waves or DAG, with `priority` and agent `slots`) → `taskrun` (one
task: worktree, attempts, merge) → `agentrun` (one agent process, judged by `protocol`).
Beside them: `validation` (wave checks), `resume`, `lock` (the run lock), `report`
(report.json), `progress` (live table and [PROGRESS] lines), `output` (what `cpo run`
prints), `interrupt`, `scripts` (--generate-only).
May import: `cpo.plan`, `cpo.agents`, `cpo.git`, `cpo.proc`, `cpo.config`, `cpo.errors`,
`cpo.logfile`, `cpo.secrets`; never `cpo.cli`, `cpo.commands` or `cpo.adhoc`.
"""
