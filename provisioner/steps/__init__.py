"""The ordered steps of a run. Each module is one concern."""

from provisioner.steps.aliases import Aliases
from provisioner.steps.firewall import FirewallLift, FirewallLockdown
from provisioner.steps.leftovers import Leftovers
from provisioner.steps.main_cf import MainCf
from provisioner.steps.master_cf import MasterCf
from provisioner.steps.packages import Packages
from provisioner.steps.pam import Pam
from provisioner.steps.sasl import Sasl
from provisioner.steps.services import Services
from provisioner.steps.tls import Tls

# In this order: the lockdown first, so nothing listens unprotected while
# Postfix is unconfigured; then the leftovers of older versions and of
# interrupted installs; services (with the handlers) last, once every file
# is in place.
STEPS = [
    FirewallLockdown(),
    Leftovers(),
    Packages(),
    MainCf(),
    Sasl(),
    Pam(),
    Tls(),
    MasterCf(),
    Aliases(),
    Services(),
]

# Run only after verify has passed: lifting the lockdown.
POST_VERIFY_STEPS = [FirewallLift()]

ALL_STEPS = [*STEPS, *POST_VERIFY_STEPS]
