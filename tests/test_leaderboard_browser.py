"""The generated leaderboard in a real browser: headless Chromium opens it from a local file.

Checks what a reader does: the page opens on recon on the dataset with the most runs in the
compact view, the table has the expected rows, clicking a header re-sorts, the filters narrow
the rows, the tokenizer column and the header stay in place when the table scrolls, a tokenizer
named ``<script>`` shows as text, the Pareto chart, the other charts and the audio players load
from the site folder, and nothing is logged as an error or requested from the network.
"""

from __future__ import annotations

import json

import pytest

from tests.browser import Browser, file_url, find_chromium
from tests.report_fixtures import (
    PROTOCOL_A,
    PROTOCOL_B,
    XSS_NAME,
    make_meta,
    make_results,
    write_run,
)
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
    results = make_results(root / "results")
    # a dataset that sorts first but has one run: the page must still open on `sample`
    write_run(results, make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
              {"pesq_wb": [3.0, 3.1], "stoi": [0.9, 0.9]}, dataset="aaa-small")
    index = build_site(results, root / "site")
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
    # tokenizer, kind, kbps, then the compact columns wer, pesq_wb, stoi, secs
    gap = page.evaluate("document.querySelectorAll('#results tbody tr')[1].children[6].textContent")
    assert gap == "–"  # the <script> tokenizer has no secs
    best = page.evaluate("Array.from(document.querySelectorAll('#results td.best')).length")
    assert best == 4  # mulaw, once per metric column shown


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
    assert parts == ["main results", "token_entropy, codebook_utilisation (by param)"]
    page.evaluate("(() => { const s = document.getElementById('f-part'); s.value = s.options[1].value;"
                  " s.dispatchEvent(new Event('change')); })()")
    assert names(page) == ["mulaw"]
    cells = page.evaluate("Array.from(document.querySelectorAll('#results tbody td')).map(e => e.textContent)")
    assert cells[:3] == ["mulaw", "acoustic", "0"]  # the param column
    headers = page.evaluate("Array.from(document.querySelectorAll('#results th')).map(e => e.dataset.key)")
    assert headers[-2:] == ["m:token_entropy", "m:codebook_utilisation"]


def test_assets_load_and_no_errors(page):
    page.evaluate("(() => { const s = document.getElementById('f-protocol'); s.value = s.options[0].value;"
                  " s.dispatchEvent(new Event('change')); })()")
    page.evaluate("Promise.all(Array.from(document.images).map(i => i.decode()))")
    images = page.evaluate("Array.from(document.querySelectorAll('#charts img, #pareto img'))"
                           ".map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(images) == 3 and all(width > 0 for _, width in images)  # radar, bitrate, Pareto
    assert all(src.startswith("charts/") for src, _ in images)
    audio = page.evaluate("Array.from(document.querySelectorAll('#examples audio')).map(a => a.getAttribute('src'))")
    assert len(audio) == 2 and all(src.startswith("audio/") for src in audio)
    duration = page.evaluate("new Promise(r => { const a = document.querySelector('#examples audio');"
                             " a.preload = 'auto'; a.onloadedmetadata = () => r(a.duration); a.onerror = () => r(-1);"
                             " a.load(); })")
    assert duration == pytest.approx(0.1, abs=0.01)  # 1600 samples at 16 kHz, read from the copy
    assert page.problems() == []


def select(page: Browser, element_id: str, value: str) -> None:
    page.evaluate(f"(() => {{ const s = document.getElementById({json.dumps(element_id)}); "
                  f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()")


def test_default_view_is_recon_on_the_biggest_dataset_in_compact_mode(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb-default")
    results = make_results(root / "results")
    write_run(results, make_meta("mulaw", "acoustic", 16000.0, (256,)), "mulaw",
              {"pesq_wb": [3.0, 3.1]}, dataset="aaa-small")
    index = build_site(results, root / "site", charts=False)
    with Browser(CHROMIUM, timeout=90) as b:
        b.open(file_url(index))
        value = "(id => document.getElementById(id).value)"
        assert b.evaluate(f"{value}('f-task')") == "recon"
        assert b.evaluate(f"{value}('f-dataset')") == "sample"  # 6 runs, not aaa-small's 1
        assert b.evaluate(f"{value}('f-protocol')") == protocol_id(PROTOCOL_A)
        heads = "Array.from(document.querySelectorAll('#results th')).map(e => e.dataset.key)"
        assert b.evaluate(heads) == ["tokenizer", "kind", "kbps", "m:wer", "m:pesq_wb", "m:stoi", "m:secs"]
        b.click("#f-columns")  # everything else is one click away
        assert b.evaluate(heads)[-2:] == ["m:secs", "m:mel_l1"] and "token_rate" in b.evaluate(heads)
        swatches = b.evaluate("Array.from(document.querySelectorAll('#results td.col-tokenizer .swatch'))"
                              ".map(s => getComputedStyle(s).backgroundColor)")
        assert swatches[0] == "rgb(85, 85, 85)"  # ground truth grey, as in the charts
        assert len(set(swatches[1:4])) == 3  # three families, three colours
        assert b.problems() == []


def test_sticky_column_and_header(page):
    select(page, "f-protocol", protocol_id(PROTOCOL_A))
    box = "document.querySelector('#results-section .table-wrap')"
    page.evaluate(f"(() => {{ const w = {box}; w.style.maxWidth = '320px'; w.style.maxHeight = '140px';"
                  " w.scrollLeft = 0; w.scrollTop = 0; })()")
    where = ("(() => { const w = " + box + ", r = w.getBoundingClientRect();"
             " const name = document.querySelector('#results tbody tr:last-child td.col-tokenizer').getBoundingClientRect();"
             " const kbps = document.querySelector('#results tbody tr:last-child td.col-kbps').getBoundingClientRect();"
             " const th = document.querySelector('#results th[data-key=kbps]').getBoundingClientRect();"
             " return [name.left - r.left, kbps.left - r.left, th.top - r.top]; })()")
    before = page.evaluate(where)
    page.evaluate(f"(() => {{ const w = {box}; w.scrollLeft = 150; w.scrollTop = 200; }})()")
    after = page.evaluate(where)
    assert after[0] == pytest.approx(before[0], abs=1)  # the tokenizer column stays
    assert after[1] < before[1] - 100  # the other columns scrolled
    assert after[2] == pytest.approx(before[2], abs=1)  # the header row stays
    page.evaluate(f"(() => {{ const w = {box}; w.style.maxWidth = ''; w.style.maxHeight = ''; }})()")


def test_pareto_view_and_audio_players(page):
    select(page, "f-protocol", protocol_id(PROTOCOL_A))
    metrics = page.evaluate("Array.from(document.getElementById('f-pareto').options).map(o => o.value)")
    assert metrics == ["pesq_wb", "wer", "stoi", "secs"]
    src = "document.querySelector('#pareto img').getAttribute('src')"
    assert page.evaluate(src).endswith("-pareto-pesq_wb.svg")
    select(page, "f-pareto", "stoi")
    assert page.evaluate(src).endswith("-pareto-stoi.svg")
    assert page.evaluate("document.querySelector('#pareto img').decode().then(() => true)")
    utts = page.evaluate("Array.from(document.getElementById('f-utterance').options).map(o => o.value)")
    assert utts == ["utt0", "utt1"]
    labels = "Array.from(document.querySelectorAll('#examples .player .label')).map(e => e.textContent)"
    assert page.evaluate(labels) == ["original", "reconstruction"]
    who = page.evaluate("Array.from(document.querySelectorAll('#examples .example .who')).map(e => e.textContent)")
    assert who == ["mulaw"]
    first = page.evaluate("document.querySelector('#examples audio').getAttribute('src')")
    select(page, "f-utterance", "utt1")
    assert page.evaluate("document.querySelector('#examples audio').getAttribute('src')") != first
    assert page.problems() == []


def test_published_figure_beside_ours(tmp_path):
    from tests.test_report_views import REFERENCE, meta

    ds = "librispeech-test-clean"
    write_run(tmp_path, meta("encodec-24k", "encodec", "acoustic", 75.0, (1024,) * 8),
              "encodec-24k-6kbps", {"pesq_wb": [2.6, 2.9, 2.7, 2.8], "stoi": [0.5] * 4}, dataset=ds)
    index = build_site(tmp_path, tmp_path / "site", reference=REFERENCE, charts=False)
    with Browser(CHROMIUM, timeout=90) as b:
        b.open(file_url(index))
        lines = b.evaluate("Array.from(document.querySelectorAll('#results tbody tr:not(.reported) a.published'))"
                           ".map(a => [a.textContent, a.className])")
        assert lines == [["reported 2.77 (Δ -0.0200, in our CI) ≈", "published in-ci"],
                         ["reported 0.94 (Δ -0.440, outside our CI) ≈", "published out-ci"]]
        published = b.evaluate("JSON.parse(document.getElementById('tokbench-data').textContent).references"
                               ".filter(r => r.task === 'recon' && r.dataset === 'librispeech-test-clean')"
                               ".reduce((n, r) => n + r.rows.length, 0)")
        assert published >= 16  # every published row of that dataset is also shown as a row
        assert b.evaluate("document.querySelectorAll('#results tbody tr.reported').length") == published
        assert b.problems() == []
