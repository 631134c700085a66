# Why this file exists: the booted suite's Ansible scenario (integration/97-ansible.sh) drives a
# systemd-nspawn container from the host as a controller drives a managed host over SSH: this
# connection plugin is the transport, entering the namespaces of the container's init with
# `nsenter -t PID -a` (as the suite's in_ct does) instead of ssh. The modules still travel as
# AnsiballZ payloads and run under the container's own python3, as on a real host.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: nsenter_pid
short_description: Run tasks inside the namespaces of a process (a booted container's init)
description:
  - Runs commands with C(nsenter -t PID -a -W /) in a clean environment, copies files in and
    out through the same entry (never through the host's view of the container's root).
author: isolate contributors
options:
  pid:
    description: The process whose namespaces to enter (the container's init).
    type: str
    vars:
      - name: ansible_nsenter_pid
    env:
      - name: CT_PID
"""

import subprocess

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase

# The PATH a root login inside a Debian container has (the suite's CT_PATH).
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Connection(ConnectionBase):
    transport = "nsenter_pid"
    has_pipelining = True

    def _argv(self, *command):
        pid = self.get_option("pid")
        if not pid:
            raise AnsibleError("nsenter_pid: set ansible_nsenter_pid (or CT_PID)")
        return [
            "nsenter", "-t", str(pid), "-a", "-W", "/",
            "env", "-i", "PATH=" + PATH, "LANG=C.UTF-8", "HOME=/root", "USER=root",
        ] + list(command)

    def _connect(self):
        self._connected = True
        return self

    def _run(self, argv, stdin_bytes=None, stdin_file=None):
        proc = subprocess.Popen(
            argv,
            stdin=stdin_file if stdin_file is not None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = proc.communicate(None if stdin_file is not None else (stdin_bytes or b""))
        return proc.returncode, out, err

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._display.vvv("NSENTER %s" % cmd, host=self._play_context.remote_addr)
        return self._run(self._argv("/bin/sh", "-c", cmd), stdin_bytes=in_data)

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        with open(to_bytes(in_path), "rb") as source:
            rc, _, err = self._run(
                self._argv("/bin/sh", "-c", 'cat > "$1"', "sh", out_path), stdin_file=source
            )
        if rc != 0:
            raise AnsibleError("nsenter_pid: cannot write %s: %s" % (out_path, err))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        rc, out, err = self._run(self._argv("cat", in_path))
        if rc != 0:
            raise AnsibleError("nsenter_pid: cannot read %s: %s" % (in_path, err))
        with open(to_bytes(out_path), "wb") as dest:
            dest.write(out)

    def close(self):
        self._connected = False
