//! OCI image layouts holding one artifact layer (docs/FORMATS.md §8): how
//! Trivy's DBs travel through registries.
//!
//! A layout is `oci-layout`, `index.json` and `blobs/sha256/<hex>` for the
//! manifest, the empty config (`{}`) and the layer. The manifest has
//! exactly one layer with the Trivy media type and the
//! `org.opencontainers.image.title` annotation Trivy saves the blob under,
//! `artifactType` `application/vnd.aquasec.trivy.config.v1+json` and the
//! OCI empty config; the index tags it with
//! `org.opencontainers.image.ref.name`. Deterministic: keys sorted, the
//! only time is the pinned one (`org.opencontainers.image.created`).

use serde_json::json;

use crate::canon;
use crate::digest::Sha256;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const TRIVY_ARTIFACT_TYPE: &str = "application/vnd.aquasec.trivy.config.v1+json";
pub const TRIVY_DB_LAYER: &str = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip";
pub const TRIVY_JAVA_DB_LAYER: &str = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip";
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// What goes in the layout besides the layer bytes themselves.
pub struct Artifact<'a> {
    pub layer_media_type: &'a str,
    pub layer_sha256: Sha256,
    pub layer_size: u64,
    /// The layer's file name (`db.tar.gz`): Trivy saves the blob under it.
    pub title: &'a str,
    pub tag: &'a str,
    /// RFC 3339 pinned time.
    pub created: &'a str,
}

/// The layout's small files: `(path inside the layout, bytes)` for
/// `oci-layout`, `index.json`, the manifest blob and the config blob. The
/// layer goes at [`blob_path`] of its digest.
pub fn layout_files(a: &Artifact<'_>) -> Vec<(String, Vec<u8>)> {
    generic_layout(&Generic {
        artifact_type: Some(TRIVY_ARTIFACT_TYPE),
        config_media_type: EMPTY_CONFIG_MEDIA_TYPE,
        config: EMPTY_CONFIG,
        layers: vec![Layer {
            media_type: a.layer_media_type,
            sha256: a.layer_sha256,
            size: a.layer_size,
            title: a.title.to_string(),
        }],
        tag: a.tag,
        created: a.created,
    })
}

/// One layer of a [`Generic`] artifact.
pub struct Layer<'a> {
    pub media_type: &'a str,
    pub sha256: Sha256,
    pub size: u64,
    /// `org.opencontainers.image.title`: the file's name or path.
    pub title: String,
}

/// An artifact of any config and layers (the mirror tree: one layer per
/// file). Layers are written in the order given.
pub struct Generic<'a> {
    pub artifact_type: Option<&'a str>,
    pub config_media_type: &'a str,
    pub config: &'a [u8],
    pub layers: Vec<Layer<'a>>,
    pub tag: &'a str,
    /// RFC 3339 pinned time.
    pub created: &'a str,
}

/// The small files of a [`Generic`] layout, as [`layout_files`]: the
/// config blob is the last entry; layers go at [`blob_path`] of their digests.
pub fn generic_layout(a: &Generic<'_>) -> Vec<(String, Vec<u8>)> {
    let config_sha = Sha256::of(a.config);
    let layers: Vec<serde_json::Value> = a
        .layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": l.media_type,
                "digest": format!("sha256:{}", l.sha256),
                "size": l.size,
                "annotations": {"org.opencontainers.image.title": l.title},
            })
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": a.config_media_type, "digest": format!("sha256:{config_sha}"), "size": a.config.len()},
        "layers": layers,
        "annotations": {"org.opencontainers.image.created": a.created},
    });
    let mut descriptor = json!({"mediaType": MANIFEST_MEDIA_TYPE});
    if let Some(t) = a.artifact_type {
        manifest["artifactType"] = json!(t);
        descriptor["artifactType"] = json!(t);
    }
    let manifest = canon::to_vec(&manifest);
    let manifest_sha = Sha256::of(&manifest);
    descriptor["digest"] = json!(format!("sha256:{manifest_sha}"));
    descriptor["size"] = json!(manifest.len());
    descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": a.tag});
    let index = canon::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [descriptor],
    }));
    vec![
        ("oci-layout".into(), canon::to_vec(&json!({"imageLayoutVersion": "1.0.0"}))),
        ("index.json".into(), index),
        (blob_path(&manifest_sha), manifest),
        (blob_path(&config_sha), a.config.to_vec()),
    ]
}

pub fn blob_path(d: &Sha256) -> String {
    format!("blobs/sha256/{d}")
}

// ---- registries: artifacts that refer to another (OCI 1.1 `subject`) ----

/// The artifact type of the companion that carries every file of an export.
pub const EXPORT_ARTIFACT_TYPE: &str = "application/vnd.export-center.export.v1+json";
/// DSSE envelopes travel as referrers of this artifact type (and layer media type).
pub const DSSE_ARTIFACT_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// An unsigned in-toto Statement (`provenance.json`).
pub const INTOTO_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
/// The layer media type of an export's plain files.
pub const FILE_MEDIA_TYPE: &str = "application/octet-stream";
/// Annotation naming the export file a referrer carries.
pub const FILE_ANNOTATION: &str = "dev.export-center.file";
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// An OCI content descriptor, as manifests and indexes hold them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, d: &Sha256, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: format!("sha256:{d}"),
            size,
            artifact_type: None,
            annotations: Default::default(),
        }
    }

    /// The SHA-256 the descriptor names (other algorithms are refused).
    pub fn sha256(&self) -> Result<Sha256, String> {
        self.digest
            .strip_prefix("sha256:")
            .and_then(Sha256::parse_hex)
            .ok_or_else(|| format!("digest {:?} is not sha256:<64 hex>", self.digest))
    }

    pub fn annotation(&self, k: &str) -> Option<&str> {
        self.annotations.get(k).map(String::as_str)
    }
}

/// An image manifest as read back (what `pull` needs of it).
#[derive(Debug, serde::Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// An image index as read back.
#[derive(Debug, serde::Deserialize)]
pub struct ImageIndex {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// The canonical bytes of an artifact manifest: the empty config, `layers`
/// in the order given, `subject` when it refers to another manifest.
/// No wall-clock value: the same arguments give the same bytes.
pub fn artifact_manifest(
    artifact_type: &str,
    layers: &[Descriptor],
    subject: Option<&Descriptor>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": Descriptor::new(EMPTY_CONFIG_MEDIA_TYPE, &Sha256::of(EMPTY_CONFIG), EMPTY_CONFIG.len() as u64),
        "layers": layers,
    });
    if let Some(s) = subject {
        m["subject"] = json!(s);
    }
    if !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    canon::to_vec(&m)
}

/// The referrers-tag fallback index (tag `sha256-<hex>` of the subject):
/// `manifests` sorted by digest, so its bytes depend on its set only.
pub fn referrers_index(mut manifests: Vec<Descriptor>) -> Vec<u8> {
    manifests.sort_by(|a, b| a.digest.cmp(&b.digest));
    manifests.dedup_by(|a, b| a.digest == b.digest);
    canon::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": manifests}))
}

/// The referrers-tag fallback's tag for a subject.
pub fn referrers_tag(subject: &Sha256) -> String {
    format!("sha256-{subject}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_references_the_layer_and_is_deterministic() {
        let a = Artifact {
            layer_media_type: TRIVY_DB_LAYER,
            layer_sha256: Sha256::of(b"layer"),
            layer_size: 5,
            title: "db.tar.gz",
            tag: "2",
            created: "2025-01-01T00:00:00Z",
        };
        let f = layout_files(&a);
        assert_eq!(f, layout_files(&a));
        let manifest: serde_json::Value = serde_json::from_slice(&f[2].1).unwrap();
        assert_eq!(manifest["layers"][0]["annotations"]["org.opencontainers.image.title"], "db.tar.gz");
        assert_eq!(manifest["layers"][0]["digest"], format!("sha256:{}", Sha256::of(b"layer")));
        assert_eq!(f[2].0, blob_path(&Sha256::of(&f[2].1)));
        assert_eq!(f[3].0, "blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        let index: serde_json::Value = serde_json::from_slice(&f[1].1).unwrap();
        assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "2");
    }
}
