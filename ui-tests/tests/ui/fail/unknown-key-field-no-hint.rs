use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "lsi", version = 1)]
struct Lsi {
    // `endian` is not a vmstate key: all of VMState is big-endian.
    #[vmstate(endian = "little")]
    dsp: u32,
}

fn main() {}
