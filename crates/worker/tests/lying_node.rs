//! A worker whose only node lies, one lie at a time, through a WebSocket proxy in front of an
//! honest dev chain: an app record with another image, an older secrets record, a forged
//! certificate, a header that is not the certified one, another chain, and an assignment list
//! with a workload left out. Each time the worker refuses the answer and says why, and what it
//! runs keeps running with the owner's image and the owner's current secret; when the node
//! tells the truth again, the worker catches up.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use wetee_client::keys::dev_keypair;
use wetee_client::light::{LightClient, Trust};
use wetee_client::rpc::Client;
use wetee_client::secrets::{SealOptions, SecretValue, seal};
use wetee_types::Call;
use wetee_types::codec::{decode, encode};
use wetee_types::manifest::ImageRef;
use wetee_types::records::{App, Assignments};
use wetee_types::transaction::AppsCall;
use zeroize::Zeroizing;

/// What the proxy does to the node's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    /// Nothing.
    Honest,
    /// Each app record runs another image, as a new version.
    SwapImage,
    /// Each secrets record is the first one the proxy saw.
    OldSecrets,
    /// The finalization certificate carries a damaged signature.
    ForgedCertificate,
    /// The header under the certificate has another state root.
    ForgedHeader,
    /// The node serves another chain (seen at the next connection).
    OtherChain,
    /// The worker's assignment list leaves a workload out.
    Omission,
}

#[derive(Clone)]
struct Proxy {
    lie: Arc<Mutex<Lie>>,
    /// The first value and proof seen at each secrets key.
    first_secrets: Arc<Mutex<BTreeMap<String, (Value, Value)>>>,
    /// Bumped to drop every connection (the worker then reconnects).
    kick: tokio::sync::watch::Sender<u64>,
    other_image: String,
}

fn hex_bytes(value: &Value) -> Option<Vec<u8>> {
    let text = value.as_str()?;
    hex::decode(text.strip_prefix("0x").unwrap_or(text)).ok()
}

fn hex_value(bytes: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode(bytes)))
}

impl Proxy {
    fn lie(&self) -> Lie {
        *self.lie.lock().unwrap()
    }

    fn set(&self, lie: Lie) {
        *self.lie.lock().unwrap() = lie;
    }

    fn tamper(&self, method: &str, result: &mut Value) {
        let lie = self.lie();
        match method {
            "system_chainSpec" if lie == Lie::OtherChain => {
                result["chain_id"] = Value::String("another-chain".into());
            }
            "system_health" if lie == Lie::OtherChain => {
                result["genesis_hash"] = hex_value(&[7u8; 32]);
            }
            "chain_getFinality" => self.tamper_finality(lie, result),
            "state_getProof" => {
                self.tamper_finality(lie, &mut result["finality"]);
                if let Some(entries) = result["entries"].as_array_mut() {
                    for entry in entries {
                        self.tamper_entry(lie, entry);
                    }
                }
            }
            _ => {}
        }
    }

    fn tamper_finality(&self, lie: Lie, finality: &mut Value) {
        match lie {
            Lie::ForgedCertificate => {
                if let Some(mut bytes) = hex_bytes(&finality["finalization"]) {
                    if let Some(last) = bytes.last_mut() {
                        *last ^= 1;
                    }
                    finality["finalization"] = hex_value(&bytes);
                }
            }
            Lie::ForgedHeader => {
                finality["header"]["state_root"] = hex_value(&[0x11; 32]);
            }
            _ => {}
        }
    }

    fn tamper_entry(&self, lie: Lie, entry: &mut Value) {
        let Some(key) = hex_bytes(&entry["key"]) else {
            return;
        };
        let value = hex_bytes(&entry["value"]);
        if key.starts_with(b"aps/") && value.is_some() {
            let name = hex::encode(&key);
            let mut first = self.first_secrets.lock().unwrap();
            let saved = first
                .entry(name)
                .or_insert_with(|| (entry["value"].clone(), entry["proof"].clone()))
                .clone();
            if lie == Lie::OldSecrets {
                entry["value"] = saved.0;
                entry["proof"] = saved.1;
            }
        }
        match (lie, value) {
            (Lie::SwapImage, Some(bytes)) if key.starts_with(b"app/") => {
                let mut app: App = decode(&bytes).unwrap();
                app.version += 1;
                app.spec.container.image =
                    ImageRef::parse(&format!("localhost/wetee-test-other@{}", self.other_image))
                        .unwrap();
                entry["value"] = hex_value(&encode(&app));
            }
            (Lie::Omission, Some(bytes)) if key.starts_with(b"asg/") => {
                let mut list: Assignments = decode(&bytes).unwrap();
                list.retain(|_| false);
                entry["value"] = hex_value(&encode(&list));
            }
            _ => {}
        }
    }
}

/// Serves the proxy on 127.0.0.1; its URL.
async fn start_proxy(upstream: String, proxy: Proxy) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let proxy = proxy.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let _ = relay(tcp, &upstream, proxy).await;
            });
        }
    });
    format!("ws://{address}")
}

/// Relays one connection, rewriting answers as the proxy's lie says.
async fn relay(
    tcp: tokio::net::TcpStream,
    upstream: &str,
    proxy: Proxy,
) -> Result<(), Box<dyn std::error::Error>> {
    let downstream = tokio_tungstenite::accept_async(tcp).await?;
    let (node, _) = tokio_tungstenite::connect_async(upstream).await?;
    let (mut to_worker, mut from_worker) = downstream.split();
    let (mut to_node, mut from_node) = node.split();
    let methods: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut kick = proxy.kick.subscribe();
    let asked = Arc::clone(&methods);
    let requests = async move {
        while let Some(Ok(message)) = from_worker.next().await {
            if let Message::Text(text) = &message
                && let Ok(request) = serde_json::from_str::<Value>(text)
                && let Some(method) = request["method"].as_str()
            {
                asked
                    .lock()
                    .unwrap()
                    .insert(request["id"].to_string(), method.to_string());
            }
            if to_node.send(message).await.is_err() {
                break;
            }
        }
    };
    let answers = async move {
        while let Some(Ok(message)) = from_node.next().await {
            let message = match message {
                Message::Text(text) => {
                    let mut answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let method = methods.lock().unwrap().remove(&answer["id"].to_string());
                    match method {
                        Some(method) if answer.get("result").is_some() => {
                            proxy.tamper(&method, &mut answer["result"]);
                            Message::Text(answer.to_string().into())
                        }
                        _ => Message::Text(text),
                    }
                }
                other => other,
            };
            if to_worker.send(message).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = answers => {}
        _ = kick.changed() => {}
    }
    Ok(())
}

/// The worker's log, as an operator reads it.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The image of every container of the worker's scope.
fn container_images(scope: &str) -> Vec<String> {
    let engine = support::engine();
    let output = std::process::Command::new(engine.cli)
        .args(["ps", "-a", "--format", "{{.ImageID}}", "--filter"])
        .arg(format!("label=wetee.managed={scope}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_node_is_caught_and_what_runs_keeps_running() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let (rpc, genesis) = // Epochs long enough (a minute) that a worker kept from reporting by lies does not lose its
    // apps for missing a report meanwhile.
    support::dev_chain(&dir.path().join("chain"), 600);
    let other_image = support::other_image().to_string();
    let (kick, _) = tokio::sync::watch::channel(0u64);
    let proxy = Proxy {
        lie: Arc::new(Mutex::new(Lie::Honest)),
        first_secrets: Arc::default(),
        kick,
        other_image: other_image.clone(),
    };
    let liar = start_proxy(rpc.clone(), proxy.clone()).await;

    // The worker's only node is the proxy.
    let engine = support::engine();
    let mut config = support::worker_config(&dir.path().join("worker"), &engine.socket, genesis);
    config.ingress.listen = "127.0.0.1:0".parse().unwrap();
    let secrets_dir = support::own_secrets_dir("lying-node");
    config.backend.secrets_dir = secrets_dir.clone();
    let worker = support::start_worker(config, &liar).await;
    let running = worker.running.clone();
    let scope = hex::encode(running.identity.0);
    let _cleanup = support::Cleanup(scope.clone());
    // A worker refusing its node does not touch the engine.
    let _keep_alive = support::keep_engine_alive();
    let ingress = running.ingress.port();

    // Bob's app serves the token it reads from /run/secrets.
    let client = Client::connect(&rpc).await.unwrap();
    // The owner seals through a light client of the honest node.
    let owner_light = LightClient::connect(&rpc, &Trust::GenesisHash(genesis))
        .await
        .unwrap();
    let simulated = SealOptions {
        allow_simulated: true,
        ..SealOptions::default()
    };
    let bob = dev_keypair("Bob");
    let spec = support::secret_serving_spec();
    let app = support::create_app(&client, &bob, spec).await;
    let set_token = async |token: &str| {
        let values = [SecretValue {
            name: "API_TOKEN".into(),
            value: Zeroizing::new(token.as_bytes().to_vec()),
        }];
        let (call, _) = seal(&owner_light, &bob, app, &values, &[], &simulated)
            .await
            .expect("sealed");
        client.send(&bob, call, |_| {}).await.expect("secrets set");
    };
    support::eventually("the app to be placed", 60, async || {
        let record = client.app(app).await.ok()??;
        record.placement.map(|_| ())
    })
    .await;
    let first = support::random_token();
    set_token(&first).await;
    let serves = async |token: &str| {
        let page = support::http_get(ingress, &format!("/{}/", app.0));
        page.contains(token)
    };
    support::eventually("the app to serve its secret", 60, async || {
        serves(&first).await.then_some(())
    })
    .await;
    let owners_image = support::busybox_image().to_string();
    assert!(!container_images(&scope).is_empty());

    // Each lie is refused with its reason; the app keeps running as the owner set it up.
    let lies = [
        (Lie::SwapImage, "proof does not show the key app/"),
        (Lie::Omission, "proof does not show the key asg/"),
        (Lie::ForgedCertificate, "not signed by a quorum"),
        (Lie::ForgedHeader, "finalization certificate is for block"),
        (Lie::OtherChain, "it serves chain"),
    ];
    for (lie, reason) in lies {
        let seen = log.text().matches(reason).count();
        proxy.set(lie);
        if lie == Lie::OtherChain {
            proxy.kick.send_modify(|n| *n += 1);
        }
        if lie == Lie::SwapImage {
            // A worker reads an app's record again only when its stamp in the assignment list
            // changes: the owner restarts the app, and the node serves the swapped record then.
            client
                .send(&bob, Call::Apps(AppsCall::Restart { app }), |_| {})
                .await
                .expect("restarted");
        }
        support::eventually(&format!("the worker to refuse {lie:?}"), 30, async || {
            (log.text().matches(reason).count() > seen).then_some(())
        })
        .await;
        // Another pass against the lie.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(serves(&first).await, "{lie:?}: the app stopped serving");
        for image in container_images(&scope) {
            assert!(
                owners_image.contains(&image) && !other_image.contains(&image),
                "{lie:?}: a container runs image {image}"
            );
        }
        proxy.set(Lie::Honest);
        proxy.kick.send_modify(|n| *n += 1);
    }
    let text = log.text();
    assert!(
        text.contains("dropped a node whose answer failed verification"),
        "{text}"
    );

    // A rotated secret is not rolled back by a node serving the older record.
    proxy.set(Lie::OldSecrets);
    let seen = log
        .text()
        .matches("proof does not show the key aps/")
        .count();
    let second = support::random_token();
    set_token(&second).await;
    support::eventually("the worker to refuse the older secrets", 30, async || {
        (log.text()
            .matches("proof does not show the key aps/")
            .count()
            > seen)
            .then_some(())
    })
    .await;
    assert!(serves(&first).await, "the app keeps what it had");
    proxy.set(Lie::Honest);
    proxy.kick.send_modify(|n| *n += 1);
    support::eventually(
        "the rotated secret once the node is honest",
        60,
        async || serves(&second).await.then_some(()),
    )
    .await;

    worker.stop().await;
    let _ = std::fs::remove_dir_all(&secrets_dir);
    let _ = std::io::stderr().flush();
}
