//! The simulated disk's own tests: each fault and each power-loss outcome, against its contract.

use super::*;
use acme_store::MemStorage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PPM: u32 = 1_000_000;
const S: usize = SECTOR as usize;

fn calm(seed: u64) -> SimDisk {
    SimDisk::new(seed, DiskFaults::default())
}

fn read_all(d: &mut SimDisk, file: &str) -> Option<Vec<u8>> {
    let len = d.size(file).ok()?;
    let mut buf = vec![0u8; len as usize];
    let n = d.read_at(file, 0, &mut buf).unwrap();
    assert_eq!(n as u64, len);
    Some(buf)
}

/// A file of `sectors` sectors of `byte`, synced, its name synced.
fn durable_file(d: &mut SimDisk, file: &str, sectors: usize, byte: u8) -> Vec<u8> {
    let data = vec![byte; sectors * S];
    d.write_at(file, 0, &data).unwrap();
    d.sync(file).unwrap();
    d.sync_dir().unwrap();
    data
}

#[test]
fn basic_semantics_match_a_file_system() {
    let mut d = calm(1);
    assert!(!Storage::read_only(&d));
    d.write_at("b", 10, b"xyz").unwrap();
    assert_eq!(d.size("b").unwrap(), 13);
    let mut buf = [9u8; 20];
    assert_eq!(d.read_at("b", 0, &mut buf).unwrap(), 13);
    assert_eq!(&buf[..13], b"\0\0\0\0\0\0\0\0\0\0xyz");
    assert_eq!(d.read_at("b", 11, &mut buf).unwrap(), 2);
    assert_eq!(d.read_at("b", 13, &mut buf).unwrap(), 0);
    assert_eq!(d.read_at("b", u64::MAX, &mut buf).unwrap(), 0);
    d.write_at("a", 0, b"").unwrap();
    assert_eq!(d.size("a").unwrap(), 0);
    assert_eq!(d.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
    d.truncate("b", 11).unwrap();
    assert_eq!(read_all(&mut d, "b").unwrap(), b"\0\0\0\0\0\0\0\0\0\0x");
    d.truncate("b", 12).unwrap();
    assert_eq!(read_all(&mut d, "b").unwrap(), b"\0\0\0\0\0\0\0\0\0\0x\0");
    for e in [
        d.read_at("zz", 0, &mut buf).unwrap_err(),
        d.size("zz").unwrap_err(),
        d.sync("zz").unwrap_err(),
        d.truncate("zz", 0).unwrap_err(),
        d.rename("zz", "y").unwrap_err(),
        d.remove("zz").unwrap_err(),
    ] {
        assert_eq!(e.kind, StorageErrorKind::NotFound, "{e}");
        assert_eq!(e.file, "zz");
    }
    d.remove("a").unwrap();
    assert_eq!(d.list().unwrap(), vec!["b".to_string()]);
    for bad in ["", ".", "..", "a/b", "a\0", &"n".repeat(65)] {
        let e = d.write_at(bad, 0, b"x").unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::Io);
        assert!(e.reason.contains("EINVAL"), "{e}");
        assert!(d.rename("b", bad).is_err());
    }
    d.write_at(&"n".repeat(64), 0, b"x").unwrap();
    assert_eq!(d.list().unwrap().len(), 2);
}

#[test]
fn matches_mem_storage_without_faults() {
    // With no fault and no power loss the disk is a file system: the same calls give the
    // same answers and contents as the in-memory storage.
    let names = ["a", "b", "c"];
    for seed in 0..20 {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let mut d = calm(seed);
        let mut m = MemStorage::new();
        for _ in 0..300 {
            let f = names[r.random_range(0..3)];
            let g = names[r.random_range(0..3)];
            let off = r.random_range(0..3_000u64);
            match r.random_range(0..7) {
                0 | 1 => {
                    let data = vec![r.random::<u8>(); r.random_range(1..1_500)];
                    assert_eq!(d.write_at(f, off, &data), m.write_at(f, off, &data));
                }
                2 => {
                    let (a, b) = (d.truncate(f, off), m.truncate(f, off));
                    assert_eq!(a.is_ok(), b.is_ok());
                }
                3 => {
                    let (a, b) = (d.rename(f, g), m.rename(f, g));
                    assert_eq!(a.is_ok(), b.is_ok(), "rename {f} {g}");
                }
                4 => assert_eq!(d.remove(f).is_ok(), m.remove(f).is_ok()),
                5 => {
                    assert_eq!(d.sync(f).is_ok(), m.sync(f).is_ok());
                    d.sync_dir().unwrap();
                }
                _ => {
                    let mut x = vec![0u8; r.random_range(0..2_000)];
                    let mut y = x.clone();
                    let (a, b) = (d.read_at(f, off, &mut x), m.read_at(f, off, &mut y));
                    assert_eq!(a.is_ok(), b.is_ok());
                    assert_eq!(x, y);
                }
            }
            assert_eq!(d.list().unwrap(), m.list().unwrap());
        }
        for name in m.list().unwrap() {
            assert_eq!(read_all(&mut d, &name).unwrap(), m.files[&name]);
        }
    }
}

#[test]
fn synced_data_survives_power_loss_exactly() {
    for seed in 0..50 {
        let mut d = calm(seed);
        let a = durable_file(&mut d, "a", 3, 0xA1);
        let mut b = vec![0u8; 1_000];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        d.write_at("b", 7, &b).unwrap();
        d.truncate("b", 900).unwrap();
        d.sync("b").unwrap();
        d.sync_dir().unwrap();
        let mut expect_b = vec![0u8; 7];
        expect_b.extend_from_slice(&b[..893]);
        let image = d.durable_image();
        d.crash_and_restart();
        assert!(!d.is_crashed());
        assert_eq!(read_all(&mut d, "a").unwrap(), a);
        assert_eq!(read_all(&mut d, "b").unwrap(), expect_b);
        assert_eq!(d.durable_image(), image);
        assert_eq!(d.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
    }
}

#[test]
fn an_unsynced_write_is_kept_dropped_or_torn_by_whole_sectors() {
    let (mut kept, mut dropped, mut torn, mut garbage) = (0, 0, 0, 0);
    for seed in 0..300 {
        let mut d = calm(seed);
        let old = durable_file(&mut d, "f", 6, 0xAA);
        // An unsynced write of sectors 1..5, and an unsynced append of sector 6.
        let new = vec![0xBB; 4 * S];
        d.write_at("f", S as u64, &new).unwrap();
        d.write_at("f", 6 * S as u64, &[0xCC; S]).unwrap();
        assert_eq!(
            d.durable_image()["f"],
            old,
            "durable unchanged before a sync"
        );
        d.power_loss();
        assert!(d.is_crashed());
        d.restart();
        let got = read_all(&mut d, "f").unwrap();
        assert!(got.len() == 6 * S || got.len() == 7 * S, "{}", got.len());
        if got.len() == 7 * S {
            let last = &got[6 * S..];
            assert!(last == [0xCC; S] || last.iter().filter(|&&b| b == 0xCC).count() < 64);
        }
        assert_eq!(&got[..S], &old[..S], "sector 0 was not written");
        assert_eq!(
            &got[5 * S..6 * S],
            &old[5 * S..6 * S],
            "sector 5 was not written"
        );
        let mut fates = Vec::new();
        for s in 1..5 {
            let sector = &got[s * S..(s + 1) * S];
            fates.push(if sector == &old[s * S..(s + 1) * S] {
                'o'
            } else if sector == &new[(s - 1) * S..s * S] {
                'n'
            } else {
                // Garbage fills the whole sector: next to nothing of it is old or new.
                let alike = sector.iter().filter(|&&b| b == 0xAA || b == 0xBB).count();
                assert!(alike < 64, "seed {seed}: sector {s} partly written");
                'g'
            });
        }
        match (
            fates.iter().all(|&f| f == 'n'),
            fates.iter().all(|&f| f == 'o'),
        ) {
            (true, _) => kept += 1,
            (_, true) => dropped += 1,
            _ => torn += 1,
        }
        garbage += fates.contains(&'g') as u32;
        assert_eq!(
            d.durable_image()["f"],
            got,
            "after restart, volatile = durable"
        );
    }
    assert!(
        kept > 60 && dropped > 30 && torn > 20,
        "{kept} {dropped} {torn}"
    );
    assert!(garbage > 5, "{garbage}");
}

#[test]
fn an_unsynced_truncate_is_kept_or_dropped() {
    let (mut kept, mut dropped) = (0, 0);
    for seed in 0..100 {
        let mut d = calm(seed);
        let old = durable_file(&mut d, "f", 2, 7);
        d.truncate("f", 100).unwrap();
        d.crash_and_restart();
        let got = read_all(&mut d, "f").unwrap();
        if got == old {
            dropped += 1;
        } else {
            assert_eq!(got, old[..100]);
            kept += 1;
        }
    }
    assert!(kept > 20 && dropped > 20, "{kept} {dropped}");
}

#[test]
fn a_file_named_but_not_dir_synced_may_vanish_and_names_keep_their_order() {
    let (mut neither, mut a_only, mut both) = (0, 0, 0);
    for seed in 0..200 {
        let mut d = calm(seed);
        durable_file(&mut d, "base", 1, 1);
        // Data synced, names not: `a` is created before `b`.
        d.write_at("a", 0, b"alpha").unwrap();
        d.sync("a").unwrap();
        d.write_at("b", 0, b"beta").unwrap();
        d.sync("b").unwrap();
        d.crash_and_restart();
        let names = d.list().unwrap();
        assert!(names.contains(&"base".to_string()));
        match (names.contains(&"a".into()), names.contains(&"b".into())) {
            (false, false) => neither += 1,
            (true, false) => a_only += 1,
            (true, true) => both += 1,
            (false, true) => panic!("seed {seed}: `b` without `a`: not a prefix"),
        }
        if names.contains(&"a".into()) {
            assert_eq!(read_all(&mut d, "a").unwrap(), b"alpha");
        }
        if names.contains(&"b".into()) {
            assert_eq!(read_all(&mut d, "b").unwrap(), b"beta");
        }
    }
    assert!(
        neither > 20 && a_only > 20 && both > 20,
        "{neither} {a_only} {both}"
    );
}

#[test]
fn rename_replaces_and_is_durable_only_after_sync_dir() {
    let (mut undone, mut done) = (0, 0);
    for seed in 0..100 {
        let mut d = calm(seed);
        let old = durable_file(&mut d, "current", 1, 0x01);
        let new = durable_file(&mut d, "next", 2, 0x02);
        d.rename("next", "current").unwrap();
        assert_eq!(d.list().unwrap(), vec!["current".to_string()]);
        assert_eq!(read_all(&mut d, "current").unwrap(), new);
        assert_eq!(
            d.read_at("next", 0, &mut [0; 4]).unwrap_err().kind,
            StorageErrorKind::NotFound
        );
        d.rename("current", "current").unwrap();
        d.crash_and_restart();
        let names = d.list().unwrap();
        let current = read_all(&mut d, "current").unwrap();
        if names.len() == 2 {
            // Undone: both files as they were.
            assert_eq!(current, old);
            assert_eq!(read_all(&mut d, "next").unwrap(), new);
            undone += 1;
        } else {
            assert_eq!(names, vec!["current".to_string()]);
            assert_eq!(current, new);
            done += 1;
        }
        // After sync_dir the rename always holds.
        let mut d = calm(seed);
        durable_file(&mut d, "current", 1, 0x01);
        let new = durable_file(&mut d, "next", 2, 0x02);
        d.rename("next", "current").unwrap();
        d.sync_dir().unwrap();
        d.crash_and_restart();
        assert_eq!(d.list().unwrap(), vec!["current".to_string()]);
        assert_eq!(read_all(&mut d, "current").unwrap(), new);
    }
    assert!(undone > 20 && done > 20, "{undone} {done}");
}

#[test]
fn a_remove_not_dir_synced_may_be_undone() {
    let (mut back, mut gone) = (0, 0);
    for seed in 0..100 {
        let mut d = calm(seed);
        let data = durable_file(&mut d, "f", 1, 5);
        d.remove("f").unwrap();
        assert!(d.list().unwrap().is_empty());
        d.crash_and_restart();
        match read_all(&mut d, "f") {
            Some(got) => {
                assert_eq!(got, data);
                back += 1;
            }
            None => gone += 1,
        }
    }
    assert!(back > 20 && gone > 20, "{back} {gone}");
}

#[test]
fn crash_at_op_fails_exactly_that_op_and_everything_until_restart() {
    for seed in 0..30 {
        let mut d = calm(seed);
        durable_file(&mut d, "a", 1, 9);
        assert_eq!(d.ops(), 3);
        d.crash_at_op(5);
        d.write_at("a", 0, b"x").unwrap(); // op 3
        let mut buf = [0u8; 8];
        d.read_at("a", 0, &mut buf).unwrap(); // reads are not ops
        d.sync("a").unwrap(); // op 4
        let e = d.rename("a", "b").unwrap_err(); // op 5
        assert_eq!(e.kind, StorageErrorKind::Crashed);
        assert_eq!((e.op, e.file.as_str()), ("rename", "a"));
        assert!(d.is_crashed());
        assert_eq!(d.ops(), 6);
        for e in [
            d.write_at("a", 0, b"y").unwrap_err(),
            d.sync("a").unwrap_err(),
            d.sync_dir().unwrap_err(),
            d.read_at("a", 0, &mut buf).unwrap_err(),
            d.size("a").unwrap_err(),
            d.list().unwrap_err(),
            d.read_only().read_at("a", 0, &mut buf).unwrap_err(),
        ] {
            assert_eq!(e.kind, StorageErrorKind::Crashed, "{e}");
        }
        assert_eq!(d.ops(), 6, "no op counted while the power is off");
        d.restart();
        // The rename never happened, so no prefix can hold it.
        assert_eq!(d.list().unwrap(), vec!["a".to_string()]);
        assert_eq!(read_all(&mut d, "a").unwrap()[0], b'x');
        d.write_at("a", 0, b"z").unwrap();
        assert_eq!(d.ops(), 7);
        assert_eq!(d.stats().crashes, 1);
    }
}

#[test]
fn a_crash_fault_loses_power_at_the_call() {
    let mut d = SimDisk::new(
        3,
        DiskFaults {
            crash_ppm: PPM,
            ..DiskFaults::default()
        },
    );
    let e = d.write_at("a", 0, b"x").unwrap_err();
    assert_eq!(e.kind, StorageErrorKind::Crashed);
    assert!(d.is_crashed());
    d.restart();
    assert!(d.list().unwrap().is_empty(), "the write did not happen");
    d.set_faults(DiskFaults::default());
    d.write_at("a", 0, b"x").unwrap();
    assert_eq!(d.stats().crashes, 1);
}

#[test]
fn a_failed_sync_keeps_or_drops_each_pending_write_in_the_durable_image() {
    let mut outcomes = BTreeSet::new();
    for seed in 0..100 {
        let mut d = calm(seed);
        let old = durable_file(&mut d, "f", 2, 0xAA);
        d.write_at("f", 0, &[0x11; S]).unwrap();
        d.write_at("f", S as u64, &[0x22; S]).unwrap();
        d.set_faults(DiskFaults {
            sync_error_ppm: PPM,
            ..DiskFaults::default()
        });
        let e = d.sync("f").unwrap_err();
        assert_eq!((&e.kind, e.op), (&StorageErrorKind::Io, "sync"));
        assert!(e.reason.contains("simulated EIO"), "{e}");
        // Reads still see both writes.
        let seen = read_all(&mut d, "f").unwrap();
        assert_eq!(&seen[..S], &[0x11; S]);
        assert_eq!(&seen[S..], &[0x22; S]);
        let durable = d.durable_image()["f"].clone();
        let first = durable[..S] == [0x11; S];
        let second = durable[S..] == [0x22; S];
        assert!(first || durable[..S] == old[..S]);
        assert!(second || durable[S..] == old[S..]);
        outcomes.insert((first, second));
        // The pages were marked clean: a power loss now keeps the durable image, not the view.
        d.set_faults(DiskFaults::default());
        d.crash_and_restart();
        assert_eq!(read_all(&mut d, "f").unwrap(), durable);
        assert_eq!(d.stats().sync_errors, 1);
    }
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
}

#[test]
fn a_bitflip_changes_exactly_one_bit_of_durable_data_and_is_recorded() {
    for seed in 0..50 {
        let mut d = calm(seed);
        durable_file(&mut d, "empty", 0, 0);
        durable_file(&mut d, "f", 4, 0x5A);
        let before = d.durable_image();
        d.set_faults(DiskFaults {
            bitflip_ppm: PPM,
            ..DiskFaults::default()
        });
        d.sync("f").unwrap();
        let after = d.durable_image();
        assert_eq!(after["empty"], Vec::<u8>::new());
        let diff: Vec<(usize, u8)> = before["f"]
            .iter()
            .zip(&after["f"])
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i, a ^ b))
            .collect();
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].1.count_ones(), 1);
        assert_eq!(
            d.corruptions(),
            vec![Corruption {
                kind: "bitflip",
                file: "f".into(),
                offset: diff[0].0 as u64,
                len: 1
            }]
        );
        // It stays flipped: reads see it, and a power loss keeps it.
        assert_eq!(read_all(&mut d, "f").unwrap(), after["f"]);
        d.set_faults(DiskFaults::default());
        d.crash_and_restart();
        assert_eq!(read_all(&mut d, "f").unwrap(), after["f"]);
        assert_eq!(d.stats().bitflips, 1);
    }
}

#[test]
fn flip_bit_flips_at_rest_and_records_it() {
    let mut d = calm(1);
    durable_file(&mut d, "f", 1, 0);
    d.flip_bit("f", 3, 2);
    assert_eq!(d.durable_image()["f"][3], 4);
    assert_eq!(read_all(&mut d, "f").unwrap()[3], 4);
    d.flip_bit("f", 10_000, 0);
    d.flip_bit("nope", 0, 0);
    assert_eq!(d.corruptions().len(), 1);
    assert_eq!(d.corruptions()[0].offset, 3);
}

#[test]
fn a_misdirected_write_lands_whole_sectors_away_and_is_recorded() {
    let mut deltas = BTreeSet::new();
    for seed in 0..100 {
        let mut d = calm(seed);
        let zeros = durable_file(&mut d, "f", 32, 0);
        d.set_faults(DiskFaults {
            misdirect_ppm: PPM,
            ..DiskFaults::default()
        });
        let aimed = 12 * S as u64;
        d.write_at("f", aimed, &[0xCC; 100]).unwrap();
        let got = read_all(&mut d, "f").unwrap();
        let landed = got.iter().position(|&b| b == 0xCC).unwrap() as u64;
        assert_eq!(got.iter().filter(|&&b| b == 0xCC).count(), 100);
        assert_eq!(got[aimed as usize..aimed as usize + 100], zeros[..100]);
        let delta = landed as i64 - aimed as i64;
        assert!(
            delta != 0 && delta % 512 == 0 && delta.abs() <= 8 * 512,
            "{delta}"
        );
        deltas.insert(delta);
        let c = &d.corruptions()[0];
        assert_eq!((c.kind, c.file.as_str()), ("misdirect", "f"));
        assert_eq!(c.offset, aimed.min(landed));
        assert_eq!(c.offset + c.len, aimed.max(landed) + 100);
        // Near the start of the file it can only go forwards.
        d.write_at("f", 0, &[0xDD; 10]).unwrap();
        let got = read_all(&mut d, "f").unwrap();
        assert_eq!(got[..10], [0; 10]);
        assert_eq!(d.stats().misdirects, 2);
    }
    assert!(deltas.len() > 10, "{deltas:?}");
}

#[test]
fn a_failed_write_may_have_reached_some_sectors() {
    let mut partial = 0;
    for seed in 0..50 {
        let mut d = calm(seed);
        let old = durable_file(&mut d, "f", 8, 0xAA);
        d.set_faults(DiskFaults {
            write_error_ppm: PPM,
            ..DiskFaults::default()
        });
        let e = d.write_at("f", 0, &[0xBB; 8 * S]).unwrap_err();
        assert_eq!((&e.kind, e.op), (&StorageErrorKind::Io, "write"));
        let got = read_all(&mut d, "f").unwrap();
        let mut reached = 0;
        for s in 0..8 {
            let sector = &got[s * S..(s + 1) * S];
            assert!(sector == &old[s * S..(s + 1) * S] || sector == [0xBB; S]);
            reached += (sector == [0xBB; S]) as u32;
        }
        partial += (reached > 0 && reached < 8) as u32;
        assert_eq!(d.stats().write_errors, 1);
    }
    assert!(partial > 40, "{partial}");
}

#[test]
fn read_errors_are_transient() {
    let mut d = calm(1);
    durable_file(&mut d, "f", 1, 1);
    d.set_faults(DiskFaults {
        read_error_ppm: PPM,
        ..DiskFaults::default()
    });
    let mut buf = [0u8; 16];
    let e = d.read_at("f", 0, &mut buf).unwrap_err();
    assert_eq!((&e.kind, e.op), (&StorageErrorKind::Io, "read"));
    // A read-only handle never injects faults.
    assert_eq!(d.read_only().read_at("f", 0, &mut buf).unwrap(), 16);
    d.set_faults(DiskFaults {
        read_error_ppm: PPM / 2,
        ..DiskFaults::default()
    });
    let oks = (0..100)
        .filter(|_| d.read_at("f", 0, &mut buf).is_ok())
        .count();
    assert!(oks > 20 && oks < 80, "{oks}");
    assert_eq!(d.stats().read_errors, 101 - oks as u64);
}

#[test]
fn a_read_only_handle_refuses_changes_and_draws_no_faults() {
    let mut d = SimDisk::new(
        1,
        DiskFaults {
            read_error_ppm: PPM,
            ..DiskFaults::default()
        },
    );
    durable_file(&mut d, "f", 1, 3);
    let mut ro = d.read_only();
    assert!(Storage::read_only(&ro));
    let ops = d.ops();
    ro.crash_at_op(ops);
    for e in [
        ro.write_at("f", 0, b"x").unwrap_err(),
        ro.write_at("new", 0, b"x").unwrap_err(),
        ro.sync("f").unwrap_err(),
        ro.truncate("f", 0).unwrap_err(),
        ro.rename("f", "g").unwrap_err(),
        ro.remove("f").unwrap_err(),
        ro.sync_dir().unwrap_err(),
    ] {
        assert_eq!(e.kind, StorageErrorKind::ReadOnly, "{e}");
    }
    assert_eq!(d.ops(), ops, "refused calls are not ops");
    assert!(!d.is_crashed(), "nor do they reach an armed crash");
    assert_eq!(read_all(&mut ro, "f").unwrap(), vec![3; S]);
    assert_eq!(ro.list().unwrap(), vec!["f".to_string()]);
    assert_eq!(ro.size("f").unwrap(), S as u64);
    // The handles share one disk.
    d.set_faults(DiskFaults::default());
    // The crash armed through the read-only handle fires at the next writable call.
    let e = d.write_at("f", 0, b"shared").unwrap_err();
    assert_eq!(e.kind, StorageErrorKind::Crashed);
    d.restart();
    d.write_at("f", 0, b"shared").unwrap();
    let mut buf = [0u8; 6];
    ro.read_at("f", 0, &mut buf).unwrap();
    assert_eq!(&buf, b"shared");
}

/// A seeded workload of every kind of call under heavy faults, with power losses.
fn workload(disk_seed: u64, ops_seed: u64) -> (BTreeMap<String, Vec<u8>>, String, Vec<Corruption>) {
    let faults = DiskFaults {
        crash_ppm: 10_000,
        write_error_ppm: 20_000,
        sync_error_ppm: 20_000,
        read_error_ppm: 50_000,
        bitflip_ppm: 20_000,
        misdirect_ppm: 20_000,
    };
    let mut d = SimDisk::new(disk_seed, faults);
    let mut r = ChaCha8Rng::seed_from_u64(ops_seed);
    let names = ["a", "b", "c", "d"];
    for i in 0..2_000 {
        if d.is_crashed() || i % 500 == 499 {
            d.crash_and_restart();
        }
        let f = names[r.random_range(0..4)];
        let off = r.random_range(0..8_000u64);
        let _ = match r.random_range(0..8) {
            0..=2 => d.write_at(f, off, &vec![r.random::<u8>(); r.random_range(1..2_000)]),
            3 => d.sync(f),
            4 => d.sync_dir(),
            5 => d.truncate(f, off),
            6 => d.rename(f, names[r.random_range(0..4)]),
            _ => d.read_at(f, off, &mut [0u8; 100]).map(|_| ()),
        };
    }
    d.crash_and_restart();
    (
        d.durable_image(),
        format!("{:?}", d.stats()),
        d.corruptions(),
    )
}

#[test]
fn the_same_seed_gives_the_same_disk() {
    let first = workload(42, 7);
    assert_eq!(first, workload(42, 7));
    assert!(!first.0.is_empty());
    assert!(!first.2.is_empty(), "the workload injected corruption");
    let stats = &first.1;
    for field in [
        "torn_writes: 0",
        "dropped_writes: 0",
        "crashes: 0",
        "sync_errors: 0",
    ] {
        assert!(!stats.contains(&format!("{field},")), "{stats}");
    }
    assert!((43..48).any(|seed| workload(seed, 7) != first));
}

#[test]
fn huge_offsets_and_lengths_fail_without_allocating() {
    let mut d = calm(1);
    for (off, len) in [
        (u64::MAX, 1),
        (u64::MAX - 3, 8),
        (MAX_FILE_BYTES, 1),
        (1 << 40, 0),
    ] {
        let e = d.write_at("f", off, &vec![1; len]).unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::Io);
        assert!(e.reason.contains("ENOSPC"), "{e}");
        assert_eq!(e.offset, off);
    }
    assert!(
        d.list().unwrap().is_empty(),
        "a refused write creates nothing"
    );
    d.write_at("f", 0, b"x").unwrap();
    assert!(d
        .truncate("f", u64::MAX)
        .unwrap_err()
        .reason
        .contains("ENOSPC"));
    assert_eq!(d.read_at("f", u64::MAX, &mut [0; 8]).unwrap(), 0);
    assert_eq!(d.read_at("f", 1 << 40, &mut []).unwrap(), 0);
    // Misdirection never carries a write past the cap.
    d.set_faults(DiskFaults {
        misdirect_ppm: PPM,
        ..DiskFaults::default()
    });
    d.write_at("f", 0, b"y").unwrap();
    assert_eq!(d.size("f").unwrap() % 512, 1);
    d.flip_bit("f", u64::MAX, 200);
    d.crash_and_restart();
    d.restart();
}

#[test]
fn handles_can_cross_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<SimDisk>();
}

#[test]
fn disk_faults_come_from_the_fault_plan() {
    let plan = FaultPlan::default_faults();
    let f = DiskFaults::from(&plan);
    assert_eq!(
        f,
        DiskFaults {
            crash_ppm: plan.storage_crash_ppm,
            write_error_ppm: plan.storage_write_error_ppm,
            sync_error_ppm: plan.storage_sync_error_ppm,
            read_error_ppm: plan.storage_read_error_ppm,
            bitflip_ppm: plan.storage_bitflip_ppm,
            misdirect_ppm: plan.storage_misdirect_ppm,
        }
    );
    assert_ne!(f, DiskFaults::default());
    assert_eq!(DiskFaults::from(&FaultPlan::none()), DiskFaults::default());
}
