"""The bnn-flow command line (DESIGN.md §7).

Every expected failure is a BnnFlowError: one line on stderr, and exit code 2 (bad input/usage), 1 (a check
failed) or 3 (an external tool is missing). Anything else is a bug: one line and exit 70, or the full
traceback with --debug.

Each command imports what it needs when it runs (the only function-level imports of the package besides
optional heavy dependencies): `bnn-flow --help` or `bnn-flow run --target cpu` must not load torch and
brevitas, which `train` and `export` need.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bnn_flow import __version__
from bnn_flow.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, BnnFlowError


def count(text: str) -> int:
    """A positive whole number (image counts, repeats, threads, jobs): 0 or -5 images is a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > 10**9:
        raise argparse.ArgumentTypeError(f"{value} is not a sensible count")
    return value


def number(text: str) -> float:
    """A finite number (clocks, frame rates, margins; their ranges are checked where they are used)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in our one-line form with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def cmd_train(args: argparse.Namespace) -> int:
    from bnn_flow.config import load_recipe
    from bnn_flow.train.loop import TrainOptions, train

    recipe = load_recipe(args.recipe)
    out = Path(args.out) if args.out else Path("runs") / recipe.name
    summary = train(recipe, TrainOptions(out=out, resume=args.resume, device=args.device, data_dir=args.data_dir,
                                         epochs=args.epochs, limit_train=args.limit_train, seed=args.seed,
                                         time_budget=args.time_budget))
    if summary:
        print(f"trained {summary['name']} on {summary['dataset']}: test accuracy "
              f"{100 * summary['test_acc']:.2f}% after {summary['epochs']} epochs -> {out}")
    return 0


def cmd_train_many(args: argparse.Namespace) -> int:
    from bnn_flow.train.many import train_many

    extra = [*(["--epochs", str(args.epochs)] if args.epochs else []),
             *(["--limit-train", str(args.limit_train)] if args.limit_train else []),
             *(["--seed", str(args.seed)] if args.seed is not None else []),
             *(["--time-budget", str(args.time_budget)] if args.time_budget else []),
             *(["--data-dir", args.data_dir] if args.data_dir else [])]
    jobs = train_many([Path(r) for r in args.recipes], Path(args.out_root), device=args.device, threads=args.threads,
                      train_args=extra)
    print(f"trained {len(jobs)} recipes side by side -> {args.out_root}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bnn_flow.export import export_run

    if Path(args.run).is_file():  # a released model (models/zoo/<recipe>.bnnz), not a run folder
        from bnn_flow.zoo.export import export_zoo

        src = Path(args.run)
        record = export_zoo(src, Path(args.out) if args.out else Path(f"{src.stem}.onnx"), images=args.images,
                            data_dir=args.data_dir)
        rt, acc = record["roundtrip"], record["accuracy"]
        print(f"exported {record['path']} ({record['bytes']} bytes) from {src}; round trip on {rt['images']} "
              f"images: labels identical, max |torch - qonnx| = {rt['max_abs_diff']:.2e}; recorded accuracy "
              f"{100 * acc.get('test_acc', float('nan')):.2f}% on {acc.get('images')} {acc.get('dataset')} test images")
        return 0
    record = export_run(Path(args.run), Path(args.out) if args.out else None, images=args.images,
                        data_dir=args.data_dir, checkpoint=args.checkpoint)
    rt = record["roundtrip"]
    ties = f" (and {rt['ties']} float-tie images, roundtrip_ties.py)" if rt.get("ties") else ""
    print(f"exported {record['path']} ({record['bytes']} bytes); round trip on {rt['images']} test images: "
          f"labels identical, max |torch - qonnx| = {rt['max_abs_diff']:.2e}{ties}")
    return 0


def cmd_zoo_pack(args: argparse.Namespace) -> int:
    from bnn_flow.zoo.model import GOALS, pack_run

    out = Path(args.out)
    header = pack_run(Path(args.run), out, checkpoint=args.checkpoint, images=args.images, data_dir=args.data_dir,
                      device=args.device)
    acc, name = header["accuracy"], header["recipe"]["name"]
    goal = GOALS.get(name)
    reached = goal is not None and acc["test_acc"] >= goal
    verdict = "no goal for this recipe" if goal is None else \
        f"goal {100 * goal:.2f}% " + ("reached: may be released" if reached else "NOT reached: do not release")
    print(f"packed {args.run} -> {out} ({out.stat().st_size} bytes): test accuracy {100 * acc['test_acc']:.2f}% on "
          f"{acc['images']} {acc['dataset']} test images; {verdict}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from bnn_flow.backends.hls.folding import fold_request
    from bnn_flow.backends.hls.report import fold_and_report
    from bnn_flow.compiler import CompileConfig, run_pipeline
    from bnn_flow.errors import BadInputError
    from bnn_flow.transaction import transaction

    fold = fold_request(args.board, args.clock_mhz, args.target_fps, args.fit, args.margin,
                        Path(args.folding) if args.folding else None)  # fail fast
    if fold is not None and args.to_step not in (None, "dataflow"):
        raise BadInputError(f"folding options fold the dataflow graph: drop --to-step {args.to_step}")
    model, build = Path(args.model), Path(args.out)
    outcomes = []  # the folding step runs inside compile's transaction; its verdict is given after the commit

    def fold_step(stage) -> None:
        outcomes.append(fold_and_report(stage, fold))

    if args.from_step != "fold":  # --from-step fold: only re-fold an existing BUILD
        if not model.is_file():
            raise BadInputError(f"model {model} not found (export one with bnn-flow export RUN)")
        t0 = time.perf_counter()
        cfg = CompileConfig(verify=args.verify, verify_images=args.verify_images)
        out = run_pipeline(model, build, cfg, from_step=args.from_step, to_step=args.to_step, verify=args.verify,
                           then=fold_step if fold is not None else None)
        print(f"compiled {model} -> {out} in {time.perf_counter() - t0:.1f} s"
              + (" (every step verified against the previous one)" if args.verify else ""))
    elif fold is None:
        raise BadInputError("--from-step fold needs folding options (--board, --fit, --target-fps, --folding)")
    else:
        with transaction(build, fresh=False) as stage:
            stage.final_model_path()  # one clear line when BUILD was never compiled
            fold_step(stage)
    if outcomes:
        print(outcomes[0].table)
        print(f"folding and report -> {build} (folding.json, report.txt, .json, .png)")
        outcomes[0].check(build)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bnn_flow.build import Build
    from bnn_flow.run import read_input, run_target, write_output

    build = Build(args.build)
    if args.port is not None:
        from bnn_flow.backends import registry

        registry.target(args.target).configure(port=args.port)
    x = read_input(Path(args.input), build.input_chw())
    scores, labels = run_target(build, args.target, x)
    write_output(Path(args.output), scores, labels)
    print(f"{args.target}: {len(labels)} images -> {args.output}")
    if args.dump_vectors:
        from bnn_flow.golden import GoldenModel

        out = GoldenModel(build).dump_vectors(x)
        print(f"golden test vectors (every layer's input and output) -> {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bnn_flow.compare import check, compare, format_table

    targets = args.targets.split(",") if args.targets else None
    result = compare(Path(args.build), images=args.images, dataset=args.dataset, targets=targets,
                     step_images=args.step_images, data_dir=args.data_dir, emulated_images=args.emulated_images)
    print(format_table(result))
    check(result)
    return 0


def cmd_pi_bench(args: argparse.Namespace) -> int:
    from bnn_flow.backends.cpu.bench import default_outputs, format_summary, pi_bench

    build = Path(args.build)
    json_path = Path(args.json) if args.json else default_outputs(build)[0]
    png_path = Path(args.png) if args.png else json_path.with_suffix(".png")
    result = pi_bench(build, target=args.target, host=args.host, threads=args.threads, images=args.images,
                      rounds=args.repeat, per_layer=not args.no_layers, json_path=json_path, png_path=png_path,
                      data_dir=args.data_dir)
    print(format_summary(result))
    print(f"wrote {json_path} and {png_path}")
    return 0


def cmd_bitstream(args: argparse.Namespace) -> int:
    from bnn_flow.backends import registry
    from bnn_flow.errors import BadInputError

    if args.seed is not None and args.flow != "open":
        raise BadInputError("--seed is the open flow's (nextpnr's placement seed): add --flow open")
    extra = {k: v for k, v in (("images", args.images), ("seed", args.seed)) if v is not None}
    registry.flow(args.flow)(Path(args.build), board=args.board, clock_mhz=args.clock_mhz, jobs=args.jobs,
                             data_dir=args.data_dir, **extra)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bnn-flow", description="Binarized neural networks from QAT to FPGA and Raspberry Pi.")
    p.add_argument("--version", action="version", version=f"bnn-flow {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="quantization-aware training from a recipe")
    t.add_argument("recipe", help="models/*.yaml")
    t.add_argument("--epochs", type=count)
    t.add_argument("--data-dir")
    t.add_argument("--out", help="run folder (default runs/<recipe name>)")
    t.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--limit-train", type=count, help="train on a deterministic subset of N images")
    t.add_argument("--seed", type=int)
    t.add_argument("--time-budget", type=number, help="stop after the epoch that passes this many seconds "
                   "(train.time_budget_s; the schedule still spans --epochs)")
    t.set_defaults(func=cmd_train)

    tm = sub.add_parser("train-many", help="several recipes at once, one process each, sharing the device")
    tm.add_argument("recipes", nargs="+", help="models/*.yaml")
    tm.add_argument("--out-root", default="runs", help="runs go to OUT_ROOT/<recipe name>/ (default runs)")
    tm.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    tm.add_argument("--epochs", type=count)
    tm.add_argument("--limit-train", type=count)
    tm.add_argument("--seed", type=int)
    tm.add_argument("--time-budget", type=number, help="per run, as train's")
    tm.add_argument("--threads", type=count, help="CPU threads per run (default: the cores / the runs)")
    tm.add_argument("--data-dir")
    tm.set_defaults(func=cmd_train_many)

    e = sub.add_parser("export", help="QONNX export with a round-trip check")
    e.add_argument("run", help="run folder written by bnn-flow train, or a released model (models/zoo/*.bnnz)")
    e.add_argument("--out", help="output .onnx (default RUN/model.onnx; for a zoo file ./<its name>.onnx)")
    e.add_argument("--images", type=count, default=200, help="test images for the round-trip check")
    e.add_argument("--checkpoint", default="last", choices=["last", "best"])
    e.add_argument("--data-dir")
    e.set_defaults(func=cmd_export)

    z = sub.add_parser("zoo-pack", help="a run's checkpoint -> a compact released-model file (models/zoo/)")
    z.add_argument("run", help="run folder written by bnn-flow train")
    z.add_argument("--out", required=True, help="the zoo file, e.g. models/zoo/<recipe>.bnnz")
    z.add_argument("--checkpoint", default="last", choices=["last", "best"])
    z.add_argument("--images", type=count, help="test images for the recorded accuracy (default: all)")
    z.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the accuracy is measured")
    z.add_argument("--data-dir")
    z.set_defaults(func=cmd_zoo_pack)

    c = sub.add_parser("compile", help="QONNX -> integer dataflow graph")
    c.add_argument("model")
    c.add_argument("--out", required=True, help="build folder")
    c.add_argument("--verify", action="store_true", help="check each step against the previous one")
    c.add_argument("--verify-images", type=count, default=4)
    c.add_argument("--from-step", help="start at this step (fold: only re-fold an existing BUILD)")
    c.add_argument("--to-step")
    c.add_argument("--board", help="FPGA board (board/NAME.yaml or a YAML path): fold for it (--fit by default)")
    c.add_argument("--clock-mhz", type=number, help="PL clock (default: the board's)")
    c.add_argument("--target-fps", type=number, help="cheapest folding reaching this frame rate")
    c.add_argument("--fit", action="store_true", help="the most frame rate within the board's budget")
    c.add_argument("--margin", type=number, help="fraction of every budget kept free (default: the board's fit "
                   "limits, 15%% free unless its file says otherwise)")
    c.add_argument("--folding", help='apply this hand-written folding.json ({"MVAU name": {"PE": p, "SIMD": s}}) '
                   "instead of searching one (with --from-step fold: re-fold an existing BUILD)")
    r = sub.add_parser("run", help="run a compiled build on a target")
    r.add_argument("build")
    r.add_argument("--target", required=True)
    r.add_argument("--input", required=True)
    r.add_argument("--output", required=True)
    r.add_argument("--port", help="the board target's serial port (a bitstream of --flow open), e.g. /dev/ttyUSB0")
    r.add_argument("--dump-vectors", action="store_true",
                   help="also write every layer's golden input/output for these images to BUILD/vectors/")
    r.set_defaults(func=cmd_run)
    cm = sub.add_parser("compare", help="the same images through every target, one table")
    cm.add_argument("build")
    cm.add_argument("--images", type=count, default=1000)
    cm.add_argument("--dataset")
    cm.add_argument("--targets", help="comma list of targets (bnn-flow run's, and steps: the compiler's step "
                    "models; default: all that can run here; the others are listed as not run)")
    cm.add_argument("--step-images", type=count, default=100, help="images for the step models (slow executor)")
    cm.add_argument("--emulated-images", type=count,
                    help="images for the qemu-emulated Pi targets (default: all --images)")
    cm.add_argument("--data-dir")
    cm.set_defaults(func=cmd_compare)
    b = sub.add_parser("bitstream", help="FPGA bitstream (vendor or open flow)")
    b.add_argument("build")
    b.add_argument("--flow", default="vendor", help="vendor (Vitis HLS + Vivado) or open (yosys + nextpnr)")
    b.add_argument("--board", help="board/NAME.yaml or a YAML path (default: the board BUILD was folded for, "
                   "else pynq-z2); the open flow's: ulx3s-85f, icebreaker")
    b.add_argument("--clock-mhz", type=number, help="PL clock (default: the build's, else the board's)")
    b.add_argument("--jobs", type=count, help="Vivado implementation jobs (default: every core)")
    b.add_argument("--images", type=count, help="images for the check: the vendor flow's C-simulation (default 8), "
                   "the open flow's post-synthesis netlist simulation (default and at least 10)")
    b.add_argument("--seed", type=count, help="nextpnr's placement seed (open flow; default 1)")
    b.add_argument("--data-dir")
    b.set_defaults(func=cmd_bitstream)
    pb = sub.add_parser("pi-bench", help="binarized vs float CNN on CPU / Raspberry Pi")
    pb.add_argument("build")
    pb.add_argument("--target", default="host",
                    help="host: time here; an emulated (Raspberry Pi) target of bnn-flow run: verify under qemu only "
                    "(no timings), or time it on a Pi with --host")
    pb.add_argument("--host", help="USER@ADDR of a Raspberry Pi: copy the runner and model over ssh, time there")
    pb.add_argument("--threads", type=count, help="the multi-thread run (default: every core); 1 thread always runs")
    pb.add_argument("--images", type=count, default=64, help="bench images (the data set's test images if found)")
    pb.add_argument("--repeat", type=count, default=5, help="alternating binary/float rounds")
    pb.add_argument("--json", help="result JSON (default BUILD/cpu/pi-bench.json)")
    pb.add_argument("--png", help="bar chart (default: the JSON path with .png)")
    pb.add_argument("--no-layers", action="store_true", help="skip the per-layer comparison")
    pb.add_argument("--data-dir")
    pb.set_defaults(func=cmd_pi_bench)
    c.set_defaults(func=cmd_compile)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # usage errors (one line, exit 2) and --help / --version (exit 0)
        return int(e.code or 0)
    try:
        return args.func(args)
    except BnnFlowError as e:
        if args.debug:
            raise
        print(f"bnn-flow {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"bnn-flow {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: keep the one-line contract, offer the traceback
        if args.debug:
            raise
        print(f"bnn-flow {args.command}: internal error: {type(e).__name__}: {e} (rerun with --debug "
              "for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
