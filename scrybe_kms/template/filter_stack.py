"""Assemble one environment's filter stack (``out/<env>.filters.json``): the metric-filter channel,
every CloudWatch Logs metric filter on the trail's log group and the alarm on each, deployed after the
key stack and the alarm stack.

A stack of its own so that the key stack has room for disaster recovery (replication role, rules and
statements per DR region) and the alarm stack for its EventBridge channel, each well within
CloudFormation's 51,200-byte inline limit (decision D50). It imports the key ARNs and the PHI key's ID
from the key stack's exports, the topics' ARNs from the alarm stack's, and names the log group by its
fixed name. Pure, like :func:`scrybe_kms.template.build_template`.
"""

from __future__ import annotations

from troposphere import ImportValue, Template

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.template import alarms, monitoring
from scrybe_kms.template.assemble import render_checked, rules
from scrybe_kms.template.context import template_context

__all__ = ["build_filter_template", "render_filters"]


def build_filter_template(cfg: EnvironmentConfig) -> Template:
    env = cfg.environment
    t = Template(Description=f"Scrybe PHI encryption: metric filters on the audit trail's log group ({env})")
    t.set_metadata(template_context(
        arch="CloudTrail (all regions) -> key stack log group -> these metric filters -> their alarms -> the alarm "
             "stack's topics",
        must=["one filter per watched event, and the CIS 4.5/4.7/4.8 patterns verbatim",
              "a multi-Region PHI key is matched in every region (primary and replicas)"],
    ))
    rules(t, cfg)
    watched, literal = monitoring.watched_events(cfg), monitoring.literal_filters(cfg)
    alarms.metric_filters(t, environment=env, log_group=naming.log_group_name(env), watched=watched,
                          literal=literal, keys=alarms.key_variables(env))
    topic, watchdog = (ImportValue(naming.export_name(env, name)) for name in ("AlarmTopicArn", "WatchdogTopicArn"))
    # Changes to the alarm path's delivery (the alarm-path rule group) also go to the watchdog topic.
    to_watchdog = {title for members, watchdog_too in monitoring.RULE_GROUPS.values() if watchdog_too
                   for title in members}
    alarms.event_alarms(t, environment=env, watched=watched, literal=literal,
                        actions=[topic, *([cfg.alarm_topic_arn] if cfg.alarm_topic_arn else [])], watchdog=watchdog,
                        also_watchdog=to_watchdog)
    return t


def render_filters(cfg: EnvironmentConfig) -> str:
    return render_checked(build_filter_template(cfg), f"{cfg.environment} filter")
