"""ssh_config: the ProxyJump route of each host, read the way ssh reads it, nothing run, nothing resolved."""

import getpass
import os
import textwrap

import pytest

from provisioner.sshconfig import Jump, SshConfig
from provisioner.validation import InputError


def config(tmp_path, text, name="config"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return SshConfig.load(str(path))


def test_no_proxyjump_means_a_direct_connection(tmp_path):
    assert config(tmp_path, "Host *\n  ConnectTimeout 5\n  StrictHostKeyChecking no\n").route("192.0.2.25") == ()


def test_jump_host_settings_come_from_its_own_block(tmp_path):
    key = tmp_path / "bastion_key"
    key.write_text("")
    cfg = config(tmp_path, f"""
        Host mail*.example.com 192.0.2.*
          ProxyJump bastion
        Host bastion
          HostName 198.51.100.7
          Port 2222
          User jumper
          IdentityFile {key}
          IdentityFile ~/.ssh/does-not-exist
    """)
    assert cfg.route("192.0.2.25") == (Jump("bastion", "198.51.100.7", 2222, "jumper", (str(key),)),)
    assert cfg.route("MAIL1.example.com")[0].address == "198.51.100.7"  # host patterns ignore case
    assert cfg.route("203.0.113.5") == ()


def test_first_value_wins_and_proxyjump_none_stops_later_ones(tmp_path):
    cfg = config(tmp_path, """
        Host 192.0.2.25
          ProxyJump none
        Host 192.0.2.*
          ProxyJump bastion
    """)
    assert cfg.route("192.0.2.25") == ()
    assert cfg.route("192.0.2.26")[0].name == "bastion"


def test_proxyjump_and_proxycommand_compete_the_first_wins(tmp_path):
    cfg = config(tmp_path, """
        Host 192.0.2.25
          ProxyJump bastion
        Host 192.0.2.*
          ProxyCommand nc %h %p
    """)
    assert cfg.route("192.0.2.25")[0].name == "bastion"
    with pytest.raises(InputError, match=r"config:5: ProxyCommand for 192.0.2.26 is not supported"):
        cfg.route("192.0.2.26")


def test_a_list_goes_through_each_hop_and_the_first_hop_has_its_own_jump(tmp_path):
    cfg = config(tmp_path, """
        Host 192.0.2.25
          ProxyJump deploy@inner:2200,[2001:db8::7]:22
        Host inner
          HostName 10.0.0.2
          ProxyJump outer.example.com
    """)
    hops = cfg.route("192.0.2.25")
    assert [(h.address, h.port, h.user) for h in hops] == [
        ("outer.example.com", 22, getpass.getuser()),
        ("10.0.0.2", 2200, "deploy"),
        ("2001:db8::7", 22, getpass.getuser()),
    ]


def test_negated_patterns_and_match_blocks(tmp_path):
    cfg = config(tmp_path, """
        Host * !bastion.example.com
          ProxyJump bastion.example.com
        Match originalhost 192.0.2.9 user admin
          ProxyJump never
    """)
    assert cfg.route("192.0.2.25")[0].address == "bastion.example.com"
    # the bastion itself is excluded, so no loop
    assert cfg.chain("bastion.example.com", "x", ("192.0.2.25",))[0].name == "bastion.example.com"


def test_match_exec_is_refused_only_where_it_decides_a_route(tmp_path):
    cfg = config(tmp_path, """
        Match exec "test -e /etc/vpn-up"
          ForwardAgent no
        Match host 192.0.2.26 exec "test -e /etc/vpn-up"
          ProxyJump bastion
    """)
    assert cfg.route("192.0.2.25") == ()  # the first block sets nothing about routes; the second is for .26
    with pytest.raises(InputError, match="config:4: Match exec cannot be decided"):
        cfg.route("192.0.2.26")


def test_include_is_read_in_place_and_restores_the_enclosing_block(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-jump.conf").write_text("Host 192.0.2.*\n  ProxyJump bastion\n")
    cfg = config(tmp_path, f"""
        Host 203.0.113.*
          Include {tmp_path}/conf.d/*.conf
          ProxyJump other
    """)
    # after the Include, "ProxyJump other" belongs to Host 203.0.113.* again, not to the included block
    assert cfg.route("203.0.113.5")[0].name == "other"
    assert cfg.route("192.0.2.25") == ()  # the included block was only read for 203.0.113.*


def test_relative_include_is_under_dot_ssh(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "jumps").write_text("Host 192.0.2.25\n  ProxyJump bastion\n")
    (tmp_path / ".ssh" / "config").write_text("Include jumps\n")
    assert SshConfig.load().route("192.0.2.25")[0].name == "bastion"


def test_default_files_are_optional_but_a_named_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    SshConfig.load()  # no ~/.ssh/config: fine
    with pytest.raises(InputError, match="nope: ssh config file not found"):
        SshConfig.load(str(tmp_path / "nope"))
    assert SshConfig.load(os.devnull).route("192.0.2.25") == ()


def test_identity_file_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "198.51.100.7-jumper").write_text("")
    cfg = config(tmp_path, """
        Host 192.0.2.25
          ProxyJump jumper@bastion
        Host bastion
          HostName 198.51.100.7
          IdentityFile ~/keys/%h-%r
    """)
    assert cfg.route("192.0.2.25")[0].keys == (str(tmp_path / "keys" / "198.51.100.7-jumper"),)
    bad = config(tmp_path, "Host 192.0.2.25\n  ProxyJump bastion\nHost bastion\n  IdentityFile ~/%q\n", "bad")
    with pytest.raises(InputError, match="bad:4: token %q is not supported"):
        bad.route("192.0.2.25")


def test_too_many_hops(tmp_path):
    cfg = config(tmp_path, "Host 192.0.2.25\n  ProxyJump " + ",".join(f"h{i}" for i in range(9)) + "\n")
    with pytest.raises(InputError, match="more than 8 jump hosts"):
        cfg.route("192.0.2.25")
