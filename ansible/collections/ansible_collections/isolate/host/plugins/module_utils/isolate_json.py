# Why this file exists: the modules of isolate.host only run the isolate binary and turn its JSON
# (plan, apply, audit, and the error object every command prints on failure) into Ansible
# results. That translation lives here, free of Ansible imports, so it is unit-tested on real
# isolate output (tests/unit) without Ansible installed.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

# isolate's exit statuses (README "Exit codes").
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

_CONTROL = re.compile(u"[\x00-\x1f\x7f-\x9f]")


def printable(text):
    """A line safe for a terminal: control characters as \\xNN (JSON keeps names exact; an
    Ansible diff is printed to the admin's terminal)."""
    return _CONTROL.sub(lambda m: u"\\x%02x" % ord(m.group(0)), text)


def command(binary, subcommand, stack=None, policy=None, force=False, no_systemd=False, stacks=()):
    """The argv of one isolate run with JSON output."""
    argv = [binary, "--format", "json"]
    if policy:
        argv += ["--policy", policy]
    argv.append(subcommand)
    for name in ([stack] if stack else []) + list(stacks):
        argv += ["--stack", name]
    if no_systemd:
        argv.append("--no-systemd")
    if force:
        argv.append("--force")
    return argv


def documents(stdout):
    """Every JSON document on stdout, in order (isolate prints one; a failure after the report
    adds its error object). Raises ValueError when something else is there."""
    decoder = json.JSONDecoder()
    docs, at = [], 0
    while True:
        while at < len(stdout) and stdout[at].isspace():
            at += 1
        if at == len(stdout):
            return docs
        doc, at = decoder.raw_decode(stdout, at)
        docs.append(doc)


def _error_of(docs):
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            return doc["error"]
    return None


def _note_lines(doc):
    """What the host already has for the stack: plan's "present" notes, as plan prints them."""
    return [
        printable(u"= " + note.get("message", u""))
        for note in doc.get("notes", [])
        if note.get("kind") == "present"
    ]


def _text(lines):
    return u"".join(line + u"\n" for line in lines)


def _failure(subcommand, stack, rc, stdout, stderr, docs):
    """The fail_json arguments for an isolate run that did not succeed."""
    error = _error_of(docs)
    result = {"failed": True, "changed": False, "rc": rc, "stack": stack}
    if error is not None:
        result["msg"] = error.get("message", u"isolate failed")
        result["code"] = error.get("code")
    else:
        tail = stderr.strip().splitlines()[-5:]
        result["msg"] = u"isolate %s exited %d%s" % (
            subcommand,
            rc,
            (u": " + u" / ".join(tail)) if tail else u"",
        )
    if docs and isinstance(docs[0], dict) and "error" not in docs[0]:
        # apply failed after making some steps: say which were done and which failed.
        steps = docs[0].get("steps", [])
        done = [s for s in steps if s.get("outcome") == "done"]
        failed = [s for s in steps if s.get("outcome") == "failed"]
        result["changed"] = bool(done)
        result["steps"] = [_step_report(s) for s in steps]
        if failed and error is None:
            result["msg"] = u"isolate apply --stack %s: %d step(s) failed: %s" % (
                stack,
                len(failed),
                u"; ".join(
                    u"%s: %s" % (printable(s.get("line", u"")), printable(s.get("error", u"")))
                    for s in failed
                ),
            )
        extra = [line for line in stderr.strip().splitlines() if line.startswith("FAILED")]
        if extra and error is None:
            result["msg"] += u" (" + u" ".join(extra) + u")"
    return result


def _step_report(step):
    report = {"line": printable(step.get("line", u"")), "outcome": step.get("outcome")}
    for key in ("error", "detail"):
        if key in step:
            report[key] = printable(step[key])
    return report


def plan_result(stack, rc, stdout, stderr):
    """Check mode: `isolate plan` says what apply would change. changed when it plans steps;
    diff: the host's present state (plan's notes) before, that plus each planned step after."""
    try:
        docs = documents(stdout)
    except ValueError:
        docs = []
    if rc != EXIT_OK or len(docs) != 1 or not isinstance(docs[0], dict) or "steps" not in docs[0]:
        return _failure("plan", stack, rc, stdout, stderr, docs)
    plan = docs[0]
    steps = [printable(step.get("line", step.get("kind", u""))) for step in plan["steps"]]
    before = _note_lines(plan)
    return {
        "failed": False,
        "changed": bool(steps),
        "stack": stack,
        "rc": rc,
        "steps": steps,
        "notes": [printable(n.get("message", u"")) for n in plan.get("notes", [])],
        "diff": {
            "before_header": u"isolate stack %s (now)" % stack,
            "after_header": u"isolate stack %s (after apply)" % stack,
            "before": _text(before),
            "after": _text(before + steps),
        },
    }


def apply_result(stack, rc, stdout, stderr):
    """Normal mode: `isolate apply`. changed when a step was done (not when apply had nothing to
    do, or every step found its change already made); diff: the steps done."""
    try:
        docs = documents(stdout)
    except ValueError:
        docs = []
    if rc != EXIT_OK or len(docs) != 1 or not isinstance(docs[0], dict) or "steps" not in docs[0]:
        return _failure("apply", stack, rc, stdout, stderr, docs)
    report = docs[0]
    steps = report["steps"]
    done = [printable(s.get("line", u"")) for s in steps if s.get("outcome") == "done"]
    result = {
        "failed": False,
        "changed": bool(done),
        "stack": stack,
        "rc": rc,
        "steps": [_step_report(s) for s in steps],
        "diff": {
            "before_header": u"isolate stack %s (before apply)" % stack,
            "after_header": u"isolate stack %s (after apply)" % stack,
            "before": u"",
            "after": _text(done),
        },
    }
    if not steps:
        result["msg"] = u"nothing to do: the host matches the policy"
        result["notes"] = [printable(n.get("message", u"")) for n in report.get("notes", [])]
    return result


def audit_result(rc, stdout, stderr):
    """`isolate audit --format json` as facts: exit 0 or 1 (findings at the --fail-on level)
    both carry the report; anything else fails."""
    try:
        docs = documents(stdout)
    except ValueError:
        docs = []
    if rc not in (EXIT_OK, EXIT_FAILURE) or len(docs) != 1 or "schema_version" not in docs[0]:
        return _failure("audit", None, rc, stdout, stderr, docs)
    report = docs[0]
    findings = report.get("findings", [])
    counts = {}
    for finding in findings:
        severity = finding.get("severity", u"unknown")
        counts[severity] = counts.get(severity, 0) + 1
    return {
        "failed": False,
        "changed": False,
        "rc": rc,
        "findings_by_severity": counts,
        "ansible_facts": {"isolate_audit": report},
    }
