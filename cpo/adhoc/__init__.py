"""`cpo parallel`: ad-hoc prompts, each with its own agent (clinvk-compatible task file).

`taskfile` reads the task file, `run` runs it on the same agent path as `cpo run`
(`cpo.run.agentrun`, `cpo.agents`), `result` shapes the results and `output_dir`.
May import: `cpo.run.agentrun`, `cpo.agents`, `cpo.git`, `cpo.proc`, `cpo.config`,
`cpo.errors`; never `cpo.cli` or `cpo.commands`.
"""
