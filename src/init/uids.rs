//! The uid a service's processes have in its container, and where that is known from: the
//! service's `user:`, a uid variable of its environment, or the documented default user of a
//! well-known image.
use super::compose::Service;

/// The uid a service's processes have in the container, and how that is known.
pub fn container_uid(s: &Service) -> (Option<u32>, String) {
    if let Some(u) = &s.user {
        let first = u.split(':').next().unwrap_or_default();
        return match first.parse::<u32>() {
            Ok(n) => (Some(n), format!("user: {u}")),
            Err(_) => match s.image.as_deref().and_then(well_known) {
                Some((n, why, user)) if user == first => (Some(n), format!("user {first}: {why}")),
                _ => (
                    None,
                    format!("user {first} is a name: its uid is the image's"),
                ),
            },
        };
    }
    if let Some(n) = s
        .environment
        .get("PUID")
        .and_then(|v| v.parse::<u32>().ok())
    {
        return (Some(n), "PUID".into());
    }
    if let Some((n, why, _)) = s.image.as_deref().and_then(well_known) {
        return (Some(n), why);
    }
    (None, "the image's default user".into())
}

/// Images whose processes run as a fixed uid, with that user's name: the official postgres
/// (999, 70 on Alpine), mariadb and mysql (mysql, 999), redis and valkey (999).
fn well_known(image: &str) -> Option<(u32, String, &'static str)> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let (repo, tag) = last.split_once(':').unwrap_or((last, ""));
    let (uid, why, user) = match repo {
        "postgres" if tag.contains("alpine") => (70, "postgres image on Alpine", "postgres"),
        "postgres" => (999, "postgres image", "postgres"),
        "mariadb" => (999, "mariadb image", "mysql"),
        "mysql" => (999, "mysql image", "mysql"),
        "redis" => (999, "redis image", "redis"),
        "valkey" => (999, "valkey image", "valkey"),
        _ => return None,
    };
    Some((uid, why.to_string(), user))
}
