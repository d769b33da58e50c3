"""One comparison case (a dict from ``cases.compare_case``) in words: a table and a verdict.

Nothing is measured here: every number shown is already in the case dict (and in --json).
"""
import math

AGREE_TOL = {"float32": 1e-4, "float64": 1e-10}   # max relative difference, fused vs composed
TRUTH_TOL = 1e-6                                   # max relative error against finite differences

LABELS = {"y": "y", "dx": "dx", "dweight": "dγ (weight)", "dbias": "dβ (bias)",
          "running_mean": "running_mean", "running_var": "running_var", "eval_y": "eval-mode y"}


def number(value):
    if value is None:
        return "-"
    return "nan" if not math.isfinite(value) else f"{value:.1e}"


def seconds(value):
    return f"{value * 1e6:.0f} µs" if value < 1e-3 else f"{value * 1e3:.2f} ms"


def size(nbytes):
    for unit in ("B", "KiB", "MiB"):
        if nbytes < 1024 or unit == "MiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def table(rows, indent="  "):
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[k]) for r in rows if k < len(r)) for k in range(max(map(len, rows)))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]


def format_case(case):
    """The table for one case: agreement, truth, numerics, second order, cost, folding, verdict."""
    shape = "x".join(map(str, case["shape"]))
    out = [f"=== batch norm on {shape} {case['dtype']}, {'affine' if case['affine'] else 'no affine'}, "
           f"momentum {case['momentum']}, seed {case['seed']} ==="]
    torch = case["torch"]

    out.append("Agreement: fused vs composed on the same inputs, random upstream gradient"
               + (f"; and each vs torch {torch['version']} (max rel)" if torch else ""))
    rows = [["", "max abs", "max rel"] + (["fused-torch", "composed-torch"] if torch else [])]
    for key, d in case["agreement"].items():
        if d is None:
            continue
        label = LABELS[key] + (f" ({case['steps']} steps)" if key.startswith("running") else "")
        extra = [number(torch["agreement"][key][impl]["rel"]) for impl in case["impls"]] if torch else []
        rows.append([label, number(d["abs"]), number(d["rel"])] + extra)
    out += table(rows)

    truth = case["truth"]
    out.append("Truth: max rel error against central finite differences, float64, on a reduced copy "
               f"x[{', '.join(':%d' % n for n in truth['shape'])}]")
    rows = [["", "fused", "composed"]]
    rows += [[LABELS[k], number(truth["fused"][k]), number(truth["composed"][k])]
             for k in truth["fused"] if truth["fused"][k] is not None]
    out += table(rows)

    out.append("Numerics: float32 against a float64 reference on the same inputs (max rel error)")
    rows = [["input", "", "fused", "composed", "closer", "naive one-pass variance"]]
    for kind, title in (("standard", "1 + 3·noise"), ("offset_1e4", "1e4 + noise")):
        row = case["numerics"][kind]
        for i, key in enumerate(k for k in ("y", "dx", "dweight") if row["fused"][k] is not None):
            rows.append([title if i == 0 else "", LABELS[key], number(row["fused"][key]),
                         number(row["composed"][key]), row["closer"][key],
                         number(row["naive_y"]) if key == "y" else ""])
    out += table(rows)
    negative = case["numerics"]["offset_1e4"]["naive_negative_var_channels"]
    out.append("  (float32 values near 1e4 are 1e-3 apart, so the stored μ alone is off by up to 5e-4: "
               "a floor for any\n   float32 batch norm; the naive E[x²] - E[x]² loses σ² entirely, "
               f"NaN where it turns negative: {negative} of {case['shape'][1]} channels)")

    second = case["second_order"]
    out.append("Second order: a Hessian-vector product of ½Σ(u·y)² against finite differences of "
               "gradients, float64 (max rel error)")
    out += table([["fused", "composed", "naive fused"],
                  [number(second["fused"]), number(second["composed"]), number(second["naive fused"])]])
    out.append(f"  (naive fused: the same op keeping its saved x - μ and inv_std constant under create_graph;"
               f"\n   its first derivatives differ from fused's by {number(second['naive_first_order_vs_fused'])})")

    c = case["cost"]
    out.append(f"Cost: one training forward + backward, time = median of {c['repeats']}")
    rows = [["", "fused", "composed", "composed/fused"] + (["torch"] if torch else [])]
    for key, label, show in (("nodes", "graph nodes", str), ("saved_bytes", "saved for backward", size),
                             ("retained_bytes", "kept alive until backward", size),
                             ("forward_s", "forward", seconds), ("backward_s", "backward", seconds),
                             ("total_s", "total", seconds)):
        ratio = c["ratio"][key]
        extra = [seconds(torch["cost"][key]) if key in torch["cost"] else "-"] if torch else []
        rows.append([label, show(c["fused"][key]), show(c["composed"][key]),
                     "-" if ratio is None else f"{ratio:.1f}x"] + extra)
    out += table(rows)
    out.append("  (saved: arrays in ctx.saved_tensors, each buffer once, inputs' data included though held anyway;\n"
               "   kept alive: saved + intermediate results the graph references, beyond x, γ, β and y"
               + ("; torch single-threaded, like numpy)" if torch else ")"))
    fold = case["folding"]
    layer = {2: "Linear", 3: "Conv1d", 4: "Conv2d"}[len(case["shape"])]
    out.append(f"Folding: {layer} + batch norm folded into one {layer} (nn.utils.fold_batch_norm), "
               f"max rel difference from the original")
    out += table([["eval float64", "eval float32", "training mode (wrong by design)", "eval nodes",
                   "eval time"],
                  [number(fold["eval_float64"]), number(fold["eval_float32"]), number(fold["training_float64"]),
                   f"{fold['nodes'][0]} -> {fold['nodes'][1]}",
                   f"{seconds(fold['eval_s'][0])} -> {seconds(fold['eval_s'][1])}"]])
    if case["torch_skipped"]:
        out.append(case["torch_skipped"])
    out.append("Verdict:")
    out += [f"  - {line}" for line in case["verdict"]]
    return "\n".join(out)


def verdict(case):
    """A few short sentences: do they agree, are they right, which is closer, what it costs."""
    worst = max(d["rel"] for d in case["agreement"].values() if d is not None)
    tol = AGREE_TOL[case["dtype"]]
    lines = [f"{'agree' if worst <= tol else 'DISAGREE'}: largest relative difference {worst:.1e} "
             f"(tolerance {tol:.0e} in {case['dtype']})"]
    errors = {impl: max(v for v in case["truth"][impl].values() if v is not None) for impl in case["impls"]}
    ok = all(e <= TRUTH_TOL for e in errors.values())
    lines.append(f"{'both right' if ok else 'WRONG GRADIENT'}: finite-difference error fused "
                 f"{errors['fused']:.1e}, composed {errors['composed']:.1e} (tolerance {TRUTH_TOL:.0e})")
    offset = case["numerics"]["offset_1e4"]
    who = offset["closer"]["dx"]
    lines.append(f"float32 at offset 1e4: dx error fused {offset['fused']['dx']:.1e}, composed "
                 f"{offset['composed']['dx']:.1e} ({'about the same' if who == 'tie' else who + ' closer'});"
                 f" the naive one-pass variance: y error {offset['naive_y']:.1e}, negative σ² in "
                 f"{offset['naive_negative_var_channels']} of {case['shape'][1]} channels")
    second = case["second_order"]
    lines.append(f"second order: H·v error fused {second['fused']:.1e}, composed {second['composed']:.1e}, "
                 f"naive fused {second['naive fused']:.1e} (same first derivatives: the rebuild of x - μ "
                 f"and inv_std is what makes the second ones right)")
    c = case["cost"]
    ratio = c["ratio"]
    lines.append(f"cost: composed records {c['composed']['nodes']} nodes to fused's {c['fused']['nodes']}, "
                 f"saves {ratio['saved_bytes']:.1f}x the bytes, keeps {ratio['retained_bytes']:.1f}x "
                 f"alive, takes {ratio['total_s']:.1f}x the time (forward + backward)")
    return lines


def format_layers(cases):
    """One table for the other normalisations on one shape (``layers.layer_case`` dicts)."""
    first = cases[0]
    out = [f"=== other normalisations on {'x'.join(map(str, first['shape']))} {first['dtype']}: fused vs "
           f"composed, random upstream gradient; time = median of {first['repeats']} forward + backward ==="]
    rows = [["", "agree (max rel)", "vs torch", "graph nodes", "saved", "kept alive", "fused", "composed",
             "composed/fused", "torch"]]
    for case in cases:
        worst = max(d["rel"] for d in case["agreement"].values() if d is not None)
        torch, c = case["torch"], case["cost"]
        versus = "-" if torch is None else number(max(pair[impl]["rel"] for pair in torch["agreement"].values()
                                                      for impl in pair if pair[impl] is not None))
        rows.append([case["title"], number(worst), versus, f"{c['fused']['nodes']} / {c['composed']['nodes']}",
                     f"{size(c['fused']['saved_bytes'])} / {size(c['composed']['saved_bytes'])}",
                     f"{size(c['fused']['retained_bytes'])} / {size(c['composed']['retained_bytes'])}",
                     seconds(c["fused"]["total_s"]), seconds(c["composed"]["total_s"]),
                     f"{c['ratio']['total_s']:.1f}x", "-" if torch is None else seconds(torch["cost"]["total_s"])])
    out += table(rows)
    out.append("  (nodes, saved, kept alive: fused / composed; vs torch: the larger of fused's and composed's "
               "max rel difference from torch.nn.functional; BatchRenorm: PyTorch has none)")
    skipped = sorted({c["torch_skipped"] for c in cases if c["torch_skipped"] and c["torch"] is None
                      and "no such layer" not in c["torch_skipped"]})
    return "\n".join(out + skipped)
