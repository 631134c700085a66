//! The recording fake of the podman port: stores as maps (image name to ID, volumes, a
//! project's containers, running containers' mounts), every call kept as a typed
//! `PodmanCall`, any call made to fail.
use super::port::PodmanPort;
use super::store::{Copied, ProjectContainer, VolumeInfo};
use super::{volume_data_path, ContainerMounts};
use crate::error::{Error, Result};
use crate::layout::Root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// One call made to the fake that asks or changes a store, as made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodmanCall {
    Ping(u32),
    RunningContainerMounts(u32),
    ImageId { uid: u32, image: String },
    ProjectContainers { uid: u32, project: String },
    CopyImage { from: u32, to: u32, image: String },
    ProjectVolumes { uid: u32, project: String },
    Volume { uid: u32, name: String },
    CreateVolume { uid: u32, name: String },
}

/// The error an injected failure returns: the call and the text it was given.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct Injected {
    pub call: PodmanCall,
    pub text: String,
}

#[derive(Default)]
pub struct FakePodman {
    pub calls: Mutex<Vec<PodmanCall>>,
    /// Calls that fail with the text given (recorded first, then refused).
    pub fail: Vec<(PodmanCall, String)>,
    /// Users whose socket does not exist (every other one does).
    pub no_socket: BTreeSet<u32>,
    pub images: Mutex<BTreeMap<u32, BTreeMap<String, String>>>,
    pub containers: BTreeMap<u32, Vec<ProjectContainer>>,
    pub running: BTreeMap<u32, Vec<ContainerMounts>>,
    /// (from, to, image) of every copy.
    pub copies: Mutex<Vec<(u32, u32, String)>>,
    /// Copies that arrive with another ID (a broken load).
    pub corrupt: bool,
    /// Per uid: volumes; `create_volume` reports where podman keeps them below the user's
    /// home in `homes` (else `volume_base/UID/NAME/_data`) and makes that directory under
    /// `root`, owned by the user.
    pub volumes: Mutex<BTreeMap<u32, Vec<VolumeInfo>>>,
    pub volume_base: PathBuf,
    pub homes: BTreeMap<u32, PathBuf>,
    pub root: PathBuf,
}

impl FakePodman {
    pub fn with_image(self, uid: u32, image: &str, id: &str) -> Self {
        self.images
            .lock()
            .unwrap()
            .entry(uid)
            .or_default()
            .insert(image.into(), id.into());
        self
    }

    fn record(&self, call: PodmanCall) -> Result<()> {
        self.calls.lock().unwrap().push(call.clone());
        if let Some((_, text)) = self.fail.iter().find(|(c, _)| *c == call) {
            return Err(Error::host(Injected {
                call,
                text: text.clone(),
            }));
        }
        Ok(())
    }
}

impl PodmanPort for FakePodman {
    fn socket(&self, uid: u32) -> PathBuf {
        crate::layout::podman_socket(uid)
    }
    fn socket_exists(&self, uid: u32) -> bool {
        !self.no_socket.contains(&uid)
    }
    fn ping(&self, uid: u32) -> Result<()> {
        self.record(PodmanCall::Ping(uid))
    }
    fn running_container_mounts(&self, uid: u32) -> Result<Vec<ContainerMounts>> {
        self.record(PodmanCall::RunningContainerMounts(uid))?;
        Ok(self.running.get(&uid).cloned().unwrap_or_default())
    }
    fn image_id(&self, uid: u32, image: &str) -> Result<Option<String>> {
        self.record(PodmanCall::ImageId {
            uid,
            image: image.into(),
        })?;
        Ok(self
            .images
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|s| s.get(image).cloned()))
    }
    fn project_containers(&self, uid: u32, project: &str) -> Result<Vec<ProjectContainer>> {
        self.record(PodmanCall::ProjectContainers {
            uid,
            project: project.into(),
        })?;
        Ok(self.containers.get(&uid).cloned().unwrap_or_default())
    }
    fn copy_image(&self, from: u32, to: u32, image: &str) -> Result<Copied> {
        self.record(PodmanCall::CopyImage {
            from,
            to,
            image: image.into(),
        })?;
        self.copies
            .lock()
            .unwrap()
            .push((from, to, image.to_string()));
        let mut images = self.images.lock().unwrap();
        let Some(id) = images.get(&from).and_then(|s| s.get(image).cloned()) else {
            return Err(Error::host(Injected {
                call: PodmanCall::ImageId {
                    uid: from,
                    image: image.into(),
                },
                text: format!("fake: no {image} in {from}"),
            }));
        };
        let id = if self.corrupt {
            format!("{id}-other")
        } else {
            id
        };
        images.entry(to).or_default().insert(image.into(), id);
        Ok(Copied { bytes: 1 })
    }
    fn project_volumes(&self, uid: u32, project: &str) -> Result<Vec<VolumeInfo>> {
        self.record(PodmanCall::ProjectVolumes {
            uid,
            project: project.into(),
        })?;
        Ok(self
            .volumes
            .lock()
            .unwrap()
            .get(&uid)
            .cloned()
            .unwrap_or_default())
    }
    fn volume(&self, uid: u32, name: &str) -> Result<Option<VolumeInfo>> {
        self.record(PodmanCall::Volume {
            uid,
            name: name.into(),
        })?;
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
        self.record(PodmanCall::CreateVolume {
            uid,
            name: name.into(),
        })?;
        if let Some(v) = self
            .volumes
            .lock()
            .unwrap()
            .get(&uid)
            .and_then(|v| v.iter().find(|x| x.name == name).cloned())
        {
            return Ok(v);
        }
        let mountpoint = match self.homes.get(&uid) {
            Some(home) => volume_data_path(home, name),
            None => self
                .volume_base
                .join(uid.to_string())
                .join(name)
                .join("_data"),
        };
        let root = Root::new(self.root.clone());
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
    fn running_timeout(&self) -> Duration {
        Duration::ZERO
    }
}
