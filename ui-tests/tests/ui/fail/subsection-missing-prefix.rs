use vmstate_runtime::VmState;

// Should be named "fdc/media_rate" or similar: QEMU only recognises
// subsections that carry the parent's name as a prefix.
#[derive(VmState, Default)]
#[vmstate(name = "media_rate")]
struct MediaRate {
    media_rate: u8,
}

#[derive(VmState, Default)]
#[vmstate(name = "fdc", version = 2)]
struct Fdc {
    dor: u8,
    #[vmstate(subsection)]
    rate: MediaRate,
}

fn main() {}
