"""The commands around a run, one module each: `status`, `integrate`, `clean`, `init`,
`templates` (install the slash-command templates) and `demo`.

May import: `cpo.run` (the report, lock and engine), `cpo.plan`, `cpo.git`, `cpo.errors`;
never `cpo.cli` (which calls them) or typer.
"""
