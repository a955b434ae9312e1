"""The `posdoctor` command: one Typer app; each module under cli/ adds its commands."""

from __future__ import annotations

import typer

from posdoctor.cli import admin, ask, demo, doctor, serve, sim, term, tms

app = typer.Typer(
    name="posdoctor",
    help="Keeps fleets of CUP-style POS terminals working. 让POS终端正常工作。",
    no_args_is_help=True,
    add_completion=False,
)

for module in (admin, serve, term, demo, tms, doctor, ask, sim):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
