# A scripted "agent" that does task-001 of examples/cpo-style, the way an agent would.
set -e
mkdir -p greet tests
: > greet/__init__.py
cat > greet/core.py <<'PY'
def greet(name: str) -> str:
    name = name.strip()
    return f"Hello, {name or 'world'}!"
PY
cat > tests/test_core.py <<'PY'
from greet.core import greet

assert greet("Ada") == "Hello, Ada!"
assert greet("") == "Hello, world!"
PY
git add -A && git commit -qm "task-001: core greeting function"
echo '{"task_completed": true, "summary": "greet()"}' > .claude-task-complete
