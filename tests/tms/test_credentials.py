"""Device credentials: issue, re-issue revokes, revoke, serial binding (SQLite and PostgreSQL)."""

import pytest

from posdoctor.store import NotFound
from posdoctor.tms.credentials import (
    CredentialError,
    authenticate,
    hash_token,
    issue_credential,
    revoke_credential,
)

MID, TID, SERIAL = "898100000000001", "10000001", "SN0000001"


@pytest.fixture
def registered(store):
    store.add_merchant(MID, "测试商户")
    store.add_terminal(TID, MID, SERIAL, model="P1")
    return store


def test_issued_credential_authenticates_and_is_stored_hashed(registered):
    token = issue_credential(registered, TID)
    assert authenticate(registered, token) == (TID, SERIAL)
    assert authenticate(registered, token, SERIAL) == (TID, SERIAL)
    rows = registered.credentials(TID)
    assert [row.token_hash for row in rows] == [hash_token(token)]
    assert token not in repr(rows) and all(token != row.token_hash for row in rows)


def test_reissue_revokes_the_old_credential(registered):
    old = issue_credential(registered, TID)
    new = issue_credential(registered, TID)
    assert old != new
    with pytest.raises(CredentialError) as refused:
        authenticate(registered, old)
    assert (refused.value.code, refused.value.status) == ("revoked_credential", 401)
    assert "吊销" in refused.value.zh and "revoked" in refused.value.en
    assert authenticate(registered, new) == (TID, SERIAL)


def test_revoke_refuses_afterwards(registered):
    token = issue_credential(registered, TID)
    assert revoke_credential(registered, TID) == 1
    assert revoke_credential(registered, TID) == 0
    with pytest.raises(CredentialError, match="revoked"):
        authenticate(registered, token)


def test_unknown_tokens_are_refused(registered):
    issue_credential(registered, TID)
    for token in ("", "garbage", "pdt_" + "A" * 43):
        with pytest.raises(CredentialError) as refused:
            authenticate(registered, token)
        assert refused.value.to_json() == {"error": "unknown_credential", "zh": "设备凭证无效或未登记",
                                           "en": "unknown device credential"}


def test_other_device_serial_is_refused(registered):
    token = issue_credential(registered, TID)
    with pytest.raises(CredentialError) as refused:
        authenticate(registered, token, "SN9999999")
    assert (refused.value.code, refused.value.status) == ("serial_mismatch", 403)
    assert "SN9999999" in refused.value.en and TID in refused.value.zh


def test_unknown_terminal_gets_no_credential(registered):
    with pytest.raises(NotFound):
        issue_credential(registered, "10009999")


def test_credential_does_not_follow_the_terminal_to_another_device(registered):
    token = issue_credential(registered, TID)
    registered.add_device("SN0000002", "P1")
    registered.update_terminal(TID, serial="SN0000002")
    with pytest.raises(CredentialError) as refused:
        authenticate(registered, token)
    assert (refused.value.code, refused.value.status) == ("serial_mismatch", 403)
    assert authenticate(registered, issue_credential(registered, TID)) == (TID, "SN0000002")
