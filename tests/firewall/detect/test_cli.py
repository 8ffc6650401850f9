"""detect CLI: good input works, bad input gives a clear message and a non-zero exit (no traceback)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from waimai.firewall.detect.cli import detect_command

app = typer.Typer()
app.command("detect")(detect_command)
app.command("noop")(lambda: None)  # keep Typer in multi-command mode
runner = CliRunner()


def write(tmp_path, df: pd.DataFrame, name: str = "in.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def good_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    v = 10 + np.sin(np.arange(n) / 8) + rng.normal(0, 0.1, n)
    v[300] += 8
    return pd.DataFrame({"timestamp": pd.date_range("2024-03-01", periods=n, freq="5min"), "value": v})


def run(*args):
    return runner.invoke(app, ["detect", *map(str, args)])


def flat(text: str) -> str:
    """Error text without Rich's box drawing and line wrapping."""
    for ch in "│╭╮╰╯─":
        text = text.replace(ch, " ")
    return " ".join(text.split())


def test_detect_writes_scores_and_alarms(tmp_path):
    src = write(tmp_path, good_frame())
    out = tmp_path / "out.csv"
    res = run(src, out, "--threshold", "0.5", "--plot", tmp_path / "p.png")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert list(df.columns) == ["timestamp", "value", "anomaly_score", "alarm"]
    assert len(df) == 400 and df["anomaly_score"].between(0, 1).all()
    assert df["alarm"].iloc[300] == 1  # the injected spike
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_detect_without_threshold_has_no_alarm_column(tmp_path):
    out = tmp_path / "out.csv"
    assert run(write(tmp_path, good_frame()), out, "--detector", "windowed_gaussian").exit_code == 0
    assert list(pd.read_csv(out).columns) == ["timestamp", "value", "anomaly_score"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df: df.rename(columns={"value": "v"}), "missing column(s) value"),
        (lambda df: df.drop(columns=["timestamp"]), "missing column(s) timestamp"),
        (
            lambda df: df.assign(timestamp=df["timestamp"].astype(str).where(df.index != 7, "not a date")),
            "unparsable timestamp on line(s) 9",
        ),
        (lambda df: df.assign(value=df["value"].where(df.index != 3, np.nan)), "line(s) 5"),
        (lambda df: df.assign(value=df["value"].astype(object).where(df.index != 4, "abc")), "non-numeric"),
        (lambda df: df.drop(index=range(100, 130)), "gap(s) longer than 3x"),
        (lambda df: df.iloc[::-1], "strictly increasing"),
        (lambda df: df.iloc[0:0], "no data rows"),
    ],
)
def test_bad_input_is_rejected_cleanly(tmp_path, mutate, message):
    src = write(tmp_path, mutate(good_frame()))
    res = run(src, tmp_path / "out.csv")
    assert res.exit_code != 0
    assert message in flat(res.output), res.output
    assert isinstance(res.exception, SystemExit)  # a clean exit, not a traceback
    assert not (tmp_path / "out.csv").exists()


def test_gap_accepted_with_max_gap_zero(tmp_path):
    src = write(tmp_path, good_frame().drop(index=range(100, 130)))
    assert run(src, tmp_path / "out.csv", "--max-gap", "0").exit_code == 0


def test_missing_file_unknown_detector_and_bad_threshold(tmp_path):
    assert run(tmp_path / "nope.csv", tmp_path / "o.csv").exit_code != 0
    src = write(tmp_path, good_frame())
    res = run(src, tmp_path / "o.csv", "--detector", "magic")
    assert res.exit_code != 0 and "unknown detector" in res.output
    assert run(src, tmp_path / "o.csv", "--threshold", "2").exit_code != 0
    (tmp_path / "junk.csv").write_bytes(b"\x00\xff\xfe garbage")
    assert run(tmp_path / "junk.csv", tmp_path / "o.csv").exit_code != 0


def test_time_jumps_need_the_flag(tmp_path):
    df = good_frame()
    df.loc[200:, "timestamp"] -= pd.Timedelta(hours=1)  # clock set back one hour
    src = write(tmp_path, df)
    res = run(src, tmp_path / "out.csv")
    assert res.exit_code != 0 and "strictly increasing" in flat(res.output)
    assert run(src, tmp_path / "out.csv", "--allow-time-jumps").exit_code == 0
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(df)


def test_input_and_output_as_options_or_positions_give_the_same_file(tmp_path):
    src = write(tmp_path, good_frame())
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("--input", src, "--output", a, "--threshold", "0.5").exit_code == 0
    assert run(src, b, "--threshold", "0.5").exit_code == 0
    assert a.read_text() == b.read_text()
    both = run(src, b, "--input", src)
    assert both.exit_code != 0 and "once" in flat(both.output)
    missing = run("--input", src)
    assert missing.exit_code != 0 and "output" in flat(missing.output).lower()
