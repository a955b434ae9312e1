"""A payment card as the emulated reader presents it: PAN, expiry, track 2, chip or stripe."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Card", "CardError"]


class CardError(ValueError):
    """Card data the terminal refuses before anything goes online."""


@dataclass(frozen=True, slots=True)
class Card:
    """`expiry` is YYMM; `chip` says the card is read by its IC (entry mode 05x)."""

    pan: str
    expiry: str = "3012"
    service_code: str = "201"
    chip: bool = False
    sequence: str = "001"

    def __post_init__(self) -> None:
        if not (self.pan.isascii() and self.pan.isdigit() and 12 <= len(self.pan) <= 19):
            raise CardError("card number must be 12 to 19 digits")
        if not (self.expiry.isdigit() and len(self.expiry) == 4 and 1 <= int(self.expiry[2:]) <= 12):
            raise CardError("expiry must be YYMM")
        if not (self.service_code.isdigit() and len(self.service_code) == 3):
            raise CardError("service code must be 3 digits")

    @property
    def track2(self) -> str:
        """Track 2 equivalent data: PAN '=' YYMM service code + discretionary data."""
        return f"{self.pan}={self.expiry}{self.service_code}0000000"

    def __repr__(self) -> str:  # never show the full PAN
        masked = f"{self.pan[:6]}{'*' * (len(self.pan) - 10)}{self.pan[-4:]}"
        return f"Card(pan={masked!r}, expiry='****', chip={self.chip})"
