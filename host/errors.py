"""Moved to hilkit.core.errors (kept so existing imports work until the layers are split)."""
from hilkit.core.errors import HilkitError, UsageError, user_errors  # noqa: F401
