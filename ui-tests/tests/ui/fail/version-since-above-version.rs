use vmstate_runtime::VmState;

// A field was added with `since = 3`, but the container's version was not bumped.
#[derive(VmState, Default)]
#[vmstate(name = "hpet", version = 2, minimum_version = 1)]
struct Hpet {
    config: u64,
    isr: u64,
    #[vmstate(since = 3)]
    hpet_offset: u64,
}

fn main() {}
