"""Tests of emulator/check/timeline.py: the self-contained HTML timeline."""

import re

from emulator.check.linearizable import check_file, linearizable
from emulator.check.timeline import render_html, write_html


def _verdict(history):
    h = history().nemesis("partition", ["n1"]).op(1, "write", 1, key="k").op(2, "read", out=None, key="k")
    h.op(3, "write", 9, key="j", kind="info").op(3, "read", key="j", kind="fail")
    return linearizable(h.ops, model="register")


def test_page_is_self_contained(history):
    """The page loads nothing from outside: no src, no href, no url()."""
    page = render_html(_verdict(history))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"\b(src|href)=|url\(|@import", page)


def test_one_row_per_process_and_one_bar_per_op(history):
    """Every process gets a row and every op a bar."""
    page = render_html(_verdict(history))
    assert re.findall(r'<div class="lbl">(p\d+)</div>', page) == ["p1", "p2", "p3"]
    assert page.count('<div class="op ') == 4


def test_failing_op_is_marked_and_ranks_shown(history):
    """The op that cannot follow is marked stuck; the prefix carries ranks and a green edge.

    A red line marks the spot.
    """
    page = render_html(_verdict(history))
    assert re.search(r'class="op ok stuck"[^>]*><span>read\(&quot;k&quot;\) -&gt; null</span><', page)
    assert re.search(r'class="op ok lin"[^>]*><span>1. write\(&quot;k&quot;, 1\) -&gt; ok</span><', page)
    assert 'class="stuckline"' in page


def test_bars_follow_real_time_and_labels_are_whole(history):
    """A bar's left edge and width follow its call and return times; the label is never cut."""
    h = history()
    h.invoke(1, "get", key="k", time=0.0).complete(1, "ok", "", time=1.0)
    h.invoke(2, "put", "x" * 40, key="k", time=2.0).complete(2, "ok", time=2.001)
    page = render_html(linearizable(h.ops, model="kv"))
    (first, second) = re.findall(r'style="left:([\d.]+)px;width:([\d.]+)px"', page)
    assert float(first[0]) == 0.0 and float(second[0]) > float(first[1])  # the put starts after the get ends
    assert "put(&quot;k&quot;, &quot;" + "x" * 40 + "&quot;) -&gt; ok</span>" in page
    assert "overflow:visible" in page


def test_dropped_and_indeterminate_ops_are_styled(history):
    """A failed read is faded as dropped; an info write is drawn as indeterminate."""
    page = render_html(_verdict(history))
    assert 'class="op fail dropped"' in page and 'class="op info"' in page


def test_hover_shows_op_details_and_faults_are_drawn(history):
    """Bars carry their details in a title; nemesis ops are vertical lines."""
    page = render_html(_verdict(history))
    assert (
        "process 2, op 1, ok\nkey &quot;k&quot;, value null, output null\ninvoked #3 at t=0.03, completed #4 at t=0.04"
        in page
    )
    assert 'class="nem"' in page and "partition" in page


def test_key_buttons_mark_the_failing_key(history):
    """Each key gets a button; failing ones are marked bad and selected on load."""
    page = render_html(_verdict(history))
    assert '<button class="bad" data-k="0"' in page and '<button class="" data-k="1"' in page
    assert "querySelector('.keys button.bad')" in page


def test_text_is_escaped(history):
    """Values with markup in them are escaped, not injected."""
    h = history().op(1, "write", "<script>alert(1)</script>").op(2, "read", out="<b>")
    page = render_html(linearizable(h.ops, model="register"))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_write_html_writes_the_page(tmp_path, kv_histories):
    """write_html (and Verdict.write_html) write the same page to disk."""
    verdict = check_file(kv_histories["c01-bad"][0])
    a, b = write_html(verdict, tmp_path / "a.html"), verdict.write_html(tmp_path / "b.html")
    assert a.read_text() == b.read_text() == verdict.html()
    assert "NOT linearizable" in a.read_text()


def test_a_keyword_key_and_a_string_key_get_a_button_each_shown_apart():
    """Jepsen's [:a v] and ["a" v] are two keys, labelled :a and "a" (they were one button, "a")."""
    from emulator.check.readers import parse_history

    text = "".join(
        f"{{:process {p}, :type :{t}, :f :write, :value [{k} 1]}}\n"
        for p, k in ((0, ":a"), (1, '"a"'))
        for t in ("invoke", "ok")
    )
    page = render_html(linearizable(parse_history(text)))
    assert re.findall(r'<button class="" data-k="\d+"[^>]*>([^<]*): ok</button>', page) == [":a", "&quot;a&quot;"]
    assert "write(:a, 1) -&gt; ok" in page and "write(&quot;a&quot;, 1) -&gt; ok" in page


def test_the_witnesses_of_a_read_no_order_can_place_are_outlined_and_say_why(history):
    """A key refuted by a look at its reads: the read and the late write of its value are drawn as witnesses,
    each with its part in the hover text; the other ops are not."""
    h = history()
    for p in range(14):
        h.invoke(p, "write", p)
    for p in range(14):
        h.ok(p)
    page = render_html(linearizable(h.op(99, "read", out=77).op(98, "write", 77).ops, model="register"))
    assert page.count(" witness") == 2 and ".op.witness{border:2px dashed" in page
    read = re.search(r'<div class="op ok[^"]* witness"[^>]*title="([^"]*)"[^>]*><span>read\(\) -&gt; 77<', page)
    assert read and "no order exists: this op returned a value no op could have left by the time it returned" in (
        read.group(1)
    )
    assert "the first op that could leave the value read, invoked after it" in page
    assert "returned 77, not the initial value" in page  # the note, in the explanation above the timeline
