"""The route table: route key -> the steps that handle it. Data, not if-chains.

Route keys come from `posdoctor.iso8583.routing.route_key`: MTI + 60.3 for management
messages (`0800.004`), MTI + F3 + F25 + 60.1 for financial ones (`0200.000000.00.22`).
A key with `*` is a pattern (`0400.*`); exact keys win over patterns.
"""

from __future__ import annotations

from collections.abc import Mapping

from posdoctor.host.pipeline import Step
from posdoctor.host.route import Route
from posdoctor.host.steps.closing import Journal, PrepareResponse, SendResponse, SignResponse
from posdoctor.host.steps.downloads import EndDownload, ListEmvEntries, RecordStatus, SendEmvEntry, SendParameters
from posdoctor.host.steps.inbound import CheckFields, DecodeFrame, SelectRoute
from posdoctor.host.steps.keys import DownloadTmk, EndSignOn, IssueWorkingKeys
from posdoctor.host.steps.money import (
    Authorize,
    CancelOriginal,
    CheckDuplicate,
    CheckOriginal,
    FindOriginal,
    LoadCard,
    QueryBalance,
    ReadCard,
    RefundOriginal,
    ReverseOriginal,
    VerifyPin,
)
from posdoctor.host.steps.settlement import CompareTotals, EndBatchUpload, RecordBatchUpload
from posdoctor.host.steps.terminal import (
    CheckDevice,
    CheckSignIn,
    CheckStatus,
    FindTerminal,
    LoadTerminal,
    VerifyMac,
)
from posdoctor.iso8583.framing import ProcessingRequirement as PR


# Reusable step sequences -----------------------------------------------------------
MGMT_FIELDS = ("11", "41", "42", "60")
FIN_FIELDS = ("3", "11", "25", "41", "42", "60")
SALE_FIELDS = (*FIN_FIELDS, "4")
REGISTERED = (LoadTerminal(), CheckStatus())
SIGNED_IN = (*REGISTERED, CheckSignIn())


def _management(*steps: Step, fields: tuple[str, ...] = MGMT_FIELDS) -> tuple[Step, ...]:
    return (CheckFields(fields), *REGISTERED, *steps)


def _financial(*steps: Step, fields: tuple[str, ...] = FIN_FIELDS) -> tuple[Step, ...]:
    return (CheckFields(fields), *SIGNED_IN, VerifyMac(required=True), *steps)


def _end_of_day(*steps: Step, fields: tuple[str, ...] = MGMT_FIELDS) -> tuple[Step, ...]:
    """Settlement and batch upload: signed in; a MAC is checked when one is sent."""
    return (CheckFields(fields), *SIGNED_IN, VerifyMac(required=False), *steps)


def _sign_in(nmi: str) -> Route:
    return Route(f"sign_in_{nmi}", _management(CheckDevice(optional=True), IssueWorkingKeys(nmi)))


ROUTES: Mapping[str, Route] = {
    # lifecycle
    "0800.401": Route("tmk_download", (CheckFields(("11", "60", "62")), FindTerminal(), CheckStatus(),
                                       CheckDevice(optional=False), DownloadTmk())),
    "0800.001": _sign_in("001"),
    "0800.003": _sign_in("003"),
    "0800.004": _sign_in("004"),
    "0800.006": _sign_in("006"),
    "0820.002": Route("sign_off", _management(EndSignOn())),
    "0820.301": Route("echo", _management()),
    "0820.362": Route("status_upload", _management(RecordStatus(), fields=(*MGMT_FIELDS, "62"))),
    # parameters, CAPK, AID
    "0800.360": Route("param_download", _management(SendParameters())),
    "0800.364": Route("param_download", _management(SendParameters())),
    "0800.361": Route("param_download_end", _management(EndDownload(PR.PARAMS))),
    "0820.372": Route("capk_query", _management(ListEmvEntries("capk"))),
    "0800.370": Route("capk_download", _management(SendEmvEntry("capk"), fields=(*MGMT_FIELDS, "62"))),
    "0800.371": Route("capk_download_end", _management(EndDownload(PR.CAPK))),
    "0820.382": Route("aid_query", _management(ListEmvEntries("aid"))),
    "0800.380": Route("aid_download", _management(SendEmvEntry("aid"), fields=(*MGMT_FIELDS, "62"))),
    "0800.381": Route("aid_download_end", _management(EndDownload(PR.AID))),
    # money
    "0200.310000.00.01": Route("balance", _financial(ReadCard(), CheckDuplicate("balance"), LoadCard(),
                                                     VerifyPin(required=True), QueryBalance())),
    "0200.000000.00.22": Route("sale", _financial(ReadCard(), CheckDuplicate("sale"), LoadCard(),
                                                  VerifyPin(required=False), Authorize(), fields=SALE_FIELDS)),
    "0200.200000.00.23": Route("void", _financial(ReadCard(optional=True), CheckDuplicate("void"), FindOriginal(),
                                                  CheckOriginal("void"), CancelOriginal(), fields=SALE_FIELDS)),
    "0220.200000.00.25": Route("refund", _financial(ReadCard(), CheckDuplicate("refund"), FindOriginal(),
                                                    CheckOriginal("refund"), RefundOriginal(), fields=SALE_FIELDS)),
    "0400.*": Route("reversal", _financial(ReverseOriginal())),
    # end of day
    "0500.201": Route("settlement", _end_of_day(CompareTotals(), fields=(*MGMT_FIELDS, "48"))),
    "0320.201": Route("batch_upload", _end_of_day(RecordBatchUpload(), fields=(*MGMT_FIELDS, "48"))),
    "0320.202": Route("batch_upload_end", _end_of_day(EndBatchUpload())),
}

INBOUND: tuple[Step, ...] = (DecodeFrame(), SelectRoute())
CLOSING: tuple[Step, ...] = (PrepareResponse(), SignResponse(), Journal(), SendResponse())

