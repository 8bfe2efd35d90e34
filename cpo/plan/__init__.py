"""Reading and checking a parallel directory into a frozen `Plan`.

`load.load_plan` is the entry point; below it: `manifest` (manifest.json), `taskfile` (task
files with YAML frontmatter), `models` (the pydantic input models and their JSON Schema),
`join`/`assemble` (how manifest and task files agree), `graph` (waves, cycles), `prompts`,
`scope` (CREATE/MODIFY/BOUNDARY), `names` and `paths`; `model` holds the frozen `Plan`.
May import: `cpo.errors`, `cpo.duration`, `cpo.suggest`, `cpo.agents` (backend names) and
`cpo.agents.modes` (the backend-neutral modes), the standard library, pydantic, PyYAML,
python-frontmatter.
Nothing here runs git or an agent.
"""
