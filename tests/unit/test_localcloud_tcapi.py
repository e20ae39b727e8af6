"""The local cloud's Tencent Cloud API 3.0 front door: signatures, error codes, the SDK's models."""
import hashlib
import json
import re
import threading
import time
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict

from helpers import REGION
from localcloud import tcapi

ROOT = Path(__file__).resolve().parents[2]
# Common error codes of API 3.0 (https://cloud.tencent.com/document/api/583/17244 "公共错误码").
COMMON = {"AuthFailure.InvalidAuthorization", "AuthFailure.SecretIdNotFound", "AuthFailure.SignatureExpire",
          "AuthFailure.SignatureFailure", "InvalidAction", "InvalidParameter", "InvalidParameterValue",
          "MissingParameter", "UnknownParameter", "UnsupportedProtocol", "InternalError"}


def test_every_error_code_the_emulator_answers_is_a_public_one():
    """Codes from the SDK's errorcodes.py (or the common list): a client matching on them works on both."""
    from tencentcloud.cam.v20190116 import errorcodes as cam_codes
    from tencentcloud.cls.v20201016 import errorcodes as cls_codes
    from tencentcloud.monitor.v20180724 import errorcodes as monitor_codes
    from tencentcloud.scf.v20180416 import errorcodes as scf_codes

    known = COMMON | {v for m in (scf_codes, cam_codes, monitor_codes, cls_codes) for k, v in vars(m).items()
                      if k.isupper()}
    used = set()
    for name in ("tcapi.py", "scfapi.py", "scfbackend.py", "scftriggers.py", "scfinvoke.py", "camapi.py", "monitorapi.py",
                 "clsapi.py", "clsbackend.py"):
        used |= set(re.findall(r'ApiError\(\s*"([A-Za-z.]+)"', (ROOT / "localcloud" / name).read_text()))
    assert used and used <= known, sorted(used - known)


def _signed(action, body, secret_key="localsecretkey", stamp=None, service="scf"):
    stamp = int(time.time()) if stamp is None else stamp
    date = time.strftime("%Y-%m-%d", time.gmtime(stamp))
    headers = {"Content-Type": "application/json", "Host": "127.0.0.1:9000", "X-TC-Action": action,
               "X-TC-Version": "2018-04-16", "X-TC-Timestamp": str(stamp), "X-TC-Region": REGION}
    canonical = "\n".join(["POST", "/", "", "content-type:application/json\nhost:127.0.0.1:9000\n",
                           "content-type;host", hashlib.sha256(body).hexdigest()])
    to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{date}/{service}/tc3_request\n" \
              f"{hashlib.sha256(canonical.encode()).hexdigest()}"
    sig = tcapi.signature(secret_key, date, service, to_sign)
    headers["Authorization"] = (f"TC3-HMAC-SHA256 Credential=AKIDlocal/{date}/{service}/tc3_request, "
                                f"SignedHeaders=content-type;host, Signature={sig}")
    return CaseInsensitiveDict(headers)  # as the HTTP server's headers are


class Service:
    lock = threading.RLock()

    def ListFunctions(self, params):
        return {"Functions": [], "TotalCount": 0}


@pytest.fixture
def api():
    return tcapi.Api({"AKIDlocal": "localsecretkey"}, {("scf", "2018-04-16"): Service()})


def _code(answer):
    return answer["Response"].get("Error", {}).get("Code")


def test_signature_checks(api):
    body = json.dumps({"Namespace": "default"}).encode()
    assert _code(api.handle("POST", "/", "", _signed("ListFunctions", body), body)) is None
    assert _code(api.handle("POST", "/", "", _signed("ListFunctions", body, "wrong"), body)) == \
        "AuthFailure.SignatureFailure"
    old = _signed("ListFunctions", body, stamp=int(time.time()) - 3600)
    assert _code(api.handle("POST", "/", "", old, body)) == "AuthFailure.SignatureExpire"
    tampered = _signed("ListFunctions", body)
    assert _code(api.handle("POST", "/", "", tampered, body + b" ")) == "AuthFailure.SignatureFailure"
    cam = _signed("ListFunctions", body, service="cam")  # signed for CAM, sent with SCF's version: not served
    assert _code(api.handle("POST", "/", "", cam, body)) == "InvalidAction"
    answer = api.handle("POST", "/", "", _signed("DeleteEverything", b"{}"), b"{}")
    assert _code(answer) == "InvalidAction" and answer["Response"]["RequestId"]


def test_parameters_and_answers_are_held_to_the_sdk_models(api):
    body = json.dumps({"Namespace": "default", "Limit": "10"}).encode()
    answer = api.handle("POST", "/", "", _signed("ListFunctions", body), body)
    assert _code(answer) == "InvalidParameter" and "Limit: expected int" in answer["Response"]["Error"]["Message"]
    body = json.dumps({"Namespace": "default"}).encode()
    Service.ListFunctions = lambda self, p: {"Functions": [{"FunctionNam": "typo"}], "TotalCount": 1}
    try:
        answer = api.handle("POST", "/", "", _signed("ListFunctions", body), body)
    finally:
        Service.ListFunctions = lambda self, p: {"Functions": [], "TotalCount": 0}
    assert _code(answer) == "InternalError" and "FunctionNam: unknown parameter" in answer["Response"]["Error"]["Message"]
