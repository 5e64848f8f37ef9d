"""The project's tooling, never installed with the product: the lab, the bench and the demo.

``provisioner`` never imports this package (tests/unit/test_layers.py checks it);
this package may import ``provisioner`` and may find files relative to the
repository, since it only ever runs from a checkout.
"""
