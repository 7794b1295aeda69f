"""``python -m audit verify DIR`` (and the other commands) with only audit/ installed."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
