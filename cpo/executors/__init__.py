"""The executor boundary: where a task's attempt runs, and what comes back from it.

`spec` is the boundary's data: the self-contained `TaskLaunch` an executor is given (what
`cpo worker run-task` reads), the events it gives back (JSON lines on the wire), the
`Exited` verdict, and the `Handle` recorded in report.json per attempt. `base` says what
an executor is (the `Executor` protocol: run, adopt, cancel) and finds one by name;
`stream` turns a worker's JSON-lines output into events and its verdict, and `subproc`
(the `subprocess` executor) runs `cpo worker run-task` as a child process (what a
cluster job's entrypoint runs). `ray` runs each attempt as a Ray job, through
`rayclient` (the only user of Ray's Jobs API: address, token, job names), `rayentry` (the
job's entrypoint: the launch in, `cpo worker run-task` exec'd) and `raysecrets` (the
values of `executors.ray.env` handed to one job through the cluster's key-value store).
The `local` executor (agents in worktrees of this machine) is the run engine's own
(cpo.run.local); every other executor works through a git remote (cpo.run.remote).
May import: `cpo.errors`, `cpo.proc`, `cpo.watchdog`; never `cpo.run`, `cpo.worker`,
`cpo.commands` or `cpo.cli*` (they import this).
"""
