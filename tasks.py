"""invoke tasks in a checkout: the product's (provisioner/cli.py) and the tooling's (tooling/tasks.py)."""

from invoke import Collection

from provisioner.cli import TASKS
from tooling.tasks import TASKS as TOOLING_TASKS
from tooling.tasks import lab

ns = Collection(*TASKS, *TOOLING_TASKS)
ns.add_collection(lab)
