#!/usr/bin/python
# Why this file exists: the Ansible module isolate.host.isolate_audit gathers
# `isolate audit --format json` (who owns which data, who can reach it) as the fact
# `isolate_audit`, so a play can assert on findings across a fleet. It changes nothing.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: isolate_audit
short_description: Gather isolate's audit as the fact isolate_audit
description:
  - Runs C(isolate --format json audit) on the managed host (read-only) and sets the fact
    C(isolate_audit) to its report (schema_version 1, see isolate's README "Audit JSON").
  - Findings do not fail the task (isolate exits 1 for them); C(findings_by_severity) counts
    them. A broken policy or an unreadable host fails it with isolate's message.
  - Supports check mode (it changes nothing in either mode).
options:
  stacks:
    description: Limit to these stacks' data and the shares granting them (all when empty).
    type: list
    elements: str
    default: []
  policy:
    description: The policy file (isolate's default when unset).
    type: path
  binary:
    description: The isolate binary, a name looked up on PATH and the sbin directories, or a path.
    type: str
    default: isolate
author:
  - isolate contributors
"""

EXAMPLES = r"""
- isolate.host.isolate_audit:
  become: true
- ansible.builtin.assert:
    that: ansible_facts.isolate_audit.findings | selectattr('severity', 'eq', 'error') | list | length == 0
"""

RETURN = r"""
findings_by_severity:
  description: How many findings of each severity the audit reported.
  returned: success
  type: dict
ansible_facts:
  description: C(isolate_audit), the audit report.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isolate.host.plugins.module_utils import isolate_json


def main():
    module = AnsibleModule(
        argument_spec=dict(
            stacks=dict(type="list", elements="str", default=[]),
            policy=dict(type="path"),
            binary=dict(type="str", default="isolate"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    binary = params["binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True)
    argv = isolate_json.command(
        binary, "audit", policy=params["policy"], stacks=params["stacks"]
    )
    rc, stdout, stderr = module.run_command(argv, environ_update={"LANG": "C.UTF-8"})
    result = isolate_json.audit_result(rc, stdout, stderr)
    if result["failed"]:
        del result["failed"]
        module.fail_json(**result)
    # failed=False stays in the result: Ansible reads a nonzero rc (audit's 1 for findings) as a
    # failure unless the result says otherwise.
    module.exit_json(**result)


if __name__ == "__main__":
    main()
