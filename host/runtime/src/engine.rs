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

pub struct PluginEngine {
    engine: Engine,
    pooling: bool,
    ticker_stop: Arc<AtomicBool>,
    cache: CompiledCache,
}

impl PluginEngine {
    /// An engine with the pooling allocator, or the on-demand allocator where
    /// this machine refuses the pool's address-space reservation. A `metered`
    /// engine counts fuel; its code is slower, so only plugins with a fuel
    /// limit run on it.
    pub fn new(cache_dir: Option<PathBuf>, metered: bool) -> Result<Self, EngineError> {
        let (engine, pooling) = match Engine::new(&config(true, metered)) {
            Ok(engine) => (engine, true),
            Err(pool_error) => {
                tracing::debug!("pooling allocator unavailable ({pool_error}); using on-demand");
                let engine =
                    Engine::new(&config(false, metered)).map_err(|e| EngineError(e.to_string()))?;
                (engine, false)
            }
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), ticker_stop.clone());
        let cache = CompiledCache::new(cache_dir, &engine);
        Ok(PluginEngine {
            engine,
            pooling,
            ticker_stop,
            cache,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn uses_pooling(&self) -> bool {
        self.pooling
    }

    /// Ticks to allow for `timeout` before the guest traps.
    pub fn deadline_ticks(timeout: Duration) -> u64 {
        (timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
    }

    /// Compile `bytes` (whose sha256 is `digest`), or take them from the cache.
    pub fn component(
        &self,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CacheUse), wasmtime::Error> {
        self.cache.get_or_compile(&self.engine, bytes, digest)
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn config(pooling: bool, metered: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(metered);
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
        pool.max_core_instances_per_component(32);
        pool.max_tables_per_component(32);
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
    fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        CompiledCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path_for(&self, dir: &Path, digest: &str) -> PathBuf {
        let digest = digest.trim_start_matches("sha256:");
        dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CacheUse), wasmtime::Error> {
        let Some(dir) = &self.dir else {
            return Ok((Component::from_binary(engine, bytes)?, CacheUse::Disabled));
        };
        let path = self.path_for(dir, digest);
        if path.exists() {
            // SAFETY: the file was written by this cache from the output of
            // `Component::serialize` for the same engine key; a corrupt file
            // fails wasmtime's header checks and is replaced below.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheUse::Hit)),
                Err(error) => tracing::warn!("discarding cached {}: {error}", path.display()),
            }
        }
        let component = Component::from_binary(engine, bytes)?;
        let stored = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|artifact| {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                atomic::write(&path, &artifact).map_err(|e| e.to_string())
            });
        match stored {
            Ok(()) => Ok((component, CacheUse::Compiled)),
            Err(error) => {
                tracing::warn!(
                    "could not cache compiled plugin in {}: {error}",
                    dir.display()
                );
                Ok((component, CacheUse::Disabled))
            }
        }
    }
}
