"""``msdprof graph``: the connectivity graph, drawn (Graphviz), as data or as an interactive page."""

from __future__ import annotations

import argparse
from typing import Any

from msdnet.options import OptionError

from ..render import drawing
from .options import (
    add_convention_option, add_model_options, add_network_options, add_output_options,
    given_options, model_io, network_options, notice, user_model,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "graph", help="the scale x layer connectivity graph, drawn or as data",
        description="The feature maps the network computes (scales down, layers across; a long "
                    "network wraps by block into rows), the convs between them, transitions and "
                    "exits. The suffix of FILE picks the "
                    "format: " + ", ".join(drawing.SUFFIXES) + " (.svg, .png, .pdf and .html need "
                    "Graphviz; .json is networkx node-link data with each node's cost; .html is "
                    "one offline page where clicking an exit lights up the maps it needs and "
                    "shows what it costs).",
    )
    add_network_options(p)
    add_model_options(p)
    p.add_argument("--exit", type=int, metavar="K",
                   help="highlight what exit K needs: in the picture of --model (its dataflow ancestors), "
                        "or chosen when the .html page opens")
    p.add_argument("--depth", type=int, metavar="N",
                   help="with --model: fold the operations into the modules N levels down (1 = the "
                        "top-level modules; default: the deepest depth showing at most 30 boxes)")
    p.add_argument("--dense", action="store_true",
                   help="also draw the dense edges: every earlier same-scale map the "
                        "concatenation carries (quadratic in the layers per block)")
    add_convention_option(p, "unit of the node costs in .json/.graphml and the SVG tooltips; "
                             "the convention .html shows first")
    add_output_options(p, required=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..analysis.graph import check_depth, default_depth, fold_graph, layout_graph

    options, name = network_options(args)
    path = drawing.check_output(args.output, args.force)  # before any work
    model = user_model(args)
    html = path.suffix.lower() == drawing.PAGE
    if model is None and args.exit is not None and not html:
        raise OptionError("exit", args.exit, "needs --model or an .html output (an MSDNet's layout shows every exit)")
    if model is None and args.depth is not None:
        raise OptionError("depth", args.depth, "needs --model (an MSDNet is drawn as its scale x layer grid)")
    if model is not None and args.dense:
        raise OptionError("dense", "given", "is for an MSDNet's layout, not --model")
    if args.depth is not None:
        check_depth(args.depth)
    if html:
        from ..render.interactive import write_page

        if model is not None:
            write_page(path, model, **model_io(args), convention=args.convention, depth=args.depth,
                       exit=args.exit, name=args.model, force=args.force)
        else:
            title = f"MSDNet {name}" if name and not given_options(args) else f"MSDNet {options.describe()}"
            write_page(path, options, input_size=args.input_size, dense=args.dense, exit=args.exit,
                       convention=args.convention, name=name, title=title, force=args.force)
        notice(args, f"wrote {path}")
        return
    if model is not None:
        graph = layout_graph(model, **model_io(args), convention=args.convention)
        graph.graph["spec"] = args.model
        exits = sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "exit")
        if args.exit is not None:
            if not 1 <= args.exit <= exits:
                raise OptionError("exit", args.exit, f"must be an exit from 1 to {exits}")
            graph.graph["highlight"] = args.exit
        graph = fold_graph(graph, args.depth if args.depth is not None else default_depth(graph))
    else:
        graph = layout_graph(options, input_size=args.input_size, dense=args.dense,
                             convention=args.convention)
    if name and model is None:
        graph.graph["preset"] = name
    drawing.write_graph(graph, path, force=args.force)
    notice(args, f"wrote {path}")
