"""The bench's pyinfra side: the same desired state as tooling/bench/ansible/playbook.yml.

Every value comes from the JSON that tooling.bench generates from
provisioner.desired.desired_state and the lab inventory (host data
``bench_desired``). Idiomatic pyinfra: one operation per concern, files.line per
main.cf key, and "handlers" as operations guarded by ``_if=any_changed(...)``.
"""

import io
import json

from pyinfra import host
from pyinfra.operations import apt, files, server, systemd, sysvinit
from pyinfra.operations.util import any_changed

with open(host.data.bench_desired) as fh:
    d = json.load(fh)


def put(name, spec):
    return files.put(name=name, src=io.StringIO(spec["content"]), dest=spec["path"],
                     user="root", group="root", mode="644")


apt.packages(name="mail packages installed", packages=d["mail_packages"], no_recommends=True)
apt.packages(name="sendmail packages absent", packages=d["sendmail_packages"], present=False, purge=True)

postfix_config = []
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
saslauthd_config.append(files.line(
    name="pam_listfile restriction in /etc/pam.d/smtp", path=d["pam_smtp"]["path"],
    line=f"^{pam_line}$",
))

virtual = put("virtual alias map", d["virtual_map"])
aliases = None
if d["aliases"]["root_line"] is not None:
    aliases = files.line(name="root alias", path=d["aliases"]["path"], line=r"^root\s*:.*$",
                         replace=d["aliases"]["root_line"])

# saslauthd is a SysV script on Debian 12 (systemd reports it "generated").
sysvinit.service(name="saslauthd enabled and running", service="saslauthd", running=True, enabled=True)
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
