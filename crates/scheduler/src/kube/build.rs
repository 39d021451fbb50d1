//! The objects of one scan attempt, built without I/O: the Secret, the NetworkPolicy and the
//! Pod (see the [module docs](super) for what each is for and why the Secret owns the others).
//!
//! Only ids reach names, labels and annotations: the scan id, the attempt and the names made of
//! them. The per-scan token appears in the Secret and nowhere else.
//!
//! Not per scan: the ConfigMap holding the operator's CA bundle ([`ca_bundle_config_map`]),
//! created once when the executor starts and mounted read-only by every scan Pod.

use super::{DnsEgress, KubeConfig, TERMINATION_GRACE_SECS, WORKER_COMMAND, WORKER_UID, WORK_DIR};
use crate::executor::Launch;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, Pod,
    PodSecurityContext, PodSpec, ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use picket_core::InstallationId;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_SCAN_ID: &str = "picket.dev/scan-id";
pub const LABEL_ATTEMPT: &str = "picket.dev/attempt";
/// The installation whose scheduler created the object: installations sharing a namespace list
/// and reap only their own.
pub const LABEL_INSTALLATION: &str = "picket.dev/installation";
/// The environment's name: what the NetworkPolicy selects and [`list`](crate::Executor::list)
/// groups by.
pub const LABEL_ENV: &str = "picket.dev/env";
/// Every scan object of any installation.
pub const MARKS_SELECTOR: &str =
    "app.kubernetes.io/managed-by=picket,app.kubernetes.io/component=scan";

/// Every scan object of `installation`.
pub fn installation_selector(installation: &InstallationId) -> String {
    format!("{MARKS_SELECTOR},{LABEL_INSTALLATION}={installation}")
}
/// The worker's one container.
pub const CONTAINER: &str = "worker";
/// The `/work` emptyDir volume.
pub const WORK_VOLUME: &str = "work";
/// The volume of the attempt's Secret, mounted read-only at [`TOKEN_DIR`].
pub const TOKEN_VOLUME: &str = "scan-token";
/// Where the Secret is mounted; the token is the file [`TOKEN_KEY`] in it
/// (`PICKET_SCAN_TOKEN_FILE`). A file, not an environment variable: nothing the worker starts
/// inherits it (checkov CKV_K8S_35).
pub const TOKEN_DIR: &str = "/var/run/secrets/picket";
/// The Secret's one key: the per-scan token.
pub const TOKEN_KEY: &str = "scan-token";
/// The CA bundle's volume, the directory it is mounted at, its one key, and the path the worker
/// is given in `PICKET_CA_BUNDLE`.
pub const CA_BUNDLE_VOLUME: &str = "ca-bundle";
pub const CA_BUNDLE_DIR: &str = "/etc/picket/ca";
pub const CA_BUNDLE_KEY: &str = "ca-bundle.pem";
pub const CA_BUNDLE_PATH: &str = "/etc/picket/ca/ca-bundle.pem";

/// The labels of all three objects.
pub fn labels(launch: &Launch) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "picket".to_owned()),
        (LABEL_COMPONENT.to_owned(), "scan".to_owned()),
        (
            LABEL_INSTALLATION.to_owned(),
            launch.installation.to_string(),
        ),
        (LABEL_SCAN_ID.to_owned(), launch.scan_id.0.to_string()),
        (LABEL_ATTEMPT.to_owned(), launch.attempt.to_string()),
        (LABEL_ENV.to_owned(), launch.env_name()),
    ])
}

fn metadata(cfg: &KubeConfig, launch: &Launch, owner: Option<&OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: Some(launch.env_name()),
        namespace: Some(cfg.namespace.clone()),
        labels: Some(labels(launch)),
        owner_references: owner.map(|o| vec![o.clone()]),
        ..ObjectMeta::default()
    }
}

/// The reference the NetworkPolicy and the Pod carry to the attempt's Secret (`uid` from its
/// create response). Not a controller, and not blocking the owner's deletion: deleting the
/// Secret must never wait for the Pod.
pub fn owner_reference(secret_name: &str, secret_uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Secret".to_owned(),
        name: secret_name.to_owned(),
        uid: secret_uid.to_owned(),
        controller: Some(false),
        block_owner_deletion: None,
    }
}

/// The Secret: the per-scan token alone (key [`TOKEN_KEY`]), immutable. The worker reads it from
/// the mounted file and fetches its spec and clone credential from the API with it.
pub fn secret(cfg: &KubeConfig, launch: &Launch) -> Secret {
    Secret {
        metadata: metadata(cfg, launch, None),
        type_: Some("Opaque".to_owned()),
        immutable: Some(true),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_owned(),
            ByteString(launch.token.expose_secret().as_bytes().to_vec()),
        )])),
        string_data: None,
    }
}

/// The NetworkPolicy: selects only this attempt's Pod; denies all ingress (no ingress rule);
/// allows egress to DNS, to the API pods (by selector, when configured) and to each allowlisted
/// `CIDR:port`, nothing else.
pub fn network_policy(cfg: &KubeConfig, launch: &Launch, owner: &OwnerReference) -> NetworkPolicy {
    let dns_ports = ["UDP", "TCP"]
        .map(|protocol| NetworkPolicyPort {
            protocol: Some(protocol.to_owned()),
            port: Some(IntOrString::Int(53)),
            end_port: None,
        })
        .to_vec();
    let dns_to = match &cfg.dns {
        DnsEgress::KubeDns => vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    "kube-system".to_owned(),
                )])),
                match_expressions: None,
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "k8s-app".to_owned(),
                    "kube-dns".to_owned(),
                )])),
                match_expressions: None,
            }),
            ip_block: None,
        }],
        DnsEgress::Cidrs(cidrs) => cidrs.iter().map(|c| ip_peer(c.to_string())).collect(),
    };
    let mut egress = vec![NetworkPolicyEgressRule {
        to: Some(dns_to),
        ports: Some(dns_ports),
    }];
    if let Some(api) = &cfg.api_peer {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_owned(),
                        api.namespace.clone(),
                    )])),
                    match_expressions: None,
                }),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(api.pod_labels.clone()),
                    match_expressions: None,
                }),
                ip_block: None,
            }]),
            ports: Some(vec![NetworkPolicyPort {
                protocol: Some("TCP".to_owned()),
                port: Some(IntOrString::Int(i32::from(api.port))),
                end_port: None,
            }]),
        });
    }
    egress.extend(cfg.egress.iter().map(|rule| NetworkPolicyEgressRule {
        to: Some(vec![ip_peer(rule.cidr.to_string())]),
        ports: Some(vec![NetworkPolicyPort {
            protocol: Some("TCP".to_owned()),
            port: Some(IntOrString::Int(i32::from(rule.port))),
            end_port: None,
        }]),
    }));
    NetworkPolicy {
        metadata: metadata(cfg, launch, Some(owner)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(LABEL_ENV.to_owned(), launch.env_name())])),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: None,
            egress: Some(egress),
        }),
    }
}

fn ip_peer(cidr: String) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr, except: None }),
        namespace_selector: None,
        pod_selector: None,
    }
}

/// The Pod: `picket worker` from the pinned image, the token a file of the mounted Secret, under
/// the `restricted` Pod Security Standard and then some (read-only root, no service account token,
/// no service links), with one size-limited emptyDir at `/work` and a deadline of its own.
pub fn pod(cfg: &KubeConfig, launch: &Launch, owner: &OwnerReference) -> Pod {
    let quantities = |pairs: [(&str, &String); 3]| {
        Some(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Quantity(v.clone())))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let r = &cfg.resources;
    let mut env = vec![
        EnvVar {
            name: "TMPDIR".to_owned(),
            value: Some(WORK_DIR.to_owned()),
            value_from: None,
        },
        EnvVar {
            name: "HOME".to_owned(),
            value: Some(WORK_DIR.to_owned()),
            value_from: None,
        },
        EnvVar {
            name: "PICKET_API_URL".to_owned(),
            value: Some(cfg.api_url.clone()),
            value_from: None,
        },
        EnvVar {
            name: "PICKET_SCAN_TOKEN_FILE".to_owned(),
            value: Some(format!("{TOKEN_DIR}/{TOKEN_KEY}")),
            value_from: None,
        },
    ];
    env.extend(cfg.env.iter().map(|(k, v)| EnvVar {
        name: k.clone(),
        value: Some(v.clone()),
        value_from: None,
    }));
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(cfg.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(WORKER_COMMAND.map(str::to_owned).to_vec()),
        working_dir: Some(WORK_DIR.to_owned()),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: quantities([
                ("cpu", &r.cpu_request),
                ("memory", &r.memory_request),
                ("ephemeral-storage", &r.ephemeral_storage_request),
            ]),
            limits: quantities([
                ("cpu", &r.cpu_limit),
                ("memory", &r.memory_limit),
                ("ephemeral-storage", &r.ephemeral_storage_limit),
            ]),
            claims: None,
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: None,
                drop: Some(vec!["ALL".to_owned()]),
            }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(WORKER_UID),
            run_as_group: Some(WORKER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: WORK_VOLUME.to_owned(),
                mount_path: WORK_DIR.to_owned(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: TOKEN_VOLUME.to_owned(),
                mount_path: TOKEN_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    };
    let mut pod = Pod {
        metadata: metadata(cfg, launch, Some(owner)),
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".to_owned()),
            active_deadline_seconds: Some(launch.deadline.as_secs().max(1) as i64),
            termination_grace_period_seconds: Some(TERMINATION_GRACE_SECS),
            service_account_name: Some(cfg.service_account.clone()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            host_network: Some(false),
            host_pid: Some(false),
            host_ipc: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(WORKER_UID),
                run_as_group: Some(WORKER_UID),
                fs_group: Some(WORKER_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    localhost_profile: None,
                }),
                ..PodSecurityContext::default()
            }),
            volumes: Some(vec![
                Volume {
                    name: WORK_VOLUME.to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: None,
                        size_limit: Some(Quantity(r.work_size_limit.clone())),
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: TOKEN_VOLUME.to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(launch.env_name()),
                        // Owner root, group the worker's fsGroup: readable by the worker only.
                        default_mode: Some(0o440),
                        optional: Some(false),
                        items: None,
                    }),
                    ..Volume::default()
                },
            ]),
            ..PodSpec::default()
        }),
        status: None,
    };
    if let Some(config_map) = &cfg.ca_bundle {
        mount_ca_bundle(&mut pod, config_map);
    }
    pod
}

/// The ConfigMap of the operator's CA bundle (PEM) in the scan namespace: named after the
/// content's SHA-256 (`picket-ca-bundle-<16 hex>`), so the same bundle is the same object for
/// every scheduler replica and restart and a changed one is a new object; immutable; labelled as
/// Picket's but not as a scan's, so the reaper never lists it. Kept as `binaryData`: the file is
/// mounted byte for byte.
pub fn ca_bundle_config_map(namespace: &str, pem: &[u8]) -> ConfigMap {
    let digest = hex::encode(Sha256::digest(pem));
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("picket-ca-bundle-{}", &digest[..16])),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (LABEL_MANAGED_BY.to_owned(), "picket".to_owned()),
                (LABEL_COMPONENT.to_owned(), "ca-bundle".to_owned()),
            ])),
            ..ObjectMeta::default()
        },
        immutable: Some(true),
        binary_data: Some(BTreeMap::from([(
            CA_BUNDLE_KEY.to_owned(),
            ByteString(pem.to_vec()),
        )])),
        data: None,
    }
}

/// Mounts the CA bundle's ConfigMap read-only at [`CA_BUNDLE_DIR`] and names the file in the
/// worker's `PICKET_CA_BUNDLE`.
fn mount_ca_bundle(pod: &mut Pod, config_map: &str) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: CA_BUNDLE_VOLUME.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            default_mode: Some(0o444),
            optional: Some(false),
            items: None,
        }),
        ..Volume::default()
    });
    for container in &mut spec.containers {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: CA_BUNDLE_VOLUME.to_owned(),
                mount_path: CA_BUNDLE_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        container.env.get_or_insert_with(Vec::new).push(EnvVar {
            name: "PICKET_CA_BUNDLE".to_owned(),
            value: Some(CA_BUNDLE_PATH.to_owned()),
            value_from: None,
        });
    }
}
