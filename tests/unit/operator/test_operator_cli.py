"""The partyquiz-operator command: help, version, settings from flags and environment."""

from __future__ import annotations

import pytest
import yaml

from partyquiz_operator import cli


def test_help_lists_the_run_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "run" in capsys.readouterr().out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("partyquiz-operator ")


def test_crd_command_prints_the_generated_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crd"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["kind"] == "CustomResourceDefinition"


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTYQUIZ_OPERATOR_NAMESPACES", "a,b")
    monkeypatch.setenv("PARTYQUIZ_OPERATOR_METRICS_PORT", "9100")
    args = cli.build_parser().parse_args(["run"])
    settings = cli.settings_from(args)
    assert settings.namespace_list() == ["a", "b"]
    assert settings.metrics_port == 9100
    args = cli.build_parser().parse_args(["run", "-n", "x", "--metrics-port", "0"])
    settings = cli.settings_from(args)
    assert settings.namespace_list() == ["x"]
    assert settings.metrics_port == 0
    args = cli.build_parser().parse_args(["run", "--all-namespaces"])
    assert cli.settings_from(args).namespace_list() == []


def test_release_finalizers_needs_a_timeout_and_takes_a_scope() -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["release-finalizers"])
    args = parser.parse_args(["release-finalizers", "-n", "games", "--older-than", "900"])
    assert args.older_than == 900
    assert cli.settings_from(args).namespace_list() == ["games"]
