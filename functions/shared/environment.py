"""What every function does first with its environment: refuse to start without the variables the program
sets, naming them, rather than fail on every event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class MissingEnvironment(RuntimeError):
    """The function was deployed without a variable it needs, or with one it cannot read."""


def require(env: Mapping[str, str], names: Iterable[str], function: str) -> None:
    """Raise `MissingEnvironment` naming every variable of `names` that is unset or empty."""
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise MissingEnvironment(f"{function} function environment lacks {', '.join(missing)}")


def invalid(function: str, detail: object) -> MissingEnvironment:
    """The error for a variable that is set but cannot be read."""
    return MissingEnvironment(f"{function} function environment is invalid: {detail}")
