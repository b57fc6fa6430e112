"""Script entry of the toy domain's Hydra app (Lightning's DDP launcher re-runs this file per rank)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from toy import DOMAIN  # noqa: E402

from polyformer.core.training.app import hydra_main  # noqa: E402

if __name__ == "__main__":
    hydra_main(DOMAIN)
