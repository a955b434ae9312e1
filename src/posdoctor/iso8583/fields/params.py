"""Parameter tag lists (field 62 of the parameter download and the status upload).

A list is a run of 2-digit ASCII tags, each followed by a value of the fixed length the
tag table gives. Numeric values are right-justified with zeros; text values are
left-justified with spaces (stripped on decode); ``gbk`` text is measured in GBK bytes.

`PARAM_TAGS` holds the OPENPOS terminal parameters (12..26) plus posdoctor's own
communication tags (90..94). `STATUS_TAGS` is posdoctor's table for the 0820/362 status
upload. Both are plain dicts: pass another table to the codec to talk to other hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from posdoctor.iso8583.errors import DecodeError, EncodeError
from posdoctor.iso8583.fields._util import check_bytes

__all__ = ["ParamTag", "PARAM_TAGS", "STATUS_TAGS", "encode_param_tags", "decode_param_tags"]

_FIELD = "62"
_TAG_LEN = 2


@dataclass(frozen=True)
class ParamTag:
    length: int
    kind: str
    """``n`` digits, ``ans`` ASCII text, ``gbk`` Chinese-capable text."""
    zh: str
    en: str


PARAM_TAGS: dict[str, ParamTag] = {
    "12": ParamTag(2, "n", "接收超时时间(秒)", "receive timeout (s)"),
    "13": ParamTag(1, "n", "拨号重试次数", "dial retries"),
    "18": ParamTag(1, "n", "是否支持小费", "tip allowed (0/1)"),
    "19": ParamTag(2, "n", "小费百分比", "tip percent"),
    "20": ParamTag(1, "n", "是否允许手输卡号", "manual card entry allowed (0/1)"),
    "21": ParamTag(1, "n", "结算后自动签退", "automatic sign-off after settlement (0/1)"),
    "22": ParamTag(40, "gbk", "商户名称", "merchant name"),
    "23": ParamTag(1, "n", "交易重发次数", "transaction retries"),
    "25": ParamTag(2, "n", "主密钥索引", "master key index"),
    "26": ParamTag(8, "n", "交易开关", "transaction-enable flags (one digit per type)"),
    # posdoctor communication tags
    "90": ParamTag(40, "ans", "主机地址", "host address"),
    "91": ParamTag(5, "n", "主机端口", "host port"),
    "92": ParamTag(10, "ans", "TPDU", "TPDU as 10 hex digits"),
    "93": ParamTag(40, "ans", "备用主机地址", "backup host address"),
    "94": ParamTag(5, "n", "备用主机端口", "backup host port"),
}

STATUS_TAGS: dict[str, ParamTag] = {
    "01": ParamTag(20, "ans", "设备序列号", "device serial number"),
    "02": ParamTag(10, "ans", "终端型号", "terminal model"),
    "03": ParamTag(12, "ans", "应用版本", "application version"),
    "04": ParamTag(12, "ans", "固件版本", "firmware version"),
    "05": ParamTag(8, "n", "自检结果(打印机/读卡器/键盘/存储/电源/防拆/网络/参数, 0正常1故障)",
                   "self-check (printer, reader, keypad, storage, power, tamper, network, params; 0 ok 1 fault)"),
    "06": ParamTag(3, "n", "电池电量(%)", "battery level (%)"),
    "07": ParamTag(3, "n", "信号强度(0-100)", "signal strength (0-100)"),
    "08": ParamTag(6, "n", "重启次数", "reboot count"),
    "09": ParamTag(4, "ans", "最近错误码", "last error code"),
    "10": ParamTag(1, "n", "参数/公钥/IC参数已下载标志", "parameters downloaded flag"),
}


def encode_param_tags(values: Mapping[str, str], table: Mapping[str, ParamTag] = PARAM_TAGS) -> bytes:
    """{tag: value} -> tag list bytes, in the mapping's order."""
    out = bytearray()
    for tag, value in values.items():
        spec = table.get(tag)
        if spec is None:
            raise EncodeError(_FIELD, f"parameter tag {tag!r} is not in the tag table")
        out += tag.encode("ascii") + _encode_value(tag, spec, value)
    return bytes(out)


def _encode_value(tag: str, spec: ParamTag, value: object) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(_FIELD, f"tag {tag} value must be str, not {type(value).__name__}")
    if spec.kind == "n":
        if value and not (value.isdigit() and value.isascii()):
            raise EncodeError(_FIELD, f"tag {tag} must hold digits, got {value!r}")
        raw = value.rjust(spec.length, "0").encode("ascii")
    else:
        try:
            encoded = value.encode("gbk" if spec.kind == "gbk" else "ascii")
        except UnicodeEncodeError:
            raise EncodeError(_FIELD, f"tag {tag} holds characters outside {spec.kind}") from None
        raw = encoded.ljust(spec.length, b" ")
    if len(raw) > spec.length:
        raise EncodeError(_FIELD, f"tag {tag} value is {len(raw)} bytes, larger than {spec.length}")
    return raw


def decode_param_tags(data: bytes, table: Mapping[str, ParamTag] = PARAM_TAGS) -> dict[str, str]:
    """Tag list bytes -> {tag: value}; unknown tags, truncation and duplicates are errors."""
    data = check_bytes(_FIELD, data)
    result: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        tag = _read_tag(data, pos, table)
        spec = table[tag]
        start = pos + _TAG_LEN
        raw = data[start:start + spec.length]
        if len(raw) != spec.length:
            raise DecodeError(_FIELD, start, f"tag {tag} needs {spec.length} bytes, only {len(raw)} left")
        if tag in result:
            raise DecodeError(_FIELD, pos, f"tag {tag} appears twice")
        result[tag] = _decode_value(tag, spec, raw, start)
        pos = start + spec.length
    return result


def _read_tag(data: bytes, pos: int, table: Mapping[str, ParamTag]) -> str:
    raw = data[pos:pos + _TAG_LEN]
    if len(raw) != _TAG_LEN:
        raise DecodeError(_FIELD, pos, "truncated parameter tag")
    tag = raw.decode("latin-1")
    if tag not in table:
        raise DecodeError(_FIELD, pos, f"unknown parameter tag {tag!r}: its length is not known")
    return tag


def _decode_value(tag: str, spec: ParamTag, raw: bytes, start: int) -> str:
    try:
        text = raw.decode("gbk" if spec.kind == "gbk" else "ascii")
    except UnicodeDecodeError as exc:
        raise DecodeError(_FIELD, start + exc.start, f"tag {tag} value is not valid {spec.kind} text") from None
    if spec.kind == "n":
        if not text.isdigit():
            raise DecodeError(_FIELD, start, f"tag {tag} value {text!r} is not digits")
        return text
    return text.rstrip(" ")
