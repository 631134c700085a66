//! The two podman stores a stack's images and volumes move between (the legacy user's and the stack
//! user's), behind a trait: the real one speaks libpod over each user's API socket, tests
//! record. The legacy user's socket is started (never enabled) in its own user manager when
//! it is not listening, the same way isolate starts a stack user's podman.socket.
use crate::error::{Error, Result};
use crate::host::podman;
use crate::host::podman::store::{self, Copied, ProjectContainer, VolumeInfo};
use crate::host::session::LiveSession;
use crate::layout::PODMAN_SOCKET_UNIT;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// One request about an image or a container list.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(20);
/// A copy fails when either side stalls this long (an image of many GiB may take minutes
/// overall; only silence ends it).
pub const COPY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the compose service may take to bring the project up (images are local).
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the project's containers may take to show as running once the unit is active.
pub const RUNNING_TIMEOUT: Duration = Duration::from_secs(60);

/// The podman stores of users, as the hand-off needs them. `uid` is the store owner's.
pub trait Stores {
    /// Whether the user's API socket exists (observation never starts one).
    fn socket_listening(&self, uid: u32) -> bool;
    /// Makes the user's API socket answer `_ping`: starts podman.socket (not enabled) in the
    /// user's manager when it does not.
    fn ensure_socket(&self, uid: u32) -> Result<()>;
    fn image_id(&self, uid: u32, image: &str) -> Result<Option<String>>;
    fn project_containers(&self, uid: u32, project: &str) -> Result<Vec<ProjectContainer>>;
    /// Streams `image` from `from`'s store into `to`'s.
    fn copy_image(&self, from: u32, to: u32, image: &str) -> Result<Copied>;
    /// Volumes labelled as the compose project's.
    fn project_volumes(&self, uid: u32, project: &str) -> Result<Vec<VolumeInfo>>;
    fn volume(&self, uid: u32, name: &str) -> Result<Option<VolumeInfo>>;
    /// Creates a local volume (or returns the one that exists).
    fn create_volume(
        &self,
        uid: u32,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeInfo>;
    /// (enabled, active or starting) of `unit` in the user's manager; None when the manager is
    /// not running.
    fn unit_state(&self, user: &str, uid: u32, unit: &str) -> Option<(bool, bool)>;
    /// Reload, enable and (re)start `unit` in the user's manager; waits until it is active.
    fn start_unit(&self, uid: u32, unit: &str) -> Result<()>;
    /// Stop and disable `unit` in the user's manager.
    fn stop_unit(&self, uid: u32, unit: &str) -> Result<()>;
    /// The last `n` journal lines of `unit` (fakes have none).
    fn journal_tail(&self, _unit: &crate::host::journal::Unit, _n: usize) -> Vec<String> {
        Vec::new()
    }
    /// How long a started project may take to show all its containers running.
    fn running_timeout(&self) -> Duration {
        RUNNING_TIMEOUT
    }
}

impl Stores for LiveSession<'_> {
    fn socket_listening(&self, uid: u32) -> bool {
        self.root.podman_socket(uid).exists()
    }

    fn ensure_socket(&self, uid: u32) -> Result<()> {
        let socket = self.root.podman_socket(uid);
        if podman::ping(&socket, crate::host::session::PING_TIMEOUT).is_ok() {
            return Ok(());
        }
        self.systemd
            .wait_user_manager(uid, Duration::from_secs(5))
            .map_err(|e| {
                Error::Failed(format!(
                    "the podman store of uid {uid} cannot be reached: its API socket {} does not answer and its user manager is not running ({e}); log the user in or enable its linger, then apply again",
                    socket.display()
                ))
            })?;
        self.systemd.start_user_unit(
            uid,
            PODMAN_SOCKET_UNIT,
            crate::host::session::SOCKET_TIMEOUT,
        )?;
        podman::ping(&socket, crate::host::session::PING_TIMEOUT)
    }

    fn image_id(&self, uid: u32, image: &str) -> Result<Option<String>> {
        store::image_id(&self.root.podman_socket(uid), image, QUERY_TIMEOUT)
    }

    fn project_containers(&self, uid: u32, project: &str) -> Result<Vec<ProjectContainer>> {
        store::project_containers(&self.root.podman_socket(uid), project, QUERY_TIMEOUT)
    }

    fn copy_image(&self, from: u32, to: u32, image: &str) -> Result<Copied> {
        store::copy_image(
            &self.root.podman_socket(from),
            &self.root.podman_socket(to),
            image,
            COPY_IDLE_TIMEOUT,
        )
    }

    fn project_volumes(&self, uid: u32, project: &str) -> Result<Vec<VolumeInfo>> {
        store::project_volumes(&self.root.podman_socket(uid), project, QUERY_TIMEOUT)
    }

    fn unit_state(&self, user: &str, uid: u32, unit: &str) -> Option<(bool, bool)> {
        let facts = self.systemd.user_facts(uid, user, unit).ok()?;
        // A unit still starting (at boot, compose brings the project up) counts as running:
        // apply must not restart it under its own start job.
        facts.unit.map(|u| {
            (
                u.unit_file_state == "enabled",
                matches!(
                    u.active_state.as_str(),
                    "active" | "activating" | "reloading"
                ),
            )
        })
    }

    fn start_unit(&self, uid: u32, unit: &str) -> Result<()> {
        self.wait_manager(uid)?;
        let _wait = crate::apply::narrate::wait(
            format!("{unit} of uid {uid} to start (compose brings the project up)"),
            SERVICE_TIMEOUT,
        );
        self.systemd
            .reload_enable_and_restart_user_unit(uid, unit, SERVICE_TIMEOUT)
            .map_err(|e| {
                let unit = crate::host::journal::Unit::User {
                    uid,
                    unit: unit.to_string(),
                };
                crate::host::journal::annotate(e, &self.journal(), &unit)
            })
    }

    fn journal_tail(&self, unit: &crate::host::journal::Unit, n: usize) -> Vec<String> {
        use crate::host::journal::JournalTail;
        self.journal().tail(unit, n)
    }

    fn stop_unit(&self, uid: u32, unit: &str) -> Result<()> {
        self.systemd
            .stop_and_disable_user_unit(uid, unit, SERVICE_TIMEOUT)
    }

    fn volume(&self, uid: u32, name: &str) -> Result<Option<VolumeInfo>> {
        store::volume(&self.root.podman_socket(uid), name, QUERY_TIMEOUT)
    }

    fn create_volume(
        &self,
        uid: u32,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeInfo> {
        store::create_volume(&self.root.podman_socket(uid), name, labels, QUERY_TIMEOUT)
    }
}

/// Test fake: stores as maps of image name to ID; copies move the entry and are recorded.
#[derive(Default)]
pub struct FakeStores {
    pub images: Mutex<BTreeMap<u32, BTreeMap<String, String>>>,
    pub containers: BTreeMap<u32, Vec<ProjectContainer>>,
    pub copies: Mutex<Vec<(u32, u32, String)>>,
    /// Copies that arrive with another ID (a broken load).
    pub corrupt: bool,
    /// Per uid: volumes; `create_volume` reports where podman keeps them below the user's
    /// home in `homes` (else `volume_base/UID/NAME/_data`) and makes that directory under
    /// `root`, owned by the user.
    pub volumes: Mutex<BTreeMap<u32, Vec<VolumeInfo>>>,
    pub volume_base: std::path::PathBuf,
    pub homes: BTreeMap<u32, std::path::PathBuf>,
    pub root: std::path::PathBuf,
    /// Units started (uid, unit, true) and stopped (false).
    pub units: Mutex<Vec<(u32, String, bool)>>,
}

impl FakeStores {
    pub fn with_image(self, uid: u32, image: &str, id: &str) -> Self {
        self.images
            .lock()
            .unwrap()
            .entry(uid)
            .or_default()
            .insert(image.into(), id.into());
        self
    }
}

impl Stores for FakeStores {
    fn socket_listening(&self, _uid: u32) -> bool {
        true
    }
    fn ensure_socket(&self, _uid: u32) -> Result<()> {
        Ok(())
    }
    fn image_id(&self, uid: u32, image: &str) -> Result<Option<String>> {
        Ok(self
            .images
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|s| s.get(image).cloned()))
    }
    fn project_containers(&self, uid: u32, _project: &str) -> Result<Vec<ProjectContainer>> {
        Ok(self.containers.get(&uid).cloned().unwrap_or_default())
    }
    fn copy_image(&self, from: u32, to: u32, image: &str) -> Result<Copied> {
        self.copies
            .lock()
            .unwrap()
            .push((from, to, image.to_string()));
        let mut images = self.images.lock().unwrap();
        let id = images
            .get(&from)
            .and_then(|s| s.get(image).cloned())
            .ok_or_else(|| Error::Failed(format!("fake: no {image} in {from}")))?;
        let id = if self.corrupt {
            format!("{id}-other")
        } else {
            id
        };
        images.entry(to).or_default().insert(image.into(), id);
        Ok(Copied { bytes: 1 })
    }
    fn project_volumes(&self, uid: u32, _project: &str) -> Result<Vec<VolumeInfo>> {
        Ok(self
            .volumes
            .lock()
            .unwrap()
            .get(&uid)
            .cloned()
            .unwrap_or_default())
    }
    fn volume(&self, uid: u32, name: &str) -> Result<Option<VolumeInfo>> {
        Ok(self
            .volumes
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|v| v.iter().find(|x| x.name == name).cloned()))
    }
    fn create_volume(
        &self,
        uid: u32,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<VolumeInfo> {
        if let Some(v) = self.volume(uid, name)? {
            return Ok(v);
        }
        let mountpoint = match self.homes.get(&uid) {
            Some(home) => super::volumes::data_path(home, name),
            None => self
                .volume_base
                .join(uid.to_string())
                .join(name)
                .join("_data"),
        };
        let root = crate::layout::Root::new(self.root.clone());
        let on_disk = root.at(&mountpoint);
        std::fs::create_dir_all(&on_disk).map_err(|e| Error::io("fake volume", e))?;
        if let Some(home) = self.homes.get(&uid) {
            // podman makes its store as the user: everything from the home down is hers.
            for dir in on_disk
                .ancestors()
                .take_while(|d| d.starts_with(root.at(home)))
            {
                std::os::unix::fs::chown(dir, Some(uid), Some(uid))
                    .map_err(|e| Error::io("fake volume", e))?;
            }
        }
        std::os::unix::fs::chown(&on_disk, Some(uid), Some(uid))
            .map_err(|e| Error::io("fake volume", e))?;
        let v = VolumeInfo {
            name: name.into(),
            mountpoint,
            driver: "local".into(),
            labels: Some(labels.clone()),
        };
        self.volumes
            .lock()
            .unwrap()
            .entry(uid)
            .or_default()
            .push(v.clone());
        Ok(v)
    }
    fn unit_state(&self, _user: &str, uid: u32, unit: &str) -> Option<(bool, bool)> {
        let units = self.units.lock().unwrap();
        let last = units.iter().rev().find(|(u, n, _)| *u == uid && n == unit);
        Some(last.map_or((false, false), |(_, _, up)| (*up, *up)))
    }
    fn start_unit(&self, uid: u32, unit: &str) -> Result<()> {
        self.units.lock().unwrap().push((uid, unit.into(), true));
        Ok(())
    }
    fn stop_unit(&self, uid: u32, unit: &str) -> Result<()> {
        self.units.lock().unwrap().push((uid, unit.into(), false));
        Ok(())
    }
    fn running_timeout(&self) -> Duration {
        Duration::ZERO
    }
}
