"""Registers ``jangin demo`` on the ``jangin`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command()
    def demo(
        out: Annotated[
            Path, typer.Option("--out", "-o", help="Output directory (replaced if made by an earlier demo).")
        ] = Path("jangin-demo"),
        data: Annotated[
            Path | None,
            typer.Option("--data", help="sample_data folder [default: ./sample_data or the source tree's]."),
        ] = None,
        epochs: Annotated[int, typer.Option(help="Detector training epochs.")] = 35,
        imgsz: Annotated[int, typer.Option(help="Detector input size.")] = 256,
        device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    ) -> None:
        """Run the whole chain on the sample data: capture → labels → training → ONNX inference → report.

        Offline, on CPU by default; about 5–10 minutes on 2 cores."""
        import time

        from jangin.core.cli import console, progress_bar
        from jangin.demo._run import DemoConfig, run_demo

        t0 = time.perf_counter()
        cfg = DemoConfig(out=out, sample_data=data, epochs=epochs, imgsz=imgsz, device=device)
        with progress_bar() as progress:
            res = run_demo(cfg, progress=progress, say=lambda s: console().print(f"[green]✓[/] {s}"))
        c = console()
        c.print()
        c.print(f"[bold]Jangin demo finished in {time.perf_counter() - t0:.0f} s[/]")
        c.print(f"  dataset : {res.dataset}")
        c.print("  rows    : " + ", ".join(f"{k} {v:,}" for k, v in res.counts.items() if v))
        c.print(
            f"  held-out: mAP50 {res.metrics['onnx_mAP50']:.3f} (ONNX Runtime) vs {res.metrics['baseline_mAP50']:.3f} random boxes"
        )
        etch = res.metrics.get("etch") or {}
        if etch:
            c.print(f"  etch    : {etch['runs']} runs of {etch['display_name']}, skill profiles per recipe")
        c.print(f"  report  : [bold]{res.report}[/]")
