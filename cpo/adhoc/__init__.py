"""`cpo parallel`: ad-hoc prompts, each with its own agent (clinvk-compatible task file).

`taskfile` reads the task file, `run` runs it on the same agent path as `cpo run`
(settings, request and process from `cpo.run.agentrun`, backend preflight and notes from
`cpo.run.preflight`, the verdict from `cpo.run.protocol`), `worktree` makes throwaway
worktrees through `cpo.git.Git`, `result` shapes the results and `output_dir`.
May import: `cpo.run.agentrun`, `cpo.run.preflight`, `cpo.run.protocol`, `cpo.agents`,
`cpo.git`, `cpo.proc`, `cpo.config`, `cpo.settings`, `cpo.errors`; never `cpo.cli*` or
`cpo.commands`, and nothing imports it but `cpo.clirun`, `cpo.serve` (`POST /api/v1/parallel`)
and `cpo.ui` (for types).
"""
