"""The stack's own configuration, which decides what "as configured" means for tracing.

Pulumi hands a policy pack the configuration of the stack it runs on, so `pulumi.Config()` reads the
program's keys (serverless-ml-pipeline:tracing, ...) as the program does. The defaults are the program's
(settings.py), pinned by tests/policy so the two cannot drift apart.
"""

from __future__ import annotations

import pulumi

# settings.py: tracing (every function and the API stage) and apiTracing (the API stage), both off.
TRACING_DEFAULT = False
API_TRACING_DEFAULT = False


def _flag(key: str, default: bool) -> bool:
    value = pulumi.Config().get_bool(key)
    return default if value is None else value


def functions_traced() -> bool:
    return _flag("tracing", TRACING_DEFAULT)


def api_traced() -> bool:
    # The program traces the stage for apiTracing, or for tracing so that a function's trace starts at
    # the request that called it.
    return _flag("apiTracing", API_TRACING_DEFAULT) or functions_traced()
