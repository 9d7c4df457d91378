"""The JavaScript the offline site needs, fetched once from the npm registry into a git-ignored cache.

    python tools/vendor_assets.py          # fetch (if missing) and print where the files are

nbconvert's HTML loads require.js and MathJax from CDNs by default; the course site must work offline, so
`build_site` copies these files next to the pages and points nbconvert at them. Each package is pinned by
version *and* by the registry's sha512 integrity, so a changed tarball is an error, not a silent swap.
Only the few files the pages load are kept (about 2.4 MB), plus each package's licence. (MathJax's speech
and explorer extensions would load from a CDN, but only when a reader enables them from MathJax's menu, which
the site's template turns off.)
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "artifacts" / "vendor"  # git-ignored; `make clean` removes it, the next build refetches


@dataclass(frozen=True)
class Asset:
    """One npm package and the files of it the site serves (paths inside the tarball's `package/`)."""

    name: str
    version: str
    integrity: str  # `npm view <name>@<version> dist.integrity`
    files: tuple[str, ...]
    licence: str  # the file that carries the licence, copied next to the asset

    @property
    def tarball_url(self) -> str:
        """The registry URL of the package tarball."""
        return f"https://registry.npmjs.org/{self.name}/-/{self.name}-{self.version}.tgz"


ASSETS: tuple[Asset, ...] = (
    # MathJax 3, single-file TeX -> SVG build: glyphs are inside the file, so no font requests.
    Asset(
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        ("es5/tex-svg-full.js",),
        "LICENSE",
    ),
    # require.js: the lab template loads it for outputs that use AMD modules.
    Asset(
        "requirejs",
        "2.3.7",
        "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
        ("require.js",),
        "package.json",  # MIT; the package ships no LICENSE file (the notice heads require.js itself)
    ),
)


# reveal.js for the slide decks (slides/build_slides.py inlines its CSS and JS into every deck). The white
# theme carries its fonts as data: URLs, so a deck loads nothing from the network.
REVEAL = Asset(
    "reveal.js",
    "6.0.2",
    "sha512-JYIg5D9aoxoaLeb84O+OvAwsKWdIavVgEDScxtYEXFCT6t6TQrhNtSgogcjdCpdLsWglhJn3zyE3fUOwiH5KEg==",
    ("dist/reveal.css", "dist/theme/white.css", "dist/reveal.js", "dist/plugin/notes.js"),
    "LICENSE",
)


def _verify(data: bytes, asset: Asset) -> None:
    """Raise unless `data` has the pinned sha512 integrity."""
    algo, _, want = asset.integrity.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        raise RuntimeError(
            f"{asset.name}@{asset.version}: tarball integrity mismatch (got {algo}-{got}, pinned {asset.integrity})"
        )


def _download(asset: Asset) -> bytes:
    """The package tarball: `npm pack` when npm exists, else a plain HTTPS GET of the registry tarball."""
    npm = shutil.which("npm")
    if npm:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [npm, "pack", "--silent", f"{asset.name}@{asset.version}"],
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=300,
            )
            return next(Path(tmp).glob("*.tgz")).read_bytes()
    with urllib.request.urlopen(asset.tarball_url, timeout=120) as resp:  # noqa: S310 - pinned https URL
        return resp.read()


def asset_dir(asset: Asset) -> Path:
    """Cache folder of one asset."""
    return CACHE / f"{asset.name}-{asset.version}"


def ensure_asset(asset: Asset) -> Path:
    """Fetch one asset unless cached (integrity-checked); return its cache folder."""
    dest = asset_dir(asset)
    wanted = [*asset.files, asset.licence]
    if not all((dest / f).is_file() for f in wanted):
        try:
            data = _download(asset)
        except Exception as e:  # noqa: BLE001 - re-raised with the fix in words
            raise RuntimeError(
                f"could not fetch {asset.name}@{asset.version} from the npm registry ({e}); the offline "
                f"site needs it once. Fetch it where a registry is reachable: python tools/vendor_assets.py"
            ) from e
        _verify(data, asset)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for rel in wanted:
                member = tar.extractfile(f"package/{rel}")
                if member is None:
                    raise RuntimeError(f"{asset.name}@{asset.version} has no file {rel!r}")
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
    return dest


def ensure_assets() -> dict[str, Path]:
    """Fetch every site asset that is not cached yet; return {package name: cache folder}."""
    return {asset.name: ensure_asset(asset) for asset in ASSETS}


def copy_assets(site_vendor: Path) -> dict[str, str]:
    """Copy the cached assets into `site_vendor`; return {package name: its main file, relative to the site}."""
    rel, cached = {}, ensure_assets()
    for asset in ASSETS:
        src = cached[asset.name]
        shutil.copytree(src, site_vendor / asset.name, dirs_exist_ok=True)
        rel[asset.name] = (
            (site_vendor / asset.name / asset.files[0]).relative_to(site_vendor.parent).as_posix()
        )
    return rel


def main() -> int:
    """Fetch the assets and list them."""
    for name, path in {**ensure_assets(), REVEAL.name: ensure_asset(REVEAL)}.items():
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        print(f"{name:<10} {size / 1e6:5.2f} MB  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
