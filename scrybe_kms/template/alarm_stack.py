"""Assemble one environment's alarm stack (``out/<env>.alarms.json``), deployed after the key stack.

A stack of its own because the key stack and every alarm this product needs do not fit together in
CloudFormation's 51,200-byte inline template limit (decision D21). It imports the two key ARNs from
the key stack's exports, and reads the trail's log group by its fixed name. Pure, like
:func:`scrybe_kms.template.build_template`.
"""

from __future__ import annotations

from troposphere import GetAtt, Ref, Template

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.template import alarms, monitoring
from scrybe_kms.template.assemble import render_checked, rules
from scrybe_kms.template.context import template_context

__all__ = ["build_alarm_template", "render_alarms"]


def build_alarm_template(cfg: EnvironmentConfig) -> Template:
    env = cfg.environment
    t = Template(Description=f"Scrybe PHI encryption: alarms on the key, its trail, buckets and alarm path ({env})")
    t.set_metadata(template_context(
        arch="key stack log group -> metric filters -> alarms -> alarm topic; CloudTrail -> EventBridge rule -> "
             "alarm topic (dead-letter queue on failure); health alarms on log delivery, the rule, the queue and "
             "both topics -> watchdog topic",
        must=["no topic is encrypted with a key an alarm reports on",
              "no alarm is delivered only through the resource it watches",
              "metric filters and the EventBridge rule cover the same watched events"],
    ))
    rules(t, cfg)
    watched = monitoring.watched_events(cfg)
    topic = alarms.alarm_topic(t, environment=env, kind="alarms", emails=cfg.alarm_emails, title="AlarmTopic",
                               why="Carries every alarm on the PHI key, its trail, buckets and alarm path to people.")
    watchdog = alarms.alarm_topic(t, environment=env, kind="watchdog", emails=cfg.alarm_emails,
                                  title="WatchdogTopic",
                                  why="Carries alarms about the alarm path itself, so a broken alarm topic or rule "
                                      "is reported through something else.")
    external = [cfg.alarm_topic_arn] if cfg.alarm_topic_arn else []
    alarms.metric_filters(t, environment=env, log_group=naming.log_group_name(env), watched=watched,
                          literal=monitoring.literal_filters(), keys=alarms.key_variables(env), key_stack=False)
    to_watchdog = {t for members, watchdog_too in monitoring.RULE_GROUPS.values() if watchdog_too for t in members}
    alarms.event_alarms(t, environment=env, watched=watched, literal=monitoring.literal_filters(),
                        actions=[Ref(topic), *external], watchdog=Ref(watchdog), also_watchdog=to_watchdog)
    titles = {w.title for w in watched}
    rule_titles = [f"AuditEventRule{g}" for g, (members, _) in monitoring.RULE_GROUPS.items() if titles & set(members)]
    queue = alarms.dead_letter_queue(t, environment=env, rule_titles=rule_titles)
    event_rules = alarms.audit_event_rules(t, environment=env, watched=watched, groups=monitoring.RULE_GROUPS,
                                     targets=[Ref(topic), *external], watchdog=Ref(watchdog),
                                     dead_letter_arn=GetAtt(queue, "Arn"))
    alarms.health_alarms(t, environment=env, rules=event_rules, queue=queue, alarm_topic=topic, watchdog=watchdog,
                         external=external)
    alarms.topic_policy(t, environment=env, topic=topic, events_publish=True, title="AlarmTopicPolicy")
    # The alarm-path rule also reports to the watchdog: a change to the alarm topic is not reported
    # only through the alarm topic.
    alarms.topic_policy(t, environment=env, topic=watchdog, events_publish=True, title="WatchdogTopicPolicy")
    return t


def render_alarms(cfg: EnvironmentConfig) -> str:
    return render_checked(build_alarm_template(cfg), f"{cfg.environment} alarm")
