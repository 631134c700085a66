//! One quadlet unit file as text: its kind (from the file name), its `[Section]` `Key=value`
//! entries in order, the other quadlet files it refers to, and the systemd unit and podman
//! object the quadlet generator makes of it.
use serde::Serialize;

/// The kinds of file the quadlet generator reads (podman-systemd.unit(5)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuadletKind {
    Container,
    Pod,
    Volume,
    Network,
    Kube,
    Image,
    Build,
}

impl QuadletKind {
    pub const ALL: [QuadletKind; 7] = [
        QuadletKind::Container,
        QuadletKind::Pod,
        QuadletKind::Volume,
        QuadletKind::Network,
        QuadletKind::Kube,
        QuadletKind::Image,
        QuadletKind::Build,
    ];

    /// The file suffix without its dot, which is also the main section's name in lower case.
    pub fn suffix(self) -> &'static str {
        match self {
            QuadletKind::Container => "container",
            QuadletKind::Pod => "pod",
            QuadletKind::Volume => "volume",
            QuadletKind::Network => "network",
            QuadletKind::Kube => "kube",
            QuadletKind::Image => "image",
            QuadletKind::Build => "build",
        }
    }

    /// The main section of the file (`[Container]`, `[Pod]`, ...).
    pub fn section(self) -> &'static str {
        match self {
            QuadletKind::Container => "Container",
            QuadletKind::Pod => "Pod",
            QuadletKind::Volume => "Volume",
            QuadletKind::Network => "Network",
            QuadletKind::Kube => "Kube",
            QuadletKind::Image => "Image",
            QuadletKind::Build => "Build",
        }
    }

    /// The kind of a file name (`db.container`), None for anything else.
    pub fn of_file_name(name: &str) -> Option<QuadletKind> {
        let (stem, suffix) = name.rsplit_once('.')?;
        if stem.is_empty() || name.contains('/') {
            return None;
        }
        QuadletKind::ALL.into_iter().find(|k| k.suffix() == suffix)
    }
}

/// One `Key=value` line inside a section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    /// Its line (0-based) in the file's text.
    pub line: usize,
}

/// A quadlet file: its name (`db.container`), kind and text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuadletFile {
    pub name: String,
    pub kind: QuadletKind,
    pub text: String,
}

/// A reference from one quadlet file to another by file name (`Pod=app.pod`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reference {
    /// The key that names it (`Pod`, `Network`, `Volume`, `Image`, ...).
    pub key: String,
    /// The file it names (`app.pod`).
    pub file: String,
}

impl QuadletFile {
    /// None when the name is not a quadlet file's.
    pub fn new(name: &str, text: &str) -> Option<QuadletFile> {
        Some(QuadletFile {
            name: name.to_string(),
            kind: QuadletKind::of_file_name(name)?,
            text: text.to_string(),
        })
    }

    /// The name without its suffix (`db` of `db.container`).
    pub fn stem(&self) -> &str {
        self.name
            .rsplit_once('.')
            .map_or(self.name.as_str(), |(stem, _)| stem)
    }

    /// Every `Key=value` entry, in order (comments, blank lines and continuation lines aside).
    pub fn entries(&self) -> Vec<Entry> {
        parse_entries(&self.text)
    }

    /// The value of the last `key` in `section` (systemd's rule: a later line wins).
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.entries()
            .into_iter()
            .rfind(|e| e.section == section && e.key == key)
            .map(|e| e.value)
    }

    /// Every value of `key` in the file's main section, in order.
    fn values(&self, key: &str) -> Vec<String> {
        let section = self.kind.section();
        self.entries()
            .into_iter()
            .filter(|e| e.section == section && e.key == key)
            .map(|e| e.value)
            .collect()
    }

    /// The other quadlet files this one names.
    pub fn references(&self) -> Vec<Reference> {
        let section = self.kind.section();
        let mut out = Vec::new();
        for e in self.entries().into_iter().filter(|e| e.section == section) {
            let named = match e.key.as_str() {
                "Image" | "Pod" | "Network" => Some(e.value.clone()),
                "Volume" => e.value.split(':').next().map(str::to_string),
                "Mount" => mount_option(&e.value, &["source", "src"]),
                _ => None,
            };
            let Some(named) = named else { continue };
            let is_file = QuadletKind::of_file_name(&named).is_some_and(|k| {
                matches!(
                    (e.key.as_str(), k),
                    ("Image", QuadletKind::Image | QuadletKind::Build)
                        | ("Pod", QuadletKind::Pod)
                        | ("Network", QuadletKind::Network)
                        | ("Volume" | "Mount", QuadletKind::Volume | QuadletKind::Image)
                )
            });
            if is_file {
                out.push(Reference {
                    key: e.key,
                    file: named,
                });
            }
        }
        out
    }

    /// The systemd unit the generator makes of it (`db.service`, `app-pod.service`, ...).
    pub fn service_name(&self) -> String {
        if let Some(name) = self.value(self.kind.section(), "ServiceName") {
            return format!("{name}.service");
        }
        match self.kind {
            QuadletKind::Container | QuadletKind::Kube => format!("{}.service", self.stem()),
            k => format!("{}-{}.service", self.stem(), k.suffix()),
        }
    }

    /// The podman object it creates: the volume, network or pod name (`systemd-NAME` unless
    /// `VolumeName=`, `NetworkName=` or `PodName=` says otherwise); None for other kinds.
    pub fn podman_name(&self) -> Option<String> {
        let key = match self.kind {
            QuadletKind::Volume => "VolumeName",
            QuadletKind::Network => "NetworkName",
            QuadletKind::Pod => "PodName",
            _ => return None,
        };
        Some(
            self.value(self.kind.section(), key)
                .unwrap_or_else(|| format!("systemd-{}", self.stem())),
        )
    }

    /// Host paths it binds (`Volume=/srv/x:/data`): the absolute sources of `Volume=` and
    /// `Mount=type=bind,source=...`.
    pub fn bind_sources(&self) -> Vec<String> {
        let section = self.kind.section();
        let mut out = Vec::new();
        for e in self.entries().into_iter().filter(|e| e.section == section) {
            let source = match e.key.as_str() {
                "Volume" => e.value.split(':').next().map(str::to_string),
                "Mount" if mount_option(&e.value, &["type"]).as_deref() == Some("bind") => {
                    mount_option(&e.value, &["source", "src"])
                }
                _ => None,
            };
            if let Some(s) = source.filter(|s| s.starts_with('/') || s.starts_with("%h/")) {
                out.push(s);
            }
        }
        out
    }

    /// Images it runs (`Image=`), not counting references to `.image` or `.build` files.
    pub fn images(&self) -> Vec<String> {
        self.values("Image")
            .into_iter()
            .filter(|i| {
                !matches!(
                    QuadletKind::of_file_name(i),
                    Some(QuadletKind::Image | QuadletKind::Build)
                )
            })
            .collect()
    }
}

/// One option of a `Mount=` value (`type=bind,source=/x,destination=/y`).
fn mount_option(value: &str, names: &[&str]) -> Option<String> {
    value.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        names.contains(&k.trim()).then(|| v.trim().to_string())
    })
}

/// systemd's unit file syntax, as far as quadlet files use it: `[Section]` lines, `Key=value`
/// lines (spaces around both trimmed), `#`/`;` comments and blank lines skipped, a line ending
/// in `\` continued by the next (joined with a space).
pub fn parse_entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut lines = text.lines().enumerate();
    while let Some((line, raw)) = lines.next() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let mut joined = t.to_string();
        while joined.ends_with('\\') {
            joined.pop();
            match lines.next() {
                Some((_, more)) => {
                    joined.push(' ');
                    joined.push_str(more.trim());
                }
                None => break,
            }
        }
        if let Some((k, v)) = joined.split_once('=') {
            out.push(Entry {
                section: section.clone(),
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                line,
            });
        }
    }
    out
}
