"""ISO 9564 format 0 PIN blocks (field 52), encoded by psec, encrypted under a PIK.

Format 0: ``0`` + PIN length + PIN digits + ``F`` padding (16 nibbles), XOR ``0000`` +
the 12 rightmost PAN digits excluding the check digit. Inputs are checked here first so
every refusal is a :class:`PinBlockError` with a fixed reason that never echoes the PIN,
the PAN or a block nibble; psec's own ``ValueError`` never escapes.

SM4 (16-byte blocks): posdoctor encrypts the 8-byte format 0 block followed by eight
0xFF bytes, so an SM4 field 52 is 16 bytes (a choice; the public CUP sources are silent).
"""

from __future__ import annotations

from psec import pinblock as _psec_pinblock

from posdoctor.crypto.ciphers import Algorithm, EcbCipher
from posdoctor.crypto.errors import PinBlockError

PIN_LENGTHS = range(4, 13)
PAN_LENGTHS = range(13, 20)
CLEAR_BLOCK_LENGTH = 8
SM4_FILLER = b"\xff" * 8

# (English reason, Chinese reason, kind) of every refusal
PIN_BAD_LENGTH = ("PIN must be 4 to 12 digits", "PIN必须为4到12位数字", "pin")
PIN_NOT_DIGITS = ("PIN must contain only the digits 0-9", "PIN只能包含数字0-9", "pin")
PAN_BAD_LENGTH = ("PAN must be 13 to 19 digits", "卡号必须为13到19位数字", "pan")
PAN_NOT_DIGITS = ("PAN must contain only the digits 0-9", "卡号只能包含数字0-9", "pan")
BLOCK_BAD_LENGTH = ("PIN block must be {n} bytes", "PIN块必须为{n}字节", "length")
NOT_FORMAT_0 = ("not an ISO 9564 format 0 PIN block: control nibble is not 0",
                "不是ISO 9564格式0的PIN块: 控制位不是0", "format")
BAD_PIN_LENGTH_NIBBLE = ("PIN length nibble is outside 4..12",
                         "PIN块中的PIN长度不在4到12之间", "format")
BAD_PAD = ("PIN block padding is not all F nibbles", "PIN块填充位不全是F", "format")
PIN_DIGITS_NOT_DECIMAL = ("PIN digits in the block are not decimal",
                          "PIN块中的PIN不是十进制数字", "format")
BAD_SM4_FILLER = ("SM4 PIN block filler is not eight FF bytes",
                  "SM4 PIN块的填充不是8个FF字节", "format")
INVALID_BLOCK = ("not a valid ISO 9564 format 0 PIN block", "不是有效的ISO 9564格式0 PIN块",
                 "format")

# psec's ValueError messages (prefixes) -> our reasons, for decode
_PSEC_DECODE_REASONS = (
    ("PIN block is not ISO format 0", NOT_FORMAT_0),
    ("PIN length must be between", BAD_PIN_LENGTH_NIBBLE),
    ("PIN block filler is incorrect", BAD_PAD),
    ("PIN is not numeric", PIN_DIGITS_NOT_DECIMAL),
)


def _refuse(reason: tuple[str, str, str], **fmt: object) -> PinBlockError:
    en, zh, kind = reason
    return PinBlockError(en.format(**fmt), zh.format(**fmt), kind)


def _is_ascii_digits(text: object) -> bool:
    return isinstance(text, str) and text.isascii() and text.isdigit()


def check_pin(pin: str) -> None:
    """Raise :class:`PinBlockError` unless ``pin`` is 4 to 12 ASCII digits."""
    if not isinstance(pin, str) or len(pin) not in PIN_LENGTHS:
        raise _refuse(PIN_BAD_LENGTH)
    if not _is_ascii_digits(pin):
        raise _refuse(PIN_NOT_DIGITS)


def check_pan(pan: str) -> None:
    """Raise :class:`PinBlockError` unless ``pan`` is 13 to 19 ASCII digits."""
    if not isinstance(pan, str) or len(pan) not in PAN_LENGTHS:
        raise _refuse(PAN_BAD_LENGTH)
    if not _is_ascii_digits(pan):
        raise _refuse(PAN_NOT_DIGITS)


def encode_pinblock_iso_0(pin: str, pan: str) -> bytes:
    """The clear 8-byte ISO 9564 format 0 PIN block of ``pin`` for ``pan``."""
    check_pin(pin)
    check_pan(pan)
    return _psec_pinblock.encode_pinblock_iso_0(pin, pan)


def decode_pinblock_iso_0(block: bytes, pan: str) -> str:
    """The PIN inside a clear 8-byte format 0 ``block`` for ``pan``."""
    check_pan(pan)
    if len(block) != CLEAR_BLOCK_LENGTH:
        raise _refuse(BLOCK_BAD_LENGTH, n=CLEAR_BLOCK_LENGTH)
    try:
        return _psec_pinblock.decode_pinblock_iso_0(bytes(block), pan)
    except ValueError as exc:
        raise _decode_refusal(str(exc)) from None


def _decode_refusal(message: str) -> PinBlockError:
    for prefix, reason in _PSEC_DECODE_REASONS:
        if message.startswith(prefix):
            return _refuse(reason)
    return _refuse(INVALID_BLOCK)


def cipher_block(clear: bytes, alg: Algorithm) -> bytes:
    """The block that ``alg`` encrypts for a clear format 0 block (SM4 adds 8 x FF)."""
    return clear if alg is Algorithm.TDES else clear + SM4_FILLER


def encrypted_block_length(alg: Algorithm) -> int:
    """Length of an encrypted PIN block (field 52): 8 for 3DES, 16 for SM4."""
    return alg.block_size


def seal_pinblock_with(cipher: EcbCipher, clear: bytes) -> bytes:
    """Encrypt a clear format 0 block under the PIK held by ``cipher``."""
    return cipher.encrypt(cipher_block(clear, cipher.alg))


def open_pinblock_with(cipher: EcbCipher, block: bytes) -> bytes:
    """Decrypt field 52 under the PIK in ``cipher``: the clear 8-byte format 0 block."""
    expected = encrypted_block_length(cipher.alg)
    if len(block) != expected:
        raise _refuse(BLOCK_BAD_LENGTH, n=expected)
    clear = cipher.decrypt(bytes(block))
    if cipher.alg is Algorithm.SM4:
        if clear[CLEAR_BLOCK_LENGTH:] != SM4_FILLER:
            raise _refuse(BAD_SM4_FILLER)
        clear = clear[:CLEAR_BLOCK_LENGTH]
    return clear


def encrypt_pinblock(pik: bytes, pin: str, pan: str, alg: Algorithm = Algorithm.TDES) -> bytes:
    """Field 52: the format 0 block of ``pin``/``pan`` encrypted under ``pik``."""
    clear = encode_pinblock_iso_0(pin, pan)
    return seal_pinblock_with(EcbCipher(alg, pik), clear)


def decrypt_pinblock(pik: bytes, block: bytes, pan: str, alg: Algorithm = Algorithm.TDES) -> str:
    """The PIN inside field 52 ``block`` encrypted under ``pik``."""
    check_pan(pan)
    clear = open_pinblock_with(EcbCipher(alg, pik), block)
    return decode_pinblock_iso_0(clear, pan)
