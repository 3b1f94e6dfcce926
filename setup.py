"""Ship the bundled trained models (repo-level `models/`) inside the wheel, as `shufflenet_deploy/_models/`.

The repo keeps `models/` at the top (checkpoints beside their cards, where users and `make models` look); a
wheel has no source tree, so build_py copies them into the package. `shufflenet_deploy.bundled` finds either.
Everything else about the package is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODELS = Path(__file__).parent / "models"


class BuildWithModels(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "shufflenet_deploy" / "_models"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(MODELS.glob("*")):
            if path.suffix in (".pt", ".md"):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithModels})
