//! The podman port: what isolate asks of a user's podman API socket (ping, running containers'
//! mounts, images, volumes, a project's containers, copying an image between two users'
//! stores), as one trait keyed by the store owner's uid. `ApiSockets` is the real one (the
//! socket below ROOT/run/user/UID), `fake::FakePodman` records.
use super::store::{self, Copied, ProjectContainer, VolumeInfo};
use super::ContainerMounts;
use crate::error::Result;
use crate::layout::Root;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The first _ping starts `podman system service` by socket activation: allow for it.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Listing containers when checking what holds a data path.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// One request about an image, a volume or a container list.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(20);
/// A copy fails when either side stalls this long (an image of many GiB may take minutes
/// overall; only silence ends it).
pub const COPY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a project's containers may take to show as running once its unit is active.
pub const RUNNING_TIMEOUT: Duration = Duration::from_secs(60);

pub trait PodmanPort {
    /// The user's API socket (for messages).
    fn socket(&self, uid: u32) -> PathBuf;
    /// Whether the user's API socket exists (never starts one).
    fn socket_exists(&self, uid: u32) -> bool;
    /// `GET /_ping` answers `OK` (the first one starts the service: allow PING_TIMEOUT).
    fn ping(&self, uid: u32) -> Result<()>;
    /// Running containers with the host paths they mount.
    fn running_container_mounts(&self, uid: u32) -> Result<Vec<ContainerMounts>>;
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
    /// How long a started project may take to show all its containers running.
    fn running_timeout(&self) -> Duration {
        RUNNING_TIMEOUT
    }
}

/// The real port: each user's socket ROOT/run/user/UID/podman/podman.sock.
pub struct ApiSockets<'a> {
    pub root: &'a Root,
}

impl PodmanPort for ApiSockets<'_> {
    fn socket(&self, uid: u32) -> PathBuf {
        self.root.podman_socket(uid)
    }
    fn socket_exists(&self, uid: u32) -> bool {
        self.root.podman_socket(uid).exists()
    }
    fn ping(&self, uid: u32) -> Result<()> {
        super::ping(&self.root.podman_socket(uid), PING_TIMEOUT)
    }
    fn running_container_mounts(&self, uid: u32) -> Result<Vec<ContainerMounts>> {
        super::running_container_mounts(&self.root.podman_socket(uid), LIST_TIMEOUT)
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
