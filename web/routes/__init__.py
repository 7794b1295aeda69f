"""Route modules. Importing this package registers the bounded ``id`` and ``index`` path
convertors (:mod:`web.params`) before any route pattern is compiled."""

import web.params  # noqa: F401
