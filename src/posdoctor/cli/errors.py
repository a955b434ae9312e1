"""How a command refuses bad input: both languages, on stderr or as JSON, exit code 2."""

from __future__ import annotations

import json
from typing import NoReturn

import typer
from rich.console import Console

EXIT_FAILED, EXIT_INVALID = 1, 2


def fail(zh: str, en: str, as_json: bool, code: int = EXIT_INVALID) -> NoReturn:
    """Print the error (``{"ok": false, "error": {"zh", "en"}}`` with ``--json``) and exit."""
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": {"zh": zh, "en": en}}, ensure_ascii=False))
    else:
        Console(stderr=True).print(f"[red]{zh} / {en}[/red]")
    raise typer.Exit(code)
