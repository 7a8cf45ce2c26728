//! The tests of `paracle-runtime`: loading and calling plugins of every
//! kind, and the hostile-plugin suite (a plugin is the adversary: each test
//! checks the typed error, that it names the plugin, and that the host goes
//! on serving). One module per fixture in `tests/fixtures`, and topical
//! modules beside them.

mod bare_tool;
mod git_snoop;
mod hostile;
mod hostile_adapter;
mod hostile_memory;
mod hostile_net;
mod hostile_values;
mod plugins;
mod provider_http;
mod test_host;

/// Every fixture has a module of tests named after it: a fixture added to
/// `tests/fixtures` without tests does not compile.
macro_rules! has_tests {
    ($fixture:ident) => {
        #[allow(unused_imports)]
        use $fixture as _;
    };
}
paracle_guests::foreach_fixture!(has_tests);
