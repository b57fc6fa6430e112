"""What `polyformer list` prints: domains with their models, datasets and verbs, and the registered mixers."""

from __future__ import annotations

from polyformer.core.mixers import list_mixers
from polyformer.core.training.app import DOMAIN_NAMES, available_domains


def listing() -> dict:
    """Domains (built and planned), their models, datasets and verbs, and the mixers, as plain data."""
    built = available_domains()
    domains = {}
    for name in DOMAIN_NAMES:
        spec = built.get(name)
        if spec is None:
            domains[name] = {"status": "planned"}
            continue
        domains[name] = {
            "status": "built",
            "models": spec.models.names(),
            "datasets": dict(spec.datasets),
            "verbs": spec.verbs(),
        }
    return {"domains": domains, "mixers": list_mixers()}


def print_listing() -> None:
    """Print `listing()` for people."""
    info = listing()
    for name, d in info["domains"].items():
        if d["status"] != "built":
            print(f"{name}: (planned)")
            continue
        print(f"{name}:")
        print(f"  verbs:    {', '.join(d['verbs'])}")
        print(f"  models:   {', '.join(d['models'])}")
        print("  datasets:")
        for ds, about in d["datasets"].items():
            print(f"    {ds:<18} {about}")
    print(f"mixers: {', '.join(info['mixers'])}")
