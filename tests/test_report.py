"""The HTML report: one self-contained file, its plots and cards, escaping, the explorer's
data, and (where a headless Chromium is installed) how a real browser renders it."""
import html
import json
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

from gibbslda import LDA, NotFittedError
from gibbslda import report
from gibbslda.evaluate import split_users
from gibbslda.report import render_report, write_report
from gibbslda.synthetic import planted_corpus

N_TOPICS = 4
HOSTILE = '<script>alert("x")</script> & co'
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT = 120  # seconds; a cold Chromium start on a busy 2-core machine takes ~5


@pytest.fixture(scope="module")
def heldout_model():
    """4 planted topics, fitted with held-out users so the history has a held-out line."""
    data = planted_corpus(150, 60, N_TOPICS, mean_length=30, seed=3)
    split = split_users(data.corpus, seed=0)
    return LDA(N_TOPICS, n_iter=20, eval_every=5, random_state=0).fit(
        split.train, heldout=(split.observed, split.hidden))


@pytest.fixture(scope="module")
def plain_model():
    data = planted_corpus(150, 60, N_TOPICS, mean_length=30, seed=3)
    return LDA(N_TOPICS, n_iter=20, eval_every=5, random_state=0).fit(data.corpus)


def labels_for(model) -> list[str]:
    """"item w" for every item, with HOSTILE on topic 0's top item (so it is shown)."""
    labels = [f"item {w}" for w in range(len(model.item_ids_))]
    labels[int(np.argmax(model.topic_word_[0]))] = HOSTILE
    return labels


def explorer_data(text: str) -> dict:
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                      text, re.S)
    assert match, "no explorer data in the page"
    assert "<" not in match.group(1)
    return json.loads(match.group(1))


def test_write_report_writes_one_self_contained_utf8_file(heldout_model, tmp_path):
    path = write_report(heldout_model, tmp_path / "report.html",
                        item_labels=labels_for(heldout_model))
    assert path == tmp_path / "report.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    text = path.read_bytes().decode("utf-8")  # strict: raises on invalid UTF-8
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<(link|img|iframe|object|embed|base)\b", text, re.I)
    assert not re.search(r"\b(src|href|action)\s*=", text, re.I)
    assert "url(" not in text and "@import" not in text
    assert "default-src 'none'" in text  # the browser refuses any request anyway


@pytest.mark.parametrize("fixture, heldout_lines", [("heldout_model", 2), ("plain_model", 0)])
def test_report_has_its_plots_cards_and_explorer(request, fixture, heldout_lines):
    model = request.getfixturevalue(fixture)
    text = render_report(model, n_items=7, n_users=30)
    assert text.count("<svg") == 3  # log-lik by iteration, by seconds; interest sizes
    assert text.count('class="series training"') == 2
    assert text.count('class="series held-out"') == heldout_lines
    assert text.count('class="topic-card"') == N_TOPICS
    assert text.count("<tr><td>") == N_TOPICS * 7
    assert text.count("<rect") == 2 * N_TOPICS + 2 + 2 * (1 + (heldout_lines > 0))
    assert 'id="user-select"' in text and len(explorer_data(text)["users"]) == 30


def test_item_labels_from_data_are_escaped(heldout_model):
    text = render_report(heldout_model, item_labels=labels_for(heldout_model),
                         title="<b>title</b>")
    assert "<script>alert" not in text and "<b>title" not in text
    assert html.escape(HOSTILE) in text and "&lt;b&gt;title&lt;/b&gt;" in text
    assert text.count("<script") == 2  # the explorer's data and code, nothing injected
    assert any(HOSTILE in label for label in explorer_data(text)["topics"])


def test_explorer_data_matches_the_model(heldout_model):
    model, labels = heldout_model, labels_for(heldout_model)
    data = explorer_data(render_report(model, item_labels=labels, n_users=25))
    heaviest = np.argsort(-model.corpus_.lengths, kind="stable")[:25]
    assert [u["id"] for u in data["users"]] == [str(i) for i in model.user_ids_[heaviest]]
    assert [u["n_tokens"] for u in data["users"]] == model.corpus_.lengths[heaviest].tolist()
    theta = np.array([u["theta"] for u in data["users"]])
    # rounded to report.THETA_DECIMALS places, so within half a unit of the last place
    np.testing.assert_allclose(theta, model.doc_topic_[heaviest], rtol=0,
                               atol=0.5 * 10.0 ** -report.THETA_DECIMALS)
    top = np.argsort(-model.topic_word_, axis=1, kind="stable")[:, :3]
    assert data["topics"] == [" / ".join(labels[w] for w in row) for row in top]
    first = heaviest[0]
    words = model.corpus_.words[model.corpus_.indptr[first]:model.corpus_.indptr[first + 1]]
    counts = np.bincount(words, minlength=len(labels))
    assert data["users"][0]["items"][0] == labels[int(np.argmax(counts))]


def test_n_users_zero_leaves_the_explorer_out(plain_model):
    text = render_report(plain_model, n_users=0)
    assert "<script" not in text and 'id="explorer"' not in text


def test_n_users_beyond_the_corpus_embeds_every_user(plain_model):
    data = explorer_data(render_report(plain_model, n_users=10_000))
    assert len(data["users"]) == plain_model.corpus_.n_users


def test_item_labels_mapping_and_missing_labels_fall_back_to_ids(plain_model):
    ids = plain_model.item_ids_
    top = np.argsort(-plain_model.topic_word_[0], kind="stable")[:3]
    mapping = {ids[top[0]]: "  First title  ", ids[top[1]]: None}
    data = explorer_data(render_report(plain_model, item_labels=mapping))
    assert data["topics"][0] == f"First title / {ids[top[1]]} / {ids[top[2]]}"
    aligned = [None, float("nan"), "", *["x"] * (len(ids) - 3)]
    labels = report._item_labels(ids, aligned)
    assert list(labels[:4]) == [str(ids[0]), str(ids[1]), str(ids[2]), "x"]


def test_render_is_deterministic_and_survives_save_and_load(plain_model, tmp_path):
    text = render_report(plain_model)
    assert render_report(plain_model) == text
    plain_model.save(tmp_path / "model")
    assert render_report(LDA.load(tmp_path / "model")) == text


def test_write_report_is_atomic(plain_model, tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    path.write_text("old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(plain_model, path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # temp file removed
    monkeypatch.undo()
    write_report(plain_model, path)
    assert path.read_text() == render_report(plain_model)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_items": 0}, ValueError, "n_items must be >= 1, got 0"),
    ({"n_items": 2.5}, TypeError, "n_items must be an integer, got 2.5"),
    ({"n_users": -1}, ValueError, "n_users must be >= 0, got -1"),
    ({"n_users": True}, TypeError, "n_users must be an integer, got True"),
    ({"item_labels": ["a", "b"]}, ValueError, r"one label per item \(60, aligned"),
])
def test_invalid_parameters(plain_model, kwargs, error, message):
    with pytest.raises(error, match=message):
        render_report(plain_model, **kwargs)


def test_unfitted_model_is_refused(tmp_path):
    with pytest.raises(NotFittedError):
        write_report(LDA(3), tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lo, hi", [(-5.53, -2.61), (0.0, 0.0024), (3.0, 3.0), (0.0, 0.148),
                                    (-11.2, -7.6), (0.0, 100.0)])
def test_ticks_are_round_and_cover_the_range(lo, hi):
    ticks, start, end, step = report._ticks(lo, hi)
    assert start <= lo and end >= hi and start < end
    assert ticks[0] == pytest.approx(start) and ticks[-1] == pytest.approx(end)
    assert 3 <= len(ticks) <= 12
    np.testing.assert_allclose(np.diff(ticks), step)
    mantissa = step / 10.0 ** np.floor(np.log10(step))
    assert any(np.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def test_tick_labels_show_the_step_precision():
    assert report._fmt(0.0005, 0.0005) == "0.0005"
    assert report._fmt(-2.5, 0.5) == "-2.5"
    assert report._fmt(20.0, 10.0) == "20"
    assert report._fmt(0.125, 0.025, percent=True) == "12.5%"


# -- a real browser ----------------------------------------------------------------------
def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser on PATH (chromium, chromium-browser or google-chrome);"
                " on Debian: apt-get install -y --no-install-recommends chromium")


def run_browser(path, tmp_path, *args) -> subprocess.CompletedProcess:
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", *args, path.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB(A), non-interlaced PNG with the stdlib and numpy: (H, W, C)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, pos = {}, 8
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8:pos + 8 + size])
        pos += size + 12
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB",
                                                                 chunks[b"IHDR"][0])
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    channels = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), np.uint8)
    raw = raw.reshape(height, width * channels + 1)
    kinds, filtered = raw[:, 0], raw[:, 1:].reshape(height, width, channels).astype(np.int16)
    out = np.zeros((height + 1, width + 1, channels), np.int16)  # zero row above, col left
    # Pixel (r, x) needs (r, x-1), (r-1, x) and (r-1, x-1): undo the filters one
    # anti-diagonal at a time, vectorised along it.
    for s in range(height + width - 1):
        r = np.arange(max(0, s - width + 1), min(height, s + 1))
        x = s - r
        a, b, c = out[r + 1, x], out[r, x + 1], out[r, x]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        k = kinds[r][:, None]
        pred = np.select([k == 0, k == 1, k == 2, k == 3], [0, a, b, (a + b) >> 1], paeth)
        out[r + 1, x + 1] = (filtered[r, x] + pred) & 255
    return out[1:, 1:].astype(np.uint8)


def test_png_reader_undoes_every_filter():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    rows = []
    for r, kind in enumerate([0, 1, 2, 3, 4]):
        cur = image[r].astype(np.int16)
        left = np.vstack([np.zeros((1, 3), np.int16), cur[:-1]])
        up = image[r - 1].astype(np.int16) if r else np.zeros_like(cur)
        ul = np.vstack([np.zeros((1, 3), np.int16), up[:-1]])
        p = left + up - ul
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - ul)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
        pred = [0 * cur, left, up, (left + up) // 2, paeth][kind]
        rows.append(bytes([kind]) + ((cur - pred) & 255).astype(np.uint8).tobytes())

    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 5, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    np.testing.assert_array_equal(read_png(png), image)


def near(image: np.ndarray, color: str, tolerance: int = 3) -> int:
    """Pixels within ``tolerance`` per channel of the colour "#rrggbb"."""
    rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image[:, :, :3].astype(int) - rgb) <= tolerance).all(axis=2).sum())


@pytest.mark.slow
def test_headless_chromium_renders_the_plots_and_runs_the_explorer(heldout_model, tmp_path):
    page = write_report(heldout_model, tmp_path / "report.html", n_users=15,
                        item_labels=labels_for(heldout_model))
    png = tmp_path / "shot.png"
    run_browser(page, tmp_path, f"--screenshot={png}", "--window-size=1200,2000")
    image = read_png(png.read_bytes())
    assert image.shape[:2] == (2000, 1200)
    assert len(np.unique(image[:, :, :3].reshape(-1, 3), axis=0)) > 50, "blank screenshot"
    # solid fills of the plots: interest-size bars, explorer bars, lines and legends
    assert near(image, report.TRAIN_COLOR) > 2000
    assert near(image, report.USERS_COLOR) > 2000
    assert near(image, report.HELDOUT_COLOR) > 100

    dom = run_browser(page, tmp_path, "--dump-dom").stdout
    assert dom.count("<svg") == 3 and dom.count("<polyline") == 4
    first = explorer_data(page.read_text())["users"][0]["id"]
    assert f'data-user="{first}"' in dom, "the explorer script did not run"
    assert dom.count('class="ubar"') >= 1 and dom.count("<option") == 15
    assert "<script>alert" not in dom
