"""Codecs of the CUP sub-fields: 48, 53, 54, 60, 62 (keys, parameters, device info,
CAPK/AID lists) and BER-TLV (55). Every decoder raises `DecodeError` with the field, the
offset inside the value and a precise reason; every encoder raises `EncodeError`.
"""

from posdoctor.iso8583.fields.balance import Balance, decode_balance, decode_balances, encode_balance
from posdoctor.iso8583.fields.device import DEVICE_INFO_TAGS, decode_device_info, encode_device_info
from posdoctor.iso8583.fields.keyblock import (
    KEY_BLOCK_LAYOUTS,
    KeyBlockLayout,
    WorkingKeyBlock,
    decode_key_block,
    encode_key_block,
)
from posdoctor.iso8583.fields.params import (
    PARAM_TAGS,
    STATUS_TAGS,
    ParamTag,
    decode_param_tags,
    encode_param_tags,
)
from posdoctor.iso8583.fields.private import Field60, PinAlgorithm, PinFormat, SecurityControl
from posdoctor.iso8583.fields.settlement import (
    MAX_BATCH_ITEMS,
    BatchItem,
    BatchKind,
    ReconFlag,
    SettlementTotals,
    decode_batch_end,
    decode_batch_items,
    encode_batch_end,
    encode_batch_items,
)
from posdoctor.iso8583.fields.tlv import (
    EMV_LIST_STATUSES,
    decode_emv_list,
    decode_tlv,
    encode_emv_list,
    encode_tlv,
)

__all__ = [
    "Balance", "decode_balance", "decode_balances", "encode_balance",
    "DEVICE_INFO_TAGS", "decode_device_info", "encode_device_info",
    "KEY_BLOCK_LAYOUTS", "KeyBlockLayout", "WorkingKeyBlock", "decode_key_block", "encode_key_block",
    "PARAM_TAGS", "STATUS_TAGS", "ParamTag", "decode_param_tags", "encode_param_tags",
    "Field60", "PinAlgorithm", "PinFormat", "SecurityControl",
    "MAX_BATCH_ITEMS", "BatchItem", "BatchKind", "ReconFlag", "SettlementTotals",
    "decode_batch_end", "decode_batch_items", "encode_batch_end", "encode_batch_items",
    "EMV_LIST_STATUSES", "decode_emv_list", "decode_tlv", "encode_emv_list", "encode_tlv",
]
