//! The uid a service's processes have in its container, and where that is known from: the
//! service's `user:`, a uid variable of its environment (each image documents its own name
//! for it), or the documented default user of a well-known image. Anything else is unknown,
//! never a guess: the draft then says so with a TODO.
use super::compose::Service;

/// Environment variables images read to choose the uid they run as, and whose images they are.
const UID_VARIABLES: &[(&str, &str)] = &[
    ("PUID", "linuxserver.io images"),
    ("USER_UID", "gitea's image"),
    ("USERMAP_UID", "paperless-ngx's image"),
    ("APP_UID", "images with an app user"),
    ("UID", "images with a uid variable"),
];

/// The default user of a well-known image.
struct Known {
    uid: u32,
    /// The user's name in the image (matched against a `user:` name).
    user: &'static str,
    /// Where the uid comes from.
    why: &'static str,
}

const fn k(uid: u32, user: &'static str, why: &'static str) -> Option<Known> {
    Some(Known { uid, user, why })
}

/// The repository of an image reference without registry, tag or digest (`library/` dropped),
/// and its tag.
fn repository(image: &str) -> (String, String) {
    let no_digest = image.split('@').next().unwrap_or(image);
    let (name, tag) = match no_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (no_digest, ""),
    };
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    if parts.len() > 1 && parts[0] == "library" {
        parts.remove(0);
    }
    (parts.join("/"), tag.to_string())
}

/// The documented default user of well-known images. Each entry names where its uid is set.
fn well_known(image: &str) -> Option<Known> {
    let (repo, tag) = repository(image);
    let alpine = tag.contains("alpine");
    match repo.as_str() {
        // docker-library/postgres Dockerfiles: `useradd ... --uid=999 postgres` (Debian),
        // `adduser -u 70 ... postgres` (Alpine). immich's postgres is built on them.
        "postgres" | "immich-app/postgres" if alpine => k(
            70,
            "postgres",
            "postgres image on Alpine: postgres is uid 70 in its Dockerfile",
        ),
        "postgres" | "immich-app/postgres" => k(
            999,
            "postgres",
            "postgres image: postgres is uid 999 in its Dockerfile",
        ),
        // docker-library/mariadb and mysql: `useradd ... --uid 999 mysql`.
        "mariadb" => k(
            999,
            "mysql",
            "mariadb image: mysql is uid 999 in its Dockerfile",
        ),
        "mysql" => k(
            999,
            "mysql",
            "mysql image: mysql is uid 999 in its Dockerfile",
        ),
        // docker-library/redis: `useradd -r -g redis -u 999 redis` (Alpine: `adduser -u 999`);
        // valkey's official image is made the same way.
        "redis" => k(
            999,
            "redis",
            "redis image: redis is uid 999 in its Dockerfile",
        ),
        "valkey/valkey" | "valkey" => k(
            999,
            "valkey",
            "valkey image: valkey is uid 999 in its Dockerfile",
        ),
        // docker-library/mongo: `useradd --uid 999 ... mongodb`; rabbitmq: `useradd --uid 999`.
        "mongo" => k(
            999,
            "mongodb",
            "mongo image: mongodb is uid 999 in its Dockerfile",
        ),
        "rabbitmq" => k(
            999,
            "rabbitmq",
            "rabbitmq image: rabbitmq is uid 999 in its Dockerfile",
        ),
        // nextcloud's and wordpress's images serve as www-data: 33 on Debian, 82 on Alpine.
        "nextcloud" | "wordpress" if alpine => k(
            82,
            "www-data",
            "Alpine's www-data (uid 82), which the image serves as",
        ),
        "nextcloud" | "wordpress" => k(
            33,
            "www-data",
            "Debian's www-data (uid 33), which the image serves as",
        ),
        // grafana's Dockerfile: GF_UID="472".
        "grafana/grafana" | "grafana/grafana-oss" => k(
            472,
            "grafana",
            "grafana image: GF_UID 472 in its Dockerfile",
        ),
        // The Prometheus project's images end with `USER nobody` (65534, busybox).
        "prom/prometheus"
        | "prom/node-exporter"
        | "prom/alertmanager"
        | "prometheus/node-exporter" => k(
            65534,
            "nobody",
            "prometheus image: `USER nobody` (65534) in its Dockerfile",
        ),
        // gitea's rootful image runs gitea as git, USER_UID (default 1000); the rootless one
        // has `USER 1000:1000`.
        "gitea/gitea" | "gitea" => k(1000, "git", "gitea image: git is USER_UID, 1000 unless set"),
        // paperless-ngx: the paperless user is USERMAP_UID, 1000 unless set.
        "paperless-ngx/paperless-ngx" => k(
            1000,
            "paperless",
            "paperless-ngx image: USERMAP_UID, 1000 unless set",
        ),
        // The images that run as root unless told otherwise (their docs show `user:` as an
        // option, not a default).
        "jellyfin/jellyfin" => k(
            0,
            "root",
            "jellyfin image: runs as root unless `user:` is set",
        ),
        "immich-app/immich-server" => k(
            0,
            "root",
            "immich-server image: runs as root unless `user:` is set",
        ),
        // Bitnami's non-root images: `USER 1001`.
        r if r.starts_with("bitnami/") => k(1001, "", "Bitnami image: `USER 1001`"),
        // linuxserver.io images: the abc user is 911 until PUID changes it.
        r if r.starts_with("linuxserver/") => k(
            911,
            "abc",
            "linuxserver image without PUID: its abc user is 911",
        ),
        _ => None,
    }
}

/// The uid a service's processes have in the container, and how that is known.
pub fn container_uid(s: &Service) -> (Option<u32>, String) {
    let image = s.image.as_deref().and_then(well_known);
    if let Some(u) = &s.user {
        let first = u.split(':').next().unwrap_or_default();
        return match first.parse::<u32>() {
            Ok(n) => (Some(n), format!("user: {u}")),
            Err(_) => match image {
                Some(k) if k.user == first => (Some(k.uid), format!("user {first}: {}", k.why)),
                _ => (
                    None,
                    format!("user {first} is a name: its uid is the image's"),
                ),
            },
        };
    }
    for (var, whose) in UID_VARIABLES {
        if let Some(n) = s.environment.get(*var).and_then(|v| v.parse::<u32>().ok()) {
            return (Some(n), format!("env {var}, as {whose} read it"));
        }
    }
    match image {
        Some(k) => (Some(k.uid), k.why.to_string()),
        None => (
            None,
            format!(
                "the default user of {} is not one init knows",
                s.image.as_deref().unwrap_or("a service without an image")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_drop_registry_tag_digest_and_library() {
        assert_eq!(
            repository("docker.io/library/postgres:16-alpine@sha256:0"),
            ("postgres".into(), "16-alpine".into())
        );
        assert_eq!(
            repository("localhost:5000/grafana/grafana"),
            ("grafana/grafana".into(), String::new())
        );
        assert_eq!(
            repository("lscr.io/linuxserver/sonarr:latest").0,
            "linuxserver/sonarr"
        );
    }
}
