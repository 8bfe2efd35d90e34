"""Plan files: a Markdown plan (`run-tasks` style) with a Progress Tracking table and one
`## Task <id>` section per task, run as parallel work streams.

`doc` parses the file into rows, sections and their exact places (`parse_plan`); `edit`
changes status and date cells and `**Status**:` lines and nothing else (`set_status`), and
`writer` writes those changes atomically, one at a time, refusing to overwrite a plan
edited by hand meanwhile; `check` lists a plan's problems (`cpo validate PLAN.md`);
`translate` turns a parsed plan into cpo's `Plan`, one task per row, each stream's tasks
chained on the stream's branch, and its `Streams`; `load` reads and checks a plan file
(frontmatter `validation:` too); `sample` is the plan `cpo init --plan` writes.
May import: `cpo.errors`, `cpo.suggest`, `cpo.plan` (the `Plan` model, names, graph,
validation steps, frontmatter reading), the standard library.
Nothing here runs git or an agent (running a plan file is `cpo.commands.planrun`).
"""
