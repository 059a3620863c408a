"""Alert delivery: routing, inhibition, silences, grouping, de-duplication, repeat
intervals, retries and a durable outbox, to console, Slack, webhooks and Alertmanager.

Entry points: ``alerts.service.AlertService`` (the composition root),
``alerts.config.load_alerts_config``, ``alerts.config.render`` (redacted, for
``config show``) and ``alerts.cli.prepare_notify`` (``ordermon replay --notify``).
See ``alerts/README.md``.
"""
