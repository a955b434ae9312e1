"""Host settings, validated with pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from posdoctor.iso8583.framing import FrameConfig


class HostConfig(BaseModel):
    """How the acquiring host listens, frames, checks and commits.

    Times are in seconds. `port=0` asks the OS for a free port (tests); `start()`
    returns the real one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=5800, ge=0, le=65535)

    # framing
    header: bool = True
    max_frame: int = Field(default=8192, ge=64, le=65535)
    accepted_tpdu_destinations: tuple[str, ...] = ()
    """Hex of the 2-byte TPDU destination the host accepts (e.g. "0003"); empty = any."""

    # connections
    idle_timeout_s: float = Field(default=60.0, gt=0)
    frame_timeout_s: float = Field(default=10.0, gt=0)
    """Time allowed for the rest of a frame once its length prefix arrived."""
    persistent: bool = True
    """False: the host closes the connection after each answer (short connections)."""
    max_connections: int = Field(default=10_000, ge=1)
    use_uvloop: bool = True

    # security and sessions
    require_mac: bool = True
    session_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    """A sign-in's working keys are valid this long; afterwards 77."""
    signin_expires_at_day_change: bool = False
    max_pin_tries: int = Field(default=3, ge=1)

    # issuer
    issuer_timeout_s: float = Field(default=5.0, gt=0)
    issuer_timeout_code: Literal["98", "68"] = "98"

    # identity written into answers
    acquirer_id: str = Field(default="00010000", pattern=r"^[0-9]{1,11}$")
    """Field 32 of sign-in answers."""

    parameters: dict[str, str] = Field(default_factory=dict)
    """Parameter-download tags (`iso8583.fields.PARAM_TAGS`) overriding the defaults."""

    # registry changes made elsewhere (CLI, TMS, doctor; any process)
    change_feed_interval_s: float = Field(default=0.5, ge=0)
    """How often the host polls the change feed (`Store.notify_host`); 0 = never."""

    # group commit
    commit_interval_s: float = Field(default=0.0, ge=0)
    commit_max_items: int = Field(default=2000, ge=1)
    commit_process: bool = True
    """`posdoctor serve` commits in a child process (`host.commitproc`), off the event
    loop's GIL; False keeps the commit in the host's writer thread."""
    key_service: bool = True
    """`posdoctor serve` has double-length 3DES working keys issued by an HSM child
    process (`host.keyservice`); False makes every key on the event loop."""

    def frame_config(self) -> FrameConfig:
        return FrameConfig(header=self.header, max_frame=self.max_frame)
