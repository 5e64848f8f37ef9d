"""Fixed places and names of the lab. Nothing here touches the system."""

from __future__ import annotations

from pathlib import Path

#: Cached base image (rootfs tarball) and offline apt repository. ``down()`` leaves it.
CACHE_DIR = Path("/var/cache/provisioner-lab")
#: Run state: lab key pair, known_hosts, state file, one directory per host.
STATE_DIR = Path("/var/lib/provisioner-lab")
HOSTS_DIR = STATE_DIR / "hosts"
STATE_FILE = STATE_DIR / "state.json"
STATE_LOCK = STATE_DIR / ".lock"
KEY_PATH = STATE_DIR / "id_ed25519"
KNOWN_HOSTS_PATH = STATE_DIR / "known_hosts"

#: The repository this package lives in (tooling/lab/config.py -> repo root).
REPO_ROOT = Path(__file__).resolve().parents[2]
INVENTORY_DIR = REPO_ROOT / "inventories"
INVENTORY_NAME = "lab.yaml"
SECRETS_NAME = "lab-secrets.yaml"

#: Debian suites the lab boots; SUITE is the default (Debian 12), whose image keeps the
#: cache's top directory. A host's suite is chosen at lab.up.
SUITE = "bookworm"
SUITES: tuple[str, ...] = ("bookworm", "trixie")
#: Where the offline repositories come from (a private apt configuration, see image.py).
DEBIAN_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://security.debian.org/debian-security"
ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: Base image: what mmdebstrap puts in every host.
VARIANT = "minbase"
ROOTFS_INCLUDE: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "iproute2",
)
#: Offline repository: these packages and all their recursive dependencies.
REPO_PACKAGES: tuple[str, ...] = (
    "postfix",
    "sasl2-bin",
    "libsasl2-modules",
    "openssl",
    "ca-certificates",
    "nftables",
    "iptables",
    "sendmail-bin",
    "sendmail-base",
    "sendmail-cf",
    "libpam-modules",
    # Only for `make bench`: Ansible needs Python on the target and its apt
    # module python3-apt. Installed by the bench on its host, never in the image.
    "python3",
    "python3-apt",
)
#: Bump when the way the image or repo is built changes (forces a rebuild).
IMAGE_FORMAT = 1

#: Where the offline repo appears inside each host, and the only apt source there.
REPO_MOUNT = "/srv/repo"
SOURCES_LIST = f"deb [trusted=yes] file:{REPO_MOUNT} ./\n"

#: Accounts created in every host.
MAIL_USER = "mailuser"
OUTSIDER_USER = "outsider"
PASSWORD_LENGTH = 24

#: Limits.
MAX_HOSTS = 64
BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
