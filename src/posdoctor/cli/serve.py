"""`posdoctor serve`: run the acquiring host until Ctrl-C or SIGTERM."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from posdoctor.host.run import load_host_config, run_host
from posdoctor.store import StoreError

DEFAULT_PORT = 5800


def _fail(console: Console, zh: str, en: str) -> typer.Exit:
    console.print(f"[red]{zh}[/red] / {en}")
    return typer.Exit(1)


def serve(
    db: Annotated[str | None, typer.Option("--db", help="数据库地址 / database URL")] = None,
    host: Annotated[str | None, typer.Option("--host", help="监听地址 / listen address (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", help=f"监听端口 / listen port ({DEFAULT_PORT})")] = None,
    short: Annotated[bool, typer.Option("--short", help="短连接: 每次应答后关闭连接 / close the connection "
                                                          "after each answer")] = False,
) -> None:
    """启动收单主机(ISO 8583) / run the acquiring host (ISO 8583)."""
    console, errors = Console(), Console(stderr=True)
    try:
        config = load_host_config(host=host, port=port, persistent=False if short else None)
    except ValidationError as exc:
        raise _fail(errors, f"主机配置无效: {exc.errors()[0]['msg']}",
                    f"invalid host settings: {exc.errors()[0]['msg']}") from None
    except StoreError as exc:
        raise _fail(errors, exc.zh, exc.en) from None

    def started(address: tuple[str, int]) -> None:
        where = f"{address[0]}:{address[1]}"
        console.print(f"收单主机已启动, 监听 {where} (Ctrl-C 停止) / host listening on {where} (Ctrl-C to stop)")

    try:
        run_host(config, db=db, on_started=started)
    except StoreError as exc:
        raise _fail(errors, exc.zh, exc.en) from None
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        raise _fail(errors, f"无法在 {where} 监听: {exc.strerror or exc}",
                    f"cannot listen on {where}: {exc.strerror or exc}") from None
    console.print("主机已停止 / host stopped")


def register(app: typer.Typer) -> None:
    """Add `serve` to the root app."""
    app.command("serve")(serve)
