//! Store writes through the core against raw fjall, in one run so the ratio is fair.
//!
//! Run: `cargo bench -p cnspr-runtime --bench store`. Both sides write 20 000 keys of 100
//! bytes to a fresh database and make them durable every 100 writes (group commit):
//!
//! - raw: fjall batches of 100 `insert`s, committed, then `persist(SyncAll)`;
//! - core: `Store::write` (hybrid clock, dotted register), the register's record encoded
//!   and committed through `Disk` in batches of 100 as the daemon's flush does (with each
//!   key's entry in the change log that `watch` reads), then `Disk::sync`.
//!
//! Prints both rates and the ratio (goal: the core at least half of raw).

use std::time::Instant;

use cnspr_proto::durable::Write;
use cnspr_proto::identity::DeviceId;
use cnspr_proto::store::{Store, StoreRecord};
use cnspr_runtime::disk::Disk;
use fjall::{Config, PartitionCreateOptions, PersistMode};

const WRITES: u64 = 20_000;
const GROUP: u64 = 100;
const ROUNDS: usize = 3;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cnspr-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn key(i: u64) -> String {
    format!("bench/key/{i:08}")
}

fn raw_round() -> f64 {
    let dir = temp("raw");
    let keyspace = Config::new(&dir).open().expect("opens");
    let partition = keyspace
        .open_partition("records", PartitionCreateOptions::default())
        .expect("partition");
    let value = [7u8; 100];
    let start = Instant::now();
    for group in 0..WRITES / GROUP {
        let mut batch = keyspace.batch();
        for i in group * GROUP..(group + 1) * GROUP {
            batch.insert(&partition, key(i), value);
        }
        batch.commit().expect("commits");
        keyspace.persist(PersistMode::SyncAll).expect("syncs");
    }
    let rate = WRITES as f64 / start.elapsed().as_secs_f64();
    drop(partition);
    drop(keyspace);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn core_round() -> f64 {
    let dir = temp("core");
    let disk = Disk::open(&dir).expect("opens");
    let mut store = Store::new(DeviceId::from_bytes([1; 32]), 0);
    let value = vec![7u8; 100];
    let mut pending = Vec::with_capacity(GROUP as usize);
    let start = Instant::now();
    for i in 0..WRITES {
        let key = key(i);
        store
            .write(&key, Some(value.clone()), 1_800_000_000_000_000 + i)
            .expect("valid");
        let register = store.read(&key).expect("written").register.clone();
        pending.push(Write::put(StoreRecord::Key { key, register }));
        if (i + 1) % GROUP == 0 {
            disk.apply_all(&pending).expect("applies");
            pending.clear();
            disk.sync().expect("syncs");
        }
    }
    let rate = WRITES as f64 / start.elapsed().as_secs_f64();
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let mut raw = Vec::new();
    let mut core = Vec::new();
    for _ in 0..ROUNDS {
        raw.push(raw_round());
        core.push(core_round());
    }
    let (raw, core) = (median(raw), median(core));
    println!("raw fjall, batches of {GROUP} + sync:   {raw:>10.0} writes/s");
    println!("core store + Disk, sync every {GROUP}: {core:>10.0} writes/s");
    println!("ratio core/raw: {:.3}", core / raw);
}
