"""provisioner: agentless, idempotent provisioning of a Postfix mail server with SMTP-AUTH and STARTTLS."""
