use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "vga", version = 2, post_save = vga_post_save)]
struct Vga {
    latch: u32,
    sr_index: u8,
}

// Wrong: a hook returns Result<(), E>, not bool.
fn vga_post_save(_s: &Vga) -> bool {
    true
}

fn main() {}
