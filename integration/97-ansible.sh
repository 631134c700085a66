# Issue 23: a real ansible-playbook (ansible-core from PyPI) drives isolate through the
# collection isolate.host (ansible/collections) on the booted container, one stack per task:
# check mode reports the diff and changes nothing, the real run changes the host, a second run
# is ok with nothing changed. The controller is this host and the transport the connection
# plugin ansible/tests/connection_plugins/nsenter_pid.py (nsenter into the container's init):
# as with ssh, the module travels as an AnsiballZ payload and runs under the managed host's own
# python3; only the transport differs, and the container needs no network and no Ansible.
repo=$(cd "$SUITE/.." && pwd)
collections="$repo/ansible/collections"
unit_tests="$collections/ansible_collections/isolate/host/tests/unit"

step "the modules' JSON parsing (python unittest, real isolate output as fixtures)"
/usr/bin/python3 -m unittest discover -s "$unit_tests" 2>&1 | tail -n 3
/usr/bin/python3 -m unittest discover -s "$unit_tests" >/dev/null 2>&1 || fail "unit tests of isolate_json"

# ansible-core from PyPI, once per machine (both releases may ask at the same time).
ansible_core='ansible-core>=2.18,<2.19'
venv=/var/cache/isolate-it/ansible-venv
stamp="$venv/.isolate-it-$(printf '%s' "$ansible_core" | tr -c 'a-z0-9.-' _)"
mkdir -p /var/cache/isolate-it
(
  flock 9
  if [ ! -e "$stamp" ]; then
    step "installing $ansible_core into $venv (cached)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$ansible_core"
    touch "$stamp"
  fi
) 9>/var/cache/isolate-it/ansible-venv.lock
"$venv/bin/ansible-playbook" --version | sed -n 1p

work=$(mktemp -d)
trap 'rm -f "$ISO_OUT" "$ISO_ERR"; rm -rf "$work"' EXIT
cat >"$work/inventory" <<EOF2
booted ansible_connection=nsenter_pid ansible_nsenter_pid=$CT_PID ansible_python_interpreter=/usr/bin/python3
EOF2

# play NAME [ansible-playbook options]: runs ansible/tests/site.yml; output in $work/NAME.out,
# registered results in $work/NAME.json.
play() {
  local name=$1 rc=0
  shift
  env ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_HOME="$work/home" \
    ANSIBLE_LOCAL_TEMP="$work/tmp" ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 \
    ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0 \
    "$venv/bin/ansible-playbook" -i "$work/inventory" "$repo/ansible/tests/site.yml" \
    -e "results_file=$work/$name.json" "$@" >"$work/$name.out" 2>&1 || rc=$?
  sed 's/^/  ansible| /' "$work/$name.out"
  [ "$rc" = 0 ] || fail "ansible-playbook ($name) exited $rc"
}
# result NAME EXPR: a Python expression over the results `r` of play NAME.
result() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$work/$1.json" "$2"
}
recap() { grep -E '^booted +:' "$work/$1.out" | tr -s ' '; }

step "policy: stacks web and db; the play applies web alone"
mkdir -p "$CT_ROOT/srv/web/conf" "$CT_ROOT/srv/db"
echo hello >"$CT_ROOT/srv/web/conf/site.txt"
write_policy /etc/isolate/policy.toml <<'TOML'
[stacks.web]
data = ["/srv/web"]
migrate = "reown"

[stacks.db]
data = ["/srv/db"]
migrate = "reown"
TOML
before_host=$(host_fingerprint)
listing_before=$(cd "$CT_ROOT/srv" && find . -printf '%U:%G %m %p\n' | sort)

step "check mode with --diff: the plan as a diff, nothing changed"
play check --check --diff
recap check | grep -q 'ok=4 changed=1 unreachable=0 failed=0' || fail "check recap: $(recap check)"
grep -qF '+ user stk-web (uid ' "$work/check.out" || fail "--diff shows no planned user line"
grep -qF -- '+ subuid+subgid stk-web:' "$work/check.out" || fail "--diff shows no subordinate ids line"
assert_eq True "$(result check 'r["web"]["changed"]')" "check mode: web changed"
assert_eq True "$(result check 'any("stk-web" in s for s in r["web"]["steps"])')" "check mode: steps name stk-web"
assert_eq True "$(result check 'not any("stk-db" in s for s in r["web"]["steps"])')" "check mode: only stack web planned"
assert_eq usage "$(result check 'r["nope"]["code"]')" "refusal code of an unknown stack"
assert_eq 2 "$(result check 'r["nope"]["rc"]')" "exit status of an unknown stack"
assert_eq True "$(result check '"defines no such stack" in r["nope"]["msg"]')" "refusal message: $(result check 'r["nope"]["msg"]')"
assert_eq 1 "$(result check 'r["audit"]["schema_version"]')" "audit facts schema_version"
assert_eq "$before_host" "$(host_fingerprint)" "account files, linger, state after check mode"
assert_eq "$listing_before" "$(cd "$CT_ROOT/srv" && find . -printf '%U:%G %m %p\n' | sort)" "data owners after check mode"
in_ct getent passwd stk-web >/dev/null && fail "check mode created stk-web"

step "for real: changed"
play first --diff
recap first | grep -q 'ok=4 changed=1 unreachable=0 failed=0' || fail "first recap: $(recap first)"
assert_eq True "$(result first 'r["web"]["changed"]')" "first run: web changed"
assert_eq True "$(result first 'all(s["outcome"] == "done" for s in r["web"]["steps"])')" "first run: every step done"
grep -qF '+ user stk-web (uid ' "$work/first.out" || fail "--diff of the real run shows no user line"
assert_stack_running stk-web
in_ct getent passwd stk-db >/dev/null && fail "the play applied stack db too"
web_uid=$(uid_of stk-web)
assert_eq "$web_uid:$(gid_of stk-web)" "$(stat -c %u:%g "$CT_ROOT/srv/web/conf/site.txt")" "owner of web's data"
assert_eq True "$(result first '[s for s in r["audit"]["stacks"] if s["stack"] == "web"][0]["applied"]')" "audit facts: web applied"
stamps=$(start_stamps stk-web)
after_first=$(host_fingerprint)

step "again: ok, nothing changed"
play again --diff
recap again | grep -q 'ok=4 changed=0 unreachable=0 failed=0' || fail "second recap: $(recap again)"
assert_eq False "$(result again 'r["web"]["changed"]')" "second run: web changed"
assert_eq "nothing to do: the host matches the policy" "$(result again 'r["web"]["msg"]')" "second run message"
assert_eq "$stamps" "$(start_stamps stk-web)" "stk-web user@ / podman.socket start stamps"
assert_eq "$after_first" "$(host_fingerprint)" "account files, linger, state after the second run"
