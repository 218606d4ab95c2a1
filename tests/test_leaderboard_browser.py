"""The generated leaderboard in a real browser: headless Chromium opens it from a local file.

Checks what a reader does: the table has the expected rows, clicking a header re-sorts, the
filters narrow the rows, a tokenizer named ``<script>`` shows as text, charts and audio load
from the site folder, and nothing is logged as an error or requested from the network.
"""

from __future__ import annotations

import json

import pytest

from tests.browser import Browser, file_url, find_chromium
from tests.report_fixtures import PROTOCOL_B, XSS_NAME, make_results
from tokbench.protocol import protocol_id
from tokbench.report import build_site

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; `make test` installs it)")

NAMES = "Array.from(document.querySelectorAll('#results tbody td.col-tokenizer a')).map(e => e.textContent)"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    index = build_site(make_results(root / "results"), root / "site")
    with Browser(CHROMIUM, timeout=90) as browser:
        browser.open(file_url(index))
        yield browser


def names(b: Browser) -> list[str]:
    return b.evaluate(NAMES)


def test_table_rows_and_escaping(page):
    assert names(page) == ["identity", XSS_NAME, "mulaw", "hubert-km500", "nodec"]
    assert page.evaluate("document.scripts.length") == 2  # the data block and the app, nothing else
    assert page.evaluate("document.querySelectorAll('#provenance b').length") == 0
    assert "evil/<b>repo</b>" in page.evaluate("document.getElementById('provenance').textContent")
    unsupported = page.evaluate("document.querySelector('#results td.unsupported').textContent")
    assert unsupported.startswith("not supported: nodec lacks the capability decode")
    gap = page.evaluate("document.querySelectorAll('#results tbody tr')[1].children[7].textContent")
    assert gap == "–"  # the <script> tokenizer has no secs
    best = page.evaluate("Array.from(document.querySelectorAll('#results td.best')).length")
    assert best == 5  # mulaw, once per metric column


def test_clicking_headers_sorts(page):
    page.click("#results th[data-key='m:pesq_wb']")
    assert names(page) == ["identity", "mulaw", XSS_NAME, "hubert-km500", "nodec"]
    sort = "document.querySelector(\"#results th[data-key='m:pesq_wb']\").getAttribute('aria-sort')"
    assert page.evaluate(sort) == "descending"  # pesq_wb is declared higher-is-better
    page.click("#results th[data-key='m:pesq_wb']")
    assert page.evaluate(sort) == "ascending"
    assert names(page)[:3] == [XSS_NAME, "mulaw", "identity"]  # unscored rows stay last
    page.click("#results th[data-key='m:wer']")  # lower is better: ascending first
    assert names(page)[:4] == ["identity", "mulaw", XSS_NAME, "hubert-km500"]
    page.click("#results th[data-key='kbps']")
    assert names(page)[:4] == ["hubert-km500", XSS_NAME, "mulaw", "identity"]


def test_filters(page):
    page.click("#f-kinds input[data-kind='semantic']")
    assert sorted(names(page)) == sorted(["identity", XSS_NAME, "mulaw"])
    page.click("#f-kbps-min")
    page.send("Input.insertText", {"text": "100"})
    assert sorted(names(page)) == ["identity", "mulaw"]
    page.click("#f-search")
    page.send("Input.insertText", {"text": "mu"})
    assert names(page) == ["mulaw"]
    assert page.evaluate("document.getElementById('row-count').textContent") == "showing 1 of 5 rows"
    other = protocol_id(PROTOCOL_B)
    page.evaluate("(() => { const s = document.getElementById('f-protocol'); s.value = "
                  f"{json.dumps(other)}; s.dispatchEvent(new Event('change')); }})()")
    assert names(page) == []  # the filters still apply: mulaw-4bit is 64 kbps ...
    assert page.evaluate("document.getElementById('empty').textContent") == "No row matches the filters."
    page.evaluate("(() => { const s = document.getElementById('f-search'); s.value = '';"
                  " s.dispatchEvent(new Event('input')); const k = document.getElementById('f-kbps-min');"
                  " k.value = ''; k.dispatchEvent(new Event('input')); })()")
    assert names(page) == ["mulaw-4bit"]  # ... and the other protocol's table has its own row
    radar = page.evaluate("document.querySelector(\"#charts [data-chart='radar']\").textContent")
    assert "needs at least 3" in radar  # said in the chart's place


def test_by_param_table(page):
    page.evaluate("(() => { const s = document.getElementById('f-protocol'); s.value = s.options[0].value;"
                  " s.dispatchEvent(new Event('change')); })()")
    parts = page.evaluate("Array.from(document.getElementById('f-part').options).map(o => o.textContent)")
    assert parts == ["results", "token_entropy, codebook_utilisation (by param)"]
    page.evaluate("(() => { const s = document.getElementById('f-part'); s.value = s.options[1].value;"
                  " s.dispatchEvent(new Event('change')); })()")
    assert names(page) == ["mulaw"]
    cells = page.evaluate("Array.from(document.querySelectorAll('#results tbody td')).map(e => e.textContent)")
    assert cells[:3] == ["acoustic", "mulaw", "0"]  # the param column
    headers = page.evaluate("Array.from(document.querySelectorAll('#results th')).map(e => e.dataset.key)")
    assert headers[-2:] == ["m:token_entropy", "m:codebook_utilisation"]


def test_assets_load_and_no_errors(page):
    page.evaluate("(() => { const s = document.getElementById('f-protocol'); s.value = s.options[0].value;"
                  " s.dispatchEvent(new Event('change')); })()")
    page.evaluate("Promise.all(Array.from(document.images).map(i => i.decode()))")
    images = page.evaluate("Array.from(document.querySelectorAll('#charts img'))"
                           ".map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(images) == 2 and all(width > 0 for _, width in images)
    assert all(src.startswith("charts/") for src, _ in images)
    audio = page.evaluate("Array.from(document.querySelectorAll('#examples audio')).map(a => a.getAttribute('src'))")
    assert len(audio) == 4 and all(src.startswith("audio/") for src in audio)
    duration = page.evaluate("new Promise(r => { const a = document.querySelector('#examples audio');"
                             " a.preload = 'auto'; a.onloadedmetadata = () => r(a.duration); a.onerror = () => r(-1);"
                             " a.load(); })")
    assert duration == pytest.approx(0.1, abs=0.01)  # 1600 samples at 16 kHz, read from the copy
    assert page.problems() == []
