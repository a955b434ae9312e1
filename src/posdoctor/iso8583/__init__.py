"""posdoctor.iso8583: the pure CUP ISO 8583 core.

`spec` (the pyiso8583 dialect), `codec` (message bodies), `framing` (length, TPDU,
header), `fields` (sub-field codecs), `codes` (field 39), `routing` (route keys),
`mask` (safe logging), `errors` (typed errors). No I/O, no clock, no logging.
"""
