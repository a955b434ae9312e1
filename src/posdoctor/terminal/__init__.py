"""posdoctor.terminal: a faithful CUP POS terminal emulator (device + payment application).

Public API: `PaymentApp` (operations returning `Outcome`s), `TerminalState` (persisted as
``$POSDOCTOR_HOME/terminals/TID.json`` by `TerminalFiles`), `Device` (peripherals with
faults and the self-check), `Card`, `TerminalEvent`, and the `Link`/`TcpLink`/
`LinkConditions` seam through which a simulator changes the network.
"""

from posdoctor.terminal.app import PaymentApp, new_state, open_app
from posdoctor.terminal.card import Card, CardError
from posdoctor.terminal.device import Device, HardwareFault, Peripheral
from posdoctor.terminal.events import EventKind, EventLog, TerminalEvent
from posdoctor.terminal.link import Link, LinkConditions, TcpLink
from posdoctor.terminal.messages import M, Message
from posdoctor.terminal.outcome import Outcome
from posdoctor.terminal.state import AppSettings, CommSettings, TerminalState
from posdoctor.terminal.storage import StateFileError, TerminalFiles

__all__ = [
    "PaymentApp", "new_state", "open_app", "Card", "CardError", "Device", "HardwareFault", "Peripheral",
    "EventKind", "EventLog", "TerminalEvent", "Link", "LinkConditions", "TcpLink", "M", "Message", "Outcome",
    "AppSettings", "CommSettings", "TerminalState", "StateFileError", "TerminalFiles",
]
