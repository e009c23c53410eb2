//! Recovery after a full disk, on a real size-limited filesystem: the store lives on a
//! small tmpfs that a filler file fills up and then frees. Needs root (to mount); where
//! mounting is impossible the test says so and does nothing else.

use crate::support::{ECHO, Server, TOKEN, eventually};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem at `dir` with one file until a write fails; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // The last partial blocks too.
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.sync_all();
    path
}

fn alert(fingerprint: &str) -> Vec<u8> {
    json!({"version": "4", "groupKey": "g", "status": "firing", "receiver": "medic",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskTest", "n": fingerprint},
            "annotations": {}, "startsAt": "2026-11-22T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_full_disk_the_service_goes_ready_again_by_itself_and_loses_nothing() {
    let fs = match Tmpfs::mount("24m") {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a size-limited tmpfs here ({e}); run as root");
            return;
        }
    };
    let s = Server::start_in(&fs.path().join("store"), "", &[ECHO]).await;
    let post = async |fp: &str| {
        s.request(
            "POST",
            "/intake/alertmanager",
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("content-type", "application/json"),
            ],
            &alert(fp),
        )
        .await
    };
    assert_eq!(post("before").await.status, 202);
    eventually("the first incident", async || {
        (s.get("/api/incidents").await.as_array()?.len() == 1).then_some(())
    })
    .await;

    let filler = fill(fs.path());
    // Alerts now get 503 (never a false 202); every 202 before the first 503 is kept.
    let mut acked = vec!["before".to_string()];
    let mut refused = None;
    for i in 0..200 {
        let fp = format!("full-{i}");
        let r = post(&fp).await;
        match r.status {
            202 => acked.push(fp),
            503 => {
                refused = Some(r.error());
                break;
            }
            other => panic!("{other}: {r:?}"),
        }
    }
    let refused = refused.expect("a 503 once the disk is full");
    assert!(refused.contains("not acknowledged"), "{refused}");
    let r = s.request("GET", "/readyz", &[], b"").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.error().contains("store not writable"), "{r:?}");
    // Reads keep working.
    let r = s
        .request(
            "GET",
            "/api/incidents",
            &[("authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Space comes back: medic goes ready by itself, without a restart.
    std::fs::remove_file(&filler).unwrap();
    eventually("ready again", async || {
        (s.request("GET", "/readyz", &[], b"").await.status == 200).then_some(())
    })
    .await;
    assert_eq!(s.request("GET", "/healthz", &[], b"").await.status, 200);
    let r = post("after").await;
    assert_eq!(r.status, 202, "{r:?}");
    acked.push("after".into());
    // Every acknowledged alert is an incident, and its run finishes.
    let incidents: Value = eventually("every acknowledged alert handled", async || {
        let i = s.get("/api/incidents").await;
        let ids: Vec<&str> = i
            .as_array()?
            .iter()
            .filter_map(|x| x["id"].as_str())
            .collect();
        acked
            .iter()
            .all(|a| ids.contains(&a.as_str()))
            .then_some(i.clone())
    })
    .await;
    assert!(incidents.as_array().unwrap().len() >= acked.len());
    eventually("every run finished", async || {
        let runs = s.get("/api/runs").await;
        runs.as_array()?
            .iter()
            .all(|r| r["status"] == "succeeded")
            .then_some(())
    })
    .await;
}
