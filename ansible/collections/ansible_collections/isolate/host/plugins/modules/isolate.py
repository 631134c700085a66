#!/usr/bin/python
# Why this file exists: the Ansible module isolate.host.isolate runs the isolate binary on the
# managed host for one stack: `isolate plan` in check mode, `isolate apply` otherwise, and
# reports changed/diff/failed from isolate's JSON (module_utils/isolate_json.py).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: isolate
short_description: Give one rootless Podman stack its own user with isolate
description:
  - Runs C(isolate apply --stack STACK) on the managed host, or C(isolate plan --stack STACK) in
    check mode, both with C(--format json).
  - C(changed) is true when apply did a step (false when it had nothing to do); in check mode
    when plan has steps.
  - C(diff) shows the lines isolate prints for its steps; in check mode, before is what the host
    already has for the stack (plan's notes) and after adds the planned steps.
  - A refusal (exit 2) or a failed step (exit 1) fails the task with isolate's own message.
  - One stack per task. isolate must be installed on the managed host; the task needs root
    (C(become)) for apply.
options:
  stack:
    description: The stack to plan or apply (a key of the policy's C([stacks])).
    type: str
    required: true
  policy:
    description: The policy file (isolate's default C(/etc/isolate/policy.toml) when unset).
    type: path
  binary:
    description: The isolate binary, a name looked up on PATH and the sbin directories, or a path.
    type: str
    default: isolate
  force:
    description: Migrate even while running containers hold the data (C(apply --force)).
    type: bool
    default: false
  no_systemd:
    description: Skip linger and the podman socket (a root without systemd).
    type: bool
    default: false
author:
  - isolate contributors
"""

EXAMPLES = r"""
- name: immich runs as its own user
  isolate.host.isolate:
    stack: immich
  become: true
"""

RETURN = r"""
steps:
  description: In check mode the planned step lines; otherwise each step with line and outcome
    (done, already_present, failed, not_found, skipped).
  returned: success or failure after apply started
  type: list
notes:
  description: What plan (or a "nothing to do" apply) found already in place or skipped.
  returned: when isolate printed notes
  type: list
code:
  description: isolate's error code (e.g. usage, refused, policy) when it refused.
  returned: on refusal
  type: str
rc:
  description: isolate's exit status.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isolate.host.plugins.module_utils import isolate_json


def main():
    module = AnsibleModule(
        argument_spec=dict(
            stack=dict(type="str", required=True),
            policy=dict(type="path"),
            binary=dict(type="str", default="isolate"),
            force=dict(type="bool", default=False),
            no_systemd=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    binary = params["binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True)
    check = module.check_mode
    argv = isolate_json.command(
        binary,
        "plan" if check else "apply",
        stack=params["stack"],
        policy=params["policy"],
        force=params["force"] and not check,
        no_systemd=params["no_systemd"],
    )
    rc, stdout, stderr = module.run_command(argv, environ_update={"LANG": "C.UTF-8"})
    if check:
        result = isolate_json.plan_result(params["stack"], rc, stdout, stderr)
    else:
        result = isolate_json.apply_result(params["stack"], rc, stdout, stderr)
    if result["failed"]:
        del result["failed"]
        module.fail_json(**result)
    # failed=False stays in the result: Ansible reads a nonzero rc (audit's 1 for findings) as a
    # failure unless the result says otherwise.
    module.exit_json(**result)


if __name__ == "__main__":
    main()
