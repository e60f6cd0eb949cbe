"""Turning kiln's partition plan into a ``torch.fx.GraphModule``.

The C++ partitioner names the nodes of each segment by the program's value names, which are the
FX node names of the lowered program (``ExportedProgram.module()``), so the plan maps back onto the
FX graph node for node. Accelerated segments become ``_run_on_acc_N`` submodules whose inputs and
outputs are exactly the engine's bindings, in order; with the fast partitioner the rest become
``_run_on_gpu_N`` submodules, with the global one they stay inline in the top-level graph (as in
Torch-TensorRT).
"""
from __future__ import annotations

import copy
import operator

from typing import Optional

import torch
from torch import fx


def _segment_membership(gm: fx.GraphModule, plan: dict) -> dict[fx.Node, list[int]]:
    """For each FX call node, the plan segments it belongs to (several for copied sym nodes)."""
    owner: dict[str, list[int]] = {}
    for index, segment in enumerate(plan["segments"]):
        for names in segment["fx_names"]:
            for name in names:
                owner.setdefault(name, [])
                if index not in owner[name]:
                    owner[name].append(index)
    membership: dict[fx.Node, list[int]] = {}
    for node in gm.graph.nodes:
        if node.op not in ("call_function", "call_method", "call_module"):
            continue
        if node.name in owner:
            membership[node] = owner[node.name]
            continue
        # A multi-output node whose getitems carry the value names.
        getitems = [u for u in node.users if u.op == "call_function" and u.target is operator.getitem]
        for user in getitems:
            if user.name in owner:
                membership[node] = owner[user.name]
                break
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is operator.getitem and node not in membership:
            parent = node.args[0]
            if isinstance(parent, fx.Node) and parent in membership:
                membership[node] = membership[parent]
    return membership


class _Builder:
    def __init__(self, gm: fx.GraphModule, plan: dict, inline_torch: bool,
                 input_names: Optional[list] = None):
        self.gm = gm
        self.plan = plan
        self.inline_torch = inline_torch
        self.by_name = {n.name: n for n in gm.graph.nodes}
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for name, placeholder in zip(input_names or [], placeholders):
            self.by_name.setdefault(name, placeholder)
        self.membership = _segment_membership(gm, plan)
        self.graph = fx.Graph()
        self.graph._codegen = copy.deepcopy(gm.graph._codegen)
        self.env: dict[fx.Node, fx.Node] = {}
        self.submodules: dict[str, fx.GraphModule] = {}

    def fx_node(self, value_name: str) -> fx.Node:
        node = self.by_name.get(value_name)
        if node is None:
            # Parameters are named p_<path> in the program and <path> in the module's get_attr.
            stripped = value_name[2:] if value_name.startswith(("p_", "b_", "c_")) else value_name
            node = self.by_name.get(stripped)
        if node is None:
            raise KeyError(f"kiln's partition names the value '{value_name}', which the FX graph "
                           "does not have (a kiln bug: please report it)")
        return node

    def segment_nodes(self, index: int) -> list[fx.Node]:
        return [n for n in self.gm.graph.nodes if index in self.membership.get(n, ())]

    def lookup(self, node: fx.Node) -> fx.Node:
        # Parameters are copied into the top-level graph only where it uses them: weights that only
        # engines read stay out of the compiled module.
        if node not in self.env and node.op == "get_attr":
            self.env[node] = self.graph.node_copy(node)
        return self.env[node]

    def build(self) -> fx.GraphModule:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.graph.node_copy(node)
        # Nodes no segment holds: torch.export's runtime checks (_assert_scalar of a bound on a
        # data-dependent size, and the sym ops computing it), which kiln's core does not read.
        # They run in PyTorch after the segments. One that a segment needs is a kiln bug.
        unassigned = [n for n in self.gm.graph.nodes
                      if n.op.startswith("call") and n not in self.membership]
        placed_nowhere = [n.name for n in unassigned
                          if any(user in self.membership for user in n.users)]
        if placed_nowhere:
            raise RuntimeError(f"kiln's partition does not place the nodes {placed_nowhere} (a "
                               "kiln bug: please report it with the program)")
        for index, segment in enumerate(self.plan["segments"]):
            if segment["kind"] == "acc":
                self.emit_accelerated(index, segment)
            elif self.inline_torch:
                self.emit_inline(index)
            else:
                self.emit_torch_submodule(index, segment)
        for node in unassigned:  # the checks and what they read, in graph order
            if all(arg in self.env or arg.op == "get_attr" for arg in node.all_input_nodes):
                self.env[node] = self.graph.node_copy(node, self.lookup)
        returned = [n.name for n in unassigned if n not in self.env
                    and any(user.op == "output" for user in n.users)]
        if returned:
            raise RuntimeError(f"kiln's partition does not place the nodes {returned}, which the "
                               "program returns (a kiln bug: please report it with the program)")
        for node in self.gm.graph.nodes:
            if node.op == "output":
                self.graph.node_copy(node, self.lookup)
        # GraphModule copies what the graph references from its root: the new submodules go onto
        # the (kiln-owned) lowered module first.
        for name, module in self.submodules.items():
            setattr(self.gm, name, module)
        result = fx.GraphModule(self.gm, self.graph)
        result.graph.lint()
        result.recompile()
        return result

    def _subgraph(self, nodes: list[fx.Node], inputs: list[fx.Node],
                  outputs: list[fx.Node]) -> fx.GraphModule:
        graph = fx.Graph()
        sub_env: dict[fx.Node, fx.Node] = {}
        for node in inputs:
            placeholder = graph.placeholder(node.name)
            placeholder.meta = copy.copy(node.meta)
            sub_env[node] = placeholder

        def lookup(n: fx.Node) -> fx.Node:
            if n not in sub_env:
                if n.op == "get_attr":
                    sub_env[n] = graph.node_copy(n)
                else:
                    raise KeyError(f"node '{n.name}' is used inside a segment but is not one of "
                                   "its inputs (a kiln bug: please report it)")
            return sub_env[n]

        for node in nodes:
            sub_env[node] = graph.node_copy(node, lookup)
        graph.output(tuple(sub_env[n] for n in outputs))
        return fx.GraphModule(self.gm, graph)

    def _call(self, name: str, inputs: list[fx.Node], outputs: list[fx.Node]) -> None:
        call = self.graph.call_module(name, tuple(self.lookup(n) for n in inputs))
        call.meta["val"] = [o.meta.get("val") for o in outputs]
        for i, out in enumerate(outputs):
            item = self.graph.call_function(operator.getitem, (call, i))
            item.meta = copy.copy(out.meta)
            self.env[out] = item

    def emit_accelerated(self, index: int, segment: dict) -> None:
        nodes = self.segment_nodes(index)
        inputs = [self.fx_node(v["name"]) for v in segment["inputs"]]
        outputs = [self.fx_node(v["name"]) for v in segment["outputs"]]
        self.submodules[segment["name"]] = self._subgraph(nodes, inputs, outputs)
        self._call(segment["name"], inputs, outputs)

    def _external(self, nodes: list[fx.Node]) -> tuple[list[fx.Node], list[fx.Node]]:
        members = set(nodes)
        inputs: list[fx.Node] = []
        for node in nodes:
            for arg in node.all_input_nodes:
                if arg not in members and arg.op != "get_attr" and arg not in inputs:
                    inputs.append(arg)
        outputs = [n for n in nodes if any(u not in members for u in n.users)]
        return inputs, outputs

    def emit_torch_submodule(self, index: int, segment: dict) -> None:
        nodes = self.segment_nodes(index)
        if not nodes:
            return
        inputs, outputs = self._external(nodes)
        self.submodules[segment["name"]] = self._subgraph(nodes, inputs, outputs)
        self._call(segment["name"], inputs, outputs)

    def emit_inline(self, index: int) -> None:
        for node in self.segment_nodes(index):
            self.env[node] = self.graph.node_copy(node, self.lookup)


def split(gm: fx.GraphModule, plan: dict, *, inline_torch: bool,
          input_names: Optional[list] = None) -> fx.GraphModule:
    """The hybrid module for ``plan``: accelerated segments as FX submodules named
    ``_run_on_acc_N`` (to be replaced by engines), the rest as ``_run_on_gpu_N`` submodules
    (``inline_torch=False``) or inline. ``input_names`` are the program's user-input names in
    order (the module may have renamed its placeholders: ``input`` becomes ``input_1``)."""
    return _Builder(gm, plan, inline_torch, input_names).build()

