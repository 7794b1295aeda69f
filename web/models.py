"""Import every package's tables so SQLModel.metadata is complete (Alembic, create_all)."""

from __future__ import annotations

import audit  # noqa: F401  (audit registers its tables on import)
import outlet.devices  # noqa: F401
import outlet.events.models  # noqa: F401
import outlet.models  # noqa: F401
import outlet.queue.models  # noqa: F401
import outlet.ratings.models  # noqa: F401
import outlet.services.models  # noqa: F401
import partners.logins  # noqa: F401
import partners.models  # noqa: F401
import partners.refdata  # noqa: F401
import remote_assist.models  # noqa: F401
import web.refusals  # noqa: F401
import web.throttle  # noqa: F401
