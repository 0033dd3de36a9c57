"""Installing what the local services need: PostgreSQL + timescaledb, Mosquitto.

Idempotent: each step checks first and does nothing when its part is already there, so
`services up` on a ready machine changes nothing (README, "The two commands").
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from core.errors import ServiceError

log = logging.getLogger(__name__)

PG_LIB = Path("/usr/lib/postgresql")
PG_SHARE = Path("/usr/share/postgresql")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# The Debian suite whose source package of timescaledb the set-up builds from.
SOURCE_SUITE = "trixie"
# Mosquitto: Debian 12's 2.0.11 and trixie's 2.0.21 both segfaulted here in
# session_expiry__remove (a session put on the expiry list twice, e.g. disconnected and then
# kicked by a reload: upstream PR #3341, in 2.1). The broker is built from Debian testing's
# source package of 2.1.2 when the system's is older.
MOSQUITTO_SUITE = "forky"
MOSQUITTO_MIN = (2, 1, 2)
MOSQUITTO_DIR = Path("/usr/local/lib/wastepilot")
MOSQUITTO = MOSQUITTO_DIR / "mosquitto"
# The broker's plugins, beside it: identities and rights (dynamic security) and persistence that
# survives a crash (SQLite); the compose image has the same files in /usr/lib.
MOSQUITTO_PLUGINS = {
    "plugins/dynamic-security": "mosquitto_dynamic_security.so",
    "plugins/persist-sqlite": "mosquitto_persist_sqlite.so",
}
# the broker and its two plugins (its apps need editline, its HTTP API libmicrohttpd: neither is
# used here)
MOSQUITTO_MAKE_DIRS = ["libcommon", "lib", "src", *MOSQUITTO_PLUGINS]
MOSQUITTO_MAKE_FLAGS = [
    "WITH_DOCS=no",
    "WITH_WEBSOCKETS=no",
    "WITH_SRV=no",
    "WITH_HTTP_API=no",
    "WITH_SQLITE=yes",
]
TIMESCALE_CMAKE_FLAGS = [
    "-DAPACHE_ONLY=ON",
    "-DREGRESS_CHECKS=OFF",
    "-DTAP_CHECKS=OFF",
    "-DWARNINGS_AS_ERRORS=OFF",
]


def _sudo() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo", "-n"]
    raise ServiceError(
        "installing packages needs root (or sudo); run as root or install them by hand"
    )


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a command, returning its output; a failure raises ServiceError with the output's tail."""
    log.debug("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise ServiceError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n" + "\n".join(tail))
    return proc.stdout


class Apt:
    """apt-get with one `update` per process, run only when something must be installed."""

    def __init__(self) -> None:
        self._updated = False

    def _env(self) -> dict[str, str]:
        return {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def update(self) -> None:
        if not self._updated:
            log.info("apt-get update")
            run([*_sudo(), "apt-get", "update", "-q"], env=self._env())
            self._updated = True

    def has_candidate(self, package: str) -> bool:
        self.update()
        out = subprocess.run(
            ["apt-cache", "policy", package], capture_output=True, text=True, check=False
        ).stdout
        m = re.search(r"Candidate:\s*(\S+)", out)
        return bool(m and m.group(1) != "(none)")

    def install(self, packages: list[str]) -> None:
        missing = [p for p in packages if not is_installed(p)]
        if not missing:
            return
        self.update()
        log.info("installing %s", " ".join(missing))
        run(
            [*_sudo(), "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
            env=self._env(),
        )


def is_installed(package: str) -> bool:
    """Whether a Debian package is installed (dpkg status 'install ok installed')."""
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and proc.stdout.strip() == "install ok installed"


def installed_pg_majors() -> list[int]:
    """Major versions of PostgreSQL whose server binaries are installed, highest first."""
    if not PG_LIB.is_dir():
        return []
    majors = [
        int(p.name) for p in PG_LIB.iterdir() if p.name.isdigit() and (p / "bin/postgres").exists()
    ]
    return sorted(majors, reverse=True)


def pg_bin(major: int, name: str) -> str:
    return str(PG_LIB / str(major) / "bin" / name)


def timescaledb_installed(major: int) -> bool:
    return (PG_SHARE / str(major) / "extension/timescaledb.control").exists() and any(
        (PG_LIB / str(major) / "lib").glob("timescaledb*.so")
    )


def debian_mirror() -> str:
    """The Debian archive URI already configured in the machine's apt sources."""
    texts: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    for text in texts:
        for uri in re.findall(r"^URIs:\s*(\S+)", text, flags=re.M) + re.findall(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.M
        ):
            uri_s = str(uri).rstrip("/")
            if uri_s.endswith("/debian"):
                return uri_s
    return "http://deb.debian.org/debian"


def fetch_source(package: str, root: Path, suite: str = SOURCE_SUITE) -> Path:
    """Unpack Debian's `suite` source package of `package` under `root`; returns the tree.
    A private apt configuration is used for this one download, so the machine's own sources
    never gain the newer suite."""
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (root / sub).mkdir(parents=True)
    (root / "sources.list").write_text(
        f"deb-src [signed-by={KEYRING}] {debian_mirror()} {suite} main\n"
    )
    conf = root / "apt.conf"
    conf.write_text(
        "\n".join(
            [
                f'Dir::Etc::SourceList "{root}/sources.list";',
                f'Dir::Etc::SourceParts "{root}/sources.list.d";',
                f'Dir::Etc::PreferencesParts "{root}/preferences.d";',
                f'Dir::State::Lists "{root}/lists";',
                f'Dir::Cache "{root}/cache";',
                'APT::Sandbox::User "root";',
            ]
        )
        + "\n"
    )
    env = {**os.environ, "APT_CONFIG": str(conf)}
    log.info("fetching the %s source package (%s)", package, suite)
    run(["apt-get", "update", "-q"], env=env)
    src = root / "src"
    src.mkdir()
    run(["apt-get", "source", "-q", "--download-only", package], env=env, cwd=src)
    dsc = next(src.glob(f"{package}_*.dsc"))
    run(["dpkg-source", "--no-check", "-x", dsc.name, "tree"], cwd=src)
    return src / "tree"


def build_timescaledb(major: int, apt: Apt) -> None:
    """Build the Apache-2 edition from Debian's own source package, against this PostgreSQL."""
    apt.install(
        [f"postgresql-server-dev-{major}", "build-essential", "cmake", "dpkg-dev", "libssl-dev"]
    )
    with tempfile.TemporaryDirectory(prefix="wastepilot-tsdb-") as tmp:
        tree = fetch_source("timescaledb", Path(tmp))
        log.info("building timescaledb (Apache-2 edition) for PostgreSQL %s", major)
        run(
            ["./bootstrap", *TIMESCALE_CMAKE_FLAGS, f"-DPG_CONFIG={pg_bin(major, 'pg_config')}"],
            cwd=tree,
        )
        run(["make", "-j", str(os.cpu_count() or 2)], cwd=tree / "build")
        run([*_sudo(), "make", "install"], cwd=tree / "build")
    if not timescaledb_installed(major):
        raise ServiceError("timescaledb was built but its files are not where PostgreSQL looks")


def ensure_postgres(apt: Apt) -> int:
    """PostgreSQL and the timescaledb extension; returns the major version used."""
    majors = installed_pg_majors()
    if not majors:
        apt.install(["postgresql", "postgresql-contrib"])
        majors = installed_pg_majors()
        if not majors:
            raise ServiceError("PostgreSQL was installed but no server binaries were found")
    major = majors[0]
    if not timescaledb_installed(major):
        # Decide by what the configured archive has for this major, not by the release name.
        binary = f"postgresql-{major}-timescaledb"
        if apt.has_candidate(binary):
            apt.install([binary])
        else:
            build_timescaledb(major, apt)
    return major


def mosquitto_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "-h"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"mosquitto version (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else ()


def build_mosquitto(apt: Apt) -> None:
    """Build the broker and its plugins from Debian's `MOSQUITTO_SUITE` source package into
    MOSQUITTO_DIR."""
    apt.install(["build-essential", "dpkg-dev", "libssl-dev", "libcjson-dev", "libsqlite3-dev"])
    with tempfile.TemporaryDirectory(prefix="wastepilot-mosquitto-") as tmp:
        tree = fetch_source("mosquitto", Path(tmp), MOSQUITTO_SUITE)
        log.info("building the Mosquitto broker")
        jobs = str(os.cpu_count() or 2)
        for d in MOSQUITTO_MAKE_DIRS:
            run(["make", "-j", jobs, "-C", d, *MOSQUITTO_MAKE_FLAGS], cwd=tree)
        run([*_sudo(), "install", "-D", "-m", "755", str(tree / "src/mosquitto"), str(MOSQUITTO)])
        for folder, name in MOSQUITTO_PLUGINS.items():
            run([*_sudo(), "install", "-D", "-m", "755", str(tree / folder / name),
                 str(MOSQUITTO_DIR / name)])  # fmt: skip
    if mosquitto_version(str(MOSQUITTO)) < MOSQUITTO_MIN:
        raise ServiceError(f"the Mosquitto built from source is older than {MOSQUITTO_MIN}")


def mosquitto_binary() -> str:
    """The broker to run: the one built here."""
    return str(MOSQUITTO)


def mosquitto_plugin(name: str) -> Path:
    """Where the built plugin ``name`` (e.g. mosquitto_persist_sqlite.so) is."""
    return MOSQUITTO_DIR / name


def ensure_mosquitto(apt: Apt) -> None:
    """The Mosquitto broker with its dynamic-security and SQLite-persistence plugins, built from
    Debian's own source package of MOSQUITTO_MIN (~30 s) unless already built here: Debian 12's
    2.0.11 and trixie's 2.0.21 crash when expiring sessions, and neither ships the SQLite
    persistence that keeps shared subscriptions and survives a crash. The system's package
    brings the mosquitto user and the command-line clients."""
    apt.install(["mosquitto", "mosquitto-clients"])
    built = MOSQUITTO.exists() and all(
        mosquitto_plugin(n).exists() for n in MOSQUITTO_PLUGINS.values()
    )
    if built and mosquitto_version(str(MOSQUITTO)) >= MOSQUITTO_MIN:
        return
    build_mosquitto(apt)


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium(apt: Apt) -> Path:
    """Debian's Chromium, which the browser tests drive headless through Playwright."""
    if not CHROMIUM.exists():
        apt.install(["chromium"])
    if not CHROMIUM.exists():
        raise ServiceError("chromium was installed but /usr/bin/chromium is missing")
    return CHROMIUM


CADDY = Path("/usr/bin/caddy")


def ensure_caddy(apt: Apt) -> Path:
    """Debian's Caddy (2.6.2 on Debian 12, the version compose pins), the reverse proxy the
    local tests put in front of the API with compose's own Caddyfile. Debian's package starts
    a system-wide Caddy on port 80 where systemd runs; that one is stopped and disabled: only
    the proxies this project starts itself are wanted."""
    if not CADDY.exists():
        apt.install(["caddy"])
        if Path("/run/systemd/system").exists():
            run([*_sudo(), "systemctl", "disable", "--now", "caddy"])
    if not CADDY.exists():
        raise ServiceError("caddy was installed but /usr/bin/caddy is missing")
    return CADDY
