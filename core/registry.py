"""Named constructors: models, mixers, optimizers and datasets are built by name plus keyword arguments."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from polyformer.core.errors import ConfigError


class Registry:
    """A name -> constructor table with `build(name_or_dict, **kwargs)`, in the manner of timm's create_model."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable:
        """Decorator that registers a class or factory under `name` (default: its lower-case name)."""

        def wrap(obj):
            key = (name or obj.__name__).lower()
            if key in self._entries and self._entries[key] is not obj:
                raise ConfigError(f"{self.kind} '{key}' is registered twice")
            self._entries[key] = obj
            return obj

        return wrap

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._entries

    def get(self, name: str) -> Callable[..., Any]:
        """The constructor registered as `name`; an unknown name raises with the closest known names."""
        key = str(name).lower()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown {self.kind} '{name}'. Known: {', '.join(self.names())}.{hint}")
        return self._entries[key]

    def build(self, spec: str | Mapping[str, Any], /, hints: Mapping[str, Any] | None = None, **kwargs) -> Any:
        """Build from a name or a dict with a `name` key.

        `kwargs` and the dict's other keys are passed as they are (an unknown one is an error);
        `hints` are passed only where the constructor takes them, so a model can offer e.g.
        `num_heads` to whichever mixer the user chose.
        """
        if isinstance(spec, str):
            name, options = spec, {}
        elif isinstance(spec, Mapping):
            if "name" not in spec:
                raise ConfigError(f"a {self.kind} config needs a 'name' key, got keys {sorted(spec)}")
            options = {k: v for k, v in spec.items() if k != "name"}
            name = spec["name"]
        else:
            raise ConfigError(f"a {self.kind} is given by name or dict, got {type(spec).__name__}")
        ctor = self.get(name)
        options.update(kwargs)
        accepted = _accepted_kwargs(ctor)
        if accepted is not None:
            unknown = sorted(set(options) - accepted)
            if unknown:
                raise ConfigError(
                    f"{self.kind} '{name}' takes no argument(s) {unknown}. It takes: {sorted(accepted)}"
                )
        for key, value in (hints or {}).items():
            if key not in options and (accepted is None or key in accepted):
                options[key] = value
        return ctor(**options)


def _accepted_kwargs(ctor: Callable) -> set[str] | None:
    """Keyword names `ctor` takes, or None when it takes **kwargs."""
    target = ctor.__init__ if inspect.isclass(ctor) else ctor
    params = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL}
