set -e
test -f todo/model.py
cat > todo/report.py <<'PY'
def render(todos):
    return "".join(f"[{'x' if t.done else ' '}] {t.title}\n" for t in todos)
PY
git add -A && git commit -qm "task-003: text report"
echo '{"task_completed": true}' > .claude-task-complete
