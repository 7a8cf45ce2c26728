//! The one wasmtime `Engine` of the process, its epoch ticker, and the
//! on-disk cache of compiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_base::atomic;
use paracle_policy::MAX_MEMORY_BYTES;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::EngineError;

/// How often the epoch advances. A deadline of N ms is N / TICK ticks, so a
/// runaway guest is stopped at most one tick after its deadline. Ticks only
/// wake the store's check: the store compares the wall clock with the call's
/// deadline before it stops a guest, so a late ticker can never stop one
/// early.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Instances the pooling allocator keeps slots for; beyond this, instantiation
/// waits for the plugin's own instance limit rather than failing.
const POOL_INSTANCES: u32 = 256;

/// Guest stack for async calls. Deep recursion past it traps as a stack
/// overflow instead of touching host memory.
const ASYNC_STACK_BYTES: usize = 2 << 20;
const MAX_WASM_STACK_BYTES: usize = 1 << 20;

/// A table given back is zeroed with `memset`, up to this many bytes of it,
/// instead of unmapped. A plugin's tables are a page or two, and unmapping a
/// page costs a system call and a TLB shootdown across CPUs at the end of
/// every instance: a fresh instance per call took 32 µs with them unmapped
/// and 22 µs with them zeroed in place. Every used entry is still zeroed;
/// only a table grown past this is partly unmapped.
///
/// Not taken: batching the unmapping of memories (`decommit_batch_size`),
/// which with tables zeroed in place gained less than the noise here, and
/// would keep up to a batch of dead instances' memories resident per CPU
/// until the next batch.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// What an engine is built for. A component runs on the plain shape unless
/// its own code needs another: every shape but the plain one costs
/// something on every call or every instance, so only the components that
/// need it pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EngineShape {
    /// Counts fuel, for plugins with a fuel limit; its code is slower.
    pub metered: bool,
    /// Allocates instances on demand instead of from the pool, for a
    /// component shaped beyond the pool's per-component slots (more core
    /// instances, memories or tables than any plugin of ours needs).
    pub on_demand: bool,
    /// Runs the component model's async ABI (the `task.*`, `waitable-set.*`
    /// and `context.*` builtins, async-lifted exports), which QuickJS-based
    /// JavaScript components emit. Every call then goes through wasmtime's
    /// concurrent machinery, so plain components stay off it.
    pub concurrent: bool,
}

impl EngineShape {
    pub(crate) const COUNT: usize = 8;

    pub(crate) fn index(self) -> usize {
        usize::from(self.metered)
            | usize::from(self.on_demand) << 1
            | usize::from(self.concurrent) << 2
    }

    /// The shape that can compile a component that `error` refused on this
    /// one, if the refusal was about the engine and not the component.
    pub(crate) fn widened_for(self, error: &str) -> Option<EngineShape> {
        if !self.concurrent && NEEDS_CONCURRENCY.iter().any(|text| error.contains(text)) {
            return Some(EngineShape {
                concurrent: true,
                ..self
            });
        }
        if !self.on_demand && POOL_REFUSALS.iter().any(|text| error.contains(text)) {
            return Some(EngineShape {
                on_demand: true,
                ..self
            });
        }
        None
    }
}

/// How wasmtime words a component's use of the async ABI on an engine
/// without it (wasmparser's validator). Error contexts, the further async
/// builtins and the threading, GC and stackful proposals stay off: widening
/// would not help them.
const NEEDS_CONCURRENCY: &[&str] = &["requires the component model async feature"];

/// How wasmtime words what the on-demand engine can take instead: more
/// core instances, memories or tables than the pool's per-component slots,
/// and a table larger than a pool slot. The store caps all of these
/// (`store::MAX_*`). A memory too large for the pool is too large for any
/// plugin, and an instance's own size is capped by nothing on demand, so
/// neither widens.
const POOL_REFUSALS: &[&str] = &[
    "The component transitively contains",
    "module table does not fit in pooling allocator requirements",
];

/// Called around a compilation that the code cache could not spare: the
/// first load of a component, which can take seconds for a large one.
pub trait CompileObserver: Send + Sync {
    fn compiling(&self, path: &Path, bytes: usize);
    fn compiled(&self, path: &Path, elapsed: Duration, outcome: Result<CacheUse, &str>);
}

pub struct PluginEngine {
    engine: Engine,
    pooling: bool,
    ticker: Arc<Ticker>,
    cache: CompiledCache,
}

/// The engine's epoch ticker, running while anyone holds this: the engine,
/// and every plugin loaded on it, so that a plugin outliving its runtime
/// is still stopped at its deadlines.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl PluginEngine {
    /// An engine of `shape`. Unless the shape asks for on-demand
    /// allocation, the pooling allocator, or the on-demand one where this
    /// machine refuses the pool's address-space reservation.
    pub fn new(cache_dir: Option<PathBuf>, shape: EngineShape) -> Result<Self, EngineError> {
        let pooled = if shape.on_demand {
            Err(String::from("on demand by shape"))
        } else {
            Engine::new(&config(true, shape)).map_err(|e| e.to_string())
        };
        let (engine, pooling) = match pooled {
            Ok(engine) => (engine, true),
            Err(pool_error) => {
                tracing::debug!("pooling allocator not used ({pool_error}); using on-demand");
                let engine =
                    Engine::new(&config(false, shape)).map_err(|e| EngineError(e.to_string()))?;
                (engine, false)
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), stop.clone());
        let ticker = Arc::new(Ticker { stop });
        let cache = CompiledCache::new(cache_dir, &engine, shape);
        Ok(PluginEngine {
            engine,
            pooling,
            ticker,
            cache,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn uses_pooling(&self) -> bool {
        self.pooling
    }

    pub(crate) fn ticker(&self) -> Arc<Ticker> {
        self.ticker.clone()
    }

    /// Ticks to allow for `timeout` before the guest traps.
    pub fn deadline_ticks(timeout: Duration) -> u64 {
        (timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
    }

    /// The wider shape a component of `digest` needed when it was last
    /// compiled, so that it is not compiled again on this engine only to be
    /// refused.
    pub(crate) fn remembered_shape(&self, digest: &str) -> Option<EngineShape> {
        let note = self.cache.shape_note(digest)?;
        // Written by `remember_shape`: two words at most.
        if std::fs::metadata(&note).ok()?.len() > 64 {
            return None;
        }
        let text = std::fs::read_to_string(note).ok()?;
        let mut shape = EngineShape::default();
        for word in text.split_whitespace() {
            match word {
                "on-demand" => shape.on_demand = true,
                "concurrent" => shape.concurrent = true,
                _ => return None,
            }
        }
        Some(shape)
    }

    pub(crate) fn remember_shape(&self, digest: &str, shape: EngineShape) {
        let Some(note) = self.cache.shape_note(digest) else {
            return;
        };
        let mut words = Vec::new();
        if shape.on_demand {
            words.push("on-demand");
        }
        if shape.concurrent {
            words.push("concurrent");
        }
        if let Err(error) = atomic::write(&note, words.join(" ").as_bytes()) {
            tracing::debug!("could not note the shape of {digest}: {error}");
        }
    }

    /// Compile `bytes` (whose sha256 is `digest`, read from `path`), or take
    /// them from the cache; `observer` hears a compilation.
    pub fn component(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: &str,
        observer: Option<&dyn CompileObserver>,
    ) -> Result<(Component, CacheUse), wasmtime::Error> {
        self.cache
            .get_or_compile(&self.engine, path, bytes, digest, observer)
    }
}

fn config(pooling: bool, shape: EngineShape) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Off unless asked: with it on, every call goes through wasmtime's
    // concurrent machinery, which a synchronous plugin does not need.
    config.concurrency_support(shape.concurrent);
    config.wasm_component_model_async(shape.concurrent);
    config.epoch_interruption(true);
    config.consume_fuel(shape.metered);
    config.async_stack_size(ASYNC_STACK_BYTES + MAX_WASM_STACK_BYTES);
    config.max_wasm_stack(MAX_WASM_STACK_BYTES);
    config.parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES);
        pool.total_core_instances(POOL_INSTANCES * 4);
        pool.total_memories(POOL_INSTANCES * 2);
        pool.total_tables(POOL_INSTANCES * 4);
        pool.total_stacks(POOL_INSTANCES);
        pool.max_memory_size(MAX_MEMORY_BYTES as usize);
        pool.max_memories_per_component(4);
        // componentize-py's `--stub-wasi` output has 38.
        pool.max_core_instances_per_component(64);
        pool.max_tables_per_component(32);
        pool.table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
        // Slots given back are unmapped (wasmtime's default), not reset in
        // place with PAGEMAP_SCAN, which was twice as fast for a fresh
        // instance: wasmtime 48's scan resets only pages present in memory,
        // so a page the last instance wrote that is swapped out or being
        // migrated at that moment would reach the next instance, maybe
        // another plugin's (wasmtime PR #14357).
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advance the engine's epoch until the engine is dropped. The thread holds
/// its own engine handle, so it stops on the flag, not on the last drop.
///
/// Ticks follow a fixed schedule rather than sleeping one tick at a time:
/// each sleep overshoots a little, and over a 100 ms deadline the overshoots
/// alone added several milliseconds. A thread that falls more than a tick
/// behind (a loaded machine did not schedule it) starts the schedule again
/// rather than catching up in a burst, which would only wake the stores'
/// deadline checks before their time (they check the clock, so no call is
/// stopped early).
fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("paracle-epoch".into())
        .spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                next += EPOCH_TICK;
                let now = Instant::now();
                match next.checked_duration_since(now) {
                    Some(wait) => std::thread::sleep(wait),
                    None if now - next > EPOCH_TICK => next = now,
                    None => {}
                }
                engine.increment_epoch();
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Whether a component came from the cache or was compiled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheUse {
    Hit,
    Compiled,
    /// No cache directory could be used; compiled in memory only.
    Disabled,
}

/// Compiled components on disk, keyed by the component's sha256 and by the
/// engine's compatibility hash, so that a new wasmtime or different settings
/// never read another's artifacts.
struct CompiledCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompiledCache {
    fn new(dir: Option<PathBuf>, engine: &Engine, shape: EngineShape) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        // Pooled and on-demand code are compatible to wasmtime, but a
        // component compiled on demand because it does not fit the pool
        // would be refused again by the pool on every load.
        shape.hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        CompiledCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn shape_note(&self, digest: &str) -> Option<PathBuf> {
        let digest = digest.trim_start_matches("sha256:");
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{digest}-{}.shape", self.engine_key)))
    }

    fn path_for(&self, dir: &Path, digest: &str) -> PathBuf {
        let digest = digest.trim_start_matches("sha256:");
        dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    fn get_or_compile(
        &self,
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        digest: &str,
        observer: Option<&dyn CompileObserver>,
    ) -> Result<(Component, CacheUse), wasmtime::Error> {
        let compile = || {
            let started = Instant::now();
            if let Some(observer) = observer {
                observer.compiling(path, bytes.len());
            }
            let compiled = Component::from_binary(engine, bytes);
            (compiled, started)
        };
        let heard = |started: Instant, outcome: Result<CacheUse, &str>| {
            if let Some(observer) = observer {
                observer.compiled(path, started.elapsed(), outcome);
            }
        };
        let Some(dir) = &self.dir else {
            let (compiled, started) = compile();
            let component = compiled.inspect_err(|e| heard(started, Err(&e.to_string())))?;
            heard(started, Ok(CacheUse::Disabled));
            return Ok((component, CacheUse::Disabled));
        };
        let cached = self.path_for(dir, digest);
        if cached.exists() {
            // SAFETY: the file was written by this cache from the output of
            // `Component::serialize` for the same engine key; a corrupt file
            // fails wasmtime's header checks and is replaced below.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(component) => return Ok((component, CacheUse::Hit)),
                Err(error) => tracing::warn!("discarding cached {}: {error}", cached.display()),
            }
        }
        let (compiled, started) = compile();
        let component = compiled.inspect_err(|e| heard(started, Err(&e.to_string())))?;
        let stored = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|artifact| {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                atomic::write(&cached, &artifact).map_err(|e| e.to_string())
            });
        match stored {
            Ok(()) => {
                heard(started, Ok(CacheUse::Compiled));
                Ok((component, CacheUse::Compiled))
            }
            Err(error) => {
                heard(started, Ok(CacheUse::Disabled));
                tracing::warn!(
                    "could not cache compiled plugin in {}: {error}",
                    dir.display()
                );
                Ok((component, CacheUse::Disabled))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Instance, Module, Store};

    /// Grows its table past `TABLE_KEEP_RESIDENT_BYTES` (9,064 entries of 8
    /// bytes), plants a function in an entry inside the part that is zeroed
    /// in place and one in the part that is unmapped, and a word in memory,
    /// and tells whether any of them was there before it planted them.
    const PLANTER: &str = r#"
        (module
          (memory 1)
          (table $slots 64 funcref)
          (func $planted_fn (result i32) i32.const 7)
          (elem declare func $planted_fn)
          (func (export "grow") (result i32)
            (table.grow $slots (ref.null func) (i32.const 9000)))
          (func (export "plant")
            (table.set $slots (i32.const 40) (ref.func $planted_fn))
            (table.set $slots (i32.const 9000) (ref.func $planted_fn))
            (i32.store (i32.const 4096) (i32.const 0x5ec2e7)))
          (func (export "found") (result i32)
            (i32.or
              (i32.or
                (i32.eqz (ref.is_null (table.get $slots (i32.const 40))))
                (i32.eqz (ref.is_null (table.get $slots (i32.const 9000)))))
              (i32.ne (i32.load (i32.const 4096)) (i32.const 0)))))
    "#;

    /// Tables are zeroed in place rather than unmapped when an instance
    /// ends (`TABLE_KEEP_RESIDENT_BYTES`): what one instance put in a table
    /// or memory must never reach the next one to get its slot. The pool
    /// hands a table the slot freed last (and a memory the slot its module
    /// used last), so every round after the first runs in a used slot.
    #[tokio::test]
    async fn nothing_an_instance_left_in_its_slot_reaches_the_next() {
        let engine = PluginEngine::new(None, EngineShape::default()).expect("engine");
        assert!(engine.uses_pooling(), "this test is about the pool's slots");
        let module = Module::new(engine.engine(), PLANTER).expect("module compiles");
        for round in 0..50 {
            let mut store = Store::new(engine.engine(), ());
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = Instance::new_async(&mut store, &module, &[])
                .await
                .expect("instantiates");
            let func = |store: &mut Store<()>, name: &str| {
                instance
                    .get_typed_func::<(), i32>(&mut *store, name)
                    .expect(name)
            };
            let (grow, found) = (func(&mut store, "grow"), func(&mut store, "found"));
            let plant = instance
                .get_typed_func::<(), ()>(&mut store, "plant")
                .expect("plant");
            assert_eq!(grow.call_async(&mut store, ()).await.expect("grows"), 64);
            assert_eq!(
                found.call_async(&mut store, ()).await.expect("runs"),
                0,
                "round {round}: a new instance found what an earlier one planted"
            );
            plant.call_async(&mut store, ()).await.expect("plants");
            assert_eq!(found.call_async(&mut store, ()).await.expect("runs"), 1);
            drop(store);
            // The slot was zeroed in place, not unmapped: the rounds test
            // the reset this engine uses.
            let pool = engine.engine().pooling_allocator_metrics().expect("pooled");
            assert_eq!(
                pool.unused_table_bytes_resident(),
                TABLE_KEEP_RESIDENT_BYTES
            );
        }
    }
}
