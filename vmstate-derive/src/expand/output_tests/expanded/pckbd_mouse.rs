// Expansion of the `pckbd_mouse` case in vmstate-derive/src/expand/output_tests/mod.rs
// (12 fields or variants). Regenerate: VMSTATE_EXPAND_OVERWRITE=1 cargo test -p vmstate-derive output_tests

const _: () = {
    use ::vmstate_runtime::__private as __vmstate;
    #[automatically_derived]
    impl __vmstate::VmState for Ps2Mouse {
        const DESCRIPTION: &'static __vmstate::VmStateDescription = &__vmstate::VmStateDescription {
            name: "ps2mouse",
            version_id: 2u32,
            minimum_version_id: 2u32,
            priority: __vmstate::MigrationPriority::Default,
            fields: &[
                __vmstate::FieldDescription::of_type(
                    "parent_obj",
                    <Ps2Common as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_status",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_resolution",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_sample_rate",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_wrap",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_type",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_detect_state",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_dx",
                    <i32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_dy",
                    <i32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_dz",
                    <i32 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::of_type(
                    "mouse_buttons",
                    <u8 as __vmstate::VmStateField>::FIELD_TYPE,
                ),
                __vmstate::FieldDescription::new(
                    "mouse_dw",
                    __vmstate::SKIPPED_TYPE,
                    __vmstate::FieldLayout::Skipped,
                ),
            ],
            subsections: &[],
            hooks: __vmstate::Hooks {
                pre_save: false,
                post_save: false,
                pre_load: false,
                post_load: true,
            },
        };
        #[inline]
        fn save_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <Ps2Common as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            #[allow(unused)]
            const __VERSION: __vmstate::u32 = 2u32;
            let __desc = <Self as __vmstate::VmState>::DESCRIPTION;
            __vmstate::begin_vmsd(__sink, __desc);
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                __vmstate::save_value::<
                    Ps2Common,
                    __B,
                    __S,
                >(&self.parent_obj, __w, __sink, __desc, 0usize)?;
                if !__vmstate::is_recording(__sink)
                    && __w
                        .has_room(
                            0 + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE
                                + <i32 as __vmstate::PlainField>::WIRE_SIZE
                                + <i32 as __vmstate::PlainField>::WIRE_SIZE
                                + <i32 as __vmstate::PlainField>::WIRE_SIZE
                                + <u8 as __vmstate::PlainField>::WIRE_SIZE,
                        )
                {
                    let __buf = __w.get_mut();
                    <u8 as __vmstate::PlainField>::put_plain(&self.mouse_status, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(
                        &self.mouse_resolution,
                        __buf,
                    );
                    <u8 as __vmstate::PlainField>::put_plain(
                        &self.mouse_sample_rate,
                        __buf,
                    );
                    <u8 as __vmstate::PlainField>::put_plain(&self.mouse_wrap, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.mouse_type, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(
                        &self.mouse_detect_state,
                        __buf,
                    );
                    <i32 as __vmstate::PlainField>::put_plain(&self.mouse_dx, __buf);
                    <i32 as __vmstate::PlainField>::put_plain(&self.mouse_dy, __buf);
                    <i32 as __vmstate::PlainField>::put_plain(&self.mouse_dz, __buf);
                    <u8 as __vmstate::PlainField>::put_plain(&self.mouse_buttons, __buf);
                } else {
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_status, __w, __sink, __desc, 1usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_resolution, __w, __sink, __desc, 2usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_sample_rate, __w, __sink, __desc, 3usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_wrap, __w, __sink, __desc, 4usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_type, __w, __sink, __desc, 5usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_detect_state, __w, __sink, __desc, 6usize)?;
                    __vmstate::save_value::<
                        i32,
                        __B,
                        __S,
                    >(&self.mouse_dx, __w, __sink, __desc, 7usize)?;
                    __vmstate::save_value::<
                        i32,
                        __B,
                        __S,
                    >(&self.mouse_dy, __w, __sink, __desc, 8usize)?;
                    __vmstate::save_value::<
                        i32,
                        __B,
                        __S,
                    >(&self.mouse_dz, __w, __sink, __desc, 9usize)?;
                    __vmstate::save_value::<
                        u8,
                        __B,
                        __S,
                    >(&self.mouse_buttons, __w, __sink, __desc, 10usize)?;
                }
                __vmstate::Result::Ok(())
            })();
            __vmstate::end_vmsd(__sink);
            __result.map_err(|__e| __e.in_vmsd("ps2mouse"))
        }
        #[inline]
        fn load<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
            __version: __vmstate::u32,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            let _ = <Ps2Common as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let __result: __vmstate::Result<(), __vmstate::Error> = (|| {
                <Self as __vmstate::VmState>::DESCRIPTION
                    .check_version(__version)
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::load_value::<
                    Ps2Common,
                    __B,
                >(&mut self.parent_obj, __r, "parent_obj")?;
                if !__r
                    .consume_contiguous_if(
                        0 + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE
                            + <i32 as __vmstate::PlainField>::WIRE_SIZE
                            + <i32 as __vmstate::PlainField>::WIRE_SIZE
                            + <i32 as __vmstate::PlainField>::WIRE_SIZE
                            + <u8 as __vmstate::PlainField>::WIRE_SIZE,
                        |__b| {
                            let mut __run = __vmstate::PlainRun::new(__b);
                            __run.decode::<u8>(&mut self.mouse_status);
                            __run.decode::<u8>(&mut self.mouse_resolution);
                            __run.decode::<u8>(&mut self.mouse_sample_rate);
                            __run.decode::<u8>(&mut self.mouse_wrap);
                            __run.decode::<u8>(&mut self.mouse_type);
                            __run.decode::<u8>(&mut self.mouse_detect_state);
                            __run.decode::<i32>(&mut self.mouse_dx);
                            __run.decode::<i32>(&mut self.mouse_dy);
                            __run.decode::<i32>(&mut self.mouse_dz);
                            __run.decode::<u8>(&mut self.mouse_buttons);
                            __run.ok()
                        },
                    )
                {
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_status, __r, "mouse_status")?;
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_resolution, __r, "mouse_resolution")?;
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_sample_rate, __r, "mouse_sample_rate")?;
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_wrap, __r, "mouse_wrap")?;
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_type, __r, "mouse_type")?;
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_detect_state, __r, "mouse_detect_state")?;
                    __vmstate::load_value::<
                        i32,
                        __B,
                    >(&mut self.mouse_dx, __r, "mouse_dx")?;
                    __vmstate::load_value::<
                        i32,
                        __B,
                    >(&mut self.mouse_dy, __r, "mouse_dy")?;
                    __vmstate::load_value::<
                        i32,
                        __B,
                    >(&mut self.mouse_dz, __r, "mouse_dz")?;
                    __vmstate::load_value::<
                        u8,
                        __B,
                    >(&mut self.mouse_buttons, __r, "mouse_buttons")?;
                }
                __vmstate::no_subsections("ps2mouse", __r)?;
                let __hook: fn(&mut Self, __vmstate::u32) -> __vmstate::Result<(), _> = Self::post_load;
                __vmstate::hook("post_load", __hook(self, __version))
                    .map_err(|__e| __e.with_offset(__r.position()))?;
                __vmstate::Result::Ok(())
            })();
            __result.map_err(|__e| __e.in_vmsd("ps2mouse"))
        }
    }
    /// As a field of another struct: QEMU's VMSTATE_STRUCT (body inline, loaded
    /// at this type's own current version).
    #[automatically_derived]
    impl __vmstate::VmStateField for Ps2Mouse {
        const FIELD_TYPE: __vmstate::FieldType = __vmstate::struct_type(
            <Self as __vmstate::VmState>::DESCRIPTION,
        );
        #[inline]
        fn save_field<__B: __vmstate::BufMut>(
            &self,
            __w: &mut __vmstate::Writer<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::save_struct(self, __w)
        }
        #[inline]
        fn save_field_with<
            __B: __vmstate::BufMut,
            __S: __vmstate::DescribeSink + ?__vmstate::Sized,
        >(
            &self,
            __w: &mut __vmstate::Writer<__B>,
            __sink: &mut __S,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            <Self as __vmstate::VmState>::save_with(self, __w, __sink)
        }
        #[inline]
        fn load_field<__B: __vmstate::Buf>(
            &mut self,
            __r: &mut __vmstate::Reader<__B>,
        ) -> __vmstate::Result<(), __vmstate::Error> {
            __vmstate::load_struct(self, __r)
        }
    }
    #[automatically_derived]
    impl Ps2Mouse {
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        const fn __vmstate_static_checks() {
            let _ = <Ps2Common as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <i32 as __vmstate::VmStateField>::FIELD_TYPE;
            let _ = <u8 as __vmstate::VmStateField>::FIELD_TYPE;
        }
    }
};
