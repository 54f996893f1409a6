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
