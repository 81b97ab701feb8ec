#!/usr/bin/env python3
"""python-tuf ngclient over a mirror's TUF repository (tests/mirror.rs).

    tuf_client.py BASE_URL ROOT_FILE CACHE_DIR OUT_DIR

Refreshes from BASE_URL/metadata/ (bootstrapping from ROOT_FILE when
CACHE_DIR holds no trusted root yet; a CACHE_DIR kept across calls keeps
the client's trusted metadata, as a site's does), then downloads every
target from BASE_URL/targets/ to OUT_DIR/<target path>. Prints one JSON
line {"timestamp": v, "snapshot": v, "targets": v, "root": v, "files": [...]}.
On a TUF or download error prints "REJECTED <ExceptionClass>: <message>"
and exits 3.
"""
import json
import os
import sys

from tuf.api import exceptions as tex
from tuf.ngclient import Updater


def main():
    base, root_file, cache, out = sys.argv[1:5]
    os.makedirs(cache, exist_ok=True)
    os.makedirs(out, exist_ok=True)
    trusted = os.path.join(cache, "root.json")
    bootstrap = None if os.path.exists(trusted) else open(root_file, "rb").read()
    try:
        up = Updater(
            metadata_dir=cache,
            metadata_base_url=f"{base}/metadata/",
            target_dir=out,
            target_base_url=f"{base}/targets/",
            bootstrap=bootstrap,
        )
        up.refresh()
        with open(os.path.join(cache, "targets.json"), "rb") as f:
            names = sorted(json.load(f)["signed"]["targets"])
        for name in names:
            info = up.get_targetinfo(name)
            dest = os.path.join(out, *name.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            up.download_target(info, filepath=dest)
    except (tex.RepositoryError, tex.DownloadError) as e:
        print(f"REJECTED {type(e).__name__}: {e}")
        sys.exit(3)
    versions = {}
    for role in ("root", "timestamp", "snapshot", "targets"):
        with open(os.path.join(cache, f"{role}.json"), "rb") as f:
            versions[role] = json.load(f)["signed"]["version"]
    versions["files"] = names
    print(json.dumps(versions, sort_keys=True))


if __name__ == "__main__":
    main()
