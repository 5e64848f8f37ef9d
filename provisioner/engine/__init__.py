"""The engine: per host, gather facts once, then check and apply each step in order.

``walk`` is the pure pass over the steps that a dry run and a real run share
(and ``planned_changes``, a dry run without a host); ``runner`` is one host's
run over SSH (apply, verify, rollback) and every host in parallel.
"""
