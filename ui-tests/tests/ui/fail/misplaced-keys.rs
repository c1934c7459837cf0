use vmstate_runtime::VmState;

// Field keys on the struct and struct keys on a field.
#[derive(VmState, Default)]
#[vmstate(name = "parallel", version = 2, since = 2)]
struct Parallel {
    dataw: u8,
    #[vmstate(version = 2)]
    control: u8,
}

fn main() {}
