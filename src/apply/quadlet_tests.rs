//! A stack defined by `quadlets` is refused by plan (and so by apply, which changes nothing)
//! until apply carries out the quadlet steps: moving its data while the legacy owner's units
//! stay enabled would start two copies at the next boot.
use super::handoff_tests::{observed, opts};
use crate::plan::plan;
use crate::policy::Policy;
use std::path::Path;

#[test]
fn a_quadlet_stack_is_refused_until_apply_moves_its_units() {
    let p = Policy::parse(
        Path::new("p.toml"),
        "legacy_owner = \"alice\"\n[stacks.app]\ndata = []\nquadlets = [\"/home/alice/.config/containers/systemd/app.pod\"]\n",
    )
    .unwrap();
    let e = plan(&p, &observed(), &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack `app`: names `quadlets`, whose move (the legacy owner's units parked, the stack user's installed and started) this isolate cannot carry out yet; moving only its data would leave the legacy units enabled, so a reboot would start both copies"
    );
}
