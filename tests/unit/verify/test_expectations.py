"""The `expect` helper: every assertion keeps what was observed and what was expected."""

from __future__ import annotations

import re

import pytest

from cityguard.verify.expectations import NOT_APPLICABLE_PREFIX, Expect


def test_equal_passes_and_records() -> None:
    expect = Expect()
    expect.equal("no", "no", "PermitRootLogin")
    assert expect.observed == ["PermitRootLogin: no"]
    assert expect.expected == ["PermitRootLogin: no"]


def test_equal_fails_with_observed_and_expected() -> None:
    expect = Expect()
    with pytest.raises(AssertionError) as raised:
        expect.equal("without-password", "no", "PermitRootLogin")
    assert str(raised.value) == "PermitRootLogin: observed without-password, expected no"
    assert expect.observed == ["PermitRootLogin: without-password"]
    assert expect.expected == ["PermitRootLogin: no"]


def test_equal_without_label_and_absent_value() -> None:
    expect = Expect()
    with pytest.raises(AssertionError) as raised:
        expect.equal(None, "root:root")
    assert str(raised.value) == "observed (absent), expected root:root"
    assert expect.observed == ["(absent)"]
    assert expect.expected == ["root:root"]


def test_equal_does_not_convert_types() -> None:
    expect = Expect()
    with pytest.raises(AssertionError, match=r"^observed 4, expected 4$"):
        expect.equal("4", 4)


def test_one_of() -> None:
    expect = Expect()
    expect.one_of("root:shadow", ["root:root", "root:shadow"], "owner")
    with pytest.raises(AssertionError) as raised:
        expect.one_of("www-data:shadow", ("root:root", "root:shadow"), "owner")
    assert (
        str(raised.value)
        == "owner: observed www-data:shadow, expected one of root:root, root:shadow"
    )
    assert expect.observed == ["owner: root:shadow", "owner: www-data:shadow"]
    assert expect.expected == ["owner: one of root:root, root:shadow"] * 2


def test_one_of_accepts_a_generator() -> None:
    expect = Expect()
    expect.one_of(2, (n for n in range(3)), "level")
    assert expect.expected == ["level: one of 0, 1, 2"]


@pytest.mark.parametrize(("observed", "ok"), [(3, True), (4, True), (5, False), (None, False)])
def test_at_most(observed: int | None, ok: bool) -> None:
    expect = Expect()
    if ok:
        expect.at_most(observed, 4, "MaxAuthTries")
    else:
        with pytest.raises(AssertionError) as raised:
            expect.at_most(observed, 4, "MaxAuthTries")
        shown = "(absent)" if observed is None else str(observed)
        assert str(raised.value) == f"MaxAuthTries: observed {shown}, expected <= 4"
    assert expect.observed == [f"MaxAuthTries: {'(absent)' if observed is None else observed}"]
    assert expect.expected == ["MaxAuthTries: <= 4"]


@pytest.mark.parametrize(
    ("mode", "limit"),
    [(0o600, 0o640), (0o640, 0o640), (0o400, 0o600), (0o000, 0o600), (0o644, 0o644)],
)
def test_mode_at_most_passes(mode: int, limit: int) -> None:
    expect = Expect()
    expect.mode_at_most(mode, limit, "mode")
    assert expect.observed == [f"mode: {mode:04o}"]
    assert expect.expected == [f"mode: {limit:04o} or stricter"]


@pytest.mark.parametrize(
    ("mode", "limit", "shown"),
    [
        (0o644, 0o600, "0644"),
        (0o660, 0o640, "0660"),  # group write is not allowed by 0640
        (0o700, 0o644, "0700"),  # the execute bit is wider, even though 0700 < 0644 as numbers
        (0o4755, 0o755, "4755"),  # setuid
        (None, 0o600, "(absent)"),
    ],
)
def test_mode_at_most_fails(mode: int | None, limit: int, shown: str) -> None:
    expect = Expect()
    with pytest.raises(AssertionError) as raised:
        expect.mode_at_most(mode, limit, "mode")
    assert str(raised.value) == f"mode: observed {shown}, expected {limit:04o} or stricter"
    assert expect.observed == [f"mode: {shown}"]


SETTINGS = {
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
}


def test_each_equal_passes_and_records_every_key() -> None:
    expect = Expect()
    expect.each_equal(dict(SETTINGS), SETTINGS)
    assert expect.observed == [f"{key}: 0" for key in SETTINGS]
    assert expect.expected == [f"{key}: 0" for key in SETTINGS]


def test_each_equal_lists_every_mismatch_in_one_error() -> None:
    expect = Expect()
    observed = {
        "net.ipv4.conf.all.accept_redirects": "1",
        "net.ipv4.conf.default.accept_redirects": "0",
        "net.ipv6.conf.all.accept_redirects": None,
    }
    with pytest.raises(AssertionError) as raised:
        expect.each_equal(observed, SETTINGS)
    assert str(raised.value) == (
        "net.ipv4.conf.all.accept_redirects: observed 1, expected 0; "
        "net.ipv6.conf.all.accept_redirects: observed (absent), expected 0"
    )
    # the key that matched and the keys after the first mismatch are in the evidence too
    assert expect.observed == [
        "net.ipv4.conf.all.accept_redirects: 1",
        "net.ipv4.conf.default.accept_redirects: 0",
        "net.ipv6.conf.all.accept_redirects: (absent)",
    ]
    assert expect.expected == [f"{key}: 0" for key in SETTINGS]


def test_each_equal_treats_a_missing_key_as_absent() -> None:
    expect = Expect()
    with pytest.raises(AssertionError) as raised:
        expect.each_equal({"kernel.hostname": "web1"}, {"kernel.randomize_va_space": "2"})
    assert str(raised.value) == "kernel.randomize_va_space: observed (absent), expected 2"
    assert expect.observed == ["kernel.randomize_va_space: (absent)"]


def test_each_equal_appends_to_earlier_records() -> None:
    expect = Expect()
    expect.equal("root:root", "root:root", "owner")
    expect.each_equal({"a": 1}, {"a": 1})
    assert expect.observed == ["owner: root:root", "a: 1"]


def test_not_applicable_skips_with_the_prefix() -> None:
    with pytest.raises(pytest.skip.Exception) as raised:
        Expect.not_applicable("kernel.* is global in a container")
    assert type(raised.value).__name__ == "Skipped"
    assert raised.value.msg == NOT_APPLICABLE_PREFIX + "kernel.* is global in a container"
    assert NOT_APPLICABLE_PREFIX == "not-applicable: "


def test_not_applicable_records_nothing() -> None:
    expect = Expect()
    with pytest.raises(pytest.skip.Exception, match=re.escape("not-applicable: why")):
        expect.not_applicable("why")
    assert expect.observed == []
    assert expect.expected == []
