"""Check that a running ``./run demo`` serves its dashboard (used by ``./run fresh-check``).

Reads the demo's output (a file it writes to), takes the printed URL and admin login, logs
in through the login form as a person would and waits until the fleet page lists the four
demo counters "En ligne". Standard library only: it runs with the system's Python on a
machine that has nothing else. Exit 0 when the page is right, 1 otherwise.
"""

from __future__ import annotations

import http.cookiejar
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

TIMEOUT_S = 600.0  # the first ./run demo creates its venv and installs the project
COUNTERS = 4


def wait_for_login(output: Path, deadline: float) -> tuple[str, str, str]:
    while time.monotonic() < deadline:
        text = output.read_text(encoding="utf-8", errors="replace") if output.exists() else ""
        url = re.search(r"Tableau de bord : (http://\S+)", text)
        user = re.search(r"Identifiant\s+: (\S+)", text)
        password = re.search(r"Mot de passe\s+: (\S+)", text)
        if url and user and password:
            return url.group(1), user.group(1), password.group(1)
        time.sleep(1)
    raise TimeoutError("the demo printed no URL and login")


def main() -> int:
    output = Path(sys.argv[1])
    deadline = time.monotonic() + TIMEOUT_S
    url, user, password = wait_for_login(output, deadline)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_page = opener.open(urllib.parse.urljoin(url, "/login"), timeout=10).read().decode()
    hidden = re.search(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', login_page)
    if hidden is None:
        sys.stderr.write("demo-probe: the login page has no CSRF field\n")
        return 1
    form = {hidden.group(1): hidden.group(2), "next": "/", "username": user, "password": password}
    data = urllib.parse.urlencode(form).encode()
    opener.open(urllib.parse.urljoin(url, "/login"), data=data, timeout=10).read()
    online = 0
    while time.monotonic() < deadline:
        page = opener.open(url, timeout=10).read().decode()
        if "Connexion" in page and "Mot de passe" in page:
            sys.stderr.write("demo-probe: the printed login was refused\n")
            return 1
        online = page.count("badge state-online")
        if online >= COUNTERS:
            sys.stdout.write(f"demo-probe: {url} serves the fleet page, {online} counters online\n")
            return 0
        time.sleep(2)
    sys.stderr.write(f"demo-probe: only {online} of {COUNTERS} counters online on {url}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
