//! What the fuzz targets (`fuzz_targets/*.rs`) and the seed generator
//! (`examples/gen_corpus.rs`) share: the machines the streams load into, the
//! options they load with, the round-trip check for bodies, and the struct that
//! uses every attribute of the derive.
//!
//! Every target body is a function here taking the fuzz input; a target file is
//! one `fuzz_target!` line calling it. A body panics only when a promise of the
//! code under test breaks (a round trip that is not identical, a loaded state
//! that cannot be saved); errors on hostile input are the expected outcome.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use vmstate_devices::machine::{Machine, MACHINE_TYPE};
use vmstate_devices::pckbd::{Ps2Keyboard, Ps2Mouse, I8042};
use vmstate_devices::ram::protocol::{
    BlockSpecs, MemSizeOptions, RamDecoder, Record, X86_TARGET_PAGE_SIZE,
};
use vmstate_devices::ram::{RamBlockList, RamBlockSpec, RamSection};
use vmstate_runtime::migration::{run_incoming, StatsHandle};
use vmstate_runtime::savevm::{
    Configuration, LoadOptions, NoCommands, QemuVersion, Registry, StreamLoader,
};
use vmstate_runtime::wire::Reader;
use vmstate_runtime::{from_bytes, to_bytes, VmState};

pub mod all_attrs;
pub mod socket_peer;

/// Pages of guest RAM of the demo machine the stream targets load into (small:
/// a new machine per input).
pub const MACHINE_PAGES: usize = 8;

/// The demo machine and its registry, fresh.
pub fn machine() -> (Machine, Registry) {
    let m = Machine::new(MACHINE_PAGES).expect("machine");
    let reg = m.registry().expect("registry");
    (m, reg)
}

/// The options the demo's destination loads with: QEMU 7.2, the demo's
/// configuration record required.
pub fn load_options() -> LoadOptions {
    LoadOptions::default()
        .with_version(QemuVersion::V7_2)
        .with_configuration(Configuration::new(MACHINE_TYPE))
}

/// Target `stream_memory`: a whole stream loaded in memory into the demo
/// machine's registry (RAM + i8042).
pub fn stream_memory(data: &[u8]) {
    let (_m, mut reg) = machine();
    let mut loader = StreamLoader::new(load_options());
    let _ = loader.load(
        &mut Reader::new(BytesMut::from(data)),
        &mut reg,
        &mut NoCommands,
    );
}

/// How long the destination driver waits for the fuzzing source to connect, for
/// a byte, or for a return-path write: generous for a source that writes
/// everything at once and then hangs up, short enough that a stall is a timeout.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(2);

/// Target `stream_socket`: a whole stream through the real destination driver
/// (`run_incoming`, its return path and command handler) over a unix socket.
/// The source is [`socket_peer::SocketPeer`]: one listener and two long-lived
/// threads for all inputs, one writing the input and closing its sending side,
/// one draining the return path, so neither side can block the other. With the
/// timeouts set, a run that still hangs is a finding.
pub fn stream_socket(data: &[u8]) {
    ignore_sigpipe();
    let peer = socket_peer::SocketPeer::get();
    let incoming = peer.start(data);
    let (_m, mut reg) = machine();
    let opts = load_options()
        .with_accept_timeout(SOCKET_TIMEOUT)
        .with_idle_timeout(SOCKET_TIMEOUT)
        .with_write_timeout(SOCKET_TIMEOUT);
    let _ = run_incoming(incoming, &mut reg, opts, &StatsHandle::default());
    // The driver dropped the connection: the source sees EOF or EPIPE.
    peer.finish();
}

/// Without Rust's `main` (libFuzzer's runs), SIGPIPE is not ignored, and a write
/// to a socket the peer closed would kill the fuzzer instead of returning EPIPE.
fn ignore_sigpipe() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
        // code; it only changes what the kernel does with SIGPIPE, which no other
        // part of this process relies on.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    });
}

/// Loads `data` as a `T` body written at `version`; if it loads, saving it must
/// work, the saved bytes must load, and saving again must give the same bytes.
pub fn body_round_trip<T: VmState + Default>(data: &[u8], version: u32) {
    let Ok(first) = from_bytes::<T>(data, version) else {
        return;
    };
    let name = T::DESCRIPTION.name;
    let saved = to_bytes(&first).unwrap_or_else(|e| panic!("{name}: loaded but not saved: {e}"));
    let current = T::DESCRIPTION.version_id;
    let second = from_bytes::<T>(&saved, current)
        .unwrap_or_else(|e| panic!("{name}: own bytes do not load: {e}"));
    let again = to_bytes(&second).unwrap_or_else(|e| panic!("{name}: reload not saved: {e}"));
    assert_eq!(saved, again, "{name}: save, load, save is not identical");
}

/// The device bodies `device_body` picks from (first input byte, low two bits).
pub const DEVICES: [&str; 3] = ["ps2kbd", "ps2mouse", "pckbd"];

/// Target `device_body`: byte 0 picks the device (bits 0-1, see [`DEVICES`]) and
/// the body version (bit 2: its minimum version instead of its current one);
/// the rest is the body.
pub fn device_body(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    fn one<T: VmState + Default>(body: &[u8], oldest: bool) {
        let d = T::DESCRIPTION;
        let v = if oldest {
            d.minimum_version_id
        } else {
            d.version_id
        };
        body_round_trip::<T>(body, v);
    }
    let oldest = sel & 4 != 0;
    match sel & 3 {
        0 => one::<Ps2Keyboard>(body, oldest),
        1 => one::<Ps2Mouse>(body, oldest),
        _ => one::<I8042>(body, oldest),
    }
}

/// Target `derive_all_attrs`: the body of a struct that uses every attribute
/// key of the derive (see [`all_attrs`]); byte 0 picks the version it was
/// written at (bit 0: 1 instead of the current 2).
pub fn derive_all_attrs(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let version = if sel & 1 != 0 { 1 } else { 2 };
    body_round_trip::<all_attrs::AllAttrs>(body, version);
}

/// QEMU 7.2's `pc` RAMBlocks (32 MiB of RAM as in the fixtures), without and
/// with the virtio-net option ROM: the tables `ram_decoder` checks against.
fn qemu_tables() -> &'static [BlockSpecs; 2] {
    static TABLES: OnceLock<[BlockSpecs; 2]> = OnceLock::new();
    TABLES.get_or_init(|| {
        [false, true].map(|rom| {
            RamBlockList::qemu_pc(32 << 20, rom)
                .expect("qemu pc blocks")
                .specs()
        })
    })
}

/// Target `ram_decoder`: byte 0 picks the table (bit 0: with the virtio-net
/// ROM) and the MEM_SIZE words (bit 1: postcopy host page size 4 KiB, bit 2: 2
/// MiB instead, bit 3: x-ignore-shared GPAs); the rest is RAM records, decoded
/// until the first error.
pub fn ram_decoder(data: &[u8]) {
    let Some((&sel, records)) = data.split_first() else {
        return;
    };
    let table = &qemu_tables()[usize::from(sel & 1)];
    let opts = MemSizeOptions {
        postcopy_host_page_size: match (sel & 2 != 0, sel & 4 != 0) {
            (_, true) => Some(2 << 20),
            (true, false) => Some(X86_TARGET_PAGE_SIZE),
            (false, false) => None,
        },
        ignore_shared: sel & 8 != 0,
    };
    let mut dec = RamDecoder::new(X86_TARGET_PAGE_SIZE, opts);
    let mut r = Reader::new(records);
    while r.remaining() > 0 {
        match dec.next_record(&mut r, table) {
            Ok(Record::Page { data, .. }) => {
                assert_eq!(data.len() as u64, X86_TARGET_PAGE_SIZE);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// The small block list `ram_section` loads into: RAM, a ROM and a resizeable
/// ROM (one page used, room for four).
pub fn small_blocks() -> Vec<RamBlockSpec> {
    vec![
        RamBlockSpec::ram("pc.ram", 16 * X86_TARGET_PAGE_SIZE),
        RamBlockSpec::rom("pc.bios", 2 * X86_TARGET_PAGE_SIZE),
        RamBlockSpec::resizeable_rom(
            "/rom@etc/acpi/tables",
            X86_TARGET_PAGE_SIZE,
            4 * X86_TARGET_PAGE_SIZE,
        ),
    ]
}

/// A registry with only the "ram" section over [`small_blocks`].
pub fn ram_registry() -> Registry {
    let ram = Arc::new(Mutex::new(
        RamBlockList::new(small_blocks()).expect("small blocks"),
    ));
    let mut reg = Registry::new();
    RamSection::new(ram)
        .register(&mut reg)
        .expect("register ram");
    reg
}

/// Target `ram_section`: a whole stream (no configuration record) whose sections
/// go to the "ram" section over [`small_blocks`]: START/PART/END framing around
/// the RAM records, every check of the section's load.
pub fn ram_section(data: &[u8]) {
    let mut reg = ram_registry();
    let mut loader = StreamLoader::new(LoadOptions::default().with_configuration(None));
    let _ = loader.load(
        &mut Reader::new(BytesMut::from(data)),
        &mut reg,
        &mut NoCommands,
    );
}

/// Target `analyze`: the `vmstate analyze` library on a file, both outputs
/// (`-d desc` and `-d state`, with and without the memory dump; byte 0 bit 0
/// picks `dump_memory`, the file is the whole input).
pub fn analyze(data: &[u8]) {
    use vmstate_examples::analyze::{analyze_desc, analyze_state, AnalyzeOptions};
    let dump_memory = data.first().is_some_and(|b| b & 1 != 0);
    let _ = analyze_desc(data);
    let opts = AnalyzeOptions {
        dump_memory,
        ..AnalyzeOptions::default()
    };
    let _ = analyze_state(data, &opts);
}

/// Target `return_path`: byte 0 picks the source's QEMU version (bit 0: 10.x
/// instead of 7.2), bit 1 reads as a precopy-only source (page requests
/// refused), bit 2 as a source that asked for no RECV_BITMAP (otherwise it
/// asked for `pc.ram`'s), bit 3 as a source that knows that bitmap's size
/// (1 KiB); the rest is what the destination sent on the return
/// path, read by the source's return-path reader.
pub fn return_path(data: &[u8]) {
    let Some((&sel, rp)) = data.split_first() else {
        return;
    };
    let version = if sel & 1 != 0 {
        QemuVersion::V10
    } else {
        QemuVersion::V7_2
    };
    let postcopy = sel & 2 == 0;
    // Bit 3: the source knows the block's bitmap size (a 32 MiB pc.ram in
    // 4 KiB pages: 8192 bits, 1 KiB), as a RAM handler with
    // `recv_bitmap_size` does; otherwise only the general cap applies.
    let size = (sel & 8 != 0).then_some(1024);
    let bitmap_for = (sel & 4 == 0).then_some(("pc.ram", size));
    let _ = vmstate_runtime::migration::read_return_path_sized(
        &mut &rp[..],
        version,
        postcopy,
        bitmap_for,
    );
}

/// Target `xbzrle`: byte 0 bit 0 picks the mode. Decode (bit clear): the rest
/// is an XBZRLE record's data applied to a 4 KiB page of bytes 0..=255 (what
/// `ram::xbzrle::decode` does for the destination; it must fail cleanly or
/// stay inside the page). Round trip (bit set): the rest is an old and a new
/// page (each half, zero-padded to 4 KiB); the encoder's delta applied to the
/// old page must give the new one.
pub fn xbzrle(data: &[u8]) {
    use vmstate_devices::ram::xbzrle::{decode, encode, Encoded};
    const PAGE: usize = 4096;
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut page = [0u8; PAGE];
    if sel & 1 == 0 {
        for (i, b) in page.iter_mut().enumerate() {
            *b = i as u8;
        }
        if let Ok(n) = decode(rest, &mut page) {
            assert!(n <= PAGE, "decoded {n} bytes into a {PAGE}-byte page");
        }
        return;
    }
    let (a, b) = rest.split_at(rest.len() / 2);
    let (mut old, mut new) = ([0u8; PAGE], [0u8; PAGE]);
    old[..a.len().min(PAGE)].copy_from_slice(&a[..a.len().min(PAGE)]);
    new[..b.len().min(PAGE)].copy_from_slice(&b[..b.len().min(PAGE)]);
    let mut out = [0u8; PAGE];
    match encode(&old, &new, &mut out) {
        Encoded::Unchanged => assert_eq!(old, new, "unchanged but the pages differ"),
        Encoded::Overflow => {}
        Encoded::Delta(len) => {
            decode(&out[..len], &mut old).expect("the encoder's own delta decodes");
            assert_eq!(
                old, new,
                "delta applied to the old page is not the new page"
            );
        }
    }
}

/// Guest memory for the virtio targets: 32 MiB at GPA 0 (the fixtures' rings
/// live there), mapped once and shared (loading does not write it).
fn virtio_mem() -> vmstate_devices::virtio::GuestMem {
    use vm_memory::GuestAddress;
    static MEM: OnceLock<vmstate_devices::virtio::GuestMem> = OnceLock::new();
    MEM.get_or_init(|| {
        vmstate_devices::virtio::GuestMem::from_ranges(&[(GuestAddress(0), 32 << 20)])
            .expect("32 MiB of guest memory")
    })
    .clone()
}

/// A 1 MiB disk (the fixtures' size) for virtio-blk, made once per process.
fn virtio_disk() -> std::fs::File {
    static DISK: OnceLock<std::fs::File> = OnceLock::new();
    DISK.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("vmstate-fuzz-disk-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("fuzz disk");
        let _ = std::fs::remove_file(&path);
        f.set_len(1 << 20).expect("size fuzz disk");
        f
    })
    .try_clone()
    .expect("dup fuzz disk")
}

/// Which virtio section body a selector byte picks: (name, version).
pub fn virtio_kind(sel: u8) -> (&'static str, u32) {
    match sel % 3 {
        0 => ("virtio-blk", 2),
        1 => ("virtio-net", 11),
        _ => ("virtio-rng", 1),
    }
}

/// Loads `body` into a freshly realized device of `kind` and saves it again:
/// `None` when the body does not load.
pub fn virtio_load_save(kind: &str, body: &[u8]) -> Option<Vec<u8>> {
    use vmstate_devices::virtio::blk::VirtioBlkSection;
    use vmstate_devices::virtio::net::VirtioNetSection;
    use vmstate_devices::virtio::rng::VirtioRngSection;
    fn run<T: VmState>(mut dev: T, version: u32, body: &[u8]) -> Option<Vec<u8>> {
        dev.load(&mut Reader::new(body), version).ok()?;
        Some(to_bytes(&dev).expect("a loaded virtio device saves"))
    }
    let mem = virtio_mem();
    match kind {
        "virtio-blk" => run(
            VirtioBlkSection::new(virtio_disk(), "vmstate-fuzz", mem).expect("virtio-blk"),
            2,
            body,
        ),
        "virtio-net" => run(
            VirtioNetSection::new([0x52, 0x54, 0, 0x12, 0x34, 0x56], mem),
            11,
            body,
        ),
        _ => run(
            VirtioRngSection::new(std::fs::File::open("/dev/zero").expect("/dev/zero"), mem),
            1,
            body,
        ),
    }
}

/// The body a freshly realized virtio-rng-pci saves (a seed).
pub fn virtio_fresh_rng() -> Vec<u8> {
    use vmstate_devices::virtio::rng::VirtioRngSection;
    let dev = VirtioRngSection::new(
        std::fs::File::open("/dev/zero").expect("/dev/zero"),
        virtio_mem(),
    );
    to_bytes(&dev).expect("a fresh virtio-rng saves")
}

/// Target `virtio_body`: byte 0 picks virtio-blk (v2), virtio-net (v11) or
/// virtio-rng (v1); the rest is the section body as QEMU's PCI transport
/// writes it. Hostile bodies must fail cleanly; a body that loads must save,
/// and that save must load into a fresh device and save to the same bytes.
pub fn virtio_body(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let (kind, _) = virtio_kind(sel);
    let Some(first) = virtio_load_save(kind, body) else {
        return;
    };
    let second = virtio_load_save(kind, &first).expect("our own save of a loaded body loads");
    assert_eq!(
        first, second,
        "{kind}: load, save, load, save is not stable"
    );
}
