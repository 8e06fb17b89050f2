"""Create a blob container on an Azurite server (test set-up; standard library only).

    python scripts/azurite_container.py http://127.0.0.1:10000 NAME

Signs the request with SharedKey for Azurite's well-known development account. An existing
container is fine (exit 0); any other failure exits 1 with the server's answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sys
import urllib.error
import urllib.request
from email.utils import formatdate

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def create_container(endpoint: str, name: str) -> int:
    date = formatdate(usegmt=True)
    version = "2021-08-06"
    headers = {"x-ms-date": date, "x-ms-version": version, "Content-Length": "0"}
    canonical_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
    canonical_resource = f"/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
    string_to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + canonical_headers + canonical_resource
    signature = base64.b64encode(
        hmac.new(base64.b64decode(KEY), string_to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{signature}"
    url = f"{endpoint.rstrip('/')}/{ACCOUNT}/{name}?restype=container"
    # No body: urllib would add a Content-Type (which is signed) for one.
    request = urllib.request.Request(url, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10):
            return 0
    except urllib.error.HTTPError as error:
        if error.code == 409:  # ContainerAlreadyExists
            return 0
        print(f"creating container {name!r} failed: {error.code} {error.read()[:500]!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(create_container(sys.argv[1], sys.argv[2]))
