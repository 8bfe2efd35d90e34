set -e
test -f greet/core.py && test -f greet/format.py
cat > greet/cli.py <<'PY'
import argparse

from greet.core import greet
from greet.format import shout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="greet")
    parser.add_argument("name")
    parser.add_argument("--shout", action="store_true")
    args = parser.parse_args(argv)
    text = greet(args.name)
    print(shout(text) if args.shout else text)
    return 0
PY
cat > greet/__main__.py <<'PY'
from greet.cli import main

raise SystemExit(main())
PY
echo '__all__ = ["main"]
from greet.cli import main' > greet/__init__.py
git add -A && git commit -qm "task-003: command line"
echo '{"task_completed": true}' > .claude-task-complete
