"""The engine: per host, gather facts once, then check and apply each step in order.

``walk`` is the pure pass over the steps that a dry run and a real run share
(and ``planned_changes``, a dry run without a host); ``hostrun`` is one
host's run over SSH (lock, apply, verify, commit or rollback); ``verified``
decides whether a real run verifies (``--verify auto``) from the digest of
the host's state; ``runner`` runs every host in parallel, in the batches
``batches`` cuts (``--serial``, ``--max-fail``); ``control`` carries
interrupts to the hosts' runs; ``results`` is what they report, and the
events the report renders while they run.
"""
