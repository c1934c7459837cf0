use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "acpi", version = 1)]
struct Acpi {
    n: u8,
    #[vmstate(varray(len = n), max = 4, timer)]
    timers: Vec<u64>,
}

fn main() {}
