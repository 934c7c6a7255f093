"""GET /healthz on this container's web server, as the image's HEALTHCHECK (the slim base
image has no curl). Sent with an allowed Host: Django refuses any other (400) in production.

    python scripts/container-healthz.py [PORT]     (default $PORT or 8000, the entrypoint's)
"""

import http.client
import os
import sys

hosts = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",") if host.strip()]
# ".example.com" allows example.com and its subdomains; "*" allows anything.
host = next((host.lstrip(".") for host in hosts if host != "*"), "localhost")
port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8000"))
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
try:
    connection.request("GET", "/healthz", headers={"Host": host})
    status = connection.getresponse().status
except OSError as error:
    sys.exit(f"/healthz did not answer: {error}")
finally:
    connection.close()
sys.exit(0 if status == 200 else f"/healthz answered {status}")
