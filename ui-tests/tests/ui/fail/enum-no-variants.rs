use vmstate_runtime::VmState;

#[derive(VmState)]
#[repr(u8)]
enum Never {}

fn main() {}
