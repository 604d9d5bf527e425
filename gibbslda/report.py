"""One self-contained HTML report of a fitted model: convergence, interests, users.

The page needs nothing but itself: plots are inline SVG written here, the user explorer is
a short inline script reading inline JSON, and a Content-Security-Policy forbids any
network request. Every piece of text from the data (item labels, user and item ids) is
escaped, so a title such as ``<script>`` shows as text.
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gibbslda import __version__, _files
from gibbslda._validate import check_int as _check_count
from gibbslda.profiles import name_topics
from gibbslda.topn import top_k

TRAIN_COLOR, HELDOUT_COLOR, USERS_COLOR = "#1f77b4", "#d62728", "#ff7f0e"
LABEL_ITEMS = 3       # a topic's label joins its top this many item labels
USER_ITEMS = 5        # most-used items listed per embedded user
USER_BARS = 10        # interests drawn per user in the explorer, at most
USER_MIN_SHARE = 0.005  # ... and those with at least this share (the top one always)
THETA_DECIMALS = 6    # precision of the embedded user mixes
MAX_MARKERS = 60      # points drawn as dots up to this many per line


def write_report(model, path, *, item_labels=None, n_items: int = 10, n_users: int = 200,
                 title: str | None = None, events=None, freq: str = "1w", horizon: int = 8,
                 columns: Mapping | None = None) -> Path:
    """Write :func:`render_report` to ``path`` atomically (a temporary file, fsync'd, then
    renamed; :mod:`gibbslda._files`).

    Returns
    -------
    Path
        ``path``. A reader never sees half a report; an old file is replaced only once the
        new one is complete. A folder (or anything but a file) at ``path`` is refused
        with ValueError.
    """
    _files.check_file(path)
    text = render_report(model, item_labels=item_labels, n_items=n_items, n_users=n_users,
                         title=title, events=events, freq=freq, horizon=horizon,
                         columns=columns)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    return _files.write_file(path, write)


def render_report(model, *, item_labels=None, n_items: int = 10, n_users: int = 200,
                  title: str | None = None, events=None, freq: str = "1w", horizon: int = 8,
                  columns: Mapping | None = None) -> str:
    """The report of a fitted :class:`~gibbslda.LDA` as one HTML document.

    Parameters
    ----------
    model : LDA
        A fitted (or loaded) model.
    item_labels : mapping or array-like of shape (V,), optional
        Labels for people (such as product titles): a mapping from item id, or values
        aligned with ``model.item_ids_``. Items without one are shown by id.
    n_items : int, default 10
        Top items listed per interest (topic).
    n_users : int, default 200
        Users embedded in the explorer: the heaviest (most tokens; ties by index).
    title : str, optional
        Page title (default: "gibbslda report: K interests").
    events, freq, horizon, columns : optional
        Interest trends per ``freq`` period are drawn from the model's token times (when
        its corpus has them) or, given, from ``events`` (a frame; ``columns`` maps
        user, item and time to its column names, as :func:`gibbslda.demand.forecast`
        takes them); with ``events``, a forecast section too: history and ``horizon``
        periods of forecast, with intervals, of the top interests and items.

    Returns
    -------
    str
        The page: summary, convergence plots (log-likelihood per token against
        iteration and seconds), topic sizes, one card per topic, the user explorer.
    """
    _check_count("n_items", n_items, minimum=1)
    _check_count("n_users", n_users, minimum=0)
    phi, theta = model.topic_word_, model.doc_topic_
    labels = _item_labels(model.item_ids_, item_labels)
    n_k = np.asarray(model.n_k_, dtype=np.float64)
    token_share = n_k / n_k.sum()
    user_share = np.bincount(theta.argmax(axis=1), minlength=phi.shape[0]) / theta.shape[0]
    order = top_k(token_share[None, :], token_share.size)[0]
    top = top_k(phi, min(n_items, phi.shape[1]))
    topic_labels = name_topics(phi, labels, n=min(LABEL_ITEMS, n_items))
    title = title if title is not None else f"gibbslda report: {phi.shape[0]} interests"
    body = [f"<h1>{_esc(title)}</h1>", _summary(model),
            "<h2>Convergence</h2>", '<div class="charts">', *_convergence(model.loglik_),
            "</div>", "<h2>Interest sizes</h2>",
            _bar_chart([f"#{k} {topic_labels[k]}" for k in order],
                       [("share of tokens", token_share[order], TRAIN_COLOR),
                        ("share of users whose main interest it is", user_share[order],
                         USERS_COLOR)]),
            "<h2>Interests</h2>", '<div class="cards">',
            *(_topic_card(k, topic_labels[k], top[k], phi[k], labels, model.item_ids_,
                          token_share[k], user_share[k]) for k in order), "</div>"]
    body.extend(_time_sections(model, events, freq, horizon, dict(columns or {}),
                               topic_labels, labels))
    if n_users:
        body.append(_explorer(model, theta, labels, topic_labels, n_users))
    return _page(title, "\n".join(body))


# -- data ----------------------------------------------------------------------------------
def _item_labels(item_ids, item_labels) -> np.ndarray:
    """(V,) object array of display labels: the given label, else the item id."""
    ids = [str(i) for i in item_ids]
    if item_labels is None:
        return np.array(ids, dtype=object)
    if isinstance(item_labels, Mapping):
        given = [item_labels.get(i) for i in item_ids]
    else:
        given = list(item_labels)
        if len(given) != len(ids):
            raise ValueError(f"item_labels must have one label per item ({len(ids)}, "
                             f"aligned with model.item_ids_), got {len(given)}")
    out = [i if g is None or (isinstance(g, float) and math.isnan(g)) or not str(g).strip()
           else str(g).strip() for g, i in zip(given, ids)]
    return np.array(out, dtype=object)


def _explorer_data(model, theta, labels, topic_labels, n_users: int) -> dict:
    """The heaviest ``n_users`` users with their topic mix and most-used items."""
    corpus = model.corpus_
    lengths = corpus.lengths
    users = top_k(lengths[None, :], min(n_users, lengths.size))[0]
    rows = []
    for d in users:
        items, n = np.unique(corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]],
                             return_counts=True)
        often = top_k(n[None, :], USER_ITEMS)[0]
        often = items[often[often >= 0]]  # -1 pads a user with fewer items
        rows.append({"id": str(model.user_ids_[d]), "n_tokens": int(lengths[d]),
                     "theta": np.round(theta[d], THETA_DECIMALS).tolist(),
                     "items": [str(labels[w]) for w in often]})
    return {"topics": topic_labels, "max_bars": USER_BARS, "min_share": USER_MIN_SHARE,
            "users": rows}


# -- trends and forecasts -------------------------------------------------------------------
TREND_TOPICS = 6      # interests drawn in the trends plot
FORECAST_SERIES = 3   # interests, and items, drawn with their forecast
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _time_sections(model, events, freq, horizon, columns, topic_labels, labels) -> list[str]:
    """The trends plot (from the token times or the events) and, with events, the
    forecast plots; nothing when there are no times."""
    import polars as pl

    from gibbslda import demand, trends

    if events is None and model.corpus_.times is None:
        return []
    table = trends.interest_trends(model, events, freq=freq, **columns)
    starts = table.get_column("period").unique().sort()
    share = table.get_column("share").to_numpy().reshape(starts.len(), model.n_topics)
    # complete periods with tokens only: a partial edge or an empty week is no share
    shown = (table.get_column("complete").to_numpy()[::model.n_topics]
             & (share.sum(axis=1) > 0))
    shown = shown if shown.any() else share.sum(axis=1) > 0
    starts, share = starts.filter(pl.Series(shown)), share[shown]
    days = (starts - starts[0]).dt.total_days().to_numpy().astype(float)
    order = top_k(share.sum(axis=0)[None, :], min(TREND_TOPICS, model.n_topics))[0]
    since = f"days since {starts[0].date()}"
    out = ["<h2>Interest trends</h2>", "<p>Share of each complete period's tokens "
           "explained by the largest interests" + (
               " (a prepared corpus has one time per user-item pair: its last event)"
               if events is None else "") + ".</p>", _line_chart([(f"#{k} {topic_labels[k]}"[:24], days, share[:, k],
                                    PALETTE[i % len(PALETTE)]) for i, k in enumerate(order)],
                                  x_label=since, y_label="share of tokens",
                                  title=f"Interest trends per {freq}")]
    if events is None:
        return out
    ev = trends.read_events(model, events, **columns)
    fit = demand.fit_forecast(model, ev, demand._complete(trends.period_grid(ev.time, freq)),
                              horizon=horizon)
    t0 = fit.periods.starts[0]
    since = f"days since {fit.periods.datetimes()[0].date()}"
    x_hist = (fit.periods.starts - t0) / 86_400e6
    x_next = (fit.future - t0) / 86_400e6
    items = top_k(fit.item_forecast.sum(axis=1)[None, :],
                  min(FORECAST_SERIES, fit.item_forecast.shape[0]))[0]
    big = top_k(fit.interest_forecast.sum(axis=1)[None, :],
                min(FORECAST_SERIES, model.n_topics))[0]
    history = fit.history.items(model.corpus_.n_items, 0, fit.periods.n)
    charts = [_forecast_chart(f"#{k} {topic_labels[k]}", x_hist, fit.history.interest[k],
                              x_next, fit.interest_forecast[k], fit.interest_lower[k],
                              fit.interest_upper[k], since) for k in big]
    charts += [_forecast_chart(str(labels[w]), x_hist, history[w], x_next,
                               fit.item_forecast[w], fit.item_lower[w], fit.item_upper[w],
                               since) for w in items]
    return out + ["<h2>Demand forecast</h2>", f"<p>{horizon} periods of {freq} ahead, "
                  f"with {fit.coverage:.0%} prediction intervals: the largest interests, "
                  "then the largest items (gibbslda.demand).</p>",
                  '<div class="charts">', *charts, "</div>"]


def _forecast_chart(name, x_hist, y_hist, x_next, f, lower, upper, since) -> str:
    return _line_chart([("history", x_hist, y_hist, TRAIN_COLOR),
                        ("forecast", x_next, f, HELDOUT_COLOR),
                        ("lower", x_next, lower, "#bbbbbb"),
                        ("upper", x_next, upper, "#bbbbbb")],
                       x_label=since, y_label="events per period", title=name[:60])


# -- HTML pieces ---------------------------------------------------------------------------
def _summary(model) -> str:
    h, corpus = model.loglik_, model.corpus_
    alpha = np.asarray(model.alpha_)
    rows = [("users", f"{corpus.n_users:,}"), ("items", f"{corpus.n_items:,}"),
            ("tokens", f"{corpus.n_tokens:,}"), ("interests (topics)", f"{alpha.size}"),
            ("sweeps", f"{model.n_iter_:,}"), ("seconds", f"{model.seconds_:.2f}"),
            ("log-likelihood per token", f"{h['loglik'][-1]:.4f}" if h.size else "n/a"),
            ("alpha", f"{alpha[0]:.4g}" if np.all(alpha == alpha[0])
             else f"asymmetric, mean {alpha.mean():.4g}"),
            ("beta", f"{model.beta_:.4g}"), ("sampler", str(model.state_.sampler))]
    heldout = h["heldout"][~np.isnan(h["heldout"])] if h.size else h
    if heldout.size:
        rows.insert(7, ("held-out log-likelihood per token", f"{heldout[-1]:.4f}"))
    cells = "".join(f"<div><dt>{_esc(k)}</dt><dd>{_esc(v)}</dd></div>" for k, v in rows)
    return f'<dl class="summary">{cells}</dl>'


def _convergence(history) -> list[str]:
    charts = []
    for x, name in (("iteration", "iteration"), ("seconds", "seconds of sampling")):
        series = [("training", history[x], history["loglik"], TRAIN_COLOR)]
        held = ~np.isnan(history["heldout"])
        if held.any():
            series.append(("held-out", history[x][held], history["heldout"][held],
                           HELDOUT_COLOR))
        charts.append(_line_chart(series, x_label=name, y_label="log-likelihood per token",
                                  title=f"Log-likelihood per token by {x}"))
    return charts


def _topic_card(k, label, top, phi_k, labels, item_ids, tokens, users) -> str:
    peak = phi_k[top[0]]
    rows = "".join(
        f"<tr><td>{r}</td><td>{_esc(labels[w])}</td><td class=\"id\">{_esc(item_ids[w])}"
        f'</td><td class="w"><span style="width:{100 * phi_k[w] / peak:.1f}%"></span>'
        f"{phi_k[w]:.2%}</td></tr>" for r, w in enumerate(top, start=1))
    return (f'<section class="topic-card" id="topic-{k}"><h3>#{k} {_esc(label)}</h3>'
            f"<p>{tokens:.1%} of tokens; main interest of {users:.1%} of users</p>"
            "<table><tr><th>#</th><th>item</th><th>id</th><th>weight</th></tr>"
            f"{rows}</table></section>")


def _explorer(model, theta, labels, topic_labels, n_users: int) -> str:
    data = _explorer_data(model, theta, labels, topic_labels, n_users)
    payload = (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
               .replace(">", "\\u003e").replace("&", "\\u0026"))
    return ('<h2>Users</h2><section id="explorer"><p>The '
            f"{len(data['users'])} heaviest users (most tokens) and their interests.</p>"
            '<div class="pick"><input id="user-search" type="search" placeholder="filter '
            'users by id"><select id="user-select" size="12"></select></div>'
            '<div id="user-profile"></div>'
            f'</section><script type="application/json" id="explorer-data">{payload}'
            f"</script><script>{_EXPLORER_JS}</script>")


def _page(title: str, body: str) -> str:
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f'<meta name="generator" content="gibbslda {_esc(__version__)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n"
            "</body></html>\n")


# -- SVG plots -----------------------------------------------------------------------------
def _ticks(lo: float, hi: float, n: int = 5) -> tuple[np.ndarray, float, float, float]:
    """Round tick values covering [lo, hi]: (ticks, axis start, axis end, step)."""
    if not hi > lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    return start + step * np.arange(round((end - start) / step) + 1), start, end, step


def _fmt(value: float, step: float, percent: bool = False) -> str:
    scale = 100 if percent else 1
    digits = next(d for d in range(12) if abs(round(step * scale, d) - step * scale)
                  < 1e-9 * max(1.0, abs(step * scale)))
    return f"{value * scale:.{digits}f}" + ("%" if percent else "")


def _line_chart(series, *, x_label: str, y_label: str, title: str) -> str:
    """Lines (name, x, y, colour) on shared axes with ticks, grid, labels and a legend."""
    w, h, left, right, top, bottom = 560, 320, 70, 30, 34, 46
    xs, ys = np.concatenate([s[1] for s in series]), np.concatenate([s[2] for s in series])
    xt, x0, x1, xstep = _ticks(float(xs.min()), float(xs.max()))
    yt, y0, y1, ystep = _ticks(float(ys.min()), float(ys.max()))

    def px(x):
        return left + (np.asarray(x, dtype=float) - x0) / (x1 - x0) * (w - left - right)

    def py(y):
        return h - bottom - (np.asarray(y, dtype=float) - y0) / (y1 - y0) * (h - top - bottom)

    parts = [f'<text x="{w / 2}" y="18" class="title">{_esc(title)}</text>']
    for t in xt:
        parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{h - bottom}" '
                     f'class="grid"/><text x="{px(t):.1f}" y="{h - bottom + 16}" '
                     f'class="tick" text-anchor="middle">{_fmt(t, xstep)}</text>')
    for t in yt:
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
                     f'class="grid"/><text x="{left - 6}" y="{py(t) + 4:.1f}" class="tick" '
                     f'text-anchor="end">{_fmt(t, ystep)}</text>')
    parts.append(f'<path d="M{left},{top}V{h - bottom}H{w - right}" class="axis"/>'
                 f'<text x="{(left + w - right) / 2}" y="{h - 8}" class="label">'
                 f'{_esc(x_label)}</text><text transform="translate(16,{(top + h - bottom) / 2})'
                 f' rotate(-90)" class="label">{_esc(y_label)}</text>')
    for i, (name, x, y, color) in enumerate(series):
        points = list(zip(px(x), py(y)))
        parts.append(f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in points)}" '
                     f'fill="none" stroke="{color}" stroke-width="2" class="series '
                     f'{_esc(name)}"><title>{_esc(name)}</title></polyline>')
        if len(points) <= MAX_MARKERS:
            parts.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{color}"/>'
                         for a, b in points)
        parts.append(_legend_entry(w - right - 90, h - bottom - 10 - 16 * (len(series) - 1 - i),
                                   name, color))
    return _svg(w, h, parts, title)


def _bar_chart(labels: list[str], series, *, label_width: int = 340) -> str:
    """Horizontal grouped bars: one row per label, one bar per (name, values, colour)."""
    bar, gap, top, bottom, right, w = 10, 8, 40, 34, 20, 940
    row = bar * len(series) + gap
    h = top + row * len(labels) + bottom
    xt, _, x1, step = _ticks(0.0, max(float(np.max(s[1])) for s in series))
    scale = (w - label_width - right) / x1
    parts = []
    for t in xt:
        x = label_width + t * scale
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{h - bottom}" '
                     f'class="grid"/><text x="{x:.1f}" y="{h - bottom + 16}" class="tick" '
                     f'text-anchor="middle">{_fmt(t, step, percent=True)}</text>')
    for r, text in enumerate(labels):
        y = top + r * row
        short = text if len(text) <= 40 else text[:39] + "\u2026"
        parts.append(f'<text x="{label_width - 8}" y="{y + row / 2:.1f}" class="tick" '
                     f'text-anchor="end">{_esc(short)}<title>{_esc(text)}</title></text>')
        for i, (name, values, color) in enumerate(series):
            parts.append(f'<rect x="{label_width}" y="{y + i * bar}" width="'
                         f'{values[r] * scale:.1f}" height="{bar - 1}" fill="{color}" '
                         f'shape-rendering="crispEdges"><title>{_esc(name)}: '
                         f"{values[r]:.1%}</title></rect>")
    for i, (name, _, color) in enumerate(series):
        parts.append(_legend_entry(label_width + 320 * i, 16, name, color))
    parts.append(f'<path d="M{label_width},{top}V{h - bottom}" class="axis"/>')
    return _svg(w, h, parts, "Interest sizes")


def _legend_entry(x: float, y: float, name: str, color: str) -> str:
    return (f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{color}"/>'
            f'<text x="{x + 17}" y="{y}" class="tick">{_esc(name)}</text>')


def _svg(w: int, h: int, parts: list[str], label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{_esc(label)}">{"".join(parts)}</svg>')


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#222;
padding:0 12px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
.summary{display:flex;flex-wrap:wrap;gap:8px 24px}.summary dt{color:#666;font-size:12px}
.summary dd{margin:0;font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{max-width:100%;height:auto;font-size:11px}svg .grid{stroke:#eee}
svg .axis{stroke:#444;fill:none}svg .title{font-size:13px;font-weight:600;text-anchor:middle}
svg .label{text-anchor:middle;fill:#444}svg .tick{fill:#333}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.topic-card{border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.topic-card h3{font-size:14px;margin:4px 0}.topic-card p{margin:2px 0 6px;color:#666}
table{border-collapse:collapse;width:100%;font-size:12px}td,th{padding:2px 4px;text-align:left}
td.id{color:#888}td.w{width:90px;white-space:nowrap}
td.w span{display:inline-block;height:8px;background:#1f77b4;margin-right:4px;max-width:40px}
#explorer{display:flex;flex-wrap:wrap;gap:8px 16px}#explorer p{flex-basis:100%;margin:0}
.pick{width:240px;display:flex;flex-direction:column;gap:6px}#user-profile{flex:1;min-width:320px}
.ubar{display:grid;grid-template-columns:minmax(0,360px) 1fr 56px;gap:8px;align-items:center}
.ubar .bar{height:12px;background:#ff7f0e}.ubar .name{overflow:hidden;white-space:nowrap;
text-overflow:ellipsis}.items{color:#666;margin-top:8px}
"""

_EXPLORER_JS = """
(function () {
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var select = document.getElementById("user-select");
  var search = document.getElementById("user-search");
  var out = document.getElementById("user-profile");
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function show(i) {
    var u = data.users[i], theta = u.theta;
    var order = theta.map(function (w, k) { return k; })
      .sort(function (a, b) { return theta[b] - theta[a] || a - b; })
      .filter(function (k, r) { return r === 0 || theta[k] >= data.min_share; })
      .slice(0, data.max_bars);
    out.textContent = "";
    out.setAttribute("data-user", u.id);
    out.appendChild(el("h3", "", "User " + u.id + " (" + u.n_tokens + " tokens)"));
    order.forEach(function (k) {
      var row = el("div", "ubar"), bar = el("div", "bar");
      bar.style.width = (100 * theta[k] / theta[order[0]]).toFixed(1) + "%";
      var name = el("span", "name", "#" + k + " " + data.topics[k]);
      name.title = name.textContent;
      row.appendChild(name);
      var cell = el("div"); cell.appendChild(bar); row.appendChild(cell);
      row.appendChild(el("span", "", (100 * theta[k]).toFixed(1) + "%"));
      out.appendChild(row);
    });
    out.appendChild(el("div", "items", "Most used: " + u.items.join("; ")));
  }
  function fill() {
    var q = search.value.trim().toLowerCase();
    select.textContent = "";
    data.users.forEach(function (u, i) {
      if (q && u.id.toLowerCase().indexOf(q) < 0) return;
      var o = el("option", "", u.id + " (" + u.n_tokens + " tokens)");
      o.value = String(i);
      select.appendChild(o);
    });
    if (select.options.length) { select.selectedIndex = 0; show(+select.value); }
    else { out.textContent = "No embedded user matches."; }
  }
  select.addEventListener("change", function () { show(+select.value); });
  search.addEventListener("input", fill);
  fill();
})();
"""
