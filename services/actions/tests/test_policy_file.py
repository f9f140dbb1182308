"""A wrong policy file is refused at start, naming the file and the line; a good one is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from npsloop_actions.config import ActionsSettings
from npsloop_actions.main import build
from npsloop_actions.policy import DEFAULT_POLICY, PolicyError, load_policy
from npsloop_platform.bus import MemoryBus

GOOD = DEFAULT_POLICY.read_text()


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return str(info.value)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_default_policy_loads_and_names_its_rules() -> None:
    policy = load_policy()
    assert [r.id for r in policy.rules] == [
        "detractor-callback",
        "passive-ask-and-delight",
        "passive-negative-theme",
        "promoter-thanks",
    ]
    assert policy.sla.callback_hours == 48 and policy.sla.escalation == ["store_manager", "region"]


def test_a_file_that_does_not_parse_names_the_line(tmp_path: Path) -> None:
    text = GOOD.replace('id = "promoter-thanks"', 'id = "promoter-thanks')
    line = line_of(text, 'id = "promoter-thanks')
    assert refused(tmp_path, text).startswith(f"{tmp_path / 'policy.toml'}:{line}: not valid TOML")


def test_an_unknown_key_or_value_names_the_file_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("nurture_hours = 120", "nurture_hourz = 120")
    assert f"policy.toml:{line_of(text, 'nurture_hourz')}: sla.nurture_hourz: Extra inputs" in refused(tmp_path, text)
    text = GOOD.replace('when = { band = ["passive"], theme', 'when = { band = ["pasive"], theme')
    message = refused(tmp_path, text)
    assert f"policy.toml:{line_of(text, 'pasive')}: rules.2.when.band.0" in message
    text = GOOD.replace('notify = ["thank_you_email"]', 'notify = ["thank_you_mail"]')
    assert f"policy.toml:{line_of(text, 'thank_you_mail')}: rules.3.notify.0" in refused(tmp_path, text)
    assert "version" in refused(tmp_path, GOOD.replace("version = 1", "version = 2"))


def test_rules_that_conflict_are_refused_naming_both(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[[rules]]\nid = "passive-call"\nwhen = { band = ["passive"], flags = ["urgent"] }\ncase = "callback"\n'
    )
    message = refused(tmp_path, text)
    assert f"policy.toml:{line_of(text, 'passive-call') - 1}: rule 'passive-call' (case callback) conflicts" in message
    assert "'passive-negative-theme'" in message
    # the same rule limited to detractors does not conflict
    load_policy_text = text.replace('band = ["passive"], flags', 'band = ["detractor"], flags')
    (tmp_path / "ok.toml").write_text(load_policy_text)
    assert len(load_policy(tmp_path / "ok.toml").rules) == 5
    dup = GOOD + '\n[[rules]]\nid = "promoter-thanks"\nnotify = ["thank_you_email"]\n'
    assert "used twice" in refused(tmp_path, dup)


def test_the_service_refuses_to_start_with_a_bad_policy(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("warning_at = 0.75", "warning_at = 1.5"))
    settings = ActionsSettings(database_url=database_url, bus="memory", policy_file=str(path))
    with pytest.raises(PolicyError, match=rf"bad.toml:{line_of(path.read_text(), 'warning_at')}: sla.warning_at"):
        build(settings, MemoryBus())
    with pytest.raises(PolicyError, match="no such file"):
        build(settings.model_copy(update={"policy_file": str(tmp_path / "missing.toml")}), MemoryBus())


def test_the_check_command_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from npsloop_actions.policy import main

    assert main([]) == 0 and "ok: 4 rules" in capsys.readouterr().out
    path = tmp_path / "p.toml"
    path.write_text(GOOD.replace("callback_hours = 48", "callback_hours = -1"))
    assert main([str(path)]) == 1
    assert f"p.toml:{line_of(path.read_text(), 'callback_hours')}: sla.callback_hours" in capsys.readouterr().err


def test_the_kubernetes_copy_is_a_valid_policy() -> None:
    deployed = Path(__file__).parents[3] / "deploy" / "k8s" / "base" / "actions-policy.toml"
    assert load_policy(deployed).rules == load_policy().rules
