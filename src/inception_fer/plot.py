"""Architecture diagrams in the style of Keras ``plot_model``, drawn with Graphviz.

A forward pass with hooks (eval mode, no grad, one image) records the tree of module calls and
their input/output shapes. The top level is drawn as a chain of nodes; plain ``nn.Sequential``
containers are flattened into the chain, and activation / dropout layers are folded into the
node before them. Every Inception module (a ``BranchConcat``) is either one node listing its
branches side by side (collapsed) or a cluster whose branches fan out from the common input and
join at a "concatenate" node (expanded). By default modules are expanded when the network has at
most ``EXPAND_UP_TO`` of them, so the tutorial network shows its towers and GoogLeNet stays one
node per module.

SVG ids (and node names in the DOT source): ``input``, ``layer/<module path>``,
``inception/<module path>`` (a collapsed module node or an expanded module's cluster) and
``concat/<module path>``; a module called more than once gets ``#2``, ``#3``... on later calls.
"""

from __future__ import annotations

import html
import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import graphviz
import torch
from torch import nn

from .atomic import atomic_write_bytes
from .errors import InceptionFerError
from .models.blocks import BranchConcat
from .summary import format_shape, forward_failure, sample_input

FORMATS = ("png", "svg", "pdf", "dot")
RANKDIRS = ("TB", "LR")
EXPAND_UP_TO = 2
PNG_DPI = 150
NO_DOT = (
    "the Graphviz 'dot' program is not on PATH; install Graphviz: apt-get install graphviz / "
    "brew install graphviz / conda install graphviz"
)

_TIMES = "\u00d7"  # multiplication sign, as in kernel sizes
_FOLDED = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softmax,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)
_POOLS = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_COLORS = {
    "inception": "#d5e8d4",
    "conv": "#dae8fc",
    "pool": "#ffe6cc",
    "dense": "#e1d5e7",
    "other": "#f5f5f5",
}


@dataclass
class Call:
    """One call of a module during the traced forward pass, with the calls it made."""

    name: str
    module: nn.Module
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None
    children: list[Call] = field(default_factory=list)


def _first_shape(value: object) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (list, tuple)):
        for item in value:
            shape = _first_shape(item)
            if shape is not None:
                return shape
    return None


def trace_calls(model: nn.Module, x: torch.Tensor) -> Call:
    """Run ``model(x)`` in eval mode without gradients and return the root of its call tree."""
    names = {id(module): name for name, module in model.named_modules()}
    roots: list[Call] = []
    stack: list[Call] = []

    def pre_hook(module: nn.Module, inputs: tuple[object, ...]) -> None:
        call = Call(names.get(id(module), ""), module, in_shape=_first_shape(inputs))
        (stack[-1].children if stack else roots).append(call)
        stack.append(call)

    def hook(module: nn.Module, inputs: tuple[object, ...], output: object) -> None:
        stack.pop().out_shape = _first_shape(output)

    handles = [
        handle
        for module in model.modules()
        for handle in (
            module.register_forward_pre_hook(pre_hook),
            module.register_forward_hook(hook),
        )
    ]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception as error:
        raise forward_failure(error, x) from error
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    return roots[0]


def inception_modules(model: nn.Module) -> list[str]:
    """Names of the outermost ``BranchConcat`` modules (those not inside another one)."""
    found: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, BranchConcat) and not any(
            name.startswith(f"{outer}.") for outer in found
        ):
            found.append(name)
    return found


def _leaf_text(module: nn.Module, cell: bool) -> str:
    """A short description of a leaf layer: ``3x3/2`` for a stride-2 3x3 conv; pools get a
    ``max`` / ``avg`` prefix in branch cells (``cell``), where no type name is shown."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        text = f"{kh}{_TIMES}{kw}"
        if module.groups > 1 and module.groups == module.in_channels:
            text = f"dw{text}"
        stride = module.stride[0]
        return f"{text}/{stride}" if stride > 1 else text
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and cell:
        return "global " + ("avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max")
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = ("max" if isinstance(module, nn.MaxPool2d) else "avg") if cell else ""
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        return f"{kind}{k}{_TIMES}{k}" + (f"/{stride}" if stride > 1 else "")
    return ""


def describe(call: Call, cell: bool = True) -> str:
    """The layers a call runs, e.g. ``1x1→3x3``; parallel branches as ``(1x3 | 3x1)``
    (drawn with a multiplication sign)."""
    if isinstance(call.module, BranchConcat):
        return "(" + " | ".join(describe(child, cell) for child in call.children) + ")"
    if not call.children:
        return _leaf_text(call.module, cell)
    return "→".join(text for child in call.children if (text := describe(child, cell)))


def _kind(module: nn.Module) -> str:
    modules = list(module.modules())
    if isinstance(module, BranchConcat):
        return "inception"
    if any(isinstance(m, nn.Linear) for m in modules):
        return "dense"
    if any(isinstance(m, nn.Conv2d) for m in modules):
        return "conv"
    if any(isinstance(m, _POOLS) for m in modules):
        return "pool"
    return "other"


def _contains_inception(call: Call) -> bool:
    return any(
        isinstance(child.module, BranchConcat) or _contains_inception(child)
        for child in call.children
    )


def _is_transparent(call: Call) -> bool:
    """Drawn as its children: plain Sequential containers, and containers holding Inception
    modules (so every module gets its own node)."""
    if not call.children or isinstance(call.module, BranchConcat):
        return False
    return type(call.module) is nn.Sequential or _contains_inception(call)


def _flatten(calls: list[Call]) -> Iterator[Call]:
    for call in calls:
        if _is_transparent(call):
            yield from _flatten(call.children)
        else:
            yield call


def _grouped(calls: list[Call]) -> list[tuple[Call, list[Call]]]:
    """Pair each layer with the activation / dropout layers right after it (folded into it)."""
    groups: list[tuple[Call, list[Call]]] = []
    for call in _flatten(calls):
        if groups and isinstance(call.module, _FOLDED) and not call.children:
            groups[-1][1].append(call)
        else:
            groups.append((call, []))
    return groups


def _html_label(rows: list[str], color: str, cells: list[str] | None = None) -> str:
    """An HTML-like Graphviz label: a rounded box of text rows; ``cells`` (side by side) go
    after the first two rows (name and type)."""
    span = len(cells) if cells else 1
    parts = [f'<TR><TD COLSPAN="{span}">{row}</TD></TR>' for row in rows]
    if cells:
        side_by_side = "<TR>" + "<VR/>".join(f"<TD>{cell}</TD>" for cell in cells) + "</TR>"
        parts.insert(2, "<HR/>" + side_by_side + ("<HR/>" if len(rows) > 2 else ""))
    table = (
        f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" BGCOLOR="{color}" '
        f'STYLE="ROUNDED">{"".join(parts)}</TABLE>'
    )
    return f"<{table}>"


def _width(shape: tuple[int, ...] | None) -> str:
    return f"{shape[1]} ch" if shape is not None and len(shape) > 1 else "?"


def _small(text: str) -> str:
    return f'<FONT POINT-SIZE="9">{html.escape(text)}</FONT>'


class _Builder:
    """Adds the nodes, clusters and edges of a call tree to a Digraph."""

    def __init__(self, show_shapes: bool, expand: bool, rankdir: str) -> None:
        self.rankdir = rankdir
        self.show_shapes = show_shapes
        self.expand = expand
        self.calls_seen: dict[str, int] = {}
        self.edges: list[tuple[str, str]] = []

    def node_id(self, prefix: str, name: str) -> str:
        key = f"{prefix}/{name}"
        count = self.calls_seen.get(key, 0) + 1
        self.calls_seen[key] = count
        return key if count == 1 else f"{key}#{count}"

    def shapes(self, in_shape: tuple[int, ...] | None, out_shape: tuple[int, ...] | None) -> str:
        def text(shape: tuple[int, ...] | None) -> str:
            return format_shape(shape) if shape is not None else "?"

        return _small(f"{text(in_shape)} → {text(out_shape)}")

    def title(self, name: str, type_name: str, detail: str, folded: list[Call]) -> list[str]:
        kind = type_name + (f" {detail}" if detail else "")
        kind += "".join(f" + {type(call.module).__name__}" for call in folded)
        return [f"<B>{html.escape(name)}</B>", _small(kind)]

    def chain(self, graph: graphviz.Digraph, calls: list[Call], sources: list[str]) -> list[str]:
        for call, folded in _grouped(calls):
            sources = self.unit(graph, call, folded, sources)
        return sources

    def connect(self, sources: list[str], target: str) -> None:
        """Edges are added after every node, so Graphviz keeps branches in declaration order."""
        self.edges += [(source, target) for source in sources]

    def unit(
        self, graph: graphviz.Digraph, call: Call, folded: list[Call], sources: list[str]
    ) -> list[str]:
        module = call.module
        out_shape = folded[-1].out_shape if folded else call.out_shape
        if isinstance(module, BranchConcat) and self.expand:
            return self.cluster(graph, call, folded, sources, out_shape)
        is_module = isinstance(module, BranchConcat)
        node = self.node_id("inception" if is_module else "layer", call.name)
        detail = "" if is_module else describe(call, cell=False)
        if "→" in detail or "(" in detail:  # several layers: the type name says enough
            detail = ""
        rows = self.title(call.name or "model", type(module).__name__, detail, folded)
        if self.show_shapes:
            rows.append(self.shapes(call.in_shape, out_shape))
        cells = None
        if is_module:
            cells = [
                _small(describe(branch) or type(branch.module).__name__)
                + "<BR/>"
                + _small(_width(branch.out_shape))
                for branch in self.branch_calls(call)
            ]
        graph.node(node, label=_html_label(rows, _COLORS[_kind(module)], cells), id=node)
        self.connect(sources, node)
        return [node]

    @staticmethod
    def branch_calls(call: Call) -> list[Call]:
        module = call.module
        assert isinstance(module, BranchConcat)
        branch_ids = {id(branch) for branch in module.branches}
        return [child for child in call.children if id(child.module) in branch_ids]

    def cluster(
        self,
        graph: graphviz.Digraph,
        call: Call,
        folded: list[Call],
        sources: list[str],
        out_shape: tuple[int, ...] | None,
    ) -> list[str]:
        cluster_id = self.node_id("inception", call.name)
        branches = self.branch_calls(call)
        with graph.subgraph(name=f"cluster_{cluster_id}") as sub:
            sub.attr(
                label=f"<<B>{html.escape(call.name)}</B> ({type(call.module).__name__})>",
                id=cluster_id,
                style="rounded,filled",
                fillcolor="#f3f9f1",
                color="#82b366",
                fontsize="11",
                labelloc="b",
                labeljust="r",
            )
            exits: list[str] = []
            entries: list[str] = []
            for branch in branches:
                start = len(self.edges)
                exits += self.chain(sub, [branch], sources)
                entries += [head for tail, head in self.edges[start:] if tail in sources][:1]
            nested = any(isinstance(next(_flatten([b])).module, BranchConcat) for b in branches)
            if len(entries) > 1 and not nested:
                # Graphviz may mirror a cluster: pin the branches left to right (top to bottom;
                # LR lays out top to bottom then rotates, hence the reversal).
                if self.rankdir == "LR":
                    entries.reverse()
                with sub.subgraph() as same:
                    same.attr(rank="same")
                    for left, right in itertools.pairwise(entries):
                        same.edge(left, right, style="invis")
            concat = self.node_id("concat", call.name)
            rows = [
                "<B>concatenate</B>",
                _small("Concat" + "".join(f" + {type(c.module).__name__}" for c in folded)),
            ]
            if self.show_shapes:
                rows.append(_small(format_shape(out_shape) if out_shape else "?"))
            sub.node(concat, label=_html_label(rows, _COLORS["inception"]), id=concat)
            self.connect(exits, concat)
        rest = [child for child in call.children if child not in branches]
        return self.chain(graph, rest, [concat])


def model_graph(
    model: nn.Module,
    input_size: int,
    in_chans: int,
    show_shapes: bool = False,
    expand: bool | None = None,
    rankdir: str = "TB",
    name: str | None = None,
) -> graphviz.Digraph:
    """The architecture diagram of ``model`` on one ``in_chans x input_size x input_size`` image.

    ``expand=None`` expands Inception modules into their branches when the network has at most
    ``EXPAND_UP_TO`` of them.
    """
    if rankdir not in RANKDIRS:
        raise InceptionFerError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    x = sample_input(model, input_size, in_chans)
    root = trace_calls(model, x)
    if expand is None:
        expand = len(inception_modules(model)) <= EXPAND_UP_TO
    graph = graphviz.Digraph(name=name or type(model).__name__)
    graph.attr(rankdir=rankdir, nodesep="0.25", ranksep="0.3", fontname="Helvetica", ordering="out")
    graph.attr("node", shape="plain", fontname="Helvetica", fontsize="11")
    graph.attr("edge", arrowsize="0.7", color="#555555")
    rows = ["<B>input</B>", _small("Input")]
    if show_shapes:
        rows.append(_small(format_shape(tuple(x.shape))))
    graph.node("input", label=_html_label(rows, _COLORS["other"]), id="input")
    builder = _Builder(show_shapes, expand, rankdir)
    calls = root.children if root.children else [root]
    builder.chain(graph, calls, ["input"])
    for tail, head in builder.edges:
        graph.edge(tail, head)
    return graph


def require_dot() -> None:
    """A clear error naming the fix when Graphviz's ``dot`` program is missing."""
    if shutil.which("dot") is None:
        raise InceptionFerError(NO_DOT)


def _render(graph: graphviz.Digraph, fmt: str) -> bytes:
    if fmt == "dot":
        return graph.source.encode("utf-8")
    try:
        data: bytes = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise InceptionFerError(NO_DOT) from None
    except graphviz.CalledProcessError as error:
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else ""
        last = (
            stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {error.returncode}"
        )
        raise InceptionFerError(f"Graphviz failed to render {fmt}: {last}") from None
    return data


def plot_format(path: str | os.PathLike[str]) -> str:
    """The output format named by ``path``'s extension; a one-line error for any other."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        valid = ", ".join(f".{f}" for f in FORMATS)
        raise InceptionFerError(
            f"cannot plot to {os.fspath(path)!r}: unknown extension; valid extensions: {valid}"
        )
    return fmt


def plot_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: int,
    in_chans: int,
    show_shapes: bool = False,
    expand: bool | None = None,
    rankdir: str = "TB",
    name: str | None = None,
) -> Path:
    """Draw ``model`` to ``path`` (.png, .svg, .pdf or .dot source), written atomically."""
    fmt = plot_format(path)
    if fmt != "dot":
        require_dot()
    graph = model_graph(model, input_size, in_chans, show_shapes, expand, rankdir, name)
    if fmt == "png":
        graph.attr(dpi=str(PNG_DPI))
    return atomic_write_bytes(path, _render(graph, fmt))
