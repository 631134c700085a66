use super::*;
use std::cell::RefCell;

#[derive(Default)]
struct Recorded(RefCell<Vec<String>>);

impl AccountRepairs for Recorded {
    fn add_shadow_line(&self, user: &str) -> Result<()> {
        self.0.borrow_mut().push(format!("shadow {user}"));
        Ok(())
    }
    fn add_gshadow_line(&self, group: &str) -> Result<()> {
        self.0.borrow_mut().push(format!("gshadow {group}"));
        Ok(())
    }
    fn add_member(&self, user: &str, group: &str) -> Result<()> {
        self.0.borrow_mut().push(format!("member {user} {group}"));
        Ok(())
    }
    fn create_home(&self, home: &Path, uid: u32, gid: u32) -> Result<()> {
        self.0
            .borrow_mut()
            .push(format!("home {} {uid} {gid}", home.display()));
        Ok(())
    }
}

fn host(passwd: &str, shadow: &str, group: &str, gshadow: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::create_dir_all(d.path().join("home/stk-a")).unwrap();
    for (f, t) in [
        ("passwd", passwd),
        ("shadow", shadow),
        ("group", group),
        ("gshadow", gshadow),
    ] {
        std::fs::write(d.path().join("etc").join(f), t).unwrap();
    }
    d
}

fn own() -> BTreeSet<String> {
    ["stk-a".to_string(), "stk-shared".to_string()].into()
}

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nstk-a:x:800:800::/home/stk-a:/sbin/nologin\n";
const SHADOW: &str = "root:*:1::::::\nstk-a:!:1::::::\n";
const GROUP: &str = "root:x:0:\nstk-a:x:800:\nstk-shared:x:801:stk-a\n";
const GSHADOW: &str = "root:*::\nstk-a:!::\nstk-shared:!::stk-a\n";

#[test]
fn consistent_files_have_no_findings() {
    let d = host(PASSWD, SHADOW, GROUP, GSHADOW);
    assert_eq!(check(&Root::new(d.path()), &own()).unwrap(), vec![]);
    let r = Recorded::default();
    assert!(repair_or_refuse(&Root::new(d.path()), &own(), &r)
        .unwrap()
        .is_empty());
    assert!(r.0.borrow().is_empty());
}

#[test]
fn half_made_own_accounts_are_repaired_in_file_order() {
    let d = host(
        "root:x:0:0::/root:/bin/sh\nstk-a:x:800:800::/home/stk-b:/sbin/nologin\n",
        "root:*:1::::::\n",
        GROUP,
        "root:*::\nstk-shared:!::\n",
    );
    let found = check(&Root::new(d.path()), &own()).unwrap();
    let p = d.path().display().to_string();
    assert_eq!(
        found.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        vec![
            format!("{p}/etc/group:2: group `stk-a` has no line in gshadow"),
            format!("{p}/etc/group:3: `stk-a` is a member of group `stk-shared` here but not in gshadow"),
            format!("{p}/etc/passwd:2: user `stk-a` has no line in shadow"),
            format!("{p}/etc/passwd:2: the home directory /home/stk-b of `stk-a` does not exist"),
        ]
    );
    let r = Recorded::default();
    // The fake repairs nothing, so the re-check fails: the repairs were asked for, in order.
    let e = repair_or_refuse(&Root::new(d.path()), &own(), &r).unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        *r.0.borrow(),
        vec![
            "gshadow stk-a",
            "member stk-a stk-shared",
            "shadow stk-a",
            "home /home/stk-b 800 800"
        ]
    );
}

#[test]
fn other_accounts_are_neither_repaired_nor_refused() {
    let d = host(
        "root:x:0:0::/root:/bin/sh\nbob:x:5:5::/nohome:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n",
        "root:*:1::::::\nghost:*:1::::::\n",
        "root:x:0:\nbob:x:5:\n",
        "root:*::\n",
    );
    let found = check(&Root::new(d.path()), &own()).unwrap();
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(found.iter().all(|f| !f.own));
    let r = Recorded::default();
    assert!(repair_or_refuse(&Root::new(d.path()), &own(), &r)
        .unwrap()
        .is_empty());
    assert!(r.0.borrow().is_empty());
}

#[test]
fn duplicates_of_own_accounts_are_refused_by_file_and_line() {
    let d = host(
        &format!("{PASSWD}bob:x:800:5::/:/bin/sh\nstk-a:x:801:801::/home/stk-a:/sbin/nologin\n"),
        &format!("{SHADOW}bob:*:1::::::\n"),
        GROUP,
        GSHADOW,
    );
    let r = Recorded::default();
    let e = repair_or_refuse(&Root::new(d.path()), &own(), &r).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let p = d.path().display().to_string();
    let tail = ": an interrupted isolate run does not leave this, so isolate does not repair it; fix it (pwck -R / grpck -R show it) and run again";
    assert_eq!(
        e.to_string(),
        format!(
            "{p}/etc/passwd:3: id 800 of `bob` is also the id of `stk-a` (line 2){tail}\n\
             {p}/etc/passwd:4: `stk-a` again (first on line 2){tail}"
        )
    );
    assert!(r.0.borrow().is_empty());
}

#[test]
fn a_missing_gshadow_file_is_not_a_missing_line() {
    let d = host(PASSWD, SHADOW, GROUP, "");
    std::fs::remove_file(d.path().join("etc/gshadow")).unwrap();
    assert_eq!(check(&Root::new(d.path()), &own()).unwrap(), vec![]);
}
