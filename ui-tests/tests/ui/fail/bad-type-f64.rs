use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "audio", version = 1)]
struct Audio {
    volume: f64,
}

fn main() {}
