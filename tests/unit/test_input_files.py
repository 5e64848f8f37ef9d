"""Input files: bounded and strict, yet anchors, merge keys and ordinary files work."""

import subprocess

import paramiko
import pytest

from provisioner.inputfiles import MAX_NODES, load_yaml
from provisioner.transport import fingerprint
from provisioner.validation import InputError, parse_destination


def test_anchors_and_merge_keys_within_the_bounds(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(
        "common: &common {mydomain: example.com, main_cf: {smtpd_tls_loglevel: '1'}}\n"
        "hosts:\n"
        "  a: {vars: {<<: *common, myhostname: a.example.com}}\n"
        "  b: {vars: *common}\n"
    )
    data = load_yaml(path, "inventory file")
    assert data["hosts"]["a"]["vars"] == {"mydomain": "example.com", "main_cf": {"smtpd_tls_loglevel": "1"},
                                          "myhostname": "a.example.com"}
    # a merge key may be overridden: that is not a duplicate key
    path.write_text("base: &b {x: 1}\nc: {<<: *b, x: 2}\n")
    assert load_yaml(path, "inventory file")["c"] == {"x": 2}


def test_the_node_bound_counts_expanded_aliases(tmp_path):
    path = tmp_path / "inv.yaml"
    # 400 * 400 = 160,000 nodes once expanded, from a file of a few kB
    path.write_text("a: &a [" + ", ".join(["x"] * 400) + "]\nb: [" + ", ".join(["*a"] * 400) + "]\n")
    with pytest.raises(InputError, match=f"more than {MAX_NODES} YAML nodes"):
        load_yaml(path, "inventory file")


def test_byte_order_mark_and_dev_null(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_bytes("\ufeffhosts: {}\n".encode())
    assert load_yaml(path, "inventory file") == {"hosts": {}}
    assert load_yaml("/dev/null", "inventory file") is None


@pytest.mark.parametrize("value,parts", [
    ("192.0.2.25", (None, "192.0.2.25", None)),
    ("deploy@mail1.example.com:2222", ("deploy", "mail1.example.com", 2222)),
    ("2001:db8::25", (None, "2001:db8::25", None)),
    ("[2001:db8::25]:2222", (None, "2001:db8::25", 2222)),
    ("admin@[2001:db8::25]", ("admin", "2001:db8::25", None)),
])
def test_destinations_are_split_into_their_parts(value, parts):
    assert parse_destination(value) == parts


def test_fingerprints_are_printed_like_ssh_keygen(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "k"))
    listed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True)
    assert listed.stdout.split()[1] == fingerprint(key)
    assert fingerprint(key).startswith("SHA256:") and not fingerprint(key).endswith("=")
