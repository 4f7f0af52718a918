"""Architecture diagrams: files, SVG node structure, expand / collapse, errors and the CLI."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections import OrderedDict
from pathlib import Path

import pytest
from torch import nn

from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.models import create_model
from inception_fer.models.blocks import BranchConcat, ConvBNAct
from inception_fer.plot import inception_modules, model_graph, plot_model

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz 'dot' is not installed (apt-get install graphviz)"
)
SVG = "{http://www.w3.org/2000/svg}"


def inception(in_chs: int) -> BranchConcat:
    return BranchConcat(
        [
            ConvBNAct(in_chs, 4, 1),
            nn.Sequential(ConvBNAct(in_chs, 2, 1), ConvBNAct(2, 4, 3)),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), ConvBNAct(in_chs, 4, 1)),
        ]
    )


def small_net(modules: int = 1) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=ConvBNAct(1, 8, 3, stride=2))
    chans = 8
    for i in range(modules):
        layers[f"inception{i}"] = inception(chans)
        chans = 12
    layers.update(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(12, 7))
    return nn.Sequential(layers)


def svg_groups(path: Path, kind: str) -> dict[str, ET.Element]:
    """The SVG's node (or cluster) groups by id."""
    root = ET.parse(path).getroot()
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g") if g.get("class") == kind}


def prefixed(ids: dict[str, ET.Element], prefix: str) -> list[str]:
    return [i for i in ids if i.startswith(prefix)]


@needs_dot
def test_png_file(tmp_path: Path) -> None:
    path = plot_model(small_net(), tmp_path / "net.png", 16, 1, show_shapes=True)
    assert path == tmp_path / "net.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.png"]  # no temp file left


@needs_dot
def test_googlenet_svg_one_node_per_inception_module(tmp_path: Path) -> None:
    model = create_model("googlenet")
    path = plot_model(model, tmp_path / "googlenet.svg", 48, 1)
    nodes = svg_groups(path, "node")
    assert len(prefixed(nodes, "inception/")) == len(inception_modules(model)) == 9
    assert not [i for i in nodes if ".branches." in i]  # collapsed: no branch nodes
    assert len(nodes) < 25  # one node per top-level layer / module, not every conv
    assert not svg_groups(path, "cluster")


@needs_dot
def test_expand_draws_branches_joined_at_a_concatenation(tmp_path: Path) -> None:
    model = small_net(modules=3)
    collapsed = svg_groups(plot_model(model, tmp_path / "c.svg", 16, 1), "node")
    assert len(prefixed(collapsed, "inception/")) == 3 and not prefixed(collapsed, "concat/")
    path = plot_model(model, tmp_path / "e.svg", 16, 1, expand=True)
    nodes, clusters = svg_groups(path, "node"), svg_groups(path, "cluster")
    assert len(prefixed(clusters, "inception/")) == 3
    assert len(prefixed(nodes, "concat/")) == 3
    assert len([i for i in nodes if i.startswith("layer/inception1.branches.")]) == 5
    # branches drawn left to right in order
    entries = [f"layer/inception1.branches.{b}" for b in ("0", "1.0", "2.0")]
    xs = [float(nodes[e].find(f"{SVG}text").get("x", "nan")) for e in entries]  # type: ignore[union-attr]
    assert xs == sorted(xs)


@needs_dot
def test_default_expands_only_small_nets(tmp_path: Path) -> None:
    one = svg_groups(plot_model(small_net(1), tmp_path / "one.svg", 16, 1), "cluster")
    three = svg_groups(plot_model(small_net(3), tmp_path / "three.svg", 16, 1), "cluster")
    assert prefixed(one, "inception/") == ["inception/inception0"]
    assert not three
    collapsed = plot_model(small_net(1), tmp_path / "forced.svg", 16, 1, expand=False)
    assert len(prefixed(svg_groups(collapsed, "node"), "inception/")) == 1


def test_tutorial_shows_three_towers_by_default() -> None:
    graph = model_graph(create_model("inception_tutorial"), 48, 1)
    source = graph.source
    assert 'subgraph "cluster_inception/block"' in source
    for tower in range(3):
        assert f'"layer/block.branches.{tower}.0" ->' in source
    assert source.count('-> "concat/block"') == 3


def test_show_shapes_and_rankdir_in_dot_source(tmp_path: Path) -> None:
    path = plot_model(small_net(), tmp_path / "net.dot", 16, 1, show_shapes=True, rankdir="LR")
    text = path.read_text()
    assert text.startswith("digraph") and "rankdir=LR" in text
    assert "[N, 1, 16, 16] → [N, 8, 8, 8]" in text
    plain = model_graph(small_net(), 16, 1).source
    assert "[N, 8, 8, 8]" not in plain


def test_activations_fold_into_the_layer_before() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Dropout(0.5), nn.Flatten())
    source = model_graph(model, 8, 1).source
    assert "Conv2d 3\u00d73 + ReLU + Dropout" in source
    assert '"layer/1"' not in source and '"layer/3"' in source


def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InceptionFerError, match=r"valid extensions: \.png, \.svg, \.pdf, \.dot"):
        plot_model(small_net(), tmp_path / "net.jpg", 16, 1)
    assert not list(tmp_path.iterdir())


def test_bad_rankdir() -> None:
    with pytest.raises(InceptionFerError, match="rankdir must be one of TB, LR"):
        model_graph(small_net(), 16, 1, rankdir="BT")


def test_missing_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InceptionFerError, match="apt-get install graphviz / brew install graphviz"):
        plot_model(small_net(), tmp_path / "net.png", 16, 1)
    assert not (tmp_path / "net.png").exists()
    assert plot_model(small_net(), tmp_path / "net.dot", 16, 1).read_text().startswith("digraph")


def test_too_small_input() -> None:
    with pytest.raises(InceptionFerError, match="needs inputs of at least"):
        model_graph(create_model("mini_xception"), 2, 1)


@needs_dot
def test_cli_plot_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mini.svg"
    assert main(["plot-model", "mini_xception", "-o", str(out), "--show-shapes"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "[N, 1, 48, 48]" in out.read_text()


def test_cli_plot_model_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot-model", "mini_xception", "-o", str(tmp_path / "m.gif")]) == 2
    err = capsys.readouterr().err
    assert "unknown extension" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):  # argparse rejects --expand with --collapse
        main(
            ["plot-model", "mini_xception", "-o", str(tmp_path / "m.dot"), "--expand", "--collapse"]
        )
