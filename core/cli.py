"""The `polyformer` command: `train|eval|predict <domain> [overrides]`, `list`, `doctor`, `demo`."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

USAGE = """usage: polyformer <verb> [domain] [hydra overrides...]

verbs:
  train <domain> [overrides]      train (ckpt_path=last resumes the newest run of that name)
  eval <domain> ckpt_path=...     test a checkpoint (on its own data, or data.* overrides)
  predict <domain> ckpt_path=...  write predictions of a checkpoint to the run directory
  <domain verb> <domain> ...      a domain's own verbs (e.g. `polyformer collect rl env=...`)
  list                            domains, models, datasets, mixers
  doctor                          versions, devices, accelerated backends per mixer
  demo [domain ...]               train every domain (or those named) briefly and print a summary table

Overrides are Hydra's: key=value, group=option, +new=value, -m for multirun, --cfg job to print.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    verb, rest = argv[0], argv[1:]
    if verb == "list":
        from polyformer.core.listing import print_listing

        print_listing()
        return 0
    if verb == "doctor":
        _print_doctor()
        return 0
    if verb == "demo":
        return _demo(rest)
    return run_domain_verb(verb, rest)


def _demo(rest: list[str]) -> int:
    """`polyformer demo [domain ...]`: every domain with a demo, or only the ones named."""
    from polyformer.core.training.app import available_domains
    from polyformer.core.training.demo import run_demo

    if any(a in ("-h", "--help", "help") for a in rest):
        print("usage: polyformer demo [domain ...]   (default: every domain with a demo)")
        return 0
    with_demo = [n for n, spec in available_domains().items() if spec.demo is not None]
    for name in rest:
        if name not in with_demo:
            return _fail(f"no demo for '{name}'{_suggest(name, with_demo)}. Domains with a demo: {', '.join(with_demo)}")
    return run_demo(rest)


def _print_doctor() -> None:
    from polyformer.core.doctor import print_doctor

    print_doctor()


def run_domain_verb(verb: str, rest: list[str]) -> int:
    """Dispatch `polyformer <verb> <domain> overrides...` to the domain's Hydra app."""
    from polyformer.core.training.app import DOMAIN_NAMES, available_domains, hydra_main

    if not rest or "=" in rest[0] or rest[0].startswith("-"):
        return _fail(f"'{verb}' needs a domain: polyformer {verb} <domain> [overrides]")
    name, overrides = rest[0], rest[1:]
    domains = available_domains()
    if name not in domains:
        if name in DOMAIN_NAMES:
            return _fail(f"domain '{name}' is planned but not built yet. Built: {', '.join(domains) or 'none'}")
        return _fail(f"unknown domain '{name}'{_suggest(name, domains)}. Domains: {', '.join(domains)}")
    spec = domains[name]
    if verb not in spec.verbs():
        return _fail(f"unknown verb '{verb}' for {name}{_suggest(verb, spec.verbs())}. Verbs: {', '.join(spec.verbs())}")
    problem = check_group_choices(spec.conf_dir, overrides)
    if problem:
        return _fail(problem)
    hydra_main(spec, [f"task={verb}", *overrides])
    return 0


def check_group_choices(conf_dir: Path, overrides: list[str]) -> str | None:
    """A one-line message if an override picks a config group option that does not exist, else None."""
    from polyformer.core.conf import CONF_DIR

    for item in overrides:
        if item.startswith("-") or "=" not in item:
            continue
        key, value = item.split("=", 1)
        key = key.lstrip("+~")
        if "." in key or "/" in key or value in ("null", "") or "," in value or "(" in value:
            continue
        options = _group_options(key, [conf_dir, CONF_DIR])
        if options is not None and value not in options:
            return f"unknown {key} '{value}'{_suggest(value, options)}. Options: {', '.join(sorted(options))}"
    return None


def _group_options(group: str, roots: list[Path]) -> set[str] | None:
    found = None
    for root in roots:
        folder = Path(root) / group
        if folder.is_dir():
            found = (found or set()) | {p.stem for p in folder.glob("*.yaml")}
    return found


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _fail(message: str) -> int:
    print(f"polyformer: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
