# Issue 10: the access matrix audit predicts from modes, ACLs and masks along the path equals
# what real rootless containers observe (the setup of scenario 60: stacks a and b shifted and
# closed, c without grants, share s with write = ["a"], read = ["b:1000"]). Per stack the
# observed level is the best of its container uids 0 and 1000: create -> write, list or
# read -> read, nothing -> none.
legacy=alice
step "legacy user $legacy with a subordinate range; data of a and b, share s"
source "$SUITE/matrix.sh"
matrix_legacy_host "$legacy"

write_matrix_policy "$legacy"

step "apply (migrate, close, share)"
isolate_ok apply
for s in a b c; do import_busybox "stk-$s"; done

step "audit --format json: the predicted matrix"
run_isolate audit --format json
[ "$ISO_RC" = 0 ] || [ "$ISO_RC" = 1 ] || fail "audit exited $ISO_RC"
predicted=$(python3 - "$ISO_OUT" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
names = {"/srv/a": "data-a", "/srv/b": "data-b", "/srv/s": "share-s"}
for c in sorted(doc["matrix"], key=lambda c: (c["stack"], names.get(c["path"], c["path"]))):
    if c["path"] in names:
        print(c["stack"], names[c["path"]], c["predicted"])
PY
)
printf '%s\n' "$predicted"



step "what real containers of each stack observe, as container uid 0 and 1000"
observed=$(observed_matrix)
printf '%s\n' "$observed"
observed_levels=$(awk '
  { key = $2 " " $4; lvl = ($7 == 1) ? 2 : (($5 == 1 || $6 == 1) ? 1 : 0); if (lvl > best[key]) best[key] = lvl; seen[key] = 1 }
  END { for (k in seen) print k, (best[k] == 2 ? "write" : (best[k] == 1 ? "read" : "none")) }' <<<"$observed" | sort)
printf 'observed per stack:\n%s\n' "$observed_levels"
assert_eq "$observed_levels" "$predicted" "audit's predicted matrix against the observed one"
