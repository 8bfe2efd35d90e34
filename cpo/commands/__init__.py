"""The commands around a run, one module each: `status`, `integrate`, `clean`, `init`,
`templates` (install the slash-command templates), `demo`, and `planrun` (`cpo run PLAN.md`);
`cleanworker` is `clean` for the attempt branches of workers (`--executor`); `integratecheck`
is `integrate`'s final validation, under the conditions `cpo run` validated under.

May import: `cpo.run` (the report, lock and engine), `cpo.plan`, `cpo.planfile`, `cpo.git`,
`cpo.errors`, `cpo.suggest`, what a run's settings and logs use (`cpo.config`,
`cpo.secrets`, `cpo.duration`, `cpo.logfile`), and its process registry (`cpo.proc`);
never `cpo.cli*` (the command line, which calls them) or typer.
"""
