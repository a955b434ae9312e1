"""``posdoctor probe``: at which step does talking to a CUP host fail?

Steps, stopping at the first failure: name resolution, TCP connect (refused, silently
dropped, unreachable), framing (an echo 0820/301 is sent; the answer must arrive, decode,
carry the swapped TPDU and the right MTI/STAN), the echo's answer code, a sign-in
0800/004 (with a TID and MID; it makes the host issue new working keys for that TID),
and with a TMK the working keys' check values (each key of field 62 decrypted under the
TMK, its check value compared; keys never leave this function). Each step names the
likely cause IDs when it fails. Messages are built with the emulator's builders and
framed/decoded by the pure core.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from posdoctor.crypto.ciphers import Algorithm, decrypt_ecb
from posdoctor.crypto.errors import CryptoError
from posdoctor.crypto.kcv import key_check_value
from posdoctor.iso8583.codec import decode_message, encode_message
from posdoctor.iso8583.codes import describe
from posdoctor.iso8583.errors import DecodeError, EncodeError, FrameError
from posdoctor.iso8583.fields.keyblock import decode_key_block
from posdoctor.iso8583.framing import (DEFAULT_TPDU, PREFIX_LEN, Frame, FrameConfig, Header, answer_tpdu,
                                       decode_frame, encode_frame, split_length)
from posdoctor.terminal import builders
from posdoctor.terminal.keys import SIGNIN_ALGORITHMS

__all__ = ["ProbeConfig", "ProbeStep", "ProbeResult", "probe", "STEP_NAMES", "SIGNIN_MODES"]

PLACEHOLDER_TID, PLACEHOLDER_MID = "00000000", "000000000000000"
SIGNIN_MODES = tuple(SIGNIN_ALGORITHMS)
"""60.3 of the sign-in: 001 single-length DES, 003 double, 004 double + TDK, 006 SM4."""
OPERATOR = "001"
MAX_FRAME = 8192

STEP_NAMES: dict[str, tuple[str, str]] = {
    "resolve": ("域名解析", "name resolution"),
    "connect": ("TCP连接", "TCP connect"),
    "frame": ("报文格式/TPDU(回响测试)", "framing and TPDU (echo)"),
    "echo": ("回响应答码", "echo answer code"),
    "sign_in": ("签到 0800", "sign-in 0800"),
    "key_check": ("工作密钥校验值", "working key check values"),
}


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    host: str
    port: int
    tid: str | None = None
    mid: str | None = None
    tmk: bytes | None = field(default=None, repr=False)
    tpdu: bytes = DEFAULT_TPDU
    header: bool = True
    timeout_s: float = 5.0
    sign_in: bool = True
    signin_mode: str = "004"

    @property
    def algorithm(self) -> Algorithm:
        return SIGNIN_ALGORITHMS[self.signin_mode]


@dataclass(slots=True)
class ProbeStep:
    step: str
    ok: bool
    zh: str
    en: str
    causes: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["name"] = {"zh": STEP_NAMES[self.step][0], "en": STEP_NAMES[self.step][1]}
        return out


@dataclass(slots=True)
class ProbeResult:
    host: str
    port: int
    steps: list[ProbeStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> ProbeStep | None:
        return next((s for s in self.steps if not s.ok), None)

    def to_json(self) -> dict[str, Any]:
        failed = self.failed
        return {"host": self.host, "port": self.port, "ok": self.ok,
                "failed_step": failed.step if failed else None, "causes": failed.causes if failed else [],
                "steps": [s.to_json() for s in self.steps]}


class _Failed(Exception):
    def __init__(self, step: ProbeStep) -> None:
        super().__init__(step.en)
        self.step = step


def _fail(step: str, zh: str, en: str, causes: list[str], **detail: Any) -> _Failed:
    return _Failed(ProbeStep(step, False, zh, en, causes, detail))


# --- steps ---------------------------------------------------------------------------------
async def _resolve(cfg: ProbeConfig) -> ProbeStep:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(cfg.timeout_s):
            infos = await loop.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _fail("resolve", f"未知主机异常: 无法解析 {cfg.host}", f"unknown host: {cfg.host} cannot be resolved",
                    ["net.dns_failure", "config.wrong_host"], error=exc.strerror) from None
    except TimeoutError:
        raise _fail("resolve", f"域名解析超时: {cfg.host}", f"name resolution of {cfg.host} timed out",
                    ["net.dns_failure", "net.offline"], timeout_s=cfg.timeout_s) from None
    addresses = sorted({info[4][0] for info in infos})
    return ProbeStep("resolve", True, f"{cfg.host} 解析为 {', '.join(addresses)}",
                     f"{cfg.host} resolves to {', '.join(addresses)}", detail={"addresses": addresses})


async def _connect(cfg: ProbeConfig) -> tuple[ProbeStep, asyncio.StreamReader, asyncio.StreamWriter]:
    where = f"{cfg.host}:{cfg.port}"
    try:
        async with asyncio.timeout(cfg.timeout_s):
            reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
    except ConnectionRefusedError:
        raise _fail("connect", f"连接主机异常: {where} 拒绝连接(端口未监听)",
                    f"connection refused by {where}: nothing listens on that port",
                    ["config.wrong_host", "backend.host_down"], outcome="refused") from None
    except TimeoutError:
        raise _fail("connect", f"连接超时: {cfg.timeout_s:g}秒内 {where} 无任何回应(被防火墙丢弃?)",
                    f"connect timeout: no reply from {where} within {cfg.timeout_s:g}s (dropped by a firewall?)",
                    ["net.firewall_blocked", "config.wrong_host", "net.offline"], outcome="timeout") from None
    except OSError as exc:
        unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        raise _fail("connect", f"连接主机异常: {where} ({exc.strerror or type(exc).__name__})",
                    f"cannot connect to {where} ({exc.strerror or type(exc).__name__})",
                    ["net.offline", "config.wrong_host"] if unreachable else ["config.wrong_host", "net.offline"],
                    outcome="unreachable" if unreachable else "error") from None
    return ProbeStep("connect", True, f"已连接 {where}", f"connected to {where}"), reader, writer


async def _read_payload(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    async with asyncio.timeout(timeout_s):
        prefix = await reader.readexactly(PREFIX_LEN)
        length = split_length(prefix, MAX_FRAME)
        return await reader.readexactly(length)


async def _exchange(cfg: ProbeConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: dict[str, str], step: str) -> tuple[dict[str, str], Frame]:
    """Send one request; the answer frame and message, or `_Failed` saying what went wrong."""
    header = Header() if cfg.header else None
    try:
        writer.write(encode_frame(Frame(cfg.tpdu, header, encode_message(request))))
        await writer.drain()
    except (EncodeError, FrameError) as exc:
        raise _fail(step, f"组包异常: {exc}", f"the request could not be built: {exc}", [], reason=str(exc)) from None
    except OSError as exc:
        raise _fail(step, "发送失败: 主机断开了连接", f"send failed: the host dropped the connection ({exc})",
                    ["config.wrong_tpdu", "backend.host_down"]) from None
    wrong_frame = ["config.wrong_tpdu", "config.wrong_host"]
    try:
        payload = await _read_payload(reader, cfg.timeout_s)
    except TimeoutError:
        raise _fail(step, f"接收数据失败: {cfg.timeout_s:g}秒内没有应答", f"no answer within {cfg.timeout_s:g}s",
                    ["config.wrong_tpdu", "net.host_overloaded", "backend.host_down"], outcome="timeout") from None
    except asyncio.IncompleteReadError as exc:
        closed = not exc.partial
        raise _fail(step, "主机未应答就关闭了连接(TPDU/报文头不被接受?)" if closed else "接收数据错误: 应答不完整",
                    "the host closed the connection without answering (TPDU or header refused?)" if closed
                    else "answer incomplete: the connection closed inside a frame",
                    wrong_frame, outcome="closed" if closed else "truncated") from None
    except (FrameError, ConnectionError) as exc:
        raise _fail(step, f"接收数据错误: {exc}", f"bad answer frame: {exc}", wrong_frame, outcome="bad_frame") from None
    return _decode_answer(cfg, payload, request, step)


def _decode_answer(cfg: ProbeConfig, payload: bytes, request: dict[str, str],
                   step: str) -> tuple[dict[str, str], Frame]:
    wrong_frame = ["config.wrong_tpdu", "config.wrong_host"]
    try:
        frame = decode_frame(payload, FrameConfig(header=cfg.header, max_frame=MAX_FRAME, tpdu_id=cfg.tpdu[0]))
        answer = decode_message(frame.body)
    except (FrameError, DecodeError) as exc:
        raise _fail(step, f"解包异常: 应答无法解析({exc})", f"the answer cannot be parsed: {exc}", wrong_frame,
                    outcome="undecodable", bytes=len(payload)) from None
    expected_tpdu = answer_tpdu(cfg.tpdu)
    if frame.tpdu != expected_tpdu:
        raise _fail(step, f"应答TPDU {frame.tpdu.hex().upper()} 不是请求TPDU的交换({expected_tpdu.hex().upper()})",
                    f"answer TPDU {frame.tpdu.hex().upper()} is not the request's swapped "
                    f"({expected_tpdu.hex().upper()})", wrong_frame, outcome="tpdu_not_swapped")
    wanted_mti = request["t"][:2] + str(int(request["t"][2]) + 1) + request["t"][3]
    if answer.get("t") != wanted_mti or answer.get("11") != request.get("11"):
        raise _fail(step, f"解包消息码或流水号不符: {answer.get('t')}/{answer.get('11')}",
                    f"answer MTI/STAN {answer.get('t')}/{answer.get('11')} does not match "
                    f"{wanted_mti}/{request.get('11')}", wrong_frame, outcome="mismatch")
    return answer, frame


def _code_step(step: str, answer: dict[str, str], known_terminal: bool) -> ProbeStep:
    code = answer.get("39", "")
    rc = describe(code)
    if code == "00":
        return ProbeStep(step, True, f"应答00 {rc.zh}", f"answered 00 ({rc.en})", detail={"code": code})
    if not known_terminal and step == "echo" and code in ("97", "03"):
        return ProbeStep(step, True, f"主机应答{code}({rc.zh}): 未给终端号，仅确认主机可通讯",
                         f"answered {code} ({rc.en}): no TID given, the host speaks CUP", detail={"code": code})
    raise _Failed(ProbeStep(step, False, f"应答码 {code}: {rc.zh}", f"answer code {code}: {rc.en}",
                            list(rc.causes), {"code": code}))


def _key_check(cfg: ProbeConfig, answer: dict[str, str]) -> ProbeStep:
    assert cfg.tmk is not None
    try:
        block = decode_key_block(cfg.signin_mode, bytes.fromhex(answer.get("62", "")))
    except (DecodeError, ValueError) as exc:
        raise _fail("key_check", f"签到应答的62域无法解析: {exc}", f"field 62 of the sign-in answer: {exc}",
                    ["config.wrong_host"]) from None
    wanted = [("PIK", block.pik, block.pik_cv), ("MAK", block.mak, block.mak_cv)]
    if block.tdk is not None and block.tdk_cv is not None:
        wanted.append(("TDK", block.tdk, block.tdk_cv))
    results: dict[str, dict[str, Any]] = {}
    for kind, encrypted, expected in wanted:
        try:
            computed = key_check_value(decrypt_ecb(cfg.algorithm, cfg.tmk, encrypted), cfg.algorithm)
        except CryptoError as exc:
            raise _fail("key_check", f"主密钥无法使用: {exc.zh}", f"the TMK cannot be used: {exc.en}",
                        ["keys.tmk_mismatch"]) from None
        results[kind] = {"expected": expected.hex().upper(), "computed": computed[:len(expected)].hex().upper(),
                         "ok": computed[:len(expected)] == expected}
    tmk_kcv = key_check_value(cfg.tmk, cfg.algorithm).hex().upper()
    bad = [kind for kind, r in results.items() if not r["ok"]]
    if bad:
        raise _fail("key_check", f"密钥校验失败: {', '.join(bad)} 的校验值不符，主密钥(KCV {tmk_kcv})与主机不一致",
                    f"key check failed for {', '.join(bad)}: the TMK (KCV {tmk_kcv}) differs from the host's",
                    ["keys.tmk_mismatch"], keys=results, tmk_kcv=tmk_kcv)
    return ProbeStep("key_check", True, f"工作密钥校验值一致({', '.join(results)})，主密钥KCV {tmk_kcv}",
                     f"working key check values match ({', '.join(results)}); TMK KCV {tmk_kcv}",
                     detail={"keys": results, "tmk_kcv": tmk_kcv})


# --- the run -------------------------------------------------------------------------------
async def _timed(result: ProbeResult, make: Callable[[], Awaitable[Any]]) -> Any:
    started = time.perf_counter()
    try:
        value = await make()
    except _Failed as failed:
        failed.step.ms = round((time.perf_counter() - started) * 1000, 1)
        result.steps.append(failed.step)
        raise
    step = value[0] if isinstance(value, tuple) else value
    step.ms = round((time.perf_counter() - started) * 1000, 1)
    result.steps.append(step)
    return value


async def probe(cfg: ProbeConfig) -> ProbeResult:
    """Run the steps in order; the result lists each one done, the last failed if any."""
    result = ProbeResult(cfg.host, cfg.port)
    try:
        await _timed(result, lambda: _resolve(cfg))
        _, reader, writer = await _timed(result, lambda: _connect(cfg))
    except _Failed:
        return result
    try:
        await _run_messages(cfg, result, reader, writer)
    except _Failed:
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass  # the host already went away
    return result


async def _run_messages(cfg: ProbeConfig, result: ProbeResult, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    known = bool(cfg.tid and cfg.mid)
    ident = builders.Ident(cfg.tid or PLACEHOLDER_TID, cfg.mid or PLACEHOLDER_MID, "000001")

    async def frame_step() -> tuple[ProbeStep, dict[str, str]]:
        answer, frame = await _exchange(cfg, reader, writer, builders.echo("000001", ident), "frame")
        return ProbeStep("frame", True, f"回响应答已解析，TPDU已交换({frame.tpdu.hex().upper()})",
                         f"echo answer decoded, TPDU swapped ({frame.tpdu.hex().upper()})",
                         detail={"tpdu": frame.tpdu.hex().upper(), "mti": answer.get("t")}), answer

    _, echo_answer = await _timed(result, frame_step)

    async def echo_step() -> ProbeStep:
        return _code_step("echo", echo_answer, known)

    await _timed(result, echo_step)
    if not (known and cfg.sign_in):
        return

    async def sign_in_step() -> tuple[ProbeStep, dict[str, str]]:
        request = builders.sign_in("000002", ident, cfg.signin_mode, OPERATOR, None)
        answer, _frame = await _exchange(cfg, reader, writer, request, "sign_in")
        return _code_step("sign_in", answer, known), answer

    _, signin_answer = await _timed(result, sign_in_step)
    if cfg.tmk is None:
        return

    async def key_step() -> ProbeStep:
        return _key_check(cfg, signin_answer)

    await _timed(result, key_step)
