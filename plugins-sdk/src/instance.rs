//! The one plugin value of this component instance.
//!
//! A component instance is single-threaded and serves one call at a time, so a
//! thread-local cell is enough. It holds the value `init` built; if the host
//! calls a method first (it should not), the plugin is initialised from the
//! config the host holds for it.

use std::any::Any;
use std::cell::RefCell;

use crate::kinds::Plugin;
use crate::types::Error;

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

pub(crate) fn init<P: Plugin>(config: &str) -> Result<(), Error> {
    let config = parse_config(config)?;
    let plugin = P::init(config)?;
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

fn parse_config(config: &str) -> Result<serde_json::Value, Error> {
    if config.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(config)
        .map_err(|e| Error::InvalidInput(format!("config is not valid JSON: {e}")))
}

/// Run `f` on the plugin value, initialising it first if needed.
pub(crate) fn with<P: Plugin, R>(f: impl FnOnce(&mut P) -> R) -> Result<R, Error> {
    let initialised = INSTANCE.with(|cell| cell.borrow().is_some());
    if !initialised {
        init::<P>(&crate::host::raw_config())?;
    }
    INSTANCE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let plugin = slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<P>())
            .expect("the exported type is the one initialised");
        Ok(f(plugin))
    })
}

/// For exports that cannot return an error: a failed lazy init becomes a trap,
/// which the host reports against the plugin.
pub(crate) fn with_or_trap<P: Plugin, R>(f: impl FnOnce(&mut P) -> R) -> R {
    match with(f) {
        Ok(value) => value,
        Err(error) => panic!("plugin failed to initialise: {error}"),
    }
}
