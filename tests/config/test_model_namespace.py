"""Configuration text -> model: the `namespace_list` section's keywords."""

from __future__ import annotations

from pathlib import Path

from lab.configtext import errors, model
from nsproxy.config.model import NamespacePattern, Where


def test_namespaces_declared_and_used_are_listed(tmp_path: Path) -> None:
    for n in ("a", "b", "c"):
        (tmp_path / n).write_text("")
    cfg = model(
        """
namespace_list
  namespace a b
listen l
  bind :80 namespace c
  server s 10.0.0.1:80 namespace a
""",
        str(tmp_path),
    )
    assert sorted(cfg.namespaces) == ["a", "b", "c"]


def test_namespace_pattern_names_its_template(tmp_path: Path) -> None:
    cfg = model(
        """
namespace_list
  namespace-pattern tenant-* template tpl
frontend tpl
  bind 127.0.0.1:80
""",
        str(tmp_path),
    )
    assert cfg.namespace_patterns == (NamespacePattern(Where("t.cfg", 3), "tenant-*", "tpl"),)


def test_namespace_errors_are_haproxys(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("")
    assert errors(
        "namespace_list\n  namespace a\n  namespace a\n  namespace missing\n  namespace x/y\n",
        str(tmp_path),
    ) == [
        "parsing [t.cfg:3]: Namespace 'a' is already added.",
        "parsing [t.cfg:4]: Cannot open namespace 'missing'.",
        "parsing [t.cfg:5]: character '/' is not permitted in 'namespace' name 'x/y'.",
    ]


def test_pattern_template_must_be_a_frontend_with_a_bind(tmp_path: Path) -> None:
    assert errors(
        "namespace_list\n  namespace-pattern t-* template be\nbackend be\n", str(tmp_path)
    ) == [
        "parsing [t.cfg:2] : 'namespace-pattern' template 'be' is not a frontend or listen "
        "section with at least one 'bind'."
    ]
