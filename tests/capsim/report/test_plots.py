"""Tests of capsim/report/plots.py: PNG and SVG plots of runs, the same every time."""

from capsim.report import write_plots


def test_plots_are_written_as_png_and_svg_the_same_every_time(runs, tmp_path):
    """Each plot exists as a PNG and an SVG, and drawing again gives identical files."""
    plots = write_plots(tmp_path / "a", runs)
    again = write_plots(tmp_path / "b", runs)
    assert set(plots) == {"throughput", "latency", "staleness"}
    for name, (png, svg) in plots.items():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "<svg" in svg.read_text()
        assert svg.read_bytes() == again[name][1].read_bytes() and png.read_bytes() == again[name][0].read_bytes()


def test_a_plot_with_nothing_to_show_is_left_out(runs, tmp_path):
    """No stale reads anywhere: no staleness plot; some: a panel only for the runs that had them."""
    import dataclasses

    calm = [dataclasses.replace(run, stale=[]) for run in runs]
    assert "staleness" not in write_plots(tmp_path / "calm", calm)
    mixed = [calm[0], runs[1]]
    svg = write_plots(tmp_path / "mixed", mixed)["staleness"][1].read_text()
    assert "seed 2" in svg and "seed 1" not in svg


def test_the_throughput_plot_is_ok_ops_per_second_by_invocation_recounted_from_the_history():
    """Each side's line is its ok ops invoked in each bucket over the bucket's length, recounted here from the raw
    ops; the last bucket ends with the run (it was divided by a whole bucket: a rate too low at the end)."""
    from capsim.report import Run
    from capsim.report.plots import plot_throughput, pyplot

    history = []
    for n in range(40):  # alice every 0.05 s from 0.01 s, ok; bob every 0.1 s from 0.013 s, one in three fails
        history += [
            {"process": n, "type": "invoke", "f": "read", "time": 0.01 + 0.05 * n, "client": "alice"},
            {"process": n, "type": "ok", "f": "read", "time": 0.02 + 0.05 * n, "client": "alice"},
        ]
    for n in range(20):
        kind = "fail" if n % 3 == 0 else "ok"
        history += [
            {"process": 100 + n, "type": "invoke", "f": "write", "time": 0.1 * n + 0.013, "client": "bob"},
            {"process": 100 + n, "type": kind, "f": "write", "time": 0.1 * n + 0.016, "client": "bob"},
        ]
    history.sort(key=lambda op: op["time"])
    run = Run("r", history, {}, sides={"a": ["alice"], "b": ["bob"]})
    end = max(op["time"] for op in history)
    fig = plot_throughput([run])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    width = lines["a"].get_xdata()[1] - lines["a"].get_xdata()[0]
    for side, client in (("a", "alice"), ("b", "bob")):
        xs, ys = lines[side].get_xdata(), lines[side].get_ydata()
        assert xs[-1] <= end < xs[-1] + width
        done = {op["process"]: op["type"] for op in history if op["type"] != "invoke"}
        for x, y in zip(xs, ys):
            invoked = [
                op
                for op in history
                if op["type"] == "invoke" and op["client"] == client and x <= op["time"] < x + width
            ]
            ok = sum(done[op["process"]] == "ok" for op in invoked)
            assert abs(y - ok / min(width, end - x)) < 1e-6, (side, x)
    pyplot().close(fig)
