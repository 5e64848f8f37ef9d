"""`make bench`: provisioner side by side with Ansible and pyinfra, on the same lab host.

Two jobs, each tool doing the same one (docs/bench.md says exactly what):

1. drift check of a converged host: ``invoke provision --dry-run --no-verify``,
   ``ansible-playbook --check --diff``, ``pyinfra --dry --diff``;
2. repair of one drift: one main.cf key edited by hand before each run, then
   each tool applies and must put it back (and reload Postfix).

The modules follow the bench's seams:

- ``peer_state``: the peers' desired state, generated from provisioner's own
  (so it cannot drift from it);
- ``peers``: the tools as commands, their inventories, and how their outputs
  are read (changes, connections, remote commands);
- ``run``: the bench itself: converge, check fairness, time, count;
- ``show``: everything the bench prints.

The playbook, the pyinfra deploy and the results live beside them
(``ansible/``, ``pyinfra/``, ``results.json``; ``generated/`` is rewritten on
each run and never committed).
"""
