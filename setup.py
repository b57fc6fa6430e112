"""Maps each top-level folder of the monorepo to an import package `polyformer.<folder>`."""

import os

from setuptools import setup

FOLDERS = ["core", "vision", "speech", "timeseries", "rl", "weather", "graphs"]


def _packages():
    packages, package_dir = [], {}
    for folder in FOLDERS:
        if not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        package_dir[f"polyformer.{folder}"] = folder
        for root, _dirs, files in os.walk(folder):
            if "__init__.py" in files:
                packages.append("polyformer." + root.replace(os.sep, "."))
    return packages, package_dir


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: ["*.yaml", "**/*.yaml", "csrc/*.cpp"] for name in packages},
    include_package_data=True,
)
