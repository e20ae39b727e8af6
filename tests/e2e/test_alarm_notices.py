"""Alarm policies' notice templates through the Monitor API as the platform takes them: a changed
COS_MATTING_DEPLOY_ALARM_NOTICES reaches the policy through ModifyAlarmPolicyNotice (API page
248/51274), since ModifyAlarmPolicyCondition's NoticeIds is for Prometheus policies only (the SDK's
ModifyAlarmPolicyConditionRequest: "专供prom使用")."""
from deploy.alarms import Alarms, AlarmSpec
from deploy.clients import Api
from helpers import REGION


def _alarms(cloud, sent):
    monitor = Api("monitor", {"COS_MATTING_ENDPOINT": cloud.url, "TENCENTCLOUD_SECRETID": "AKIDlocal",
                              "TENCENTCLOUD_SECRETKEY": "localsecretkey"}, REGION)

    def write(kind, verb, name, detail, action, params):
        sent.append(action)
        return monitor.call(action, params)

    return Alarms(monitor, "dev", "cos-matting", "default", REGION, write)


def _spec(notices):
    return AlarmSpec(name="cm-dev-errors", metric="Error", period=300, operator="gt", threshold="5", periods=1,
                     repeat=3600, functions=["cos-matting-dev-submit"], notices=notices)


def test_changed_notices_reach_the_policy_and_doctor_passes(cloud):
    sent = []
    alarms = _alarms(cloud, sent)
    alarms.apply([_spec(["notice-a"])])
    [policy] = cloud.monitor.state["policies"].values()
    assert policy["NoticeIds"] == ["notice-a"]
    # bound in Cloud Monitor's short region name (deploy/alarms.py MONITOR_REGIONS): ap-guangzhou is "gz"
    assert [b["Region"] for b in policy["bound"]] == ["gz"]

    sent.clear()
    alarms.apply([_spec(["notice-b", "notice-c"])])
    assert sent == ["ModifyAlarmPolicyNotice"]  # the condition did not change: it is not written
    assert policy["NoticeIds"] == ["notice-b", "notice-c"]
    assert alarms.check([_spec(["notice-b", "notice-c"])]) == [
        ("cm-dev-errors", True, "Error gt 5 per 300 s on cos-matting-dev-submit")]

    sent.clear()
    alarms.apply([_spec([])])  # notices emptied in .env: the alarm shows in the console only
    assert sent == ["ModifyAlarmPolicyNotice"] and policy["NoticeIds"] == []
    sent.clear()
    alarms.apply([_spec([])])
    assert sent == []  # in line: reads only
