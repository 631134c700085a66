# Why this file exists: the isolate.host modules' translation of isolate's JSON into Ansible
# results, tested on output the real binary printed (fixtures/, from `isolate --format json`
# plan/apply on a scratch root; apply-failed.json is apply.json with its migrate step failed,
# in the shape src/apply/mod.rs serialises). Runs without Ansible:
#   python3 -m unittest discover -s ansible/collections/ansible_collections/isolate/host/tests/unit
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# ansible/collections, so the collection imports as Ansible sees it.
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", "..")))

from ansible_collections.isolate.host.plugins.module_utils import isolate_json  # noqa: E402


def fixture(name):
    with open(os.path.join(HERE, "fixtures", name)) as f:
        return f.read()


class PlanTest(unittest.TestCase):
    def test_steps_are_changes_and_the_diff_adds_their_lines(self):
        r = isolate_json.plan_result("web", 0, fixture("plan.json"), "")
        self.assertFalse(r["failed"])
        self.assertTrue(r["changed"])
        self.assertEqual(r["steps"][0], "+ group stk-shared")
        self.assertIn("+ user stk-web (uid 70000, gid 70000, home /var/lib/isolate/home/stk-web)", r["steps"])
        self.assertEqual(r["diff"]["before"], "")
        self.assertEqual(r["diff"]["after"], "".join(s + "\n" for s in r["steps"]))

    def test_nothing_planned_is_unchanged_and_the_present_notes_are_both_sides(self):
        r = isolate_json.plan_result("web", 0, fixture("plan-nothing.json"), "")
        self.assertFalse(r["changed"])
        self.assertEqual(r["steps"], [])
        self.assertIn("= user stk-web (uid 70000)\n", r["diff"]["before"])
        self.assertEqual(r["diff"]["before"], r["diff"]["after"])

    def test_a_refusal_fails_with_isolates_message(self):
        r = isolate_json.plan_result("nope", 2, fixture("error.json"), "isolate: --stack nope: ...\n")
        self.assertTrue(r["failed"])
        self.assertEqual(r["code"], "usage")
        self.assertEqual(r["msg"], "--stack nope: the policy /etc/isolate/policy.toml defines no such stack")
        self.assertEqual(r["rc"], 2)

    def test_output_that_is_not_json_fails_with_stderr(self):
        r = isolate_json.plan_result("web", 2, "", "error: unexpected argument '--format'\n")
        self.assertTrue(r["failed"])
        self.assertEqual(r["msg"], "isolate plan exited 2: error: unexpected argument '--format'")

    def test_control_characters_never_reach_the_terminal(self):
        self.assertEqual(isolate_json.printable(u"a\x1b[2Jb\n"), u"a\\x1b[2Jb\\x0a")


class ApplyTest(unittest.TestCase):
    def test_done_steps_are_changes(self):
        r = isolate_json.apply_result("web", 0, fixture("apply.json"), "")
        self.assertFalse(r["failed"])
        self.assertTrue(r["changed"])
        self.assertTrue(all(s["outcome"] == "done" for s in r["steps"]))
        self.assertIn("+ group stk-web (gid 70000)\n", r["diff"]["after"])

    def test_nothing_to_do_is_unchanged(self):
        r = isolate_json.apply_result("web", 0, fixture("apply-nothing.json"), "")
        self.assertFalse(r["failed"])
        self.assertFalse(r["changed"])
        self.assertEqual(r["msg"], "nothing to do: the host matches the policy")
        self.assertIn("/srv/web migrated", r["notes"])

    def test_steps_already_present_are_no_change(self):
        doc = fixture("apply.json").replace('"outcome": "done"', '"outcome": "already_present"')
        r = isolate_json.apply_result("web", 0, doc, "")
        self.assertFalse(r["changed"])

    def test_a_failed_step_fails_naming_it_and_keeps_what_was_done(self):
        r = isolate_json.apply_result("web", 1, fixture("apply-failed.json"), "")
        self.assertTrue(r["failed"])
        self.assertTrue(r["changed"], "the account steps before the failure were made")
        self.assertTrue(r["msg"].startswith("isolate apply --stack web: 1 step(s) failed: ~ migrate /srv/web"), r["msg"])
        self.assertIn("Permission denied", r["msg"])
        self.assertEqual([s["outcome"] for s in r["steps"]][-2:], ["failed", "skipped"])

    def test_an_error_after_the_report_wins(self):
        out = fixture("apply.json") + '{"error":{"code":"io","message":"reading /etc/passwd: gone"}}\n'
        r = isolate_json.apply_result("web", 1, out, "")
        self.assertTrue(r["failed"])
        self.assertEqual(r["msg"], "reading /etc/passwd: gone")
        self.assertTrue(r["changed"])


class AuditTest(unittest.TestCase):
    REPORT = '{"schema_version": 1, "stacks": [], "findings": [{"kind": "k", "severity": "error"}, {"kind": "j", "severity": "warning"}, {"kind": "i", "severity": "error"}]}'

    def test_findings_are_facts_not_failures(self):
        r = isolate_json.audit_result(1, self.REPORT, "")
        self.assertFalse(r["failed"])
        self.assertFalse(r["changed"])
        self.assertEqual(r["findings_by_severity"], {"error": 2, "warning": 1})
        self.assertEqual(r["ansible_facts"]["isolate_audit"]["schema_version"], 1)

    def test_a_broken_policy_fails(self):
        r = isolate_json.audit_result(2, '{"error":{"code":"policy","message":"policy.toml:1:1: bad"}}', "")
        self.assertTrue(r["failed"])
        self.assertEqual(r["msg"], "policy.toml:1:1: bad")


class CommandTest(unittest.TestCase):
    def test_one_stack_with_json_output(self):
        self.assertEqual(
            isolate_json.command("/usr/sbin/isolate", "apply", stack="web", policy="/p.toml", force=True),
            ["/usr/sbin/isolate", "--format", "json", "--policy", "/p.toml", "apply", "--stack", "web", "--force"],
        )


if __name__ == "__main__":
    unittest.main()
