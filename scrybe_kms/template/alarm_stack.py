"""Assemble one environment's alarm stack (``out/<env>.alarms.json``), deployed after the key stack.

A stack of its own because the key stack and every alarm this product needs do not fit together in
CloudFormation's 51,200-byte inline template limit (decision D21). It holds the topics, the
EventBridge channel and the health alarms; the metric filters and their alarms are in the filter stack,
which imports the topics' ARNs from here (D50). It imports the key ARNs from the key stack's exports,
and reads the trail's log group by its fixed name. Pure, like
:func:`scrybe_kms.template.build_template`.
"""

from __future__ import annotations

from troposphere import Export, GetAtt, Output, Ref, Template

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.template import alarms, monitoring, outputs
from scrybe_kms.template.assemble import render_checked, rules
from scrybe_kms.template.context import template_context

__all__ = ["build_alarm_template", "render_alarms"]


def build_alarm_template(cfg: EnvironmentConfig) -> Template:
    env = cfg.environment
    t = Template(Description=f"Scrybe PHI encryption: alarms on the key, its trail, buckets and alarm path ({env})")
    t.set_metadata(template_context(
        arch="key stack log group -> metric filters and their alarms (filter stack) -> these topics; CloudTrail -> "
             "EventBridge rules (also DR regions' forwarded events) -> alarm topic (dead-letter queue on failure); "
             "health alarms on log delivery, the rules, the queue and both topics -> watchdog topic",
        must=["no topic is encrypted with a key an alarm reports on",
              "no alarm is delivered only through the resource it watches",
              "metric filters and the EventBridge rule cover the same watched events"],
    ))
    rules(t, cfg)
    watched = monitoring.watched_events(cfg)
    alarm_topic = alarms.alarm_topic(t, environment=env, kind="alarms", emails=cfg.alarm_emails, title="AlarmTopic",
                               why="Carries every alarm on the PHI key, its trail, buckets and alarm path to people.")
    watchdog = alarms.alarm_topic(t, environment=env, kind="watchdog", emails=cfg.alarm_emails,
                                  title="WatchdogTopic",
                                  why="Carries alarms about the alarm path itself, so a broken alarm topic or rule "
                                      "is reported through something else.")
    external = [cfg.alarm_topic_arn] if cfg.alarm_topic_arn else []
    titles = {w.title for w in watched}
    rule_titles = [f"AuditEventRule{g}" for g, (members, _) in monitoring.RULE_GROUPS.items() if titles & set(members)]
    queue = alarms.dead_letter_queue(t, environment=env, rule_titles=rule_titles)
    event_rules = alarms.audit_event_rules(t, environment=env, watched=watched, groups=monitoring.RULE_GROUPS,
                                     targets=[Ref(alarm_topic), *external], watchdog=Ref(watchdog),
                                     dead_letter_arn=GetAtt(queue, "Arn"))
    alarms.health_alarms(t, environment=env, rules=event_rules, queue=queue, alarm_topic=alarm_topic,
                         watchdog=watchdog, external=external)
    alarms.topic_policy(t, environment=env, topic=alarm_topic, events_publish=True, title="AlarmTopicPolicy",
                        s3_buckets=[naming.audit_bucket_name_sub(env)] if cfg.multi_region else [])
    # The alarm-path rule also reports to the watchdog: a change to the alarm topic is not reported
    # only through the alarm topic.
    alarms.topic_policy(t, environment=env, topic=watchdog, events_publish=True, title="WatchdogTopicPolicy")
    # The filter stack's alarms notify these topics (D50).
    for title, topic in (("AlarmTopicArn", alarm_topic), ("WatchdogTopicArn", watchdog)):
        t.add_output(Output(title, Description=f"{title.removesuffix('Arn')} for the filter stack's alarms "
                                               f"({outputs.OUTPUTS[title]})",
                            Value=Ref(topic), Export=Export(naming.export_name(env, title))))
    return t


def render_alarms(cfg: EnvironmentConfig) -> str:
    return render_checked(build_alarm_template(cfg), f"{cfg.environment} alarm")
