"""pytest-xdist: items run on workers, the controller still writes every pair's full result,
and the outcomes are those of a plain run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit_models import make_zoo
from tests.test_plugin import _warm_imports, audit, run  # noqa: F401 - autouse fixture

pytest_plugins = ["pytester"]


def test_two_workers_give_the_same_outcomes_and_report(pytester: pytest.Pytester) -> None:
    make_zoo(pytester.path / "models")
    audit(pytester, "gate", """
candidate: models/tuned.fp.json
references:
  - {model: models/base.fp.json, name: base}
  - {model: models/other.fp.json, name: other}
""")
    audit(pytester, "lineage", "candidate: models/tuned.fp.json\n"
                               "references: [models/base.fp.json]\nexpect: derived\n")
    plain, plain_items, plain_json = run(pytester, "-p", "no:xdist")
    xdist, xdist_items, xdist_json = run(pytester, "-n", "2", subprocess=True)
    assert "2 workers" in xdist.stdout.str()
    assert plain.ret == xdist.ret == 1
    assert {k: v["status"] for k, v in xdist_items.items()} == \
        {k: v["status"] for k, v in plain_items.items()}
    # numbers travel from the workers into the junit properties
    assert xdist_items["gate.audit.yaml.base::verdict"]["props"]["verdict"] == "derived"
    assert "score" in xdist_items["gate.audit.yaml.base::weights_cosine"]["props"]
    assert plain_json is not None and xdist_json is not None

    def summary(data: dict) -> list[tuple]:
        return [(p["audit"], p["reference"]["name"], p["verdict"], p["outcome"],
                 {n: (c["outcome"], c["score"]) for n, c in p["checks"].items()})
                for p in data["pairs"]]

    assert summary(xdist_json) == summary(plain_json)
    assert len(xdist_json["pairs"]) == 3
    assert all("partial run" not in p["verdict_reason"] for p in xdist_json["pairs"])
    assert "JSON report:" in xdist.stdout.str()
    assert not list(Path(pytester.path).glob("gw*"))  # workers leave no files of their own
