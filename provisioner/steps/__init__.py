"""The ordered steps of a run. Each module is one concern."""

from provisioner.steps.main_cf import MainCf
from provisioner.steps.packages import Packages
from provisioner.steps.services import Services

# In this order: the firewall lockdown comes first so that nothing listens
# unprotected; services (with the handlers) come last.
STEPS = [
    Packages(),
    MainCf(),
    Services(),
]

# Run only after verify has passed (lifting the lockdown).
POST_VERIFY_STEPS: list = []

ALL_STEPS = [*STEPS, *POST_VERIFY_STEPS]
