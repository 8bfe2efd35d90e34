set -e
mkdir -p todo
: > todo/__init__.py
cat > todo/model.py <<'PY'
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Todo:
    id: int
    title: str
    done: bool = False

    def completed(self) -> "Todo":
        return replace(self, done=True)
PY
git add -A && git commit -qm "task-001: todo model"
echo '{"task_completed": true}' > .claude-task-complete
