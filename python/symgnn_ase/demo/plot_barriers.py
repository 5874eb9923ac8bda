"""Pictures of the LAMMPS demo's per-atom barriers (from ``compute symgnn``).

    python plot_barriers.py [OUT_FOLDER]        (default: examples/lammps/out)

Reads ``barriers.dump`` (and ``shear.dump``, ``shear_averages.txt`` if the shear ran) and writes

- ``barrier_histogram_time.png``: the distribution of barriers in every frame over time,
  with the Cu and Zr means;
- ``barrier_slice.png``: a 5 Å thick slice through the middle of the box, atoms colored by
  barrier (last MD frame, and last sheared frame);
- ``shear_barriers.png``: mean barriers against shear strain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TIMESTEP_PS = 0.002  # the demo's timestep
SPECIES = {1: "Cu", 2: "Zr"}


def read_dump(path: Path) -> list[dict]:
    """Frames of a text ``dump custom``: step, cell corners and per-atom columns."""
    frames = []
    lines = path.read_text().splitlines()
    k = 0
    while k < len(lines):
        step = int(lines[k + 1])
        n = int(lines[k + 3])
        header = lines[k + 4].split()
        bounds = np.array([lines[k + 5 + d].split() for d in range(3)], dtype=float)
        xy = bounds[0, 2] if "xy" in header else 0.0
        xz = bounds[1, 2] if "xy" in header else 0.0
        yz = bounds[2, 2] if "xy" in header else 0.0
        xlo = bounds[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = bounds[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo = bounds[1, 0] - min(0.0, yz)
        yhi = bounds[1, 1] - max(0.0, yz)
        names = lines[k + 8].split()[2:]
        rows = np.array([ln.split() for ln in lines[k + 9 : k + 9 + n]], dtype=float)
        frames.append(
            {
                "step": step,
                "origin": np.array([xlo, ylo, bounds[2, 0]]),
                "a": np.array([xhi - xlo, 0.0]),
                "b": np.array([xy, yhi - ylo]),
                "zbounds": (bounds[2, 0], bounds[2, 1]),
                **{name: rows[:, c] for c, name in enumerate(names)},
            }
        )
        k += 9 + n
    return frames


def barrier_column(frame: dict) -> np.ndarray:
    name = next(key for key in frame if key.startswith("c_"))
    return frame[name]


def plot_histogram_time(frames: list[dict], path: Path) -> None:
    values = [barrier_column(f) for f in frames]
    lo = min(float(v.min()) for v in values)
    hi = max(float(v.max()) for v in values)
    bins = np.linspace(lo, hi, 60)
    times = np.array([f["step"] for f in frames]) * TIMESTEP_PS
    hist = np.array([np.histogram(v, bins=bins, density=True)[0] for v in values])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[1.6, 1])
    dt = times[1] - times[0] if len(times) > 1 else 1.0
    mesh = ax.pcolormesh(
        np.append(times - dt / 2, times[-1] + dt / 2), bins, hist.T, cmap="magma", shading="flat"
    )
    fig.colorbar(mesh, ax=ax, label="probability density (1/eV)")
    for t, name, color in ((1, "Cu", "tab:cyan"), (2, "Zr", "tab:green")):
        means = [barrier_column(f)[f["type"] == t].mean() for f in frames]
        ax.plot(times, means, color=color, lw=1.5, label=f"{name} mean")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("predicted barrier (eV)")
    ax.set_title("Barrier distribution during NVT MD (300 K)")
    ax.legend(loc="upper right", fontsize=8)
    for frame, style in ((frames[0], "--"), (frames[-1], "-")):
        b = barrier_column(frame)
        for t, color in ((1, "tab:cyan"), (2, "tab:green")):
            ax2.hist(
                b[frame["type"] == t],
                bins=bins,
                histtype="step",
                ls=style,
                color=color,
                label=f"{SPECIES[t]}, t = {frame['step'] * TIMESTEP_PS:g} ps",
            )
    ax2.set_xlabel("predicted barrier (eV)")
    ax2.set_ylabel("atoms")
    ax2.legend(fontsize=8)
    ax2.set_title("First and last frame")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_slice(ax, frame: dict, title: str, vmin: float, vmax: float, thickness: float = 5.0):
    """Atoms within ``thickness``/2 of the box's middle z plane, colored by barrier."""
    zlo, zhi = frame["zbounds"]
    keep = np.abs(frame["z"] - 0.5 * (zlo + zhi)) < thickness / 2
    b = barrier_column(frame)[keep]
    sizes = np.where(frame["type"][keep] == 2, 60, 35)
    sc = ax.scatter(
        frame["x"][keep],
        frame["y"][keep],
        c=b,
        s=sizes,
        cmap="viridis",
        vmin=vmin,
        vmax=vmax,
        edgecolors="k",
        linewidths=0.4,
    )
    o, a, bvec = frame["origin"][:2], frame["a"], frame["b"]
    corners = np.array([o, o + a, o + a + bvec, o + bvec, o])
    ax.plot(corners[:, 0], corners[:, 1], color="0.4", lw=1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(
        f"{title}\n{thickness:g} Å slice at mid-height; large = Zr, small = Cu", fontsize=9
    )
    return sc


def plot_slices(panels: list[tuple[dict, str]], path: Path) -> None:
    values = np.concatenate([barrier_column(f) for f, _ in panels])
    vmin, vmax = np.percentile(values, [1, 99])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 5.0), squeeze=False)
    for ax, (frame, title) in zip(axes[0], panels, strict=True):
        sc = plot_slice(ax, frame, title, vmin, vmax)
    fig.colorbar(sc, ax=axes[0].tolist(), label="predicted barrier (eV)", shrink=0.85)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_shear(averages: Path, path: Path) -> None:
    data = np.loadtxt(averages, comments="#")
    if data.ndim == 1:
        data = data[None, :]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(data[:, 1] * 100, data[:, 2], label="all", color="k")
    ax.plot(data[:, 1] * 100, data[:, 3], label="Cu", color="tab:cyan")
    ax.plot(data[:, 1] * 100, data[:, 4], label="Zr", color="tab:green")
    ax.set_xlabel("shear strain xy (%)")
    ax.set_ylabel("mean predicted barrier (eV)")
    ax.set_title("Barriers under simple shear (300 K)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    frames = read_dump(out / "barriers.dump")
    written = []
    plot_histogram_time(frames, out / "barrier_histogram_time.png")
    written.append("barrier_histogram_time.png")
    panels = [(frames[-1], f"NVT, t = {frames[-1]['step'] * TIMESTEP_PS:g} ps")]
    if (out / "shear.dump").exists():
        shear = read_dump(out / "shear.dump")
        panels.append((shear[-1], f"sheared, t = {shear[-1]['step'] * TIMESTEP_PS:g} ps"))
    plot_slices(panels, out / "barrier_slice.png")
    written.append("barrier_slice.png")
    if (out / "shear_averages.txt").exists():
        plot_shear(out / "shear_averages.txt", out / "shear_barriers.png")
        written.append("shear_barriers.png")
    print(f"plot_barriers.py: wrote {', '.join(written)} in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
