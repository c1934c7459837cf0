use vmstate_runtime::VmState;

#[derive(VmState, Default)]
#[vmstate(name = "i8254", version = 3, post_load = pit_post_load)]
struct Pit {
    channels: [u32; 3],
}

// Wrong: post_load also receives the stream's version_id.
fn pit_post_load(s: &mut Pit) -> Result<(), String> {
    s.channels[0] &= 0xffff;
    Ok(())
}

fn main() {}
