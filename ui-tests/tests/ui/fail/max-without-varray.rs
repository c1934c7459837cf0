use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "pit", version = 1)]
struct Pit {
    #[vmstate(max = 3)]
    count: u32,
}

fn main() {}
