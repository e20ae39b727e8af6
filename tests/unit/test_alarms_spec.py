"""serverless.yml's alarm policies as deploy reads them: the declared three, the dead-letter one
only where a queue is set, and the schema's refusals naming the path."""
import re

import pytest

from deploy import checks
from deploy import spec as specs

SERVERLESS = checks.SERVERLESS.read_text()


def _build(tmp_path, text=SERVERLESS, **env):
    path = tmp_path / "serverless.yml"
    path.write_text(text)
    return specs.build({**checks.example_environ(), **env}, serverless=path)


def test_the_declared_alarms_with_their_metrics_and_functions(tmp_path):
    alarms = {a.name: a for a in _build(tmp_path).alarms}
    assert sorted(alarms) == ["cm-dev-dlq", "cm-dev-errors", "cm-dev-throttle"]
    errors = alarms["cm-dev-errors"]
    assert (errors.metric, errors.period, errors.operator, errors.threshold, errors.periods) == \
        ("Error", 300, "gt", "5", 1)
    assert errors.functions == ["cos-matting-dev-callback", "cos-matting-dev-reconcile", "cos-matting-dev-submit"]
    assert alarms["cm-dev-throttle"].metric == "Throttle" and alarms["cm-dev-dlq"].metric == "DlqFailedNum"
    assert alarms["cm-dev-dlq"].functions == ["cos-matting-dev-submit"]
    rule = errors.condition()["Rules"][0]
    assert rule == {"MetricName": "Error", "Period": 300, "Operator": "gt", "Value": "5", "ContinuePeriod": 1,
                    "NoticeFrequency": 3600, "IsPowerNotice": 0}


def test_no_dead_letter_queue_no_dead_letter_alarm_and_notices_from_the_env(tmp_path):
    """The project's rules require submit's queue (deploy/rules.py); `onlyWithDeadLetter` keeps the
    alarm right for a function without one all the same."""
    import dataclasses

    from deploy.alarms import wanted
    from deploy.files import load_serverless

    env = {**checks.example_environ(), "COS_MATTING_DEPLOY_ALARM_NOTICES": "notice-b, notice-a"}
    spec = specs.build(env)
    functions = {k: dataclasses.replace(f, dead_letter=None) for k, f in spec.functions.items()}
    alarms = wanted(load_serverless(checks.SERVERLESS, env).alarms, functions)
    assert sorted(a.name for a in alarms) == ["cm-dev-errors", "cm-dev-throttle"]
    assert all(a.notices == ["notice-a", "notice-b"] for a in alarms)


@pytest.mark.parametrize("change, message", [
    ("name: cm-${stage}-errors", "alarms[0].name: String should have at least 1 character"),
    ("metric: Throttle", "alarms[1].metric: Input should be 'Error'"),
    ("functions: [submit]", "'sumbit' is not a key of inputs.functions"),
])
def test_a_bad_alarm_is_refused_naming_it(tmp_path, change, message):
    bad = {"name: cm-${stage}-errors": "name: ''",
           "metric: Throttle": "metric: Throttles",
           "functions: [submit]": "functions: [sumbit]"}[change]
    with pytest.raises(specs.SpecError, match=re.escape(message)):
        _build(tmp_path, SERVERLESS.replace(change, bad, 1))


def test_a_long_alarm_name_is_fitted_to_cloud_monitors_20_characters_and_stays_apart():
    from deploy.alarms import policy_name

    assert policy_name("cm-dev-throttle") == "cm-dev-throttle"  # what deployed stages have: unchanged
    fitted = {policy_name(f"cm-production-{x}-throttle") for x in ("eu", "us")}
    assert len(fitted) == 2 and all(len(n) <= 20 and n.startswith("cm-production") for n in fitted)
