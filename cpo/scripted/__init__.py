"""The scripted stand-in for the `claude` CLI, used by the tests and `cpo demo`.

`python -m cpo.scripted.agent` (or the shim `agent.install_shim` writes) obeys the real
CLI's flags (`cli`) and prints stream-json shaped like captured real output (`messages`),
following `@script` directives in the prompt instead of a model.
May import: the standard library and PyYAML (for `--agent` files' frontmatter), so the shim
starts fast and nothing of the project under test can shadow it.
"""
