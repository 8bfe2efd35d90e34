set -e
mkdir -p greet tests
cat > greet/format.py <<'PY'
def shout(text: str) -> str:
    return text.upper().rstrip("!") + "!"
PY
cat > tests/test_format.py <<'PY'
from greet.format import shout

assert shout("hi") == "HI!"
assert shout("hi!") == "HI!"
PY
git add -A && git commit -qm "task-002: shouting formatter"
echo '{"task_completed": true}' > .claude-task-complete
