//! `wasi:filesystem`, counted: past [`MAX_OPEN_FILES`] open descriptors an
//! instance's next `open-at` (or a stream that holds a file open) is refused
//! (`insufficient-memory`, the nearest code the interface has) and the call
//! fails with the `open handles` limit. What a plugin may open at all is the
//! WASI context's preopens, from its directory grants.

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

use crate::descriptors::Held;
use crate::incident::Incidents;

/// Files and directories one instance may hold open at once (through
/// `open-at`, and the streams that keep a file open after its descriptor is
/// dropped). Each holds a descriptor of the host process's own: with
/// sockets capped too, one instance holds a few hundred at most, far below
/// the process's limit, which the CLI raises to the hard limit at start.
pub const MAX_OPEN_FILES: usize = 256;

/// The count of an instance's open files, for [`MAX_OPEN_FILES`].
pub(crate) fn held_files() -> Held {
    Held::new(MAX_OPEN_FILES, "open files", |entry| {
        // A file's stream holds the file open after its descriptor is
        // dropped.
        entry.is::<wasmtime_wasi::filesystem::Descriptor>()
            || entry.is::<wasmtime_wasi::p2::DynInputStream>()
            || entry.is::<wasmtime_wasi::p2::DynOutputStream>()
    })
}

/// What the counted filesystem functions see of a store.
pub(crate) struct CountedFiles<'a> {
    pub(crate) fs: WasiFilesystemCtxView<'a>,
    pub(crate) held: &'a mut Held,
    pub(crate) incidents: &'a Incidents,
}

/// A store whose files are counted.
pub(crate) trait FilesView: Send {
    fn counted_files(&mut self) -> CountedFiles<'_>;
}

impl CountedFiles<'_> {
    /// Whether the instance may open one more file; if not, the call fails
    /// with the handle limit.
    fn admit(&mut self) -> bool {
        match self.held.admit(self.fs.table) {
            Ok(()) => true,
            Err(incident) => {
                self.incidents.record(incident);
                false
            }
        }
    }

    /// Make one more thing that holds a file open, if the instance may: its
    /// answer as the guest sees it, counted when it succeeds.
    fn counted<T: 'static>(
        &mut self,
        make: impl FnOnce(&mut WasiFilesystemCtxView<'_>) -> wasmtime_wasi::p2::FsResult<Resource<T>>,
    ) -> wasmtime::Result<Result<Resource<T>, ErrorCode>> {
        if !self.admit() {
            return Ok(Err(ErrorCode::InsufficientMemory));
        }
        let answer = match make(&mut self.fs) {
            Ok(made) => Ok(made),
            Err(error) => Err(types::Host::convert_error_code(&mut self.fs, error)?),
        };
        if let Ok(made) = &answer {
            self.held.push(made.rep());
        }
        Ok(answer)
    }
}

/// Shadow `open-at` and the `*-via-stream` constructors of the filesystem
/// wasmtime-wasi linked with counted ones.
pub(crate) fn add_to_linker<T: FilesView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    // The version wasmtime-wasi 48 registers (its wit/deps/filesystem.wit);
    // guests importing any 0.2.x reach it by semver. Another name would
    // define a new instance and shadow nothing:
    // hostile::leaking_handles_in_a_loop_hits_the_handle_limit would fail.
    let mut interface = linker.instance("wasi:filesystem/types@0.2.12")?;
    interface.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, T>,
         (dir, path_flags, path, open_flags, flags): (
            Resource<types::Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let mut files = store.data_mut().counted_files();
                if !files.admit() {
                    return Ok((Err(ErrorCode::InsufficientMemory),));
                }
                let answer = match HostDescriptor::open_at(
                    &mut files.fs,
                    dir,
                    path_flags,
                    path,
                    open_flags,
                    flags,
                )
                .await
                {
                    Ok(opened) => Ok(opened),
                    Err(error) => Err(types::Host::convert_error_code(&mut files.fs, error)?),
                };
                if let Ok(opened) = &answer {
                    files.held.push(opened.rep());
                }
                Ok((answer,))
            })
        },
    )?;
    // A file's stream holds the file open after its descriptor is dropped,
    // so streams count too.
    interface.func_wrap(
        "[method]descriptor.read-via-stream",
        |mut store: StoreContextMut<'_, T>, (file, offset): (Resource<types::Descriptor>, u64)| {
            let answer = store
                .data_mut()
                .counted_files()
                .counted(|view| HostDescriptor::read_via_stream(view, file, offset))?;
            Ok((answer,))
        },
    )?;
    interface.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, T>, (file, offset): (Resource<types::Descriptor>, u64)| {
            let answer = store
                .data_mut()
                .counted_files()
                .counted(|view| HostDescriptor::write_via_stream(view, file, offset))?;
            Ok((answer,))
        },
    )?;
    interface.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, T>, (file,): (Resource<types::Descriptor>,)| {
            let answer = store
                .data_mut()
                .counted_files()
                .counted(|view| HostDescriptor::append_via_stream(view, file))?;
            Ok((answer,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
