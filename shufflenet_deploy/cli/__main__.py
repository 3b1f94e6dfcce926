"""`python -m shufflenet_deploy.cli`: the same as the `sdeploy` console script."""
from . import run

run()
