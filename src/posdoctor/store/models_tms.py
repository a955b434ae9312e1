"""TMS tables (issue 3): device credentials, telemetry, firmware packages, campaigns.

Same ``Base`` as ``models``; ``models`` imports this module at its end so that
``Base.metadata`` always holds every table.
"""

from __future__ import annotations

from posdoctor.store.models import Base  # noqa: F401
