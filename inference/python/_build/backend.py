"""A PEP 517 build backend for the modelcache client, standard library only.

It builds a pure-Python wheel of the modelcache package (and an sdist),
so that `pip install ./inference/python` works with no network and no
setuptools.
"""

import base64
import hashlib
import os
import re
import tarfile
import zipfile

NAME = "modelcache"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    """The package's __version__, which scripts/sync-version writes from
    configure.ac (the one place the version is written)."""
    with open(os.path.join(HERE, NAME, "__init__.py")) as f:
        m = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if m is None:
        raise RuntimeError("no __version__ in %s/__init__.py" % NAME)
    return m.group(1)


VERSION = _version()
TAG = "py3-none-any"


def _files():
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield os.path.join(pkg, name), NAME + "/" + name


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return "%s,sha256=%s,%d" % (arcname, digest.rstrip(b"=").decode(),
                                len(data))


def _metadata():
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Client of the modelcached handshake\n"
            "Requires-Python: >=3.7\n" % (NAME, VERSION)).encode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    wheel = "%s-%s-%s.whl" % (NAME, VERSION, TAG)
    dist = "%s-%s.dist-info" % (NAME, VERSION)
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for path, arcname in _files():
            with open(path, "rb") as f:
                data = f.read()
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        extra = {
            dist + "/METADATA": _metadata(),
            dist + "/WHEEL": ("Wheel-Version: 1.0\nGenerator: modelcache\n"
                              "Root-Is-Purelib: true\nTag: %s\n" %
                              TAG).encode(),
        }
        for arcname, data in extra.items():
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        records.append(dist + "/RECORD,,")
        z.writestr(dist + "/RECORD", "\n".join(records) + "\n")
    return wheel


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    sdist = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, sdist), "w:gz") as t:
        for rel in ("pyproject.toml", "_build/backend.py"):
            t.add(os.path.join(HERE, rel), base + "/" + rel)
        for path, arcname in _files():
            t.add(path, base + "/" + arcname)
    return sdist
