//! `plan` as a preview: the whole plan that can be made, then every refusal (each saying what
//! to do), so an admin sees what apply would do before stopping production. apply refuses
//! while any refusal stands (exit 2, nothing changed); plan prints both and exits 2 too.
use super::{Format, Render};
use crate::model::{escape, Refusals};
use crate::plan::Plan;
use serde::Serialize;
use std::io::Write;

/// A plan with the refusals that keep apply from making it.
#[derive(Serialize)]
pub struct Preview<'a> {
    /// In JSON each step carries the line plan prints for it (`plan_json`).
    #[serde(flatten, serialize_with = "with_lines")]
    pub plan: &'a Plan,
    #[serde(skip_serializing_if = "Refusals::is_empty")]
    pub refusals: &'a Refusals,
}

fn with_lines<S: serde::Serializer>(plan: &&Plan, s: S) -> Result<S::Ok, S::Error> {
    super::plan_json::WithLines(plan).serialize(s)
}

impl Render for Preview<'_> {
    fn text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.refusals.is_empty() {
            return self.plan.text(out);
        }
        for n in &self.plan.notes {
            writeln!(out, "{}", escape::lines(&n.to_string()))?;
        }
        for s in &self.plan.steps {
            writeln!(out, "{}", escape::lines(&s.to_string()))?;
        }
        // The refusals follow on stderr (`isolate: ...`), as every refusal is printed: once.
        writeln!(
            out,
            "{} step(s) planned; `isolate apply` makes none of them while the {} refusal(s) below stand",
            self.plan.steps.len(),
            self.refusals.len()
        )
    }
}

/// Prints the preview on stdout (text or JSON) and the refusals on stderr as every other
/// refusal is printed (`isolate: ...`); the exit code is the refusals' (2 when there are any).
pub fn print(format: Format, plan: &Plan, refusals: &Refusals) -> std::io::Result<i32> {
    crate::render::print(format, &Preview { plan, refusals })?;
    std::io::Write::flush(&mut std::io::stdout())?;
    for r in refusals {
        eprintln!("{}", super::refusal_lines(&r.text));
    }
    Ok(refusals.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{fresh, policy, survey, POLICY};
    use crate::plan::{preview, Options};

    #[test]
    fn a_running_holder_leaves_the_plan_whole_and_adds_its_refusal() {
        let mut o = fresh();
        o.data
            .insert(("immich".into(), "/srv/immich".into()), survey(1));
        o.running.push(crate::observe::RunningContainer {
            owner: "alice".into(),
            name: "immich_postgres".into(),
            data_path: "/srv/immich".into(),
        });
        let (p, refusals) = preview(&policy(POLICY), &o, &Options::default()).unwrap();
        assert_eq!(
            refusals,
            vec!["stack `immich`: containers are running on /srv/immich: immich_postgres (of alice); stop them first (or pass --force)"]
        );
        let lines: Vec<String> = p.steps.iter().map(|s| s.to_string()).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("/srv/immich") && l.contains("shift")),
            "the migration is not in the preview: {lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("user stk-immich")),
            "{lines:#?}"
        );
        let mut text = Vec::new();
        Preview {
            plan: &p,
            refusals: &refusals,
        }
        .text(&mut text)
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.ends_with("step(s) planned; `isolate apply` makes none of them while the 1 refusal(s) below stand\n"),
            "{text}"
        );
        // apply's plan() still refuses, with the same text.
        assert_eq!(
            crate::plan::plan(&policy(POLICY), &o, &Options::default())
                .unwrap_err()
                .to_string(),
            refusals[0].text
        );
        assert_eq!(refusals[0].kind, crate::model::RefusalKind::Data);
    }
}
