from polyformer.core.training.app import hydra_main
from polyformer.graphs.app import DOMAIN

if __name__ == "__main__":
    hydra_main(DOMAIN)
