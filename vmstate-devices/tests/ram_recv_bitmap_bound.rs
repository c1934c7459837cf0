//! A hostile destination in postcopy recovery: the RECV_BITMAP it sends back
//! is bounded by the block's own bitmap size on the source
//! (`PostcopyRam::recv_bitmap_size`), not by the size it claims. A claim of
//! another size is refused before any of the blob is read (a typed
//! `ReturnPathError::BitmapSizeMismatch`, QEMU's "bitmap size mismatch"),
//! the reader holds no more than the real bitmap (counting allocator), and the
//! source stays postcopy-paused, so a recovery to the real destination still
//! completes with every page.

// The runtime's option and parameter types are set field by field on their
// default (they are to become #[non_exhaustive], which forbids the literal).
#![allow(clippy::field_reassign_with_default)]

#[path = "../../vmstate-runtime/tests/common/alloc.rs"]
mod alloc;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use vmstate_devices::ram::protocol::X86_TARGET_PAGE_SIZE as PS;
use vmstate_devices::ram::{
    RamBlockList, RamBlockSpec, RamSection, RamSectionConfig, VmMemoryDirtyLog,
};
use vmstate_runtime::error::{RecoveryError, ReturnPathError};
use vmstate_runtime::migration::{
    read_return_path_sized, run_incoming_with, start_migration, Incoming, IncomingHooks,
    MigrationCapabilities, MigrationConfig, MigrationParameters, MigrationStatus, MigrationUri,
    StatsHandle,
};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, QemuVersion, Registry, RpMessage, SaveVmHandlers,
    RECV_BITMAP_ENDING,
};
use vmstate_runtime::wire::Writer;

mod common;
use common::link::{await_stats, Proxy, StillGuest};
use vmstate_runtime::ErrorKind;

const MACHINE: &str = "pc-i440fx-7.2";
/// pc.ram: 2 MiB, so its received bitmap has 512 bits: 64 bytes.
const RAM_PAGES: u64 = 512;
const BITMAP_BYTES: u64 = RAM_PAGES / 8;
/// Only a guard against a hang.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn shared_ram() -> Arc<Mutex<RamBlockList>> {
    Arc::new(Mutex::new(
        RamBlockList::new(vec![RamBlockSpec::ram("pc.ram", RAM_PAGES * PS)]).unwrap(),
    ))
}

/// A RECV_BITMAP frame for pc.ram announcing `size` bytes, then `blob`.
fn recv_bitmap(size: u64, blob: &[u8], ending: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    RpMessage::RecvBitmap("pc.ram".into())
        .write(&mut w)
        .unwrap();
    w.write_u64(size).unwrap();
    w.write_bytes(blob).unwrap();
    if ending {
        w.write_u64(RECV_BITMAP_ENDING).unwrap();
    }
    RpMessage::Shut { error: false }.write(&mut w).unwrap();
    w.into_inner()
}

#[test]
fn the_source_knows_each_blocks_bitmap_size() {
    let mut section = RamSection::new(shared_ram());
    let ram = section.as_postcopy_ram().expect("postcopy RAM");
    assert_eq!(ram.recv_bitmap_size("pc.ram"), Some(BITMAP_BYTES));
    assert_eq!(ram.recv_bitmap_size("pc.bios"), None);
}

#[test]
fn a_claimed_bitmap_size_other_than_the_blocks_is_refused_before_the_blob() {
    // The claimed bytes are all there: without the bound the reader would take
    // (and hold) them all.
    let huge = 64u64 << 20;
    let cases: [(&str, u64, usize); 4] = [
        ("64 MiB (the general cap)", huge, huge as usize),
        ("one word more", BITMAP_BYTES + 8, BITMAP_BYTES as usize + 8),
        ("one word less", BITMAP_BYTES - 8, BITMAP_BYTES as usize - 8),
        ("1 TiB, nothing behind it", 1 << 40, 0),
    ];
    for (what, size, sent) in cases {
        let input = recv_bitmap(size, &vec![0xa5; sent], true);
        let (r, seen) = alloc::measure(|| {
            read_return_path_sized(
                &mut &input[..],
                QemuVersion::V7_2,
                true,
                Some(("pc.ram", Some(BITMAP_BYTES))),
            )
        });
        let e = r.unwrap_err();
        match e.kind() {
            ErrorKind::ReturnPath(ReturnPathError::BitmapSizeMismatch {
                block,
                size: claimed,
                expected,
            }) => {
                assert_eq!(
                    (block.as_str(), *claimed, *expected),
                    ("pc.ram", size, BITMAP_BYTES)
                );
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            format!(
                "return path: received bitmap of block 'pc.ram' claims {size} bytes, \
                 the block's bitmap has {BITMAP_BYTES}"
            ),
            "{what}"
        );
        assert!(
            seen.peak < 16 * 1024 && seen.largest < 16 * 1024,
            "{what}: the reader held {} bytes (largest allocation {})",
            seen.peak,
            seen.largest
        );
    }
    // The right size is read, and costs about the bitmap itself.
    let input = recv_bitmap(BITMAP_BYTES, &[0xff; BITMAP_BYTES as usize], true);
    let (r, seen) = alloc::measure(|| {
        read_return_path_sized(
            &mut &input[..],
            QemuVersion::V7_2,
            true,
            Some(("pc.ram", Some(BITMAP_BYTES))),
        )
    });
    assert!(!r.unwrap(), "SHUT without error after the bitmap");
    assert!(seen.peak < 16 * 1024, "held {}", seen.peak);
    // A wrong end mark after a right size is still refused.
    let input = recv_bitmap(BITMAP_BYTES, &[0xff; BITMAP_BYTES as usize], false);
    let e = read_return_path_sized(
        &mut &input[..],
        QemuVersion::V7_2,
        true,
        Some(("pc.ram", Some(BITMAP_BYTES))),
    )
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ReturnPath(ReturnPathError::BitmapEndMissing)
        ),
        "{e}"
    );
}

/// A destination that answers the recovery's RECV_BITMAP with a claim of
/// `size` bytes and then as many bytes as the source reads, until it hangs up.
fn hostile_destination(size: u64) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(HANG_GUARD)).unwrap();
        s.set_write_timeout(Some(HANG_GUARD)).unwrap();
        // The RECV_BITMAP command: section type, command, length, then the
        // block name (read whole, the first bytes are enough to know).
        let mut cmd = [0u8; 5];
        s.read_exact(&mut cmd).unwrap();
        let mut frame = Writer::new(Vec::new());
        RpMessage::RecvBitmap("pc.ram".into())
            .write(&mut frame)
            .unwrap();
        frame.write_u64(size).unwrap();
        let _ = s.write_all(&frame.into_inner());
        // Then bitmap bytes for as long as the source takes them.
        let chunk = vec![0xffu8; 64 * 1024];
        let mut sent = 0u64;
        while sent < size {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        let mut sink = [0u8; 4096];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    });
    (addr, t)
}

#[test]
fn a_huge_recv_bitmap_fails_the_recovery_attempt_and_the_source_stays_recoverable() {
    let src = shared_ram();
    {
        let ram = src.lock().unwrap();
        for p in 0..RAM_PAGES {
            let page: Vec<u8> = (0..PS).map(|i| (p * 31 + i * 7) as u8 | 1).collect();
            ram.blocks()[0].write(p * PS, &page).unwrap();
        }
    }
    let mut cfg = RamSectionConfig::default();
    cfg.part_budget = PS;
    let section =
        RamSection::with_config(src.clone(), cfg, Box::new(VmMemoryDirtyLog)).with_postcopy();
    let mut src_reg = Registry::new();
    section.register(&mut src_reg).unwrap();

    let dst = shared_ram();
    let dst_section = RamSection::new(dst.clone());
    let incoming = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into())).unwrap();
    let first = Proxy::new(incoming.local_tcp_addr().unwrap());
    let (reconnect_tx, reconnect) = mpsc::channel::<SocketAddr>();
    let (running_tx, running) = mpsc::channel::<()>();
    let dst_thread = thread::spawn(move || {
        let mut reg = Registry::new();
        dst_section.register(&mut reg).unwrap();
        let mut hooks = IncomingHooks::default();
        hooks.on_postcopy_run = Some(Box::new(move || {
            let _ = running_tx.send(());
            Ok(())
        }));
        hooks.on_postcopy_paused = Some(Box::new(move |_err| {
            let inc = Incoming::listen(&MigrationUri::Tcp("127.0.0.1:0".into()))?;
            reconnect_tx.send(inc.local_tcp_addr().unwrap()).unwrap();
            Ok(inc)
        }));
        let mut opts = LoadOptions::default();
        opts.version = QemuVersion::V7_2;
        opts.configuration = Some(Configuration::new(MACHINE));
        run_incoming_with(incoming, &mut reg, opts, &StatsHandle::default(), hooks)
    });

    // A crawling walk (one page per 100 ms window): most of pc.ram is still
    // to come when the link is cut.
    let mut params = MigrationParameters::default();
    params.downtime_limit_ms = 0;
    params.max_bandwidth = 10 * PS;
    params.max_postcopy_bandwidth = 10 * PS;
    let mut caps = MigrationCapabilities::default();
    caps.postcopy_ram = true;
    caps.return_path = true;
    let handle = start_migration(
        MigrationConfig::new(first.uri())
            .with_machine(MACHINE)
            .with_version(QemuVersion::V7_2)
            .with_params(params.clone())
            .with_caps(caps),
        src_reg,
        Box::new(StillGuest),
    )
    .unwrap();
    handle.start_postcopy();
    running
        .recv_timeout(HANG_GUARD)
        .expect("the destination's guest runs in postcopy");
    let stats = handle.stats();
    first.cut();
    let real = reconnect
        .recv_timeout(HANG_GUARD)
        .expect("the destination listens again");
    await_stats(&stats, "postcopy-paused", HANG_GUARD, |s| {
        s.status == MigrationStatus::PostcopyPaused
    });

    // The recovery goes to a destination claiming a 1 TiB bitmap for pc.ram.
    let (hostile, hostile_thread) = hostile_destination(1 << 40);
    handle
        .resume(MigrationUri::Tcp(hostile.to_string()))
        .unwrap();
    let expected = format!(
        "waiting for the received bitmap: return path: received bitmap of block 'pc.ram' \
         claims {} bytes, the block's bitmap has {BITMAP_BYTES}",
        1u64 << 40
    );
    let s = await_stats(&stats, "paused again with the reason", HANG_GUARD, |s| {
        s.status == MigrationStatus::PostcopyPaused && s.error.as_deref() == Some(&*expected)
    });
    assert!(s.error.is_some());
    let cause = handle.paused_error().expect("the reason it is paused");
    assert!(
        matches!(
            cause.kind(),
            ErrorKind::PostcopyRecovery(RecoveryError::Wait {
                cause: ReturnPathError::BitmapSizeMismatch { .. },
                ..
            })
        ),
        "{cause}"
    );
    hostile_thread.join().unwrap();

    // Still recoverable: the real destination takes over and nothing is lost.
    handle.resume(MigrationUri::Tcp(real.to_string())).unwrap();
    await_stats(&stats, "postcopy-active after recovery", HANG_GUARD, |s| {
        s.status == MigrationStatus::PostcopyActive
    });
    let mut fast = params;
    fast.max_postcopy_bandwidth = 0;
    fast.max_bandwidth = 0;
    handle.set_parameters(fast).unwrap();
    let (_, result) = handle.wait();
    result.unwrap();
    dst_thread.join().unwrap().unwrap();
    let (src, dst) = (src.lock().unwrap(), dst.lock().unwrap());
    let mut a = vec![0u8; PS as usize];
    let mut b = vec![0u8; PS as usize];
    for p in 0..RAM_PAGES {
        src.blocks()[0].read(p * PS, &mut a).unwrap();
        dst.blocks()[0].read(p * PS, &mut b).unwrap();
        assert!(a == b, "page {p} differs");
    }
}
