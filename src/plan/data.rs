//! The data part of a plan: for each data path of a stack, whether and how to migrate it (from
//! the state file and the mappings), refused while containers hold it. observe() surveys with
//! the same decision (`next_migration`) that plan() hands to apply.
use super::{Draft, StackCtx, Step};
use crate::host::procs::Holder;
use crate::ids::IdMaps;
use crate::model::RefusalKind;
use crate::observe::{DataFacts, RunningContainer};
use crate::policy::Problem;
use crate::walk::Survey;
use std::path::Path;

pub use crate::alloc::legacy_maps;

pub use crate::data::next::{next_migration, pending_migrations, NextMigration};

pub fn plan_stack(draft: &mut Draft, ctx: &StackCtx<'_>, legacy: Option<&IdMaps>) {
    let (s, a, name) = (ctx.stack, ctx.allocation, ctx.name());
    for d in &s.data {
        let path = &d.value;
        // A refusal while something holds the data keeps the step in the preview: the admin
        // sees what apply will do once it is stopped.
        if let Some(refusal) = held_inside(ctx, path) {
            draft.refusals.push(RefusalKind::Data, refusal);
        }
        let (shift, mode, resume, outside_links) = match next_migration(
            &ctx.obs.state,
            legacy,
            s,
            a,
            path,
        ) {
            NextMigration::Done => {
                draft.present(Some(name), format!("{} migrated", path.display()));
                continue;
            }
            NextMigration::RollbackInterrupted => {
                draft.refusals.push(RefusalKind::Data, format!(
                    "stack `{name}`: a rollback of {} was interrupted; finish it first with `isolate rollback --stack {name}`",
                    path.display(),
                ));
                continue;
            }
            NextMigration::NeedsLegacy => {
                draft.problems.push(Problem::new(
                    s.migrate.span.clone(),
                    format!("stack `{name}` needs `legacy_owner` to shift its data"),
                ));
                continue;
            }
            NextMigration::Overlapping => {
                draft.refusals.push(RefusalKind::Data, format!(
                    "stack `{name}`: the legacy mapping and the stack's mapping overlap, so a shift would not be exact; give the stack a range apart from the legacy owner's"
                ));
                continue;
            }
            NextMigration::Run { spec, resume } => {
                (spec.shift, spec.mode, resume, spec.outside_links)
            }
        };
        let survey = match ctx.obs.data.get(&(name.to_string(), path.clone())) {
            Some(DataFacts::Missing) => {
                draft.step(Step::CreateData {
                    stack: name.to_string(),
                    path: path.clone(),
                    uid: a.uid,
                    gid: a.gid,
                    mode,
                    shift,
                });
                continue;
            }
            Some(DataFacts::Surveyed(v)) => v.clone(),
            Some(DataFacts::Refused(why)) => {
                draft
                    .refusals
                    .push(RefusalKind::Data, format!("stack `{name}`: {why}"));
                continue;
            }
            None => Survey::default(),
        };
        let holders: Vec<&RunningContainer> = ctx
            .obs
            .running
            .iter()
            .filter(|c| &c.data_path == path)
            .collect();
        if !holders.is_empty() && !ctx.opts.force {
            draft.refusals.push(RefusalKind::Data, format!(
                "stack `{name}`: containers are running on {}: {}; stop them first (or pass --force)",
                path.display(),
                holders
                    .iter()
                    .map(|c| format!("{} (of {})", c.name, c.owner))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        draft.step(Step::Migrate {
            stack: name.to_string(),
            path: path.clone(),
            mode,
            shift,
            target_uid: a.uid,
            target_gid: a.gid,
            resume,
            survey,
            outside_links,
        });
    }
}

/// How many places of one process a refusal names before it counts the rest.
const PLACES_SHOWN: usize = 4;

/// The refusal while processes hold something inside `path` (about to be migrated or closed:
/// they would keep their access through it), unless `--force`. One line per process: pid,
/// command, uid and user, and how it holds the data.
fn held_inside(ctx: &StackCtx<'_>, path: &Path) -> Option<String> {
    let name = ctx.name();
    if ctx.opts.force {
        return None;
    }
    let holders = match ctx
        .obs
        .inside
        .get(&(name.to_string(), path.to_path_buf()))?
    {
        Err(why) => {
            return Some(format!(
                "stack `{name}`: cannot look for processes inside {}: {why} (or pass --force)",
                path.display()
            ))
        }
        Ok(h) if h.is_empty() => return None,
        Ok(h) => h,
    };
    let mut pids: Vec<u32> = holders.iter().map(|h| h.pid).collect();
    pids.dedup();
    let lines: Vec<String> = pids
        .iter()
        .map(|pid| {
            let of: Vec<&Holder> = holders.iter().filter(|h| h.pid == *pid).collect();
            let user = ctx
                .obs
                .accounts
                .user_by_uid(of[0].uid)
                .map_or(String::new(), |u| format!(" {}", u.name));
            let mut places: Vec<String> = of
                .iter()
                .take(PLACES_SHOWN)
                .map(|h| h.how.to_string())
                .collect();
            if of.len() > PLACES_SHOWN {
                places.push(format!("and {} more", of.len() - PLACES_SHOWN));
            }
            format!(
                "  pid {pid} ({}, uid {}{user}): {}",
                of[0].comm,
                of[0].uid,
                places.join(", ")
            )
        })
        .collect();
    Some(format!(
        "stack `{name}`: {} process(es) hold a place inside {} and would keep their access after it changes owner and closes; end them or move them out, then run again (or pass --force):\n{}",
        pids.len(),
        path.display(),
        lines.join("\n")
    ))
}
