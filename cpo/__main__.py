"""`python -m cpo` and the `cpo` command (pyproject's entry point: `main` here)."""

from cpo.quickimport import pause_for_start_up

pause_for_start_up()  # before cpo.cli imports typer (cpo.quickimport)

from cpo.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
