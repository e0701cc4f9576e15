//! Reading configured zones, a large one on two threads.
//!
//! `domain`'s zone-file scanner and the assembly of the records into a
//! zone's arenas take about equal time. For a large file they run side by
//! side: a reader thread scans into [`zone::RecordBatch`]es and sends them
//! over a bounded channel; this thread assembles them as they come, and
//! hands the emptied batches back for reuse. The result, problems included,
//! is the same as [`zone::load`]'s on one thread (tested below). `zone/`
//! itself stays free of threads (DESIGN.md, "Sans-I/O core").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use crate::config::ZoneConfig;
use crate::diag::{Diagnostics, Loc};
use crate::zone::{self, Assembler, RawRecord, RecordBatch, Sink, Zone};

/// Files smaller than this are read on one thread (a thread start is not
/// worth it).
const TWO_THREADS_FROM: u64 = 1 << 20;

/// Records per batch sent between the threads.
const BATCH: usize = 4096;

/// Loads the zone of `zc`: see [`zone::load`].
pub fn zone(zc: &ZoneConfig, limits: &zone::Limits, diags: &mut Diagnostics) -> Option<Zone> {
    let large = std::fs::metadata(&zc.file).is_ok_and(|m| m.len() >= TWO_THREADS_FROM);
    if large {
        two_threads(zc, limits, diags)
    } else {
        zone::load(&zc.origin, &zc.file, limits, diags)
    }
}

/// Loads the zone of `zc`, scanning on a second thread.
fn two_threads(zc: &ZoneConfig, limits: &zone::Limits, diags: &mut Diagnostics) -> Option<Zone> {
    let stop = AtomicBool::new(false);
    let mut assembler = Assembler::new(&zc.origin, limits);
    let found = std::thread::scope(|s| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<RecordBatch>(4);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<RecordBatch>();
        let stop = &stop;
        let reader = std::thread::Builder::new()
            .name("zone-read".into())
            .spawn_scoped(s, move || {
                let mut sink = Batches {
                    batch: RecordBatch::default(),
                    full: full_tx,
                    empty: empty_rx,
                    stop,
                };
                let found = zone::scan(&zc.origin, &zc.file, None, limits, &mut sink);
                sink.send();
                found
            });
        let reader = match reader {
            Ok(reader) => reader,
            Err(_) => return None,
        };
        for mut batch in full_rx.iter() {
            assembler.take(&batch);
            if assembler.full() {
                stop.store(true, Ordering::Relaxed);
            }
            batch.clear();
            let _ = empty_tx.send(batch);
        }
        Some(reader.join())
    });
    match found {
        Some(Ok(found)) => assembler.finish(found, diags),
        // No thread to be had: read on this one.
        None => zone::load(&zc.origin, &zc.file, limits, diags),
        Some(Err(_)) => {
            diags.error(
                Some(Loc {
                    file: zc.file.as_path().into(),
                    line: 0,
                }),
                "reading the zone failed (the reader thread panicked)",
            );
            None
        }
    }
}

/// The reader thread's sink: fills a batch and sends it when full.
struct Batches<'a> {
    batch: RecordBatch,
    full: SyncSender<RecordBatch>,
    empty: Receiver<RecordBatch>,
    stop: &'a AtomicBool,
}

impl Batches<'_> {
    fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self.empty.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        if self.full.send(batch).is_err() {
            // The assembler is gone: nothing more is wanted.
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Sink for Batches<'_> {
    fn file(&mut self, path: std::sync::Arc<std::path::Path>, size: usize) {
        self.batch.file(path, size);
    }

    fn record(&mut self, rec: RawRecord<'_>) {
        self.batch.record(rec);
        if self.batch.len() >= BATCH {
            self.send();
        }
    }

    fn full(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::str::FromStr;

    /// A zone as plain data: (key, owner, [(type, TTL, [RDATA])]) per node.
    type Dump = Vec<(Vec<u8>, Vec<u8>, Vec<(u16, u32, Vec<Vec<u8>>)>)>;

    /// Loads `file` both ways; the zones and the problems must agree.
    fn both_ways(origin: &str, file: &Path, limits: &zone::Limits) -> (Option<Zone>, String) {
        let zc = ZoneConfig {
            origin: domain::base::name::Name::from_str(origin).unwrap(),
            file: file.to_path_buf(),
            loc: None,
        };
        let mut one = Diagnostics::default();
        let a = zone::load(&zc.origin, &zc.file, limits, &mut one);
        let mut two = Diagnostics::default();
        let b = two_threads(&zc, limits, &mut two);
        assert_eq!(one.to_string(), two.to_string(), "{}", file.display());
        assert_eq!(a.is_some(), b.is_some());
        if let (Some(a), Some(b)) = (&a, &b) {
            let dump = |z: &Zone| -> Dump {
                z.nodes()
                    .map(|n| {
                        let sets = n
                            .rrsets()
                            .map(|r| (r.rtype, r.ttl, r.rdatas().iter().map(<[u8]>::to_vec).collect()))
                            .collect();
                        (n.key().to_vec(), n.owner().to_vec(), sets)
                    })
                    .collect()
            };
            assert_eq!(dump(a), dump(b), "{}", file.display());
            assert_eq!(a.record_count, b.record_count);
            assert_eq!(a.files, b.files);
        }
        (b, two.to_string())
    }

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
    }

    #[test]
    fn two_threads_read_what_one_reads() {
        let limits = zone::Limits::default();
        let (zone, _) = both_ways("example.com.", &data("zones/example.com.zone"), &limits);
        assert!(zone.is_some_and(|z| z.record_count > 10));
        // Includes, and every broken zone with its messages.
        let mut broken = 0;
        for entry in std::fs::read_dir(data("broken")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "zone") {
                let (zone, msgs) = both_ways("example.com.", &path, &limits);
                if zone.is_none() {
                    assert!(msgs.contains("error"), "{msgs}");
                    broken += 1;
                }
            }
        }
        assert!(broken >= 3, "{broken} broken zones found");
    }

    #[test]
    fn two_threads_stop_at_the_record_limit() {
        // Many batches' worth of records, over a limit a few batches in.
        let dir = std::env::temp_dir().join(format!("lbdns-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.zone");
        let mut text = String::from("$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
        for i in 0..(5 * BATCH) {
            text.push_str(&format!("h{i} A 10.0.{}.{}\n", i / 256 % 256, i % 256));
        }
        std::fs::write(&path, text).unwrap();
        let limits = zone::Limits {
            zone_records: 2 * BATCH + 7,
            ..zone::Limits::default()
        };
        let (zone, msgs) = both_ways("example.com.", &path, &limits);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(zone.is_none());
        assert_eq!(
            msgs.matches("more records than limits.zone_records").count(),
            1,
            "{msgs}"
        );
    }
}
