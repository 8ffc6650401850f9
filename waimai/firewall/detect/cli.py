"""Typer commands for anomaly detection and the benchmarks.

Plain functions with Typer-annotated parameters, to be wired into the main CLI::

    app.command("detect")(detect_command)
    bench_app.command("nab")(bench_nab_command)
    bench_app.command("forecast")(bench_forecast_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from waimai.firewall.detect.base import DEFAULT_DETECTOR, DETECTORS, get_detector
from waimai.firewall.detect.nab import probation_rows

#: Standard-profile threshold of the default detector tuned on NAB v1.1 (see the bench).
RECOMMENDED_THRESHOLD = 0.54


def load_series(path: Path, max_gap: float = 3.0, allow_time_jumps: bool = False) -> pd.DataFrame:
    """Read and validate a ``timestamp,value`` CSV; raises ``typer.BadParameter`` on bad input."""
    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file", param_hint="INPUT")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: not a readable CSV ({exc})", param_hint="INPUT") from None
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise typer.BadParameter(
            f"{path}: missing column(s) {', '.join(missing)}; expected a header with timestamp,value "
            f"(found: {', '.join(map(str, df.columns)) or 'nothing'})",
            param_hint="INPUT",
        )
    if df.empty:
        raise typer.BadParameter(f"{path}: no data rows", param_hint="INPUT")
    ts = pd.to_datetime(df["timestamp"], errors="coerce", format="mixed")
    bad = np.flatnonzero(ts.isna().to_numpy())
    if len(bad):
        rows = ", ".join(str(i + 2) for i in bad[:5])
        raise typer.BadParameter(
            f"{path}: unparsable timestamp on line(s) {rows}{' ...' if len(bad) > 5 else ''}",
            param_hint="INPUT",
        )
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
    if len(bad):
        rows = ", ".join(str(i + 2) for i in bad[:5])
        raise typer.BadParameter(
            f"{path}: missing, NaN, infinite or non-numeric value on line(s) {rows}"
            f"{' ...' if len(bad) > 5 else ''} — fill or drop them first",
            param_hint="INPUT",
        )
    t = ts.to_numpy(dtype="datetime64[ns]")
    if len(t) > 1:
        d = np.diff(t).astype(np.int64)
        if (d <= 0).any() and not allow_time_jumps:
            i = int(np.flatnonzero(d <= 0)[0])
            raise typer.BadParameter(
                f"{path}: timestamps must be strictly increasing (line {i + 3} is not after line {i + 2}); "
                "sort the file, or pass --allow-time-jumps to score rows in file order (e.g. across a "
                "clock change)",
                param_hint="INPUT",
            )
        if max_gap > 0 and len(d) > 2:
            med = float(np.median(d[d > 0])) if (d > 0).any() else 0.0
            gaps = np.flatnonzero(d > max_gap * med)
            if len(gaps):
                i = int(gaps[0])
                raise typer.BadParameter(
                    f"{path}: {len(gaps)} gap(s) longer than {max_gap:g}x the median interval, first between "
                    f"lines {i + 2} and {i + 3} ({pd.Timestamp(t[i])} -> {pd.Timestamp(t[i + 1])}); fill or "
                    f"split the series, or pass --max-gap 0 to score across gaps",
                    param_hint="INPUT",
                )
    return pd.DataFrame({"timestamp": t, "value": values.to_numpy(dtype=float)})


def detect_command(
    input_pos: Annotated[Path | None, typer.Argument(metavar="[INPUT]", show_default=False,
                                                     help="CSV with timestamp,value columns (or --input).")] = None,
    output_pos: Annotated[Path | None, typer.Argument(metavar="[OUTPUT]", show_default=False,
                                                      help="Where to write the scores (or --output).")] = None,
    input_opt: Annotated[Path | None, typer.Option("--input", "-i",
                                                   help="CSV with timestamp,value columns, in time order.")] = None,
    output_opt: Annotated[Path | None, typer.Option("--output", "-o",
                                                    help="Where to write timestamp,value,anomaly_score[,alarm].")] = None,
    detector: Annotated[
        str, typer.Option(help=f"Detector name ({', '.join(sorted(DETECTORS))}).")
    ] = DEFAULT_DETECTOR,
    threshold: Annotated[
        float | None,
        typer.Option(
            help=f"Add an alarm column (score >= threshold). {RECOMMENDED_THRESHOLD} is the NAB-tuned value "
            "for the default detector."
        ),
    ] = None,
    warmup: Annotated[
        int | None,
        typer.Option(
            help="Rows learnt before scoring (scored 0). Default: NAB's rule, min(15% of rows, 750)."
        ),
    ] = None,
    max_gap: Annotated[
        float, typer.Option(help="Reject gaps longer than this many median intervals (0 = accept gaps).")
    ] = 3.0,
    allow_time_jumps: Annotated[
        bool,
        typer.Option(help="Accept timestamps that go backwards or repeat; rows are scored in file order."),
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG of series, scores and alarms here.")
    ] = None,
) -> None:
    """Score every row of a metric causally (each score only uses earlier rows).

    Input handling: the file must have ``timestamp`` and ``value`` columns, parseable timestamps in
    strictly increasing order and finite numeric values. Missing/NaN/non-numeric values are *rejected*
    with their line numbers rather than imputed, because an imputed value could hide or fake an
    anomaly. A gap longer than ``--max-gap`` median sampling intervals is also rejected (detectors
    treat consecutive rows as consecutive samples); with ``--max-gap 0`` gaps are accepted and the
    row after a gap is simply the next sample. Timestamps that repeat or go backwards (a clock
    change) are rejected unless ``--allow-time-jumps`` is given; rows are then scored in file order.
    Bad input exits non-zero with a one-line message, never a traceback.

    ``waimai detect --input F.csv --output G.csv`` and ``waimai detect F.csv G.csv`` are the same.
    """
    if input_pos is not None and input_opt is not None:
        raise typer.BadParameter("give the input once, as INPUT or --input", param_hint="--input")
    if output_pos is not None and output_opt is not None:
        raise typer.BadParameter("give the output once, as OUTPUT or --output", param_hint="--output")
    input = input_opt or input_pos
    output = output_opt or output_pos
    if input is None:
        raise typer.BadParameter("an input CSV is needed (INPUT or --input)", param_hint="--input")
    if output is None:
        raise typer.BadParameter("an output path is needed (OUTPUT or --output)", param_hint="--output")
    if detector not in DETECTORS:
        raise typer.BadParameter(
            f"unknown detector {detector!r}; choose from {', '.join(sorted(DETECTORS))}",
            param_hint="--detector",
        )
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise typer.BadParameter("threshold must be within [0, 1]", param_hint="--threshold")
    if warmup is not None and warmup < 0:
        raise typer.BadParameter("warmup must be >= 0", param_hint="--warmup")
    df = load_series(input, max_gap=max_gap, allow_time_jumps=allow_time_jumps)
    w = probation_rows(len(df)) if warmup is None else warmup
    det = get_detector(detector, warmup=w)
    scores = np.clip(det.score_series(df["timestamp"].to_numpy(), df["value"].to_numpy()), 0.0, 1.0)
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(df["timestamp"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "value": df["value"],
            "anomaly_score": np.round(scores, 6),
        }
    )
    if threshold is not None:
        out["alarm"] = (scores >= threshold).astype(int)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(output, index=False)
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="OUTPUT") from None
    if plot is not None:
        from waimai.firewall.detect.plots import plot_detection

        plot_detection(
            plot,
            df["timestamp"].to_numpy(),
            df["value"].to_numpy(),
            scores,
            threshold,
            title=f"{input.name} — {detector}",
            probation=w,
        )
    n_alarm = int((scores >= threshold).sum()) if threshold is not None else None
    typer.echo(
        f"scored {len(df)} rows with {detector} (warm-up {w}) -> {output}"
        + (f"; {n_alarm} alarm(s) at threshold {threshold}" if n_alarm is not None else "")
    )


def bench_nab_command(
    data: Annotated[Path, typer.Argument(help="NAB checkout (holds data/ and labels/).")],
    out: Annotated[Path, typer.Option(help="Results directory (NAB layout).")] = Path("nab_results"),
    plot: Annotated[Path | None, typer.Option(help="Write one PNG per file for the first detector.")] = None,
    detectors: Annotated[
        list[str] | None, typer.Option("--detector", "-d", help="Detector(s) to run (repeatable).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (each detector/file runs on one core).")] = 2,
    smoke: Annotated[bool, typer.Option(help="Four files, the default detector: only checks the bench works.")] = False,
) -> None:
    """Run the NAB v1.1 benchmark: three profiles, (a) corpus-tuned and (b) leave-one-category-out
    thresholds, points/s, and ratios against the baselines."""
    from waimai.core.benchenv import environment, header
    from waimai.core.extras import MissingExtra
    from waimai.firewall.detect.base import DEFAULT_DETECTOR
    from waimai.firewall.detect.nab import default_bench_detectors, run_nab_bench

    if not (data / "labels" / "combined_windows.json").is_file():
        raise typer.BadParameter(
            f"{data} does not look like NAB (labels/combined_windows.json missing)", param_hint="DATA"
        )
    unknown = [d for d in detectors or [] if d not in DETECTORS]
    if unknown:
        raise typer.BadParameter(f"unknown detector(s) {', '.join(unknown)}", param_hint="--detector")
    if smoke:
        detectors, workers = detectors or [DEFAULT_DETECTOR], 1
    try:  # a baseline from the `bench` extra that is not installed: say so before any worker starts
        for name in detectors or default_bench_detectors():
            get_detector(name)
    except MissingExtra as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(header(environment(extra={"detector processes": workers,
                                         "BLAS per detector": "1 thread (threadpoolctl)"})))
    run_nab_bench(data, out, plot, detectors or None, workers=workers, limit=4 if smoke else None)


def bench_forecast_command(
    data: Annotated[Path, typer.Argument(help="NAB checkout, or the nyc_taxi.csv file itself.")],
    plot: Annotated[Path | None, typer.Option(help="Write forecast-vs-actual PNGs here.")] = None,
    smoke: Annotated[bool, typer.Option(help="The last 13 weeks only: checks the bench works.")] = False,
) -> None:
    """Rolling-origin forecast benchmark (MASE at 30 and 60 minutes) on NYC taxi and a simulated
    campus order series, against seasonal naive, last-week-plus-deviation and statsmodels ETS."""
    from waimai.core.benchenv import environment, header
    from waimai.firewall.forecast.bench import run_forecast_bench

    path = data / "data" / "realKnownCause" / "nyc_taxi.csv" if data.is_dir() else data
    if not path.is_file():
        raise typer.BadParameter(f"{path} not found", param_hint="DATA")
    typer.echo(header(environment()))
    run_forecast_bench(path, plot, weeks=13 if smoke else None)


def bench_faults_command(
    seeds: Annotated[list[int] | None, typer.Option("--seed", "-s", help="Seed(s) to run (repeatable); "
                                                    "default: the held-out seeds 101-105.")] = None,
    tuning: Annotated[bool, typer.Option(help="Run the tuning seeds 1-3 instead.")] = False,
    days: Annotated[int, typer.Option(min=2, help="Days per seed; the first half is fault-free learning.")] = 14,
    smoke: Annotated[bool, typer.Option(help="One seed, two days, every series faulted: seconds, for tests.")] = False,
) -> None:
    """Product-fault benchmark: campus series at the sampler's 5 s cadence with injected faults;
    detection rate, median delay and false alarms per day summed over the series, for our per-series
    detectors, the NAB-tuned default and the static Prometheus thresholds, in the same run."""
    from waimai.core.benchenv import environment, header
    from waimai.firewall.detect.faults import HELD_OUT_SEEDS, TUNING_SEEDS, run_faults_bench

    typer.echo(header(environment()))

    if smoke:
        run_faults_bench(seeds or [7], days=2, warm_days=1, fault_share=1.0, echo=typer.echo)
        return
    chosen = seeds or list(TUNING_SEEDS if tuning else HELD_OUT_SEEDS)
    run_faults_bench(chosen, days=days, warm_days=days // 2, echo=typer.echo)
