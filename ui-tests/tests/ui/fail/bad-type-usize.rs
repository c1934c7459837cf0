use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "pflash", version = 1)]
struct Pflash {
    wcycle: u8,
    counter: usize,
}

fn main() {}
