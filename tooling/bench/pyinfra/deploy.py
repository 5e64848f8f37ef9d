"""The bench's pyinfra side: the same desired state as tooling/bench/ansible/playbook.yml.

Every value comes from the JSON that tooling.bench generates from
provisioner.desired.desired_state and the lab inventory (host data
``bench_desired``). Idiomatic pyinfra: one operation per concern, files.line per
main.cf key, and "handlers" as operations guarded by ``_if=any_changed(...)``.
The firewall job as provisioner's: while the peers' marker is absent (the job
never completed on this host), port 25 is locked down to the control node
before anything is configured and lifted at the end; decided from a File fact,
the way pyinfra deploys branch on host state.
"""

import io
import json
import shlex

from pyinfra import host
from pyinfra.facts.files import File, FindLinks
from pyinfra.operations import apt, files, server, systemd, sysvinit
from pyinfra.operations.util import any_changed

with open(host.data.bench_desired) as fh:
    d = json.load(fh)


def put(name, spec):
    return files.put(name=name, src=io.StringIO(spec["content"]), dest=spec["path"],
                     user="root", group="root", mode="644")


fw = d["firewall"]
first_run = not host.get_fact(File, path=fw["marker"])
apt.packages(name="firewall tool installed", packages=fw["packages"], no_recommends=True)
if first_run:
    server.shell(name="lock the mail ports down to the control node",
                 commands=[f"printf %s {shlex.quote(fw['nft_lockdown'])} | nft -f -"])

apt.packages(name="mail packages installed", packages=d["mail_packages"], no_recommends=True)
apt.packages(name="sendmail packages absent", packages=d["sendmail_packages"], present=False, purge=True)

tls = d["tls"]
postfix_config = []
files.directory(name="TLS directory", path=tls["dir"], user="root", group="root", mode="755")
if host.get_fact(File, path=tls["key"]):
    files.file(name="private key mode", path=tls["key"], user="root", group="root", mode="600")
else:
    postfix_config.append(server.shell(
        name="self-signed certificate, made on the host",
        commands=[f"openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days {tls['days']} "
                  f"-subj {shlex.quote(tls['subject'])} -keyout {tls['key']} -out {tls['cert']} "
                  f"&& chmod 600 {tls['key']}"],
    ))
postfix_config.append(put("DH parameters (RFC 7919 ffdhe2048)", tls["dh_params"]))
for item in d["main_cf_set"]:
    postfix_config.append(files.line(
        name=f"main.cf: {item['key']}", path=d["main_cf_path"],
        line=rf"^{item['key']}\s*=.*$", replace=item["line"],
    ))
for key in d["main_cf_absent"]:
    postfix_config.append(files.line(
        name=f"main.cf: no {key}", path=d["main_cf_path"], line=rf"^{key}\s*=.*$", present=False,
    ))
postfix_config.append(put("smtpd SASL configuration", d["smtpd_sasl_conf"]))

saslauthd_config = []
for item in d["saslauthd_defaults"]["lines"]:
    saslauthd_config.append(files.line(
        name=f"saslauthd: {item['key']}", path=d["saslauthd_defaults"]["path"],
        line=rf"^{item['key']}=.*$", replace=item["line"],
    ))
saslauthd_config.append(put("PAM group allow file", d["pam_allow_file"]))

server.group(name="mail group", group=d["mail_group"])
for user in d["mail_users"]:
    server.user(name=f"{user} in the mail group", user=user, groups=[d["mail_group"]], append=True)

pam_line = d["pam_smtp"]["line"]
if host.get_fact(File, path=d["pam_smtp"]["path"]):
    saslauthd_config.append(files.line(
        name="pam_listfile restriction in /etc/pam.d/smtp", path=d["pam_smtp"]["path"],
        line=f"^{pam_line}$",
    ))
else:
    saslauthd_config.append(put("/etc/pam.d/smtp where the package shipped none", {
        "path": d["pam_smtp"]["path"], "content": d["pam_smtp"]["new_content"]}))

virtual = put("virtual alias map", d["virtual_map"])
aliases = None
if d["aliases"]["root_line"] is not None:
    aliases = files.line(name="root alias", path=d["aliases"]["path"], line=r"^root\s*:.*$",
                         replace=d["aliases"]["root_line"])

# saslauthd is a SysV script on Debian 12 (systemd reports it "generated"). sysvinit.service(enabled=True)
# runs `update-rc.d saslauthd defaults` when no S link exists, which keeps the package's K01 links: seen
# on the lab, it never enables saslauthd and plans the same change on every run. So: the same FindLinks
# fact, and `update-rc.d saslauthd enable`, which turns the K links into S links.
sysvinit.service(name="saslauthd running", service="saslauthd", running=True)
if not host.get_fact(FindLinks, path="/etc", path_match="/etc/rc*.d/S*saslauthd"):
    server.shell(name="saslauthd enabled at boot", commands=["update-rc.d saslauthd enable"])
systemd.service(name="postfix enabled and running", service="postfix", running=True, enabled=True)

# Handlers
server.shell(name="postmap virtual", commands=[f"postmap {d['virtual_map']['path']}"],
             _if=virtual.did_change)
if aliases is not None:
    server.shell(name="newaliases", commands=["newaliases"], _if=aliases.did_change)
sysvinit.service(name="restart saslauthd", service="saslauthd", restarted=True,
                 _if=any_changed(*saslauthd_config))
server.shell(name="postfix check", commands=["postfix check"], _if=any_changed(*postfix_config))
systemd.service(name="reload postfix", service="postfix", reloaded=True, _if=any_changed(*postfix_config))

if first_run:
    server.shell(name="lift the lockdown", commands=[f"printf %s {shlex.quote(fw['nft_lift'])} | nft -f -"])
files.file(name="record that the job completed once", path=fw["marker"], present=True, touch=False)
