"""Headless Chromium for tests that open a report page (skipped with a reason if absent)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The Chromium binary, or skip the test saying how to get it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")


def dump_dom(page: Path) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it."""
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def screenshot(page: Path, png: Path, size: str = "1200,1600") -> Path:
    """A PNG of the rendered page."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={size}",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return png


#: Injected by layout tests after the page's own script: measures what a reader sees and writes
#: it as JSON into <pre id="layout">, which ``dump_dom`` returns (layout, not pixels).
LAYOUT_PROBE = """
<script>
(function(){
function box(e){const r=e.getBoundingClientRect();return [r.left,r.top,r.right,r.bottom];}
const out={viewport:document.documentElement.clientWidth,runs:[],plots:[]};
document.querySelectorAll('.run').forEach(div=>{div.style.display='block';
 const svg=div.querySelector('svg');if(!svg){out.runs.push(null);return;}
 out.runs.push({svg:box(svg),ticks:[...svg.querySelectorAll('text.tick')].map(t=>[t.textContent,box(t)]),
  clients:[...svg.querySelectorAll('text.client')].map(t=>box(t)),
  bars:[...svg.querySelectorAll('rect.op')].map(r=>box(r)).slice(0,2000),
  fontPx:svg.querySelector('text.tick')?parseFloat(getComputedStyle(svg.querySelector('text.tick')).fontSize):0});});
document.querySelectorAll('.plot svg').forEach(svg=>out.plots.push([svg.parentElement.id,box(svg)]));
const pre=document.createElement('pre');pre.id='layout';pre.textContent=JSON.stringify(out);
document.body.appendChild(pre);
})();
</script>
"""


def layout(page: Path) -> dict:
    """What ``LAYOUT_PROBE`` measured on a copy of ``page`` rendered by Chromium."""
    import html
    import json
    import re

    probe = page.with_name(page.stem + "-layout.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    found = re.search(r'<pre id="layout">(.*?)</pre>', dump_dom(probe), re.S)
    assert found, "the layout probe did not run"
    return json.loads(html.unescape(found.group(1)))
