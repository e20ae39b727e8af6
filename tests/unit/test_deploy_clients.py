"""deploy/clients.py, the one constructor of the SCF/CAM SDK clients (deploy, doctor, concurrency,
`replay --remote`, `backfill --via scf`): its credential chain and where it points the SDK."""
import pytest

from deploy.clients import CredentialsError, client, credential

KEYS = {"TENCENTCLOUD_SECRETID": "AKIDx", "TENCENTCLOUD_SECRETKEY": "k"}


@pytest.mark.parametrize("names", [("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"),
                                   ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSIONTOKEN"),
                                   ("TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_TOKEN")])
def test_each_pair_of_variable_names_gives_the_credentials(names):
    sid, key, token = names
    cred = credential({sid: "AKIDa", key: "secret", token: "tok"})
    assert (cred.secret_id, cred.secret_key, cred.token) == ("AKIDa", "secret", "tok")


def test_an_id_without_its_key_is_not_a_pair(monkeypatch):
    # The SDK's default chain (environment, ~/.tencentcloud, then the CVM metadata service over the network)
    # finding nothing: what DefaultCredentialProvider.get_credentials raises then (tencentcloud/common/credential.py).
    from tencentcloud.common.credential import DefaultCredentialProvider
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    def nothing(self):
        raise TencentCloudSDKException("ClientSideError", "no valid credentail.")  # sic, credential.py

    monkeypatch.setattr(DefaultCredentialProvider, "get_credentials", nothing)
    with pytest.raises(CredentialsError, match="no Tencent Cloud credentials"):
        credential({"TENCENTCLOUD_SECRETID": "AKIDx", "TENCENT_SECRET_KEY": "k"})


def test_the_endpoint_and_the_timeout_reach_the_sdk_profile():
    scf = client("scf", {**KEYS, "COS_MATTING_ENDPOINT": "http://127.0.0.1:9000"}, "ap-guangzhou", timeout=30)
    http = scf.profile.httpProfile
    assert (http.protocol, http.endpoint, http.reqTimeout) == ("http", "127.0.0.1:9000", 30)
    cam = client("cam", KEYS)  # no COS_MATTING_ENDPOINT: the SDK's own <service>.tencentcloudapi.com
    assert cam.profile.httpProfile.endpoint is None and cam.profile.httpProfile.reqTimeout == 120


def test_the_cli_answers_missing_credentials_as_a_usage_error():
    from cli.errors import EXIT_USAGE, explain

    assert explain(CredentialsError("no Tencent Cloud credentials: ...")) == (EXIT_USAGE, "no Tencent Cloud credentials: ...")
