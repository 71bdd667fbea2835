"""Template layer: pure troposphere builders, with every policy written as awacs objects.

``build_template(cfg)`` assembles one environment; the builders it uses (``managed_key``,
``audit_log_bucket``, ``audit_trail``, ...) are public for other stacks. Nothing here reads a file,
an environment variable or talks to AWS, and nothing imports the deploy tooling or the evaluator.
"""

from scrybe_kms.template.alarm_stack import build_alarm_template, render_alarms
from scrybe_kms.template.assemble import MAX_TEMPLATE_BODY, TemplateTooLarge, build_template, render
from scrybe_kms.template.filter_stack import build_filter_template, render_filters
from scrybe_kms.template.replica_stack import build_replica_template, render_replica

__all__ = ["MAX_TEMPLATE_BODY", "TemplateTooLarge", "build_alarm_template", "build_filter_template",
           "build_replica_template", "build_template", "render", "render_alarms", "render_filters", "render_replica"]
